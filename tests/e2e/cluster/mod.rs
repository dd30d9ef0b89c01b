//! End-to-end: the zero-config push. A fake Kubernetes API (tests/support/kube_api.rs), reached by
//! kube's real client, carries idpbuilder's `gitea-credential` secret, its certificate and the
//! Gitea Ingress; `idpbuilder push` with no credential or TLS flags pushes into a real registry
//! that serves that idpbuilder-shaped certificate, and skopeo checks the digest. Around it: the
//! cluster is unreachable, its data is bad, or the destination is another host.
//!
//! One test binary, one module per topic: `zero_config` (what works, and the unreachable cluster),
//! `security` (what goes where, source precedence), `bad_data` (broken cluster data and flags),
//! `mirror` (copies out of and within the cluster's Gitea), `exec_plugin` (a kubeconfig `exec`
//! plugin is run once per run).

use crate::support;

mod bad_data;
mod exec_plugin;
mod mirror;
mod security;
mod zero_config;

use std::path::Path;

use assert_cmd::Command;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use support::fixtures::{self, ImageSpec};
use support::kube_api::{FakeCluster, KubeAuth};
use support::registry::{Auth, Registry, RegistryOptions, Tls};
pub use support::text;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const USER: &str = "giteaadmin";
pub const PASS: &str = "Clu5ter-Adm1n-Pa55word";

/// Where the fake cluster keeps idpbuilder's certificate.
#[derive(Clone, Copy)]
pub enum CertAt {
    DefaultSecret,
    DefaultConfigMap,
    IngressNginx,
}

/// A cluster shaped like a fresh idpbuilder whose Gitea Ingress lists `gitea_hosts`, with the
/// admin credentials and, if given, `cert` (PEM file) at `at`.
pub fn idpbuilder_cluster(gitea_hosts: &[&str], cert: Option<(&Path, CertAt)>) -> FakeCluster {
    let cluster = FakeCluster::start();
    cluster.secret(
        "gitea",
        "gitea-credential",
        &[("username", USER.as_bytes()), ("password", PASS.as_bytes())],
    );
    cluster.ingresses("gitea", gitea_hosts);
    if let Some((pem, at)) = cert {
        let pem = std::fs::read_to_string(pem).expect("read certificate");
        match at {
            CertAt::DefaultSecret => {
                cluster.secret("default", "idpbuilder-cert", &[("ca.crt", pem.as_bytes())])
            }
            CertAt::DefaultConfigMap => {
                cluster.config_map("default", "idpbuilder-cert", &[("ca.crt", &pem)])
            }
            CertAt::IngressNginx => cluster.secret(
                "ingress-nginx",
                "idpbuilder-cert",
                &[("tls.crt", pem.as_bytes()), ("tls.key", b"not for us")],
            ),
        }
    }
    cluster
}

/// `idpbuilder push` cut off from the machine (`support::launch`) with HOME at `home`; each test
/// sets the KUBECONFIG it needs on top.
pub fn idpbuilder(home: &Path) -> Command {
    let mut cmd = support::idpbuilder_at(home);
    cmd.arg("push");
    cmd
}

/// Pushes `layout` at `-l debug` into `registry` as `localhost:PORT/giteaadmin/app:1.0`, with
/// `cluster` reached through a token kubeconfig written in `home`.
pub fn push_with_cluster(
    home: &Path,
    cluster: &FakeCluster,
    layout: &str,
    registry: &Registry,
) -> std::process::Output {
    idpbuilder(home)
        .env("KUBECONFIG", cluster.kubeconfig(home, KubeAuth::Token))
        .args([
            "-l",
            "debug",
            layout,
            &format!("{}/giteaadmin/app:1.0", registry.localhost()),
        ])
        .output()
        .expect("run idpbuilder")
}

pub fn image(dir: &Path) -> (String, fixtures::FixtureImage) {
    let layout = dir.join("layout");
    let image = fixtures::oci_layout(&layout, &ImageSpec::new("1.0", &[3_000]));
    (layout.display().to_string(), image)
}

pub fn idpbuilder_registry() -> Registry {
    Registry::start(
        RegistryOptions::default()
            .tls(Tls::IdpbuilderShaped)
            .auth(Auth::basic(USER, PASS)),
    )
}

/// A plain-HTTP stand-in registry that answers `GET /v2/` with a Basic challenge and records the
/// `Authorization` headers it receives.
pub struct Recorder {
    runtime: tokio::runtime::Runtime,
    server: MockServer,
}

impl Recorder {
    pub fn start() -> Recorder {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let server = runtime.block_on(async {
            let server = MockServer::start().await;
            Mock::given(method("GET"))
                .and(path("/v2/"))
                .respond_with(
                    ResponseTemplate::new(401)
                        .insert_header("WWW-Authenticate", "Basic realm=\"recorder\""),
                )
                .mount(&server)
                .await;
            server
        });
        Recorder { runtime, server }
    }

    pub fn port(&self) -> u16 {
        self.server.address().port()
    }

    pub fn authorizations(&self) -> Vec<String> {
        let requests = self
            .runtime
            .block_on(self.server.received_requests())
            .unwrap_or_default();
        requests
            .iter()
            .filter_map(|r| r.headers.get("authorization"))
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    }
}

/// Pushes to the recorder as `host` (`localhost` or `127.0.0.1`) over plain HTTP.
pub fn push_to_recorder(
    recorder: &Recorder,
    host: &str,
    home: &Path,
    kubeconfig: &Path,
    extra: &[&str],
) -> (Option<i32>, String) {
    let (layout, _) = image(home);
    let output = idpbuilder(home)
        .env("KUBECONFIG", kubeconfig)
        .args(["--plain-http", "-l", "debug"])
        .args(extra)
        .arg(&layout)
        .arg(format!("{host}:{}/giteaadmin/app:1.0", recorder.port()))
        .output()
        .expect("run idpbuilder");
    (output.status.code(), text(&output))
}

pub fn basic(user: &str, pass: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")))
}
