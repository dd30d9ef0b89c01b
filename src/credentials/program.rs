//! Running a program that hands us a secret (a docker credential helper, a kubeconfig `exec`
//! plugin): in a process group of its own, its answer read to a limit, and the whole group killed
//! when it overruns the time or the limit or its caller gives up on it, so neither a chatty
//! helper nor a child it left behind outlives the lookup.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// What a program was given and may take.
pub struct Limits {
    pub output: usize,
    pub time: Duration,
}

/// What a program gets in its environment besides ours: variables `set`, variables `removed`.
#[derive(Default)]
pub struct Environment<'a> {
    pub set: &'a [(String, String)],
    pub removed: &'a [String],
}

/// Runs `program` with `args`, writes `input` to its standard input and closes it, and reads
/// its standard output to the end (standard error is dropped: it may echo the secret). The
/// error says what went wrong in words that hold nothing the program wrote.
pub async fn run(
    program: &str,
    args: &[&str],
    input: &[u8],
    limits: &Limits,
) -> Result<(ExitStatus, Vec<u8>), String> {
    run_in(program, args, &Environment::default(), input, limits).await
}

/// [`run`] with `environment` changed (a kubeconfig `exec` plugin's `env` and
/// `KUBERNETES_EXEC_INFO`).
pub async fn run_in(
    program: &str,
    args: &[&str],
    environment: &Environment<'_>,
    input: &[u8],
    limits: &Limits,
) -> Result<(ExitStatus, Vec<u8>), String> {
    let mut command = tokio::process::Command::new(program);
    for name in environment.removed {
        command.env_remove(name);
    }
    let mut child = command
        .args(args)
        .envs(environment.set.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own group, so that a timeout kills what it started too.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let group = child.id();
    // Until it has answered, the whole group goes with this future: a caller that gives up on
    // it (a budget spent elsewhere) leaves nothing running.
    let mut guard = GroupGuard(group);
    let talk = async {
        if let Some(mut stdin) = child.stdin.take() {
            // A program that does not read its input is not an error in itself.
            let _ = stdin.write_all(input).await;
        }
        let mut output = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            let limit = limits.output as u64 + 1;
            stdout
                .take(limit)
                .read_to_end(&mut output)
                .await
                .map_err(|e| format!("cannot read the answer of {program}: {e}"))?;
        }
        if output.len() > limits.output {
            return Err(format!(
                "{program} answered with more than {} KiB",
                limits.output >> 10
            ));
        }
        let status = child
            .wait()
            .await
            .map_err(|e| format!("waiting for {program} failed: {e}"))?;
        Ok((status, output))
    };
    let outcome = match tokio::time::timeout(limits.time, talk).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!(
            "{program} did not answer within {}s",
            limits.time.as_secs_f64()
        )),
    };
    if outcome.is_ok() {
        guard.0 = None;
    }
    outcome
}

/// Kills the process group it names when dropped, unless emptied first.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

/// Kills every process of the group led by `leader` (the program and whatever it started).
fn kill_group(leader: Option<u32>) {
    let Some(pid) = leader.and_then(|id| rustix::process::Pid::from_raw(id as i32)) else {
        return;
    };
    if let Err(e) = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL) {
        tracing::debug!("cannot stop process group {}: {e}", pid.as_raw_nonzero());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(output: usize, ms: u64) -> Limits {
        Limits {
            output,
            time: Duration::from_millis(ms),
        }
    }

    #[tokio::test]
    async fn the_answer_and_status_come_back() {
        let (status, output) = run("sh", &["-c", "cat; exit 3"], b"hi", &limits(1024, 5000))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status.code(), Some(3));
        assert_eq!(output, b"hi");
    }

    #[tokio::test]
    async fn an_answer_over_the_limit_is_refused() {
        let error = run("yes", &[], b"", &limits(1 << 20, 5000))
            .await
            .err()
            .unwrap_or_default();
        assert!(error.contains("more than 1024 KiB"), "{error}");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_children_too() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let pid_file = dir.path().join("pid");
        let script = format!("sleep 30 & echo $! > '{}'; wait", pid_file.display());
        let error = run("sh", &["-c", &script], b"", &limits(1024, 300))
            .await
            .err()
            .unwrap_or_default();
        assert!(error.contains("did not answer within 0.3s"), "{error}");
        let pid = std::fs::read_to_string(&pid_file).unwrap_or_default();
        let proc_dir = format!("/proc/{}", pid.trim());
        let mut gone = false;
        for _ in 0..50 {
            let state = std::fs::read_to_string(format!("{proc_dir}/stat")).unwrap_or_default();
            // Killed and reaped, or a zombie waiting for init.
            if state.is_empty() || state.split_whitespace().nth(2) == Some("Z") {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone, "the helper's child {} survived", pid.trim());
    }
}
