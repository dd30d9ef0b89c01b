//! Issue 19: the zero-config pull. A fake Kubernetes API carries idpbuilder's
//! `gitea-credential` secret, its certificate and the Gitea Ingress; `idpbuilder pull` with no
//! credential or TLS flag reads from a real registry serving that idpbuilder-shaped
//! certificate. The cluster's credentials go to the cluster's Gitea host only.

use crate::support;

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use support::fixtures::{self, ImageSpec};
use support::kube_api::{self, FakeCluster, KubeAuth};
use support::registry::{Auth, Registry, RegistryOptions, Tls};
use support::skopeo::TestRegistry;
use support::{idpbuilder_at, stderr, stdout, text};

const USER: &str = "giteaadmin";
const PASS: &str = "Clu5ter-Pull-Pa55word";

/// A cluster shaped like a fresh idpbuilder: the admin secret, an Ingress listing `hosts`, and
/// the certificate `pem` in Secret default/idpbuilder-cert.
fn cluster(hosts: &[&str], pem: &Path) -> FakeCluster {
    let cluster = FakeCluster::start();
    cluster.secret(
        "gitea",
        "gitea-credential",
        &[("username", USER.as_bytes()), ("password", PASS.as_bytes())],
    );
    cluster.ingresses("gitea", hosts);
    let pem = std::fs::read(pem).expect("certificate");
    cluster.secret("default", "idpbuilder-cert", &[("ca.crt", &pem)]);
    cluster
}

#[test]
fn a_pull_without_flags_takes_credentials_and_certificate_from_the_cluster() {
    let registry = Registry::start(
        RegistryOptions::default()
            .tls(Tls::IdpbuilderShaped)
            .auth(Auth::basic(USER, PASS)),
    );
    let home = tempfile::tempdir().expect("home");
    let source = home.path().join("source");
    let image = fixtures::oci_layout(&source, &ImageSpec::new("1.0", &[3000]).seed(81));
    registry.skopeo_copy_from_oci(
        &format!("oci:{}:1.0", source.display()),
        "giteaadmin/app:1.0",
    );
    let cluster = cluster(&["localhost"], registry.ca_file().expect("TLS"));
    let dir = home.path().join("pulled");
    let output = idpbuilder_at(home.path())
        .env(
            "KUBECONFIG",
            cluster.kubeconfig(home.path(), KubeAuth::Token),
        )
        .args(["pull", "-l", "trace"])
        .arg(format!("{}/giteaadmin/app:1.0", registry.localhost()))
        .arg(format!("oci:{}", dir.display()))
        .output()
        .expect("run idpbuilder");
    let all = text(&output);
    assert!(output.status.success(), "{all}\n{}", registry.log());
    assert_eq!(
        stdout(&output).trim(),
        format!("oci:{}:1.0@{}", dir.display(), image.manifest_digest)
    );
    assert!(
        all.contains("the cluster's secret gitea/gitea-credential"),
        "{all}"
    );
    for secret in [
        PASS.to_string(),
        STANDARD.encode(format!("{USER}:{PASS}")),
        kube_api::TOKEN.to_string(),
    ] {
        assert!(
            !all.contains(&secret),
            "a secret leaked at -l trace:\n{all}"
        );
    }
}

#[test]
fn the_clusters_credentials_never_go_to_another_registry() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let other = runtime.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(401)
                    .insert_header("WWW-Authenticate", "Basic realm=\"other\""),
            )
            .mount(&server)
            .await;
        server
    });
    let home = tempfile::tempdir().expect("home");
    let registry = Registry::start(RegistryOptions::default().tls(Tls::IdpbuilderShaped));
    let cluster = cluster(
        &["gitea.cnoe.localtest.me"],
        registry.ca_file().expect("TLS"),
    );
    let output = idpbuilder_at(home.path())
        .env(
            "KUBECONFIG",
            cluster.kubeconfig(home.path(), KubeAuth::Token),
        )
        .args(["pull", "-l", "debug"])
        .arg(format!(
            "http://127.0.0.1:{}/giteaadmin/app:1.0",
            other.address().port()
        ))
        .arg(format!("oci:{}", home.path().join("pulled").display()))
        .output()
        .expect("run idpbuilder");
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("refused anonymous access"),
        "{}",
        stderr(&output)
    );
    let requests = runtime
        .block_on(other.received_requests())
        .expect("recorded requests");
    assert!(!requests.is_empty());
    for request in requests {
        assert!(
            !request.headers.contains_key("authorization"),
            "credentials went to another registry: {request:?}"
        );
    }
}
