//! A real OCI registry (CNCF distribution, Debian's `docker-registry`) started by a test.
//!
//! `Registry::start` writes a config into its own temp dir (storage, certificates, htpasswd,
//! log), starts `docker-registry serve` on a free port of 127.0.0.1, waits until it listens and
//! kills it on drop. It never uses the packaged service on :5000. Tests inspect what was pushed
//! through skopeo (the reference client) or straight from the registry's storage directory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

use super::certs;
use super::server_process::ServerProcess;
use super::skopeo::{self, TestRegistry};
use super::token_server::{self, TokenServer};

/// Where the registry binary lives; `IDPBUILDER_TEST_REGISTRY_BIN` overrides it.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// How the registry serves: plain HTTP, or HTTPS with one of the test certificate shapes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tls {
    #[default]
    None,
    /// A server certificate signed by a test CA; clients trust the CA.
    CaSigned,
    /// idpbuilder's shape: one self-signed CA:TRUE certificate served as the server's own.
    IdpbuilderShaped,
}

/// Who the registry lets in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Auth {
    #[default]
    None,
    /// `auth: htpasswd` (bcrypt); the challenge is `Basic`.
    Basic { user: String, pass: String },
    /// `auth: token` backed by a [`TokenServer`]; the challenge is `Bearer realm=...`.
    Token { user: String, pass: String },
}

impl Auth {
    pub fn basic(user: &str, pass: &str) -> Auth {
        Auth::Basic {
            user: user.to_owned(),
            pass: pass.to_owned(),
        }
    }

    pub fn token(user: &str, pass: &str) -> Auth {
        Auth::Token {
            user: user.to_owned(),
            pass: pass.to_owned(),
        }
    }

    /// The accepted user and password, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        match self {
            Auth::None => None,
            Auth::Basic { user, pass } | Auth::Token { user, pass } => Some((user, pass)),
        }
    }
}

/// What to start: `RegistryOptions::default().tls(Tls::CaSigned).auth(Auth::basic("u", "p"))`.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    pub tls: Tls,
    pub auth: Auth,
    /// With `Auth::Token`: anyone may pull without credentials (an anonymous token, Docker
    /// Hub's public images); pushing still needs them.
    pub anonymous_pull: bool,
}

impl RegistryOptions {
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    pub fn anonymous_pull(mut self) -> Self {
        self.anonymous_pull = true;
        self
    }
}

/// A running registry; killed (and its temp dir removed) on drop.
pub struct Registry {
    child: Child,
    port: u16,
    opts: RegistryOptions,
    server_cert: Option<certs::ServerCert>,
    token_server: Option<TokenServer>,
    log_path: PathBuf,
    storage: PathBuf,
    dir: TempDir,
}

impl Registry {
    /// Starts a registry as `opts` says and waits (up to 10 s) until it listens.
    pub fn start(opts: RegistryOptions) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("idpbuilder-registry-")
            .tempdir()
            .expect("create registry temp dir");
        let server_cert = match opts.tls {
            Tls::None => None,
            Tls::CaSigned => Some(certs::ca_signed(dir.path())),
            Tls::IdpbuilderShaped => Some(certs::idpbuilder_shaped(dir.path())),
        };
        let token_server = match &opts.auth {
            Auth::Token { user, pass } => {
                let issuer = certs::token_issuer(dir.path());
                Some(TokenServer::start_for(
                    issuer,
                    user,
                    pass,
                    server_cert.as_ref(),
                    opts.anonymous_pull,
                ))
            }
            _ => None,
        };
        let auth_yaml = auth_config(dir.path(), &opts.auth, token_server.as_ref());
        let tls_yaml = server_cert.as_ref().map_or(String::new(), |c| {
            format!(
                "  tls:\n    certificate: \"{}\"\n    key: \"{}\"\n",
                c.cert.display(),
                c.key.display()
            )
        });
        let storage = dir.path().join("storage");
        let log_path = dir.path().join("registry.log");
        skopeo::prepare(dir.path(), server_cert.as_ref());

