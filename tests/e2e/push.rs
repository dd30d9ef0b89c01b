//! End-to-end: `idpbuilder push` into a real distribution registry (TLS + htpasswd, token auth,
//! plain HTTP), every input kind, checked with skopeo.

use crate::support;

use std::path::Path;

use support::fixtures::{self, ImageSpec};
use support::push::{push_and_verify, push_cmd, verify};
use support::registry::{Auth, Registry, RegistryOptions, Tls};
use support::skopeo::TestRegistry as _;
use support::{idpbuilder, stderr, stdout};

const USER: &str = "giteaadmin";
const PASS: &str = "s3cr3t-Pa55word";

fn basic_tls(tls: Tls) -> Registry {
    Registry::start(
        RegistryOptions::default()
            .tls(tls)
            .auth(Auth::basic(USER, PASS)),
    )
}

#[test]
fn every_input_kind_reaches_a_tls_basic_auth_registry_with_its_digests() {
    let registry = basic_tls(Tls::CaSigned);
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path();

    let layout = fixtures::oci_layout(
        &dir.join("layout"),
        &ImageSpec::new("1.0", &[2_000, 300_000]),
    );
    push_and_verify(
        &registry,
        dir.join("layout").to_str().unwrap_or_default(),
        "giteaadmin/layout:1.0",
        &layout,
    );

    let archive = fixtures::oci_archive(
        &dir.join("app-oci.tar"),
        &ImageSpec::new("1.0", &[5_000]).seed(2),
    );
    push_and_verify(
        &registry,
        &dir.join("app-oci.tar").display().to_string(),
        "giteaadmin/ociarchive:1.0",
        &archive,
    );

    let gz = fixtures::oci_archive(
        &dir.join("app-oci.tar.gz"),
        &ImageSpec::new("1.0", &[5_000]).seed(3),
    );
    push_and_verify(
        &registry,
        &dir.join("app-oci.tar.gz").display().to_string(),
        "giteaadmin/ociarchivegz:1.0",
        &gz,
    );

    let classic = fixtures::classic_docker_archive(
        &dir.join("classic.tar"),
        &["app:1.0"],
        &ImageSpec::new("x", &[4_000, 9_000]).seed(4),
    );
    push_and_verify(
        &registry,
        &dir.join("classic.tar").display().to_string(),
        "giteaadmin/classic:1.0",
        &classic,
    );

    let modern = fixtures::modern_docker_archive(
        &dir.join("modern.tar"),
        &["app:2.0"],
        &ImageSpec::new("x", &[4_000]).seed(5),
    );
    push_and_verify(
        &registry,
        &format!("docker-archive:{}", dir.join("modern.tar").display()),
        "giteaadmin/modern:2.0",
        &modern,
    );

    let classic_gz = fixtures::classic_docker_archive(
        &dir.join("classic.tar.gz"),
        &["app:1.0"],
        &ImageSpec::new("x", &[4_000]).seed(6),
    );
    push_and_verify(
        &registry,
        &dir.join("classic.tar.gz").display().to_string(),
        "giteaadmin/classicgz:1.0",
        &classic_gz,
    );
}

#[test]
fn a_multi_platform_index_is_pushed_whole_or_one_platform_with_platform() {
    let registry = basic_tls(Tls::CaSigned);
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("multi");
    let index = fixtures::multi_platform_layout(&dir, &[("linux", "amd64"), ("linux", "arm64")]);
    push_and_verify(
        &registry,
        &dir.display().to_string(),
        "giteaadmin/multi:1.0",
        &index,
    );

    let output = push_cmd(&registry, &dir.display().to_string(), "giteaadmin/arm:1.0")
        .args(["--platform", "linux/arm64"])
        .output()
        .expect("run idpbuilder");
    assert!(output.status.success(), "{}", stderr(&output));
    let (manifest, digest) = registry.skopeo_inspect_raw("giteaadmin/arm:1.0");
    assert_eq!(
        digest, index.children[1],
        "the arm64 manifest, byte for byte"
    );
    assert!(String::from_utf8_lossy(&manifest).contains("\"layers\""));
}

