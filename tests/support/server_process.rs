//! Starting a server process (a registry) on a free port of 127.0.0.1 and waiting until it is
//! ready: the loop [`Registry`](super::registry::Registry) and
//! [`ContainerRegistry`](super::container_registry::ContainerRegistry) share, which tries
//! another port when someone else took the chosen one meanwhile.

use std::net::TcpListener;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// How long a server may take to become ready.
pub const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How many free ports are tried before giving up.
const PORT_ATTEMPTS: usize = 5;

/// What to start and how to tell it is ready.
pub struct ServerProcess<'a> {
    /// The name in panic messages (`registry`, `container-registry`).
    pub name: &'a str,
    /// The log the process writes (stdout and stderr).
    pub log_path: &'a Path,
    /// What its log says when the port was taken before it could bind it.
    pub port_taken: &'a str,
}

impl ServerProcess<'_> {
    /// Starts the server with `spawn(port)` on a free port and waits (up to
    /// [`READY_DEADLINE`]) until `ready(log, port)` holds; on a port taken meanwhile, kills it
    /// and tries another. Panics with the log when it exits or is not ready in time, or when
    /// no port was free.
    pub fn start(
        &self,
        mut spawn: impl FnMut(u16) -> Child,
        ready: impl Fn(&str, u16) -> bool,
    ) -> (Child, u16) {
        let name = self.name;
        let mut failures = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let mut child = spawn(port);
            match self.wait_ready(&mut child, |log| ready(log, port)) {
                Ok(()) => return (child, port),
                Err(log) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    if !log.contains(self.port_taken) {
                        panic!("{name} did not start on port {port}:\n{log}");
                    }
                    failures.push(log);
                }
            }
        }
        panic!("{name} found no free port: {failures:#?}");
    }

    /// Waits until `ready(log)` holds; `Err(log)` if the process exits or the deadline passes.
    fn wait_ready(&self, child: &mut Child, ready: impl Fn(&str) -> bool) -> Result<(), String> {
        let name = self.name;
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            let log = std::fs::read_to_string(self.log_path).unwrap_or_default();
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{name} exited ({status}):\n{log}"));
            }
            if ready(&log) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{name} not ready after {READY_DEADLINE:?}:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A port that was free a moment ago (the server may still lose a race for it; we retry).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port()
}