        let server = ServerProcess {
            name: "registry",
            log_path: &log_path,
            port_taken: "address already in use",
        };
        // It logs "listening on" after binding the socket, so a probe connection is not needed
        // (and would only log a TLS handshake error).
        let (child, port) = server.start(
            |port| {
                let config = format!(
                    "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    \
                     rootdirectory: \"{}\"\n  delete:\n    enabled: true\n  maintenance:\n    \
                     uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  \
                     secret: idpbuilder-push-tests\n{tls_yaml}{auth_yaml}",
                    storage.display()
                );
                let config_path = dir.path().join("config.yml");
                std::fs::write(&config_path, config).expect("write registry config.yml");
                spawn(&config_path, &log_path)
            },
            |log, _| log.contains("listening on"),
        );
        Registry {
            child,
            port,
            opts,
            server_cert,
            token_server,
            log_path,
            storage,
            dir,
        }
    }

    /// `127.0.0.1:PORT`, the address every certificate covers.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `localhost:PORT`, also covered by every certificate.
    pub fn localhost(&self) -> String {
        format!("localhost:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.opts.tls == Tls::None {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}", self.host())
    }

    pub fn options(&self) -> &RegistryOptions {
        &self.opts
    }

    /// The PEM a client must trust: the CA for `CaSigned`, the server certificate itself for
    /// `IdpbuilderShaped`; `None` for plain HTTP.
    pub fn ca_file(&self) -> Option<&Path> {
        self.server_cert.as_ref().map(|c| c.trust.as_path())
    }

    /// The accepted user and password, if the registry wants any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.opts.auth.credentials()
    }

    /// The token server behind `Auth::Token`, to count the tokens it issued.
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token_server.as_ref()
    }

    /// The registry's own temp dir (scratch space that lives as long as the registry).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the registry logged so far (startup, requests, errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Whether `repo` holds blob `digest` (`sha256:...`): what `HEAD /v2/REPO/blobs/DIGEST`
    /// answers, read from the storage directory (a link in the repository and the data).
    pub fn blob_exists(&self, repo: &str, digest: &str) -> bool {
        let hex = hex_of(digest);
        self.repo_dir(repo)
            .join("_layers/sha256")
            .join(hex)
            .join("link")
            .is_file()
            && self.blob_data(hex).is_file()
    }

    /// Whether `repo` holds manifest `digest` (by digest, tagged or not).
    pub fn manifest_exists(&self, repo: &str, digest: &str) -> bool {
        let hex = hex_of(digest);
        self.repo_dir(repo)
            .join("_manifests/revisions/sha256")
            .join(hex)
            .join("link")
            .is_file()
            && self.blob_data(hex).is_file()
    }

    /// Upload sessions of `repo` started and neither finished nor cancelled.
    pub fn uploads_in_progress(&self, repo: &str) -> usize {
        std::fs::read_dir(self.repo_dir(repo).join("_uploads"))
            .map(|entries| entries.count())
            .unwrap_or(0)
    }

    fn repo_dir(&self, repo: &str) -> PathBuf {
        self.storage
            .join("docker/registry/v2/repositories")
            .join(repo)
    }

    fn blob_data(&self, hex: &str) -> PathBuf {
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl TestRegistry for Registry {
    fn host(&self) -> String {
        Registry::host(self)
    }

    fn credentials(&self) -> Option<(&str, &str)> {
        Registry::credentials(self)
    }

    fn ca_file(&self) -> Option<&Path> {
        Registry::ca_file(self)
    }

    fn dir(&self) -> &Path {
        Registry::dir(self)
    }

    fn log(&self) -> String {
        Registry::log(self)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- registry log ({}) ---\n{}", self.host(), self.log());
        }
    }
}

fn auth_config(dir: &Path, auth: &Auth, token: Option<&TokenServer>) -> String {
    match (auth, token) {
        (Auth::Basic { user, pass }, _) => {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .stdin(Stdio::null())
                .output()
                .expect("cannot run `htpasswd`: install apache2-utils (make deps)");
            assert!(out.status.success(), "htpasswd failed");
            let path = dir.join("htpasswd");
            std::fs::write(&path, out.stdout).expect("write htpasswd");
            format!(
                "auth:\n  htpasswd:\n    realm: idpbuilder-push-tests\n    path: \"{}\"\n",
                path.display()
            )
        }
        (Auth::Token { .. }, Some(server)) => format!(
            "auth:\n  token:\n    realm: \"{}\"\n    service: {}\n    issuer: {}\n    \
             rootcertbundle: \"{}\"\n",
            server.realm(),
            token_server::SERVICE,
            token_server::ISSUER,
            server.issuer_cert().display()
        ),
        _ => String::new(),
    }
}

fn spawn(config: &Path, log_path: &Path) -> Child {
    let bin = std::env::var_os("IDPBUILDER_TEST_REGISTRY_BIN").unwrap_or(REGISTRY_BIN.into());
    let log = File::create(log_path).expect("create registry log");
    let mut cmd = Command::new(&bin);
    cmd.arg("serve").arg(config);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("REGISTRY_") {
            cmd.env_remove(key); // the registry reads REGISTRY_* as config overrides
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log handle"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e}; install the registry with `make deps` \
                 (Debian/Ubuntu package docker-registry)",
                Path::new(&bin).display()
            )
        })
}

pub(super) fn hex_of(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    assert!(hex.len() == 64, "not a sha256 digest: {digest}");
    hex
}
