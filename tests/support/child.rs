//! Running the binary under test with a deadline: a tool that retries forever or hangs must
//! fail its test, not stall the suite; [`measured`] also reports its peak RSS, disk writes and
//! how long it ran.

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
/// its peak RSS and disk writes (GNU time's `%M` and `%O`) and how long it ran.
pub fn measured(cmd: &mut Command, limit: Duration) -> Measured {
    measured_with_input(cmd, Stdio::null(), limit)
}

/// [`measured`] with `stdin` as standard input (`/dev/zero`: input without end).
///
/// The child runs under `/usr/bin/time`, not straight from this process: Linux starts a
/// child's `ru_maxrss` at the high-water RSS of the memory map it was spawned from, so a child
/// of the test process reported the test process's own peak (129 MiB inside the e2e binary,
/// ~70 MiB after one panicking test, more under coverage instrumentation). `time` is small, so
/// the number it reports is the child's own.
pub fn measured_with_input(cmd: &mut Command, stdin: Stdio, limit: Duration) -> Measured {
    let report = tempfile::NamedTempFile::new().expect("a file for time's report");
    let mut timed = Command::new("/usr/bin/time");
    timed
        .args(["--quiet", "--format", "%M %O", "--output"])
        .arg(report.path())
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => timed.env(key, value),
            None => timed.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        timed.current_dir(dir);
    }
    // Its own process group, so that a kill at the deadline reaches the child, not only `time`.
    use std::os::unix::process::CommandExt;
    let mut child = timed
        .process_group(0)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start /usr/bin/time (Debian package `time`, installed by make deps)");
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let started = Instant::now();
    let mut killed = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the command") {
            break status;
        }
        if started.elapsed() > limit && !killed {
            // SAFETY: kill(2) on the process group this function created.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    let stderr = err.join().unwrap_or_default();
    assert!(
        !killed,
        "still running after {limit:?}:\n{}",
        String::from_utf8_lossy(&stderr)
    );
    let report = std::fs::read_to_string(report.path()).expect("read time's report");
    let numbers: Vec<i64> = report
        .split_whitespace()
        .map(|word| word.parse().expect("time's report holds numbers"))
        .collect();
    let [peak_kib, blocks_written] = numbers[..] else {
        panic!("time's report is not `%M %O`: {report:?}");
    };
    Measured {
        output: Output {
            // `time` exits with the child's code (128 + the signal, if one ended it).
            status,
            stdout: out.join().unwrap_or_default(),
            stderr,
        },
        peak_kib,
        // 512-byte blocks.
        written_kib: blocks_written / 2,
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