#[test]
fn images_made_by_skopeo_push_with_their_digests() {
    let registry = basic_tls(Tls::CaSigned);
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path();
    let source = fixtures::oci_layout(
        &dir.join("src"),
        &ImageSpec::new("1.0", &[10_000, 20_000]).seed(9),
    );
    let src_ref = format!("oci:{}:1.0", dir.join("src").display());

    // skopeo's own oci-archive keeps the manifest as it is.
    let archive = dir.join("skopeo-oci.tar");
    skopeo_convert(
        &registry,
        &src_ref,
        &format!("oci-archive:{}:1.0", archive.display()),
    );
    push_and_verify(
        &registry,
        &archive.display().to_string(),
        "giteaadmin/skopeo-oci:1.0",
        &source,
    );

    // skopeo's docker-archive (classic form): the manifest is built here, blobs keep their bytes.
    let docker = dir.join("skopeo-docker.tar");
    skopeo_convert(
        &registry,
        &src_ref,
        &format!("docker-archive:{}:app:1.0", docker.display()),
    );
    let output = push_cmd(
        &registry,
        &docker.display().to_string(),
        "giteaadmin/skopeo-docker",
    )
    .output()
    .expect("run idpbuilder");
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = stdout(&output);
    let (manifest, digest) = registry.skopeo_inspect_raw("giteaadmin/skopeo-docker:1.0");
    assert!(
        printed.trim_end().ends_with(&digest),
        "{printed} vs {digest}"
    );
    assert!(
        printed.contains("/giteaadmin/skopeo-docker:1.0@"),
        "the RepoTag's tag is the default: {printed}"
    );
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).expect("manifest JSON");
    let config = manifest["config"]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let copy = dir.join("copy");
    registry.skopeo_copy_to_oci("giteaadmin/skopeo-docker:1.0", &copy);
    assert!(fixtures::blob_path(&copy, &config).exists());
    assert!(
        source.blob_digests.contains(&config),
        "the config kept its bytes"
    );
}

fn skopeo_convert(registry: &Registry, from: &str, to: &str) {
    let out = registry
        .skopeo()
        .args(["copy", from, to])
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo copy {from} {to}: {}",
        stderr(&out)
    );
}

#[test]
fn an_idpbuilder_shaped_certificate_is_trusted_through_ca_file() {
    let registry = basic_tls(Tls::IdpbuilderShaped);
    let work = tempfile::tempdir().expect("temp dir");
    let image = fixtures::oci_layout(&work.path().join("l"), &ImageSpec::new("1.0", &[1_000]));
    push_and_verify(
        &registry,
        &work.path().join("l").display().to_string(),
        "giteaadmin/app:1.0",
        &image,
    );

    // The same certificate also works under the other name it carries.
    let output = idpbuilder()
        .args(["push", "-q"])
        .args(registry.tls_args())
        .args(["-u", USER, "--password-stdin"])
        .write_stdin(PASS)
        .arg(work.path().join("l"))
        .arg(format!("{}/giteaadmin/app:1.1", registry.localhost()))
        .output()
        .expect("run idpbuilder");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).lines().count(), 1, "-q prints one line");
}

#[test]
fn token_auth_runs_the_bearer_flow_for_real() {
    let registry = Registry::start(
        RegistryOptions::default()
            .tls(Tls::CaSigned)
            .auth(Auth::token(USER, PASS)),
    );
    let work = tempfile::tempdir().expect("temp dir");
    let image = fixtures::oci_layout(
        &work.path().join("l"),
        &ImageSpec::new("1.0", &[1_000, 2_000]),
    );
    push_and_verify(
        &registry,
        &work.path().join("l").display().to_string(),
        "giteaadmin/token:1.0",
        &image,
    );
    let issued = registry
        .token_server()
        .map(|t| t.tokens_issued())
        .unwrap_or_default();
    assert!(issued >= 1, "a token was fetched from the realm");

    let wrong = idpbuilder()
        .arg("push")
        .args(registry.tls_args())
        .args(["-u", USER, "--password-stdin"])
        .write_stdin("wrong")
        .arg(work.path().join("l"))
        .arg(format!("{}/giteaadmin/token:2.0", registry.host()))
        .output()
        .expect("run idpbuilder");
    assert_eq!(wrong.status.code(), Some(3), "{}", stderr(&wrong));
    assert!(stderr(&wrong).starts_with("error: "), "{}", stderr(&wrong));
}

#[test]
fn plain_http_registry_without_auth() {
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let image = fixtures::oci_layout(&work.path().join("l"), &ImageSpec::new("1.0", &[1_000]));
    push_and_verify(
        &registry,
        &work.path().join("l").display().to_string(),
        "team/app:1.0",
        &image,
    );
}

