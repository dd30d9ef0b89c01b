//! Self-tests of the end-to-end harness, using skopeo alone: every registry set-up the push
//! tests rely on (distribution in each shape, and container-registry) really starts, accepts the
//! right credentials, refuses wrong ones and stops.

use crate::support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use support::container_registry::{self, ContainerRegistry};
use support::registry::{Auth, Registry, RegistryOptions, Tls};
use support::skopeo::TestRegistry;
use support::{certs, launch, stderr, stdout, tiny_layout};

const REPO: &str = "giteaadmin/tiny";

fn start(tls: Tls, auth: Auth) -> Registry {
    Registry::start(RegistryOptions::default().tls(tls).auth(auth))
}

/// Writes the tiny image in `dir`; returns its skopeo reference and its manifest digest (as
/// its `index.json` names it).
fn tiny_image(dir: &Path) -> (String, String) {
    let (layout, reference) = tiny_layout(dir);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("read index.json"))
            .expect("index.json is JSON");
    let expected = index["manifests"][0]["digest"].as_str().expect("digest");
    (reference, expected.to_owned())
}

/// Copies the tiny image in with skopeo and checks it reads back byte for byte.
fn assert_round_trip(registry: &Registry) {
    let scratch = tempfile::tempdir().expect("scratch dir");
    let (reference, expected) = tiny_image(scratch.path());

    registry.skopeo_copy_from_oci(&reference, &format!("{REPO}:1.0"));

    let (manifest, digest) = registry.skopeo_inspect_raw(&format!("{REPO}:1.0"));
    assert_eq!(
        digest, expected,
        "the registry serves the manifest unchanged"
    );
    assert_eq!(registry.tags(REPO), vec!["1.0".to_owned()]);
    assert!(registry.manifest_exists(REPO, &digest));
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).expect("manifest JSON");
    for blob in [&manifest["config"], &manifest["layers"][0]] {
        let blob_digest = blob["digest"].as_str().expect("blob digest");
        assert!(
            registry.blob_exists(REPO, blob_digest),
            "{blob_digest} stored"
        );
    }
    assert!(!registry.blob_exists("giteaadmin/other", &expected));
    assert_eq!(registry.uploads_in_progress(REPO), 0);

    let back = scratch.path().join("back");
    registry.skopeo_copy_to_oci(&format!("{REPO}@{digest}"), &back);
    assert!(back.join("blobs/sha256").join(&digest[7..]).is_file());
}

#[test]
fn skopeo_round_trips_through_a_ca_signed_registry_with_basic_auth() {
    let registry = start(Tls::CaSigned, Auth::basic("giteaadmin", "s3cret"));
    assert!(registry.url().starts_with("https://127.0.0.1:"));
    assert_round_trip(&registry);
}

#[test]
fn skopeo_round_trips_through_an_idpbuilder_shaped_registry_with_basic_auth() {
    let registry = start(Tls::IdpbuilderShaped, Auth::basic("giteaadmin", "s3cret"));
    assert_round_trip(&registry);
}

#[test]
fn skopeo_round_trips_through_a_registry_with_token_auth() {
    let registry = start(Tls::CaSigned, Auth::token("giteaadmin", "s3cret"));
    assert_round_trip(&registry);
    let tokens = registry.token_server().expect("token server");
    assert!(tokens.tokens_issued() >= 1, "skopeo fetched a bearer token");
    assert_eq!(tokens.refused(), 0);
}

#[test]
fn skopeo_round_trips_through_a_plain_http_registry_without_auth() {
    let registry = start(Tls::None, Auth::None);
    assert_eq!(registry.url(), format!("http://{}", registry.host()));
    assert_eq!(registry.tls_args(), vec!["--plain-http".to_owned()]);
    assert_round_trip(&registry);
}

