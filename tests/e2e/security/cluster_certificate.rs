//! The cluster's idpbuilder certificate is trusted as its Gitea host's own certificate, never as
//! a CA: a server certificate it signed is not trusted.

use std::path::Path;

use super::fake::Fake;
use super::support::certs::{self, ServerCert};
use super::support::kube_api::{FakeCluster, KubeAuth};
use super::{PASS, Sessions, USER, anonymous_registry, push_image_to, text};

/// A certificate for localhost / 127.0.0.1 signed by the idpbuilder-shaped `issuer`.
fn signed_by(issuer: &ServerCert, dir: &Path) -> ServerCert {
    let ext = dir.join("leaf.ext");
    std::fs::write(
        &ext,
        format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\nsubjectAltName={}\n",
            certs::SERVER_SAN
        ),
    )
    .expect("write leaf.ext");
    let (key, csr, cert) = (
        dir.join("leaf.key"),
        dir.join("leaf.csr"),
        dir.join("leaf.crt"),
    );
    certs::p256_request(&key, &csr, &["-subj", "/CN=localhost"]);
    let signer = certs::Signer {
        cert: &issuer.cert,
        key: &issuer.key,
    };
    certs::sign_request(&csr, signer, "9", &ext, &cert);
    ServerCert {
        cert,
        key,
        trust: issuer.cert.clone(),
    }
}

/// A fresh idpbuilder whose Gitea is 127.0.0.1, keeping `certificate` in Secret
/// `default/idpbuilder-cert`.
fn cluster(certificate: &Path) -> FakeCluster {
    let cluster = FakeCluster::start();
    cluster.secret(
        "gitea",
        "gitea-credential",
        &[("username", USER.as_bytes()), ("password", PASS.as_bytes())],
    );
    // A name, as an Ingress host must be (Kubernetes refuses an IP address there), so the
    // cluster is read for it.
    cluster.ingresses("gitea", &["localhost"]);
    let pem = std::fs::read(certificate).expect("read certificate");
    cluster.secret("default", "idpbuilder-cert", &[("ca.crt", &pem)]);
    cluster
}

/// Pushes to a TLS registry presenting `served`, with the cluster holding `idpbuilder`.
fn push(home: &Path, served: &ServerCert, idpbuilder_cert: &Path) -> (Option<i32>, String) {
    let sessions = Sessions::default();
    let registry = Fake::tls(served, move |seen, me| {
        // Locations as paths: they stay on the name the push used, the cluster's Gitea host.
        anonymous_registry(seen, me, &sessions, me).location_as_path(me)
    });
    let cluster = cluster(idpbuilder_cert);
    let host = format!("localhost:{}", registry.port());
    let output = push_image_to(home, 3_000, &host, |cmd| {
        cmd.env("KUBECONFIG", cluster.kubeconfig(home, KubeAuth::Token));
    });
    (output.status.code(), text(&output))
}

#[test]
fn the_cluster_certificate_is_trusted_as_its_gitea_hosts_own() {
    let home = tempfile::tempdir().expect("home");
    let idp = certs::idpbuilder_shaped(home.path());
    let (code, all) = push(home.path(), &idp, &idp.cert);
    assert_eq!(code, Some(0), "{all}");
}

#[test]

fn a_certificate_signed_by_the_cluster_certificate_is_not_trusted() {
    let home = tempfile::tempdir().expect("home");
    let idp = certs::idpbuilder_shaped(home.path());
    let leaf_dir = home.path().join("leaf");
    std::fs::create_dir_all(&leaf_dir).expect("mkdir");
    let leaf = signed_by(&idp, &leaf_dir);
    let (code, all) = push(home.path(), &leaf, &idp.cert);
    assert_eq!(code, Some(4), "{all}");
    assert!(all.contains("is not trusted"), "{all}");
}