#[test]
fn pushing_again_uploads_nothing_and_prints_the_same_digest() {
    let registry = basic_tls(Tls::CaSigned);
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("l");
    let image = fixtures::oci_layout(&layout, &ImageSpec::new("1.0", &[50_000, 60_000]));
    let run = || {
        let output = push_cmd(
            &registry,
            &layout.display().to_string(),
            "giteaadmin/again:1.0",
        )
        .args(["-o", "json"])
        .output()
        .expect("run idpbuilder");
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_slice::<serde_json::Value>(&output.stdout).expect("JSON result")
    };
    let first = run();
    let second = run();
    assert_eq!(first["digest"], image.manifest_digest.as_str());
    assert_eq!(second["digest"], first["digest"]);
    assert_eq!(first["blobs_uploaded"], 3);
    assert_eq!(second["blobs_uploaded"], 0);
    assert_eq!(second["bytes_uploaded"], 0);
    assert_eq!(second["blobs_skipped"], 3);
}

#[test]
fn blobs_larger_than_the_chunk_size_go_in_patch_chunks() {
    let registry = basic_tls(Tls::CaSigned);
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("l");
    let image = fixtures::oci_layout(&layout, &ImageSpec::new("1.0", &[3_500_000]));
    let output = push_cmd(
        &registry,
        &layout.display().to_string(),
        "giteaadmin/chunks:1.0",
    )
    .args(["--chunk-size", "1MiB"])
    .output()
    .expect("run idpbuilder");
    assert!(output.status.success(), "{}", stderr(&output));
    verify(&registry, "giteaadmin/chunks:1.0", &image);
    assert!(
        registry.log().contains("PATCH"),
        "chunks went as PATCH requests"
    );
}

#[test]
fn a_blob_whose_bytes_do_not_match_its_digest_aborts_before_any_tag() {
    let registry = basic_tls(Tls::CaSigned);
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("l");
    let image = fixtures::oci_layout(&layout, &ImageSpec::new("1.0", &[40_000]));
    let layer = image.blob_digests.iter().find(|d| {
        std::fs::metadata(fixtures::blob_path(&layout, d))
            .map(|m| m.len() > 30_000)
            .unwrap_or(false)
    });
    let path = fixtures::blob_path(&layout, layer.expect("a large layer"));
    corrupt(&path);
    let output = push_cmd(
        &registry,
        &layout.display().to_string(),
        "giteaadmin/corrupt:1.0",
    )
    .output()
    .expect("run idpbuilder");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("does not match its digest"),
        "{}",
        stderr(&output)
    );
    assert!(
        registry.tags("giteaadmin/corrupt").is_empty(),
        "no tag was created"
    );
    assert!(!registry.manifest_exists("giteaadmin/corrupt", &image.manifest_digest));
}

/// Flips one byte in the middle, keeping the size.
fn corrupt(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read blob");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(path, bytes).expect("write blob");
}

#[test]
fn wrong_password_exits_3_and_creates_no_tag() {
    let registry = basic_tls(Tls::CaSigned);
    let work = tempfile::tempdir().expect("temp dir");
    fixtures::oci_layout(&work.path().join("l"), &ImageSpec::new("1.0", &[1_000]));
    let output = idpbuilder()
        .arg("push")
        .args(registry.tls_args())
        .args(["-u", USER, "--password-stdin"])
        .write_stdin("not-the-password")
        .arg(work.path().join("l"))
        .arg(format!("{}/giteaadmin/app:1.0", registry.host()))
        .output()
        .expect("run idpbuilder");
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.starts_with("error: registry refused the credentials"),
        "{err}"
    );
    assert!(
        err.contains("\nhint: check --username and the password\n"),
        "the hint names where the credentials came from, not the cluster: {err}"
    );
    assert!(registry.tags("giteaadmin/app").is_empty());
}

#[test]
fn an_untrusted_certificate_exits_4_and_names_the_flags() {
    for tls in [Tls::CaSigned, Tls::IdpbuilderShaped] {
        let registry = basic_tls(tls);
        let work = tempfile::tempdir().expect("temp dir");
        fixtures::oci_layout(&work.path().join("l"), &ImageSpec::new("1.0", &[1_000]));
        let output = idpbuilder()
            .args(["push", "-u", USER, "--password-stdin"])
            .write_stdin(PASS)
            .arg(work.path().join("l"))
            .arg(format!("{}/giteaadmin/app:1.0", registry.host()))
            .output()
            .expect("run idpbuilder");
        assert_eq!(
            output.status.code(),
            Some(4),
            "{tls:?}: {}",
            stderr(&output)
        );
        let err = stderr(&output);
        assert!(err.starts_with("error: the TLS certificate of"), "{err}");
        assert!(
            err.contains("--ca-file") && err.contains("--insecure"),
            "{err}"
        );
        assert!(registry.tags("giteaadmin/app").is_empty());
    }
}

