//! The one way tests start `idpbuilder`: cut off from the machine running them, so that a
//! developer's docker login (`credsStore`), kubeconfig, engine socket or credential variables can
//! never change an outcome.
//!
//! Every launch goes through [`isolated`]: `HOME` is a directory the test chose (by default one
//! that does not exist), so there is no `~/.kube/config` or `~/.docker/config.json` unless the test
//! writes one; `KUBECONFIG`, `DOCKER_CONFIG`, the Docker context and TLS variables and every
//! `IDPBUILDER_*` variable are removed; `DOCKER_HOST` and `XDG_RUNTIME_DIR` point at paths that do
//! not exist, so no engine socket of the machine is reached; `NO_COLOR=1`; standard input is
//! empty. A test that needs a kubeconfig, a docker config, credentials in the environment or an
//! engine sets them on top of the command it gets here.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The `HOME` of a test that did not choose one: nothing is there.
pub const NOWHERE: &str = "/nonexistent/home";
/// `DOCKER_HOST` of every test that does not set its own: a socket nobody listens on.
pub const NO_ENGINE: &str = "unix:///nonexistent/docker.sock";
/// `XDG_RUNTIME_DIR` of every test (where Podman's user socket would be): absent.
pub const NO_RUNTIME_DIR: &str = "/nonexistent/run";

/// Variables of the machine's environment that the binary (or a credential helper it may start)
/// would read, removed from every launch.
const REMOVED: &[&str] = &[
    "KUBECONFIG",
    "DOCKER_CONFIG",
    "DOCKER_CONTEXT",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "CONTAINER_HOST",
];

/// `idpbuilder` with `HOME` at [`NOWHERE`], as an assert_cmd command.
pub fn idpbuilder() -> assert_cmd::Command {
    idpbuilder_at(Path::new(NOWHERE))
}

/// `idpbuilder` with `HOME` at `home` (a kubeconfig or docker config the test wrote there is
/// found as a user's would be), as an assert_cmd command.
pub fn idpbuilder_at(home: &Path) -> assert_cmd::Command {
    assert_cmd::Command::from_std(isolated(env!("CARGO_BIN_EXE_idpbuilder"), home))
}

/// `idpbuilder` with `HOME` at [`NOWHERE`], as a std command: for tests that spawn it themselves
/// (a deadline with `child::output_within`, a signal, `child::measured` for its peak memory).
pub fn idpbuilder_process() -> Command {
    isolated(env!("CARGO_BIN_EXE_idpbuilder"), Path::new(NOWHERE))
}

/// `idpbuilder` in a session of its own (util-linux `setsid -w`), isolated the same way, so it
/// has no controlling terminal: a question asked on `/dev/tty` fails instead of waiting, however
/// the tests themselves were started.
pub fn idpbuilder_without_terminal() -> assert_cmd::Command {
    let mut cmd = isolated("setsid", Path::new(NOWHERE));
    cmd.args(["-w", env!("CARGO_BIN_EXE_idpbuilder")]);
    assert_cmd::Command::from_std(cmd)
}

/// `idpbuilder ARGS` under a pseudo-terminal (util-linux `script -qec`), isolated the same way;
/// what the terminal showed comes back on the command's stdout. `TERM` is `xterm`.
pub fn idpbuilder_on_terminal(args: &[String]) -> Command {
    let mut line = shell_quote(env!("CARGO_BIN_EXE_idpbuilder"));
    for arg in args {
        line.push(' ');
        line.push_str(&shell_quote(arg));
    }
    let mut cmd = isolated("script", Path::new(NOWHERE));
    cmd.args(["-qec", &line, "/dev/null"]).env("TERM", "xterm");
    cmd
}

/// Whether util-linux `script` (for [`idpbuilder_on_terminal`]) is installed.
pub fn has_script() -> bool {
    Command::new("script")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What the command wrote to stderr, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// What the command wrote to stdout, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stdout then stderr, as text: for assertions that do not care which stream a line is on.
pub fn text(output: &Output) -> String {
    format!("{}{}", stdout(output), stderr(output))
}

/// `program` with the isolation described at the top of this file.
pub fn isolated(program: impl AsRef<OsStr>, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("HOME", home)
        .env("DOCKER_HOST", NO_ENGINE)
        .env("XDG_RUNTIME_DIR", NO_RUNTIME_DIR)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    for key in REMOVED {
        cmd.env_remove(key);
    }
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("IDPBUILDER_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// `text` as one POSIX shell word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
