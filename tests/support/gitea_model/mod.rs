//! A stateful model of Gitea 1.24's container registry, served over HTTPS with an
//! idpbuilder-shaped certificate (or plain HTTP), with its storage in a temporary directory.
//!
//! Each rule is taken from Gitea's source and cited in `docs/registries.md` ("Gitea model"):
//! the Bearer flow of `/v2/token`, blobs kept per owner and image, the upload rules of
//! `UploadBlob`/`EndUploadBlob`, cross-repository mounts, manifests stored as package versions
//! named by their reference (a manifest put to a tag replaces that tag's version and its files),
//! indexes that accept only image manifests of the same image, and a 500 for manifest writes
//! that overlap on one package version, as Gitea's database answers them.
//!
//! Test knobs on top ([`Options`]): a proxy's body cap (413), a first token that stops working
//! after N requests (optionally every later token too), and how long a manifest write holds its
//! package version open.

pub mod auth;
pub mod blobs;
pub mod manifests;
pub mod server;
pub mod store;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::certs::{self, ServerCert};
// What the self-tests and assertions use; a suite that uses neither does not warn.
#[allow(unused_imports)]
pub use store::{Store, sha256};

/// The one user of the model, an admin as idpbuilder's is.
pub const OWNER: &str = "giteaadmin";
pub const PASSWORD: &str = "gitea-Pa55";

/// How the model runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// HTTPS with an idpbuilder-shaped certificate (the default), or plain HTTP.
    pub tls: bool,
    /// Answer 413 to any request body larger than this, as a proxy in front of Gitea would.
    pub body_cap: Option<usize>,
    /// The first token stops working after this many requests.
    pub expire_first_token_after: Option<usize>,
    /// Tokens after the first are refused too (a second refusal).
    pub refuse_renewed_tokens: bool,
    /// How long a manifest write keeps its package version's transaction open; another write
    /// to the same version in that time fails with 500, as the database's unique key does.
    pub write_window: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            tls: true,
            body_cap: None,
            expire_first_token_after: None,
            refuse_renewed_tokens: false,
            write_window: Duration::from_millis(50),
        }
    }
}

/// One request the model answered.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub status: u16,
    pub authorization: Option<String>,
    pub content_range: Option<String>,
    pub content_type: Option<String>,
    pub body_len: usize,
}

impl Logged {
    /// The value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Everything the model holds; tests read it through [`GiteaModel::state`].
#[derive(Debug)]
pub struct State {
    pub store: Store,
    /// Tokens issued, in order, and how many requests each authorised.
    pub tokens: Vec<(String, usize)>,
    pub token_gets: usize,
    pub token_posts: usize,
    /// Requests answered 401 because their token had stopped working.
    pub refusals: usize,
    /// Bodies refused with 413.
    pub too_large: usize,
    /// Sizes of the non-empty bodies accepted by `PATCH`/`PUT` on upload sessions.
    pub upload_bodies: Vec<usize>,
    pub log: Vec<Logged>,
}

impl State {
    /// The digest the tag (or digest) `reference` of `OWNER/IMAGE` names, if any.
    pub fn manifest(&self, repository: &str, reference: &str) -> Option<String> {
        let (owner, image) = repository.split_once('/')?;
        if store::valid_digest(reference) {
            return self
                .store
                .find(owner, image, reference, true)
                .map(|f| f.file.digest);
        }
        self.store
            .find_tag(owner, image, reference)
            .map(|f| f.digest)
    }

    /// Whether `HEAD /v2/REPOSITORY/blobs/DIGEST` would find the blob.
    pub fn has_blob(&self, repository: &str, digest: &str) -> bool {
        repository
            .split_once('/')
            .is_some_and(|(o, i)| self.store.find(o, i, digest, false).is_some())
    }

    /// The stored bytes of a blob of `REPOSITORY`, if `HEAD` would find it.
    pub fn blob(&self, repository: &str, digest: &str) -> Option<Vec<u8>> {
        self.has_blob(repository, digest)
            .then(|| self.store.read_blob(digest))
            .flatten()
    }

    /// The tags of `OWNER/IMAGE`, sorted (what `/tags/list` answers).
    pub fn tags(&self, repository: &str) -> Vec<String> {
        let Some((owner, image)) = repository.split_once('/') else {
            return Vec::new();
        };
        self.store
            .packages
            .get(&store::key(owner, image))
            .map(|p| {
                p.versions
                    .iter()
                    .filter(|(_, v)| v.tagged && !v.internal)
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Non-internal package versions of `OWNER/IMAGE` (tags and digests).
    pub fn versions(&self, repository: &str) -> Vec<String> {
        let Some((owner, image)) = repository.split_once('/') else {
            return Vec::new();
        };
        self.store
            .packages
            .get(&store::key(owner, image))
            .map(|p| {
                p.versions
                    .iter()
                    .filter(|(_, v)| !v.internal)
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `METHOD path -> status` of every request so far, for failure messages.
    pub fn transcript(&self) -> String {
        self.log
            .iter()
            .map(|l| format!("{} {} -> {}", l.method, l.path, l.status))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What the handlers share.
pub struct Shared {
    pub options: Options,
    pub state: Mutex<State>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running model; stopped (and its storage removed) on drop.
pub struct GiteaModel {
    pub shared: Arc<Shared>,
    server: server::Running,
    cert: Option<ServerCert>,
    _dir: tempfile::TempDir,
}

impl GiteaModel {
    /// Starts the model on a free port of 127.0.0.1.
    pub fn start(options: Options) -> GiteaModel {
        let dir = tempfile::tempdir().expect("model temp dir");
        let certs_dir = dir.path().join("certs");
        std::fs::create_dir_all(&certs_dir).expect("model certs dir");
        let cert = options.tls.then(|| certs::idpbuilder_shaped(&certs_dir));
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                store: Store::new(&dir.path().join("storage")),
                tokens: Vec::new(),
                token_gets: 0,
                token_posts: 0,
                refusals: 0,
                too_large: 0,
                upload_bodies: Vec::new(),
                log: Vec::new(),
            }),
            options,
        });
        let tls = cert.as_ref().map(certs::rustls_server_config);
        let server = server::start(Arc::clone(&shared), tls);
        GiteaModel {
            shared,
            server,
            cert,
            _dir: dir,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.server.addr.to_string()
    }

    /// `https://127.0.0.1:PORT` (or `http://` without TLS).
    pub fn base_url(&self) -> String {
        let scheme = if self.cert.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.server.addr)
    }

    /// The PEM file a client trusts (`--ca-file`): the server's own certificate.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.cert.as_ref().map(|c| c.trust.clone())
    }

    /// The model's state, for assertions.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }
}
