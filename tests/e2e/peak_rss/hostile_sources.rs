//! More hostile peers (issue 22, the findings `hostile.rs` left open): a source registry that
//! trickles a blob, an engine over TCP whose inspect answer never ends, and an index naming more
//! manifests than any image needs. Each run ends in bounded memory (peak RSS under 64 MiB) and
//! time, with one `error:` line naming the peer at fault and the SPEC's exit code, and nothing
//! pushed that no manifest names.

use crate::support;

use std::time::Duration;

use serde_json::json;
use support::child::measured;
use support::fixtures::sha256;
use support::hostile::{Hostile, assert_refused, endless, respond};
use support::launch::idpbuilder_process;

/// A one-layer image: its config, its layer (`layer_len` bytes of `x`) and its manifest.
fn image(layer_len: usize) -> (Vec<u8>, Vec<u8>, String) {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let layer = vec![b'x'; layer_len];
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(&layer), "size": layer.len()}],
    })
    .to_string();
    (config, layer, manifest)
}

/// A registry serving the image of [`image`] as `team/src:1.0`, but its layer one byte every
/// 300 ms, each well inside the idle time of these tests (1 s), for ever.
fn trickling_source(layer_len: usize) -> (Hostile, String) {
    let (config, layer, manifest) = image(layer_len);
    let layer_digest = sha256(&layer);
    let config_digest = sha256(&config);
    let peer = Hostile::start(move |request, conn| {
        let path = request.path.as_str();
        if path == "/v2/" {
            return respond(conn, "200 OK", &[], b"{}");
        }
        if path.contains("/manifests/") {
            let media_type = ("Content-Type", "application/vnd.oci.image.manifest.v1+json");
            return respond(conn, "200 OK", &[media_type], manifest.as_bytes());
        }
        if path.ends_with(&layer_digest) && request.method == "GET" {
            return endless(conn, &[], b"", b"x", Duration::from_millis(300));
        }
        if path.ends_with(&config_digest) {
            return respond(conn, "200 OK", &[], &config);
        }
        respond(conn, "404 Not Found", &[], b"{}")
    });
    (peer, sha256(&layer))
}

/// A source registry trickling a 20,000-byte layer one byte every 300 ms (each inside the idle
/// time): it would take 100 minutes; the blob's deadline (the idle time, then 8 KiB/s) ends it
/// in about 3.4 s, naming the source registry, and no tag.
#[test]
fn a_trickled_source_blob_ends_at_its_deadline_naming_the_source() {
    let (source, layer) = trickling_source(20_000);
    let registry =
        support::registry::Registry::start(support::registry::RegistryOptions::default());
    let mut cmd = idpbuilder_process();
    cmd.env("IDPBUILDER_TEST_READ_TIMEOUT_MS", "1000")
        .args(["push", "-q", "--plain-http", "--src-plain-http"])
        .arg(format!("docker://{}/team/src:1.0", source.host()))
        .arg(format!("{}/team/app:1.0", registry.host()));
    let run = measured(&mut cmd, Duration::from_secs(60));
    assert_refused(
        &run,
        1,
        &format!(
            "source registry {} sent blob {} of {}/team/src too slowly",
            source.host(),
            &layer[7..19],
            source.host()
        ),
        Duration::from_secs(20),
    );
    assert!(
        !run.stderr().contains("did not answer in time"),
        "the destination is not blamed for the source's slowness: {}",
        run.stderr()
    );
    assert!(
        !registry.blob_exists("team/app", &layer),
        "the trickled layer was committed"
    );
    let reads = source
        .requests()
        .iter()
        .filter(|r| r.ends_with(&layer))
        .count();
    // The upload may try again meanwhile (it waits on the blob's bytes to fill a request), but
    // every read of the blob shares its one deadline.
    assert!(reads <= 5, "read {reads} times: {:?}", source.requests());
}

