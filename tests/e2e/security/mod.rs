//! What is sent where (issue 9): credentials reach only the registry's own scheme, host and port;
//! an upload `Location` or a redirect elsewhere is followed without them and never from HTTPS
//! down to HTTP; an HTTPS registry's token realm must be HTTPS; the cluster's credentials never
//! go over plain HTTP to a host that is not loopback; text from a registry reaches the terminal
//! with its control characters escaped.
//!
//! Every registry here is [`fake::Fake`], a small hyper server (plain or TLS) that records each
//! request with its `Authorization` header.
//!
//! One test binary, one module per topic: `locations` (upload locations and redirects),
//! `realms` (token realms), `plain_http` (credentials over plain HTTP), `registry_text`,
//! `cluster_certificate` (idpbuilder's certificate pinned for its Gitea host).

use crate::support;

#[allow(unused_imports, reason = "the skopeo checks of a registry")]
use support::skopeo::TestRegistry;

mod cluster_certificate;
mod fake;
mod locations;
mod plain_http;
mod realms;
mod registry_text;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use fake::{Reply, Seen};
use support::fixtures::{self, ImageSpec};

pub const USER: &str = "pusher";
pub const PASS: &str = "S3cret-Pa55word";
pub const TOKEN: &str = "the-bearer-token";

/// How the fake registry wants to be logged in to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Basic,
    /// A token from `GET /v2/token` on the registry itself (plain HTTP, same host).
    Bearer,
}

pub fn basic(user: &str, pass: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")))
}

/// `idpbuilder push` cut off from the machine, with `home` as HOME.
pub fn idpbuilder(home: &Path) -> assert_cmd::Command {
    let mut cmd = support::launch::idpbuilder_at(home);
    cmd.env("DOCKER_CONFIG", home.join(".docker"))
        .env("KUBECONFIG", home.join("no-kubeconfig"))
        .timeout(std::time::Duration::from_secs(60))
        .arg("push");
    cmd
}

/// An OCI layout with one layer of `layer` random bytes in `dir/layout`.
pub fn image(dir: &Path, layer: usize) -> String {
    let layout = dir.join("layout");
    fixtures::oci_layout(&layout, &ImageSpec::new("1.0", &[layer]));
    layout.display().to_string()
}

/// `idpbuilder push` (see [`idpbuilder`]) of an image with one `layer`-byte layer (see
/// [`image`]) written in `home`, into `127.0.0.1:PORT/team/app:1.0`, with the flags (and stdin)
/// `with` adds.
pub fn push_image(
    home: &Path,
    layer: usize,
    port: u16,
    with: impl FnOnce(&mut assert_cmd::Command),
) -> Output {
    push_image_to(home, layer, &format!("127.0.0.1:{port}"), with)
}

/// [`push_image`] to `host` (`NAME:PORT`): a cluster's Gitea is a name, never an IP address.
pub fn push_image_to(
    home: &Path,
    layer: usize,
    host: &str,
    with: impl FnOnce(&mut assert_cmd::Command),
) -> Output {
    let layout = image(home, layer);
    let mut cmd = idpbuilder(home);
    with(&mut cmd);
    cmd.arg(&layout)
        .arg(format!("{host}/team/app:1.0"))
        .output()
        .expect("run idpbuilder")
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The `Authorization` value the fake registry accepts under `scheme`.
fn accepted(scheme: Scheme) -> String {
    match scheme {
        Scheme::Basic => basic(USER, PASS),
        Scheme::Bearer => format!("Bearer {TOKEN}"),
    }
}

/// Upload sessions shared by a registry and the server its `Location`s name: each `POST` opens
/// `/upload/N`; `PATCH` and `PUT` add their bodies, and `Range` says how much has arrived.
#[derive(Clone, Default)]
pub struct Sessions(Arc<Mutex<HashMap<String, usize>>>);

impl Sessions {
    /// A new session's absolute `Location` on `scheme://at`.
    fn open(&self, scheme: &str, at: SocketAddr) -> String {
        let mut sessions = self.0.lock().expect("sessions lock");
        let path = format!("/upload/{}", sessions.len() + 1);
        sessions.insert(path.clone(), 0);
        format!("{scheme}://{at}{path}")
    }

    /// The answer of an upload session at `me`: `PATCH` 202 with the next `Location` and
    /// `Range`, `PUT` 201, `DELETE` 204.
    pub fn answer(&self, seen: &Seen, me: SocketAddr) -> Reply {
        let path = seen
            .target
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string();
        let mut sessions = self.0.lock().expect("sessions lock");
        let Some(received) = sessions.get_mut(&path) else {
            return Reply::status(404);
        };
        *received += seen.body_len;
        let range = format!("0-{}", received.saturating_sub(1));
        match seen.method.as_str() {
            "PATCH" => Reply::status(202)
                .header("Location", &format!("{}://{me}{path}", seen.scheme))
                .header("Range", &range),
            "PUT" => Reply::status(201),
            "DELETE" => Reply::status(204),
            _ => Reply::status(405),
        }
    }
}

/// A registry for `team/app` that wants `scheme` on every request and opens blob uploads on
/// `upload` (an absolute `Location`), or on itself when `None`.
pub fn registry(
    scheme: Scheme,
    sessions: Sessions,
    upload: Option<SocketAddr>,
) -> impl Fn(&Seen, SocketAddr) -> Reply + Send + Sync + 'static {
    move |seen, me| {
        let path = seen.target.split('?').next().unwrap_or_default();
        if scheme == Scheme::Bearer && path == "/v2/token" {
            return if seen.authorization.as_deref() == Some(basic(USER, PASS).as_str()) {
                Reply::status(200).json(&serde_json::json!({"token": TOKEN, "expires_in": 300}))
            } else {
                Reply::status(401)
            };
        }
        if seen.authorization.as_deref() != Some(accepted(scheme).as_str()) {
            let challenge = match scheme {
                Scheme::Basic => r#"Basic realm="fake""#.to_string(),
                Scheme::Bearer => format!(r#"Bearer realm="http://{me}/v2/token",service="fake""#),
            };
            return Reply::status(401).header("WWW-Authenticate", &challenge);
        }
        anonymous_registry(seen, me, &sessions, upload.unwrap_or(me))
    }
}

/// What a registry for `team/app` answers once past auth: `GET /v2/`, blob checks (404), new
/// upload sessions on `upload` (itself, or a plain-HTTP server), manifests; and its own upload
/// sessions.
pub fn anonymous_registry(
    seen: &Seen,
    me: SocketAddr,
    sessions: &Sessions,
    upload: SocketAddr,
) -> Reply {
    let path = seen.target.split('?').next().unwrap_or_default();
    match (seen.method.as_str(), path) {
        ("GET", "/v2/") => Reply::status(200),
        ("HEAD", p) if p.starts_with("/v2/team/app/blobs/") => Reply::status(404),
        ("POST", "/v2/team/app/blobs/uploads/") => {
            let scheme = if upload == me { seen.scheme } else { "http" };
            Reply::status(202).header("Location", &sessions.open(scheme, upload))
        }
        ("PUT", p) if p.starts_with("/v2/team/app/manifests/") => Reply::status(201),
        (_, p) if p.starts_with("/upload/") => sessions.answer(seen, me),
        _ => Reply::status(404),
    }
}