#[test]
fn skopeo_round_trips_through_container_registry_with_any_user_name() {
    let Some(registry) = ContainerRegistry::start_or_skip("harness") else {
        return;
    };
    assert_eq!(registry.tls_args(), vec!["--plain-http".to_owned()]);
    let scratch = tempfile::tempdir().expect("scratch dir");
    let (reference, expected) = tiny_image(scratch.path());

    let creds = Some(("someone-else", container_registry::PASS));
    let out = registry.try_skopeo_copy_from_oci(&reference, &format!("{REPO}:1.0"), creds);
    assert!(
        out.status.success(),
        "skopeo push: {}\n{}",
        stderr(&out),
        registry.log()
    );
    let (manifest, digest) = registry.skopeo_inspect_raw(&format!("{REPO}:1.0"));
    assert_eq!(
        digest, expected,
        "the registry serves the manifest unchanged"
    );
    assert!(registry.has_manifest(&format!("{REPO}:1.0")));
    assert!(!registry.has_manifest(&format!("{REPO}:2.0")));
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).expect("manifest JSON");
    for blob in [&manifest["config"], &manifest["layers"][0]] {
        let blob_digest = blob["digest"].as_str().expect("blob digest");
        assert!(registry.blob_exists(blob_digest), "{blob_digest} stored");
    }
    let back = scratch.path().join("back");
    registry.skopeo_copy_to_oci(&format!("{REPO}:1.0"), &back);
    assert!(back.join("blobs/sha256").join(&digest[7..]).is_file());
    assert!(
        registry.log().contains("uri=/v2/"),
        "requests are logged: {}",
        registry.log()
    );
}

/// skopeo cannot copy the tiny image into `registry` with a wrong password, nor without
/// credentials.
fn assert_refuses_wrong_and_anonymous_pushes(registry: &impl TestRegistry) {
    let scratch = tempfile::tempdir().expect("scratch dir");
    let (_, reference) = tiny_layout(scratch.path());
    for creds in [Some(("giteaadmin", "wrong")), None] {
        let out = registry.try_skopeo_copy_from_oci(&reference, "giteaadmin/tiny:1.0", creds);
        assert!(!out.status.success(), "push with {creds:?} must fail");
        let stderr = stderr(&out);
        assert!(stderr.contains("authentication required"), "{stderr}");
    }
}

#[test]
fn container_registry_refuses_a_wrong_password_and_anonymous_pushes() {
    let Some(registry) = ContainerRegistry::start_or_skip("harness") else {
        return;
    };
    assert_refuses_wrong_and_anonymous_pushes(&registry);
    assert!(!registry.has_manifest("giteaadmin/tiny:1.0"));
}

#[test]
fn basic_auth_registry_refuses_a_wrong_password_and_anonymous_pushes() {
    let registry = start(Tls::CaSigned, Auth::basic("giteaadmin", "s3cret"));
    assert_refuses_wrong_and_anonymous_pushes(&registry);
    assert!(registry.tags("giteaadmin/tiny").is_empty());
}

#[test]
fn token_server_refuses_a_wrong_password_and_the_push_fails() {
    let registry = start(Tls::IdpbuilderShaped, Auth::token("giteaadmin", "s3cret"));
    let scratch = tempfile::tempdir().expect("scratch dir");
    let (_, reference) = tiny_layout(scratch.path());
    let creds = Some(("giteaadmin", "wrong"));
    let out = registry.try_skopeo_copy_from_oci(&reference, "giteaadmin/tiny:1.0", creds);
    assert!(
        !out.status.success(),
        "push with a wrong password must fail"
    );
    let tokens = registry.token_server().expect("token server");
    assert!(tokens.refused() >= 1);
    assert_eq!(tokens.tokens_issued(), 0);
    assert!(registry.tags("giteaadmin/tiny").is_empty());
}

#[test]
fn token_server_issues_an_rs256_jwt_with_x5c_and_the_requested_access() {
    let registry = start(Tls::None, Auth::token("giteaadmin", "s3cret"));
    let tokens = registry.token_server().expect("token server");
    let realm = tokens.realm();
    let path =
        "/v2/token?service=container_registry&scope=repository%3Agiteaadmin%2Fapp%3Apull%2Cpush";

    let (status, _) = http_get(&realm, path, None);
    assert_eq!(status, 401, "no credentials");
    let (status, _) = http_get(&realm, path, Some(("giteaadmin", "nope")));
    assert_eq!(status, 401, "wrong password");
    let (status, body) = http_get(&realm, path, Some(("giteaadmin", "s3cret")));
    assert_eq!(status, 200, "{body}");

    let body: serde_json::Value = serde_json::from_str(&body).expect("token JSON");
    assert_eq!(body["token"], body["access_token"]);
    assert_eq!(body["expires_in"], 300);
    let jwt = body["token"].as_str().expect("token string");
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let decode = |part: &str| -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
    };
    let (header, claims) = (decode(parts[0]), decode(parts[1]));
    assert_eq!(header["alg"], "RS256");
    let x5c = header["x5c"][0].as_str().expect("x5c");
    assert_eq!(x5c, certs::pem_body_base64(tokens.issuer_cert()));
    assert!(STANDARD.decode(x5c).is_ok());
    assert_eq!(claims["aud"], "container_registry");
    assert_eq!(claims["sub"], "giteaadmin");
    let access = serde_json::json!([
        {"type": "repository", "name": "giteaadmin/app", "actions": ["pull", "push"]}
    ]);
    assert_eq!(claims["access"], access);
    assert_eq!(
        (tokens.requests(), tokens.tokens_issued(), tokens.refused()),
        (3, 1, 2)
    );
}