/// The same registry read by `pull`: the same deadline, naming the registry, and nothing
/// written.
#[test]
fn a_trickled_blob_ends_a_pull_at_its_deadline_and_writes_nothing() {
    let (source, layer) = trickling_source(20_000);
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("pulled");
    let mut cmd = idpbuilder_process();
    cmd.env("IDPBUILDER_TEST_READ_TIMEOUT_MS", "1000")
        .args(["pull", "-q", "--plain-http"])
        .arg(format!("{}/team/src:1.0", source.host()))
        .arg(format!("oci:{}", layout.display()));
    let run = measured(&mut cmd, Duration::from_secs(60));
    assert_refused(
        &run,
        1,
        &format!(
            "registry {} sent blob {} of {}/team/src too slowly",
            source.host(),
            &layer[7..19],
            source.host()
        ),
        Duration::from_secs(20),
    );
    assert!(!layout.exists(), "a layout appeared");
}

/// A registry whose `team/src:1.0` is an index naming 100 distinct manifests of 4,000,000
/// bytes each (400 MB), every one of which it would serve.
fn index_of_many_manifests() -> Hostile {
    let entries: Vec<serde_json::Value> = (0..100)
        .map(|n| {
            json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha256(format!("manifest {n}").as_bytes()),
                "size": 4_000_000,
                "platform": {"os": "linux", "architecture": format!("arch{n}")},
            })
        })
        .collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    })
    .to_string();
    Hostile::start(move |request, conn| {
        if request.path == "/v2/" {
            return respond(conn, "200 OK", &[], b"{}");
        }
        if request.path.ends_with("/manifests/1.0") {
            let media_type = ("Content-Type", "application/vnd.oci.image.index.v1+json");
            return respond(conn, "200 OK", &[media_type], index.as_bytes());
        }
        if request.path.contains("/manifests/") {
            // Any child: 4,000,000 bytes of a manifest's start and padding.
            let mut body = br#"{"schemaVersion":2,"pad":""#.to_vec();
            body.resize(4_000_000 - 2, b'x');
            body.extend_from_slice(b"\"}");
            return respond(conn, "200 OK", &[], &body);
        }
        respond(conn, "404 Not Found", &[], b"{}")
    })
}

