//! A second registry implementation started by a test: `container-registry` 0.3.1 from crates.io
//! (a small axum registry), beside the CNCF distribution [`Registry`](super::registry::Registry).
//!
//! `make tools` installs it in the project's `.tools/bin/`; `IDPBUILDER_TEST_CONTAINER_REGISTRY`
//! names another binary. [`ContainerRegistry::start_or_skip`] starts it on a free port of
//! 127.0.0.1 with its own storage dir and password, waits until `GET /v2/` answers, and kills it
//! on drop. It speaks plain HTTP only (the binary has no TLS option), so pushes use
//! `--plain-http`; it accepts any user name with the one password (HTTP Basic, no token flow).
//! Without the binary a test is skipped with a line on stderr, except under CI (`CI=true`),
//! where that is a failure. What it accepts and refuses is in `docs/registries.md`.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::server_process::ServerProcess;
use super::skopeo::{self, TestRegistry};

/// The version `make tools` installs and the tests are written against.
pub const VERSION: &str = "0.3.1";
/// Overrides where the binary is looked for.
pub const BIN_ENV: &str = "IDPBUILDER_TEST_CONTAINER_REGISTRY";
/// Where `make tools` puts the binary, relative to the crate root.
pub const TOOLS_BIN: &str = ".tools/bin/container-registry";
/// The user name tests send; the registry ignores it and checks only the password.
pub const USER: &str = "giteaadmin";
/// The password every test instance is started with.
pub const PASS: &str = "cr-Pa55word";

/// A running container-registry; killed (and its temp dir removed) on drop.
pub struct ContainerRegistry {
    child: Child,
    port: u16,
    log_path: PathBuf,
    storage: PathBuf,
    dir: TempDir,
}

impl ContainerRegistry {
    /// The binary: `$IDPBUILDER_TEST_CONTAINER_REGISTRY`, else `.tools/bin/container-registry`
    /// under the crate root; `None` when it is not there.
    pub fn binary() -> Option<PathBuf> {
        let path = Self::looked_for();
        path.is_file().then_some(path)
    }

    /// Where [`ContainerRegistry::binary`] looks.
    fn looked_for() -> PathBuf {
        match std::env::var_os(BIN_ENV).filter(|v| !v.is_empty()) {
            Some(path) => PathBuf::from(path),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join(TOOLS_BIN),
        }
    }

    /// Starts one for `test`, or, when the binary is missing, prints a skip line and returns
    /// `None` (panics instead under CI, where `make tools` must have installed it).
    pub fn start_or_skip(test: &str) -> Option<ContainerRegistry> {
        match Self::binary() {
            Some(bin) => Some(Self::start(&bin)),
            None if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
                "{test}: container-registry {VERSION} is not at {}; CI must run `make tools` \
                 first (or set {BIN_ENV})",
                Self::looked_for().display()
            ),
            None => {
                eprintln!(
                    "skipped: {test}: container-registry {VERSION} is not at {}; run `make \
                     tools` (or set {BIN_ENV})",
                    Self::looked_for().display()
                );
                None
            }
        }
    }

    /// Starts `bin` on a free port and waits (up to 10 s) until `/v2/` answers.
    pub fn start(bin: &Path) -> ContainerRegistry {
        let dir = tempfile::Builder::new()
            .prefix("idpbuilder-container-registry-")
            .tempdir()
            .expect("create container-registry temp dir");
        let storage = dir.path().join("storage");
        let log_path = dir.path().join("registry.log");
        skopeo::prepare(dir.path(), None);

        let server = ServerProcess {
            name: "container-registry",
            log_path: &log_path,
            port_taken: "failed to bind listener",
        };
        // Bound its port (so nobody else answers there), and `GET /v2/` gets an HTTP answer
        // (401 without credentials).
        let (child, port) = server.start(
            |port| spawn(bin, port, &storage, &log_path),
            |log, port| log.contains("bound, starting to serve") && answers_v2(port),
        );
        ContainerRegistry {
            child,
            port,
            log_path,
            storage,
            dir,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Whether the store holds blob `digest` (`sha256:...`); blobs are global, not per
    /// repository.
    pub fn blob_exists(&self, digest: &str) -> bool {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.storage.join("blobs").join(hex).is_file()
    }

    /// Everything the registry logged so far: startup, one line per request (`tower_http`
    /// at debug level), errors.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl TestRegistry for ContainerRegistry {
    fn host(&self) -> String {
        ContainerRegistry::host(self)
    }

    fn credentials(&self) -> Option<(&str, &str)> {
        Some((USER, PASS))
    }

    fn ca_file(&self) -> Option<&Path> {
        None
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn log(&self) -> String {
        ContainerRegistry::log(self)
    }
}

impl Drop for ContainerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- container-registry log ({}) ---\n{}",
                self.host(),
                self.log()
            );
        }
    }
}

/// `container-registry -b 127.0.0.1:PORT -p PASS -s STORAGE`, logging requests without colour.
fn spawn(bin: &Path, port: u16, storage: &Path, log_path: &Path) -> Child {
    let log = File::create(log_path).expect("create container-registry log");
    Command::new(bin)
        .arg("--bind")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--password")
        .arg(PASS)
        .arg("--storage")
        .arg(storage)
        .env("RUST_LOG", "tower_http=debug")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log handle"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()))
}

/// Whether an HTTP server on `port` answers `GET /v2/`.
fn answers_v2(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let request =
        format!("GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 ")
}