#[test]
fn insecure_skips_verification_with_a_warning() {
    let registry = basic_tls(Tls::IdpbuilderShaped);
    let work = tempfile::tempdir().expect("temp dir");
    let image = fixtures::oci_layout(&work.path().join("l"), &ImageSpec::new("1.0", &[1_000]));
    let output = idpbuilder()
        .args(["push", "--insecure"])
        .env("IDPBUILDER_REGISTRY_USERNAME", USER)
        .env("IDPBUILDER_REGISTRY_PASSWORD", PASS)
        .arg(work.path().join("l"))
        .arg(format!("{}/giteaadmin/app:1.0", registry.host()))
        .output()
        .expect("run idpbuilder");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("warning: --insecure"),
        "{}",
        stderr(&output)
    );
    verify(&registry, "giteaadmin/app:1.0", &image);
}

#[test]
fn plain_http_to_a_tls_registry_exits_1_saying_to_drop_the_flag() {
    let registry = basic_tls(Tls::CaSigned);
    let work = tempfile::tempdir().expect("temp dir");
    fixtures::oci_layout(&work.path().join("l"), &ImageSpec::new("1.0", &[1_000]));
    let output = idpbuilder()
        .args(["push", "--plain-http", "-u", USER, "--password-stdin"])
        .write_stdin(PASS)
        .arg(work.path().join("l"))
        .arg(format!("{}/giteaadmin/app:1.0", registry.host()))
        .output()
        .expect("run idpbuilder");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("answered 400 Bad Request to /v2/"), "{err}");
    assert!(
        err.contains("hint: the registry may speak HTTPS on that port: drop --plain-http"),
        "{err}"
    );
}

#[test]
fn a_registry_that_is_not_listening_exits_1() {
    let work = tempfile::tempdir().expect("temp dir");
    fixtures::oci_layout(&work.path().join("l"), &ImageSpec::new("1.0", &[1_000]));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let output = idpbuilder()
        .args(["push", "--plain-http", "--retries", "2"])
        .arg(work.path().join("l"))
        .arg(format!("127.0.0.1:{port}/team/app:1.0"))
        .output()
        .expect("run idpbuilder");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!(
            "error: cannot connect to 127.0.0.1:{port} (connection refused)"
        )),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_password_never_shows_even_at_trace_level() {
    let registry = Registry::start(
        RegistryOptions::default()
            .tls(Tls::CaSigned)
            .auth(Auth::token(USER, PASS)),
    );
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("l");
    fixtures::oci_layout(&layout, &ImageSpec::new("1.0", &[1_000]));
    let dest = format!("{}/giteaadmin/secret:1.0", registry.host());
    let base = || {
        let mut cmd = idpbuilder();
        cmd.args(["push", "-l", "trace"]).args(registry.tls_args());
        cmd
    };
    let by_flag = base()
        .args(["-u", USER, "-p", PASS])
        .arg(&layout)
        .arg(&dest)
        .output();
    let by_stdin = base()
        .args(["-u", USER, "--password-stdin"])
        .write_stdin(PASS)
        .arg(&layout)
        .arg(&dest)
        .output();
    let by_env = base()
        .env("IDPBUILDER_REGISTRY_USERNAME", USER)
        .env("IDPBUILDER_REGISTRY_PASSWORD", PASS)
        .arg(&layout)
        .arg(&dest)
        .output();
    let wrong = base()
        .args(["-u", USER, "--password-stdin"])
        .write_stdin("Wr0ng-Secret-Value")
        .arg(&layout)
        .arg(&dest)
        .output();
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"));
    for (how, output) in [
        ("flag", by_flag),
        ("stdin", by_stdin),
        ("env", by_env),
        ("wrong", wrong),
    ] {
        let output = output.expect("run idpbuilder");
        let all = format!("{}{}", stdout(&output), stderr(&output));
        assert!(
            all.contains("TRACE") || all.contains("DEBUG"),
            "{how}: trace logging is on"
        );
        for secret in [PASS, "Wr0ng-Secret-Value", basic.as_str()] {
            assert!(!all.contains(secret), "{how}: the secret leaked:\n{all}");
        }
        if how == "flag" {
            assert!(
                all.contains("warning: a password given with --password"),
                "{all}"
            );
        }
        if how == "env" {
            let manifest = format!(
                "PUT https://{}/v2/giteaadmin/secret/manifests/1.0 -> 201 Created",
                registry.host()
            );
            assert!(all.contains(&manifest), "every request is traced:\n{all}");
            for line in all.lines().filter(|l| l.contains(" -> ")) {
                assert!(!line.contains('?'), "a traced URL keeps its query: {line}");
            }
        }
    }
}