/// Refused having read the index only: exit 2 before any upload, naming the image, for a
/// `docker://` copy and for a pull (the index's children were read and held one by one).
#[test]
fn an_index_naming_thousands_of_large_manifests_is_refused_before_reading_them() {
    let source = index_of_many_manifests();
    let registry =
        support::registry::Registry::start(support::registry::RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("pulled");
    let mut push = idpbuilder_process();
    push.args(["push", "-q", "--plain-http", "--src-plain-http"])
        .arg(format!("docker://{}/team/src:1.0", source.host()))
        .arg(format!("{}/team/app:1.0", registry.host()));
    let mut pull = idpbuilder_process();
    pull.args(["pull", "-q", "--plain-http"])
        .arg(format!("{}/team/src:1.0", source.host()))
        .arg(format!("oci:{}", layout.display()));
    for cmd in [&mut push, &mut pull] {
        let run = measured(cmd, Duration::from_secs(60));
        assert_refused(
            &run,
            2,
            &format!(
                "{}/team/src:1.0 add up to more than 16 MiB (101 manifests",
                source.host()
            ),
            Duration::from_secs(20),
        );
    }
    let children = source
        .requests()
        .iter()
        .filter(|r| r.contains("/manifests/sha256:"))
        .count();
    assert_eq!(children, 0, "{:?}", source.requests());
    assert!(!layout.exists(), "a layout appeared");
    let log = registry.log();
    assert!(
        !log.contains("blobs/uploads") && !log.contains("PUT /v2/team/app/manifests"),
        "something was uploaded:\n{log}"
    );
}

/// An engine on `tcp://127.0.0.1:PORT` (plain `DOCKER_HOST`): `/_ping` and `/version` as
/// Docker 25 answers them, and `/images/{name}/json` without end.
fn endless_tcp_engine() -> Hostile {
    Hostile::start(|request, conn| {
        let path = request.path.as_str();
        if path.ends_with("/_ping") {
            return respond(conn, "200 OK", &[], b"OK");
        }
        if path.ends_with("/version") {
            let version = br#"{"ApiVersion":"1.44","MinAPIVersion":"1.24","Version":"25.0.0"}"#;
            let json = ("Content-Type", "application/json");
            return respond(conn, "200 OK", &[json], version);
        }
        let json = ("Content-Type", "application/json");
        endless(
            conn,
            &[json],
            br#"{"Id":""#,
            &[b'a'; 64 << 10],
            Duration::ZERO,
        )
    })
}

/// Over TCP the inspect answer is read by hand too (bollard collected it whole: the socket case
/// was bounded, this one was not): cut at 4 MiB, naming the engine, nothing pushed.
#[test]
fn an_endless_inspect_answer_from_an_engine_over_tcp_is_cut_at_4_mib() {
    let engine = endless_tcp_engine();
    let registry =
        support::registry::Registry::start(support::registry::RegistryOptions::default());
    let mut cmd = idpbuilder_process();
    cmd.env("DOCKER_HOST", format!("tcp://{}", engine.host()))
        .args(["push", "-q", "--plain-http", "docker-daemon:app:1.0"])
        .arg(format!("{}/team/app:1.0", registry.host()));
    let run = measured(&mut cmd, Duration::from_secs(60));
    assert_refused(
        &run,
        2,
        &format!("the engine at tcp://{}", engine.host()),
        Duration::from_secs(20),
    );
    assert!(
        run.stderr().contains("larger than 4 MiB"),
        "{}",
        run.stderr()
    );
    assert!(
        !registry.log().contains("blobs/uploads"),
        "something was uploaded"
    );
}

/// A TLS front on `127.0.0.1` for `plain` (a test CA's certificate for `127.0.0.1`); returns its
/// port. Runs until the test process ends.
fn tls_front(plain: String, cert: &support::certs::ServerCert) -> u16 {
    let acceptor = tokio_rustls::TlsAcceptor::from(support::certs::rustls_server_config(cert));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind TLS front");
    listener.set_nonblocking(true).expect("non-blocking");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, plain) = (acceptor.clone(), plain.clone());
                tokio::spawn(async move {
                    let (Ok(mut tls), Ok(mut inner)) = (
                        acceptor.accept(tcp).await,
                        tokio::net::TcpStream::connect(plain).await,
                    ) else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut inner).await;
                });
            }
        });
    });
    port
}

/// The same engine behind TLS (`DOCKER_TLS_VERIFY`, the CA and a client identity in
/// `DOCKER_CERT_PATH`): the same cut, naming the engine.
#[test]
fn an_endless_inspect_answer_from_an_engine_over_tls_is_cut_at_4_mib() {
    let engine = endless_tcp_engine();
    let certs = tempfile::tempdir().expect("temp dir");
    let server = support::certs::ca_signed(certs.path());
    let port = tls_front(engine.host(), &server);
    let docker = certs.path().join("docker");
    std::fs::create_dir_all(&docker).expect("mkdir");
    std::fs::copy(certs.path().join("ca.crt"), docker.join("ca.pem")).expect("ca.pem");
    std::fs::copy(&server.cert, docker.join("cert.pem")).expect("cert.pem");
    std::fs::copy(&server.key, docker.join("key.pem")).expect("key.pem");
    let registry =
        support::registry::Registry::start(support::registry::RegistryOptions::default());
    let mut cmd = idpbuilder_process();
    cmd.env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", &docker)
        .args(["push", "-q", "--plain-http", "docker-daemon:app:1.0"])
        .arg(format!("{}/team/app:1.0", registry.host()));
    let run = measured(&mut cmd, Duration::from_secs(60));
    assert_refused(
        &run,
        2,
        &format!("the engine at tcp://127.0.0.1:{port}"),
        Duration::from_secs(20),
    );
    assert!(
        run.stderr().contains("larger than 4 MiB"),
        "{}",
        run.stderr()
    );
}
