//! Running the binary under test with a deadline: a tool that retries forever or hangs must
//! fail its test, not stall the suite; [`measured`] also reports its peak RSS (`wait4`'s
//! rusage: this child only), disk writes and how long it ran.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` to the end, collecting stdout and stderr; kills it and panics (with what it
/// printed) if it is still running after `limit`.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the command");
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the command") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let err = err.join().unwrap_or_default();
            panic!(
                "still running after {limit:?}:\n{}",
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// How a measured run went.
pub struct Measured {
    pub output: Output,
    pub peak_kib: i64,
    /// Blocks written to disk (`ru_oublock`), in KiB.
    pub written_kib: i64,
    pub elapsed: Duration,
}

impl Measured {
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }
}

/// Runs `cmd` (standard input empty, stdout and stderr collected), killing it after `limit`; reports
/// its peak RSS from `wait4`'s rusage and how long it ran.
pub fn measured(cmd: &mut Command, limit: Duration) -> Measured {
    measured_with_input(cmd, Stdio::null(), limit)
}

/// [`measured`] with `stdin` as standard input (`/dev/zero`: input without end).
pub fn measured_with_input(cmd: &mut Command, stdin: Stdio, limit: Duration) -> Measured {
    let mut child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start idpbuilder");
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let mut status = 0;
    // SAFETY: rusage is plain data, zero is a valid value; wait4 reaps our own child by pid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut killed = false;
    loop {
        let waited = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if waited == pid {
            break;
        }
        assert!(waited == 0, "wait4 failed");
        if started.elapsed() > limit && !killed {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    std::mem::forget(child);
    let stderr = err.join().unwrap_or_default();
    assert!(
        !killed,
        "still running after {limit:?}:\n{}",
        String::from_utf8_lossy(&stderr)
    );
    use std::os::unix::process::ExitStatusExt;
    Measured {
        output: Output {
            status: std::process::ExitStatus::from_raw(status),
            stdout: out.join().unwrap_or_default(),
            stderr,
        },
        peak_kib: usage.ru_maxrss,
        written_kib: usage.ru_oublock / 2,
        elapsed,
    }
}

/// Reads a pipe to its end on a thread, so a chatty child never blocks on a full pipe.
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}
