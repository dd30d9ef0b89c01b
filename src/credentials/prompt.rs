//! Asking for a password on the terminal, for `--src-creds USER` without `:PASSWORD`. The
//! prompt and the answer go through `/dev/tty` with echo off, so the password is never shown
//! and standard input and error may be redirected. Without a terminal it is an input error
//! whose hint names the other ways to give it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::sync::Mutex;

use rustix::termios::{LocalModes, OptionalActions, Termios, tcgetattr, tcsetattr};
use secrecy::SecretString;

use crate::error::{Error, Result};

/// The terminal's settings while echo is off, to put back if the process is interrupted then.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

/// Writes `prompt` on the terminal and reads one line with echo off, without its line end.
pub fn ask_password(prompt: &str) -> Result<SecretString> {
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| no_terminal().with_cause(e))?;
    let saved = tcgetattr(&tty).map_err(|e| no_terminal().with_cause(std::io::Error::from(e)))?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    tcsetattr(&tty, OptionalActions::Flush, &quiet)
        .map_err(|e| no_terminal().with_cause(std::io::Error::from(e)))?;
    *lock() = Some(saved.clone());
    let answer = read_line(&tty, prompt);
    let _ = tcsetattr(&tty, OptionalActions::Now, &saved);
    *lock() = None;
    let line = answer.map_err(|e| {
        Error::input("cannot read the source registry's password from the terminal").with_cause(e)
    })?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(Error::input("the source registry's password is empty")
            .with_hint("type the password when asked, or write --src-creds USER:PASSWORD"));
    }
    Ok(SecretString::from(password.to_string()))
}

fn read_line(tty: &File, prompt: &str) -> std::io::Result<String> {
    let mut out = tty;
    out.write_all(prompt.as_bytes())?;
    out.flush()?;
    let mut line = String::new();
    BufReader::new(tty).read_line(&mut line)?;
    Ok(line)
}

/// Puts back the terminal's echo if a password prompt is waiting (the push was interrupted
/// while it asked).
pub fn restore() {
    if let Some(saved) = lock().take()
        && let Ok(tty) = OpenOptions::new().read(true).write(true).open("/dev/tty")
    {
        let _ = tcsetattr(&tty, OptionalActions::Now, &saved);
    }
}

fn lock() -> std::sync::MutexGuard<'static, Option<Termios>> {
    SAVED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn no_terminal() -> Error {
    Error::input("--src-creds names no password and there is no terminal to ask for it")
        .with_hint("write --src-creds USER:PASSWORD, or set IDPBUILDER_SRC_USERNAME and IDPBUILDER_SRC_PASSWORD")
}
