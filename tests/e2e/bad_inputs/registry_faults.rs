//! The registry faults the table names that no other test file covers, each against a wiremock
//! registry over plain HTTP or a bare TLS server: refusals that must not be retried, a registry
//! wanting credentials, an auth scheme the tool does not speak, an expired certificate.

use std::path::Path;
use std::process::Output;

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::cases::spec;
use super::support::certs::{self, ServerCert};
use super::support::mock_registry::empty_team_app;
use super::support::{fixtures, idpbuilder_at, stderr};

/// A registry that lets anyone in and refuses the upload with `status`.
async fn refusing_uploads(status: u16) -> MockServer {
    empty_team_app(ResponseTemplate::new(status)).await
}

/// A registry whose version check answers 401 with `challenge`.
async fn challenging(challenge: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(ResponseTemplate::new(401).insert_header("WWW-Authenticate", challenge))
        .mount(&server)
        .await;
    server
}

/// Pushes a small layout to `host/team/app:1.0` over plain HTTP with `extra` flags.
async fn push(host: String, extra: &'static [&'static str], stdin: &'static str) -> Output {
    tokio::task::spawn_blocking(move || {
        let work = tempfile::tempdir().expect("temp dir");
        fixtures::oci_layout(&work.path().join("l"), &spec());
        idpbuilder_at(work.path())
            .args([
                "push",
                "--plain-http",
                "--retries",
                "3",
                "--concurrency",
                "1",
            ])
            .args(extra)
            .write_stdin(stdin)
            .arg(work.path().join("l"))
            .arg(format!("{host}/team/app:1.0"))
            .output()
            .expect("run idpbuilder")
    })
    .await
    .expect("join")
}

async fn posts(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .count()
}

fn assert_error(output: &Output, code: i32, message: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(message), "expected {message:?} in {err}");
    assert!(output.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_403_to_the_upload_exits_3_without_retrying() {
    let server = refusing_uploads(403).await;
    let host = server.address().to_string();
    let output = push(host.clone(), &[], "").await;
    assert_error(
        &output,
        3,
        &format!("registry denied the push to {host}/team/app (403 Forbidden)"),
    );
    assert!(stderr(&output).contains("hint: "), "{}", stderr(&output));
    assert_eq!(posts(&server).await, 1, "a 403 is not retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_404_to_the_upload_exits_1_without_retrying() {
    let server = refusing_uploads(404).await;
    let host = server.address().to_string();
    let output = push(host.clone(), &[], "").await;
    assert_error(&output, 1, &format!("{host} answered 404 Not Found to"));
    assert_eq!(posts(&server).await, 1, "a 404 is not retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_that_wants_credentials_and_gets_none_exits_3() {
    let server = challenging(r#"Basic realm="registry""#).await;
    let host = server.address().to_string();
    let output = push(host.clone(), &[], "").await;
    assert_error(
        &output,
        3,
        &format!("{host} requires credentials to push to team/app"),
    );
    assert!(stderr(&output).contains("--password-stdin"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_auth_scheme_is_refused_with_exit_3() {
    let server = challenging("Negotiate").await;
    let host = server.address().to_string();
    let output = push(host.clone(), &["-u", "me", "--password-stdin"], "pw\n").await;
    assert_error(
        &output,
        3,
        &format!("registry refused the credentials for {host}/team/app (401 Unauthorized)"),
    );
}

/// A self-signed certificate for 127.0.0.1 that expired in 2020, made with `openssl ca`
/// (the only way openssl 3.0 sets past dates); trusted as itself.
fn expired_certificate(dir: &Path) -> ServerCert {
    let openssl = |args: &[&str]| certs::openssl_in(dir, args);
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = ca_default\n[ca_default]\ndatabase = index.txt\n\
         new_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = any\n\
         copy_extensions = copy\n[any]\ncommonName = supplied\n",
    )
    .expect("write ca.cnf");
    std::fs::write(dir.join("index.txt"), "").expect("write index.txt");
    std::fs::write(dir.join("serial"), "01\n").expect("write serial");
    certs::p256_request(
        &dir.join("key.pem"),
        &dir.join("csr.pem"),
        &[
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
    );
    openssl(&[
        "ca",
        "-batch",
        "-config",
        "ca.cnf",
        "-selfsign",
        "-keyfile",
        "key.pem",
        "-in",
        "csr.pem",
        "-startdate",
        "20200101000000Z",
        "-enddate",
        "20200201000000Z",
        "-out",
        "cert.pem",
    ]);
    ServerCert {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        trust: dir.join("cert.pem"),
    }
}

/// A TLS server on 127.0.0.1 presenting `cert`: it only shakes hands, which is as far as a
/// client that refuses the certificate gets. Returns its `host:port`.
fn tls_server(cert: &ServerCert) -> String {
    let config = certs::rustls_server_config(cert);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            if let Ok(mut connection) = rustls::ServerConnection::new(config.clone()) {
                let _ = connection.complete_io(&mut stream);
            }
        }
    });
    address
}

#[test]
fn an_expired_certificate_exits_4_even_when_trusted() {
    let work = tempfile::tempdir().expect("temp dir");
    let cert = expired_certificate(work.path());
    let host = tls_server(&cert);
    fixtures::oci_layout(&work.path().join("l"), &spec());
    let output = idpbuilder_at(work.path())
        .args(["push", "--ca-file"])
        .arg(&cert.cert)
        .arg(work.path().join("l"))
        .arg(format!("{host}/team/app:1.0"))
        .output()
        .expect("run idpbuilder");
    assert_error(
        &output,
        4,
        &format!("the TLS certificate of {host} is not trusted: it has expired"),
    );
}