/// `registry` answers on its port and has logged `started`; once dropped, nothing listens there
/// any more and its temp dir is gone.
fn assert_stops_listening_when_dropped(registry: impl TestRegistry, started: &str) {
    let addr: std::net::SocketAddr = registry.host().parse().expect("127.0.0.1:PORT");
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok());
    let dir = registry.dir().to_owned();
    assert!(registry.log().contains(started));
    drop(registry);
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
    assert!(!dir.exists(), "temp dir removed");
}

#[test]
fn registry_stops_listening_when_dropped() {
    assert_stops_listening_when_dropped(start(Tls::None, Auth::None), "listening on");
}

#[test]
fn container_registry_stops_listening_when_dropped() {
    let Some(registry) = ContainerRegistry::start_or_skip("harness") else {
        return;
    };
    assert_stops_listening_when_dropped(registry, "bound, starting to serve");
}

/// The one launcher cuts the binary off from the machine: what it sets and removes, whatever
/// the developer's environment holds.
#[test]
fn the_launcher_isolates_home_docker_kube_and_engine_settings() {
    let cmd = launch::idpbuilder_process();
    let envs: std::collections::HashMap<String, Option<String>> = cmd
        .get_envs()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.map(|v| v.to_string_lossy().into_owned()),
            )
        })
        .collect();
    let set = |key: &str| envs.get(key).cloned().flatten();
    assert_eq!(set("HOME").as_deref(), Some(launch::NOWHERE));
    assert_eq!(set("DOCKER_HOST").as_deref(), Some(launch::NO_ENGINE));
    assert_eq!(
        set("XDG_RUNTIME_DIR").as_deref(),
        Some(launch::NO_RUNTIME_DIR)
    );
    assert_eq!(set("NO_COLOR").as_deref(), Some("1"));
    for removed in ["KUBECONFIG", "DOCKER_CONFIG", "DOCKER_CONTEXT"] {
        assert_eq!(envs.get(removed), Some(&None), "{removed} is removed");
    }
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("IDPBUILDER_") {
            assert_eq!(envs.get(&key), Some(&None), "{key} is removed");
        }
    }
    assert!(!Path::new(launch::NOWHERE).exists());
}

#[test]
fn idpbuilder_shaped_certificate_is_a_self_signed_ca_serving_as_its_own_server_cert() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = certs::idpbuilder_shaped(dir.path());
    assert_eq!(cert.cert, cert.trust);
    let text = openssl_text(&cert.cert);
    for expected in [
        "ASN1 OID: prime256v1",
        "X509v3 Basic Constraints: critical\n                CA:TRUE",
        "Digital Signature, Certificate Sign",
        "TLS Web Server Authentication",
        "DNS:localhost, DNS:gitea.cnoe.localtest.me, DNS:cnoe.localtest.me, IP Address:127.0.0.1",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[test]
fn ca_signed_server_certificate_verifies_against_its_ca() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = certs::ca_signed(dir.path());
    let out = Command::new("openssl")
        .args(["verify", "-purpose", "sslserver", "-CAfile"])
        .arg(&cert.trust)
        .arg(&cert.cert)
        .output()
        .expect("run openssl verify");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = openssl_text(&cert.cert);
    assert!(text.contains("CA:FALSE") && text.contains("DNS:localhost, IP Address:127.0.0.1"));
}

fn openssl_text(pem: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(pem)
        .output()
        .expect("run openssl x509");
    stdout(&out)
}

/// A bare HTTP/1.1 GET of `path` on the host of `base` (an `http://` URL); (status, body).
fn http_get(base: &str, path: &str, basic: Option<(&str, &str)>) -> (u16, String) {
    let host = base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host");
    let mut stream = TcpStream::connect(host).expect("connect token server");
    let auth = basic.map_or(String::new(), |(u, p)| {
        format!(
            "Authorization: Basic {}\r\n",
            STANDARD.encode(format!("{u}:{p}"))
        )
    });
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response[9..12].parse().expect("status code");
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_owned())
}
