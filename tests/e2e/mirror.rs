//! Issue 8: mirroring a registry image in one command (`idpbuilder push docker://...`), against
//! real distribution registries, each with its own TLS certificate and password (one behind
//! Basic auth, one behind the Bearer token flow), checked with skopeo; the fault proxy for a
//! download cut short and for counting what a copy inside one registry sends; wiremock for
//! a source that serves wrong bytes or redirects a blob elsewhere.

use crate::support;

use std::process::Output;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;
use wiremock::matchers::{header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use support::fault_proxy::{Fault, FaultProxy, Rule};
use support::fixtures::{self, FixtureImage, ImageSpec};
use support::launch::{idpbuilder_on_terminal, idpbuilder_without_terminal};
use support::mock_registry::open_registry;
use support::push::{result_line, verify};
use support::registry::{Auth, Registry, RegistryOptions, Tls};
use support::skopeo::TestRegistry;
use support::{idpbuilder, sha256, stderr, stdout};

const SRC_USER: &str = "mirror-reader";
const SRC_PASS: &str = "src-Pa55-wd-7781-zq";
const DEST_USER: &str = "giteaadmin";
const DEST_PASS: &str = "dest-Pa55-wd-9932-xk";

/// TLS with its own CA, htpasswd Basic auth.
fn basic_source() -> Registry {
    Registry::start(
        RegistryOptions::default()
            .tls(Tls::CaSigned)
            .auth(Auth::basic(SRC_USER, SRC_PASS)),
    )
}

/// TLS with its own CA, behind the Bearer token flow.
fn token_destination() -> Registry {
    Registry::start(
        RegistryOptions::default()
            .tls(Tls::CaSigned)
            .auth(Auth::token(DEST_USER, DEST_PASS)),
    )
}

fn plain_registry() -> Registry {
    Registry::start(RegistryOptions::default())
}

/// Writes an image layout with layers of `layers` bytes (in a temp dir) and copies it into
/// `registry` as `team/app:1.0` with skopeo.
fn seed_app(registry: &Registry, layers: &[usize]) -> FixtureImage {
    let work = tempfile::tempdir().expect("temp dir");
    let spec = ImageSpec::new("1.0", layers);
    let layout = work.path().join(format!("layout-{}", spec.seed));
    let image = fixtures::oci_layout(&layout, &spec);
    registry.skopeo_copy_from_oci(
        &format!("oci:{}:{}", layout.display(), spec.ref_name),
        "team/app:1.0",
    );
    image
}

/// The two-platform fixture (linux/amd64, linux/arm64) in `registry` as `repo_tag`.
fn seed_index(registry: &Registry, repo_tag: &str) -> FixtureImage {
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("multi");
    let image = fixtures::multi_platform_layout(&layout, &[("linux", "amd64"), ("linux", "arm64")]);
    registry.skopeo_copy_from_oci(&format!("oci:{}:multi", layout.display()), repo_tag);
    image
}

/// `--src-ca-file CA` or `--src-plain-http`.
fn source_tls_args(source: &Registry) -> Vec<String> {
    match source.ca_file() {
        Some(ca) => vec!["--src-ca-file".into(), ca.display().to_string()],
        None => vec!["--src-plain-http".into()],
    }
}

/// `idpbuilder push docker://SOURCE_HOST/from DEST_HOST/to` with both registries' TLS flags,
/// the source's credentials in `IDPBUILDER_SRC_*` and the destination's on stdin.
fn copy_cmd(
    source: &Registry,
    source_host: &str,
    from: &str,
    dest: &Registry,
    dest_host: &str,
    to: &str,
) -> assert_cmd::Command {
    let mut cmd = idpbuilder();
    cmd.arg("push")
        .args(dest.tls_args())
        .args(source_tls_args(source));
    if let Some((user, pass)) = source.credentials() {
        cmd.env("IDPBUILDER_SRC_USERNAME", user)
            .env("IDPBUILDER_SRC_PASSWORD", pass);
    }
    if let Some((user, pass)) = dest.credentials() {
        cmd.args(["--username", user, "--password-stdin"])
            .write_stdin(format!("{pass}\n"));
    }
    cmd.arg(format!("docker://{source_host}/{from}"))
        .arg(format!("{dest_host}/{to}"));
    cmd
}

/// [`copy_cmd`] of `team/app:1.0` from `source`, reached at `source_host`, into `dest`'s
/// `mirror/app:1.0`.
fn copy_app_cmd(source: &Registry, source_host: &str, dest: &Registry) -> assert_cmd::Command {
    copy_cmd(
        source,
        source_host,
        "team/app:1.0",
        dest,
        &dest.host(),
        "mirror/app:1.0",
    )
}

fn copy(source: &Registry, from: &str, dest: &Registry, to: &str, extra: &[&str]) -> Output {
    copy_cmd(source, &source.host(), from, dest, &dest.host(), to)
        .args(extra)
        .output()
        .expect("run idpbuilder")
}

fn assert_pushed(output: &Output, reference: &str, digest: &str) {
    assert!(output.status.success(), "copy failed: {}", stderr(output));
    assert_eq!(
        result_line(output),
        format!("{reference}@{digest}"),
        "result line"
    );
}

/// The copy succeeded with `image`'s digest as `dest`'s `mirror/app:1.0`.
fn assert_mirrored(output: &Output, dest: &Registry, image: &FixtureImage) {
    assert_pushed(
        output,
        &format!("{}/mirror/app:1.0", dest.host()),
        &image.manifest_digest,
    );
}

#[test]
fn an_image_is_copied_between_two_registries_with_the_sources_digests() {
    let (source, dest) = (basic_source(), token_destination());
    let image = seed_app(&source, &[200_000, 50_000]);

    let output = copy(&source, "team/app:1.0", &dest, "mirror/app:1.0", &[]);
    assert_mirrored(&output, &dest, &image);
    verify(&dest, "mirror/app:1.0", &image);
    assert_eq!(
        source.skopeo_inspect_raw("team/app:1.0"),
        dest.skopeo_inspect_raw("mirror/app:1.0"),
        "the manifest's bytes are the source's"
    );
    let tokens = dest.token_server().expect("token server");
    assert!(
        tokens.tokens_issued() > 0,
        "the destination's Bearer flow ran"
    );
}

#[test]
fn a_two_platform_index_is_copied_whole_with_its_digest() {
    let (source, dest) = (basic_source(), token_destination());
    let index = seed_index(&source, "team/multi:2.0");

    let output = copy(&source, "team/multi:2.0", &dest, "mirror/multi:2.0", &[]);
    assert_pushed(
        &output,
        &format!("{}/mirror/multi:2.0", dest.host()),
        &index.manifest_digest,
    );
    verify(&dest, "mirror/multi:2.0", &index);
    for child in &index.children {
        assert!(
            dest.has_manifest(&format!("mirror/multi@{child}")),
            "platform manifest {child}"
        );
    }
}

#[test]
fn one_platform_of_an_index_is_copied_with_its_own_digest() {
    let (source, dest) = (basic_source(), token_destination());
    let index = seed_index(&source, "team/multi:2.0");
    let arm64 = index.children[1].clone();

    let output = copy(
        &source,
        "team/multi:2.0",
        &dest,
        "mirror/multi:arm64",
        &["--platform", "linux/arm64"],
    );
    assert_pushed(
        &output,
        &format!("{}/mirror/multi:arm64", dest.host()),
        &arm64,
    );
    let (bytes, digest) = dest.skopeo_inspect_raw("mirror/multi:arm64");
    assert_eq!(digest, arm64);
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
    assert!(
        manifest.get("manifests").is_none(),
        "a manifest, not the index"
    );
    assert!(!dest.has_manifest(&format!("mirror/multi@{}", index.manifest_digest)));
    assert!(!dest.has_manifest(&format!("mirror/multi@{}", index.children[0])));
}

#[test]
fn a_public_image_behind_bearer_tokens_is_read_with_an_anonymous_pull_token() {
    let source = Registry::start(
        RegistryOptions::default()
            .tls(Tls::CaSigned)
            .auth(Auth::token(SRC_USER, SRC_PASS))
            .anonymous_pull(),
    );
    let dest = plain_registry();
    let image = seed_app(&source, &[30_000]);
    let tokens = source.token_server().expect("token server");
    let before = tokens.scopes().len();

    let output = idpbuilder()
        .args(["push", "--plain-http"])
        .args(source_tls_args(&source))
        .arg(format!("docker://{}/team/app:1.0", source.host()))
        .arg(format!("{}/mirror/app:1.0", dest.host()))
        .output()
        .expect("run idpbuilder");
    assert_mirrored(&output, &dest, &image);
    let asked: Vec<String> = tokens.scopes().split_off(before);
    assert!(!asked.is_empty(), "a token was asked for");
    assert!(
        asked.iter().all(|s| s == "repository:team/app:pull"),
        "only pull on the source: {asked:?}"
    );
    verify(&dest, "mirror/app:1.0", &image);
}

/// What [`copy_through_one_reset`] leaves to look at.
struct ResetCopy {
    output: Output,
    proxy: FaultProxy,
    dest: Registry,
    /// The digest of the layer whose download was cut.
    layer: String,
}

/// Copies `team/app:1.0`, an image with one `layer_size`-byte layer, from a plain source into a
/// plain destination's `mirror/app:1.0` with `extra` flags, through a proxy that resets the
/// first download of the layer after `reset_after` bytes; checks the copy came through with the
/// source's digests and the download was cut once.
fn copy_through_one_reset(layer_size: usize, reset_after: u64, extra: &[&str]) -> ResetCopy {
    let (source, dest) = (plain_registry(), plain_registry());
    let image = seed_app(&source, &[layer_size]);
    let layer = image.blob_digests[1].clone();
    let proxy = FaultProxy::start(
        &source.host(),
        vec![
            Rule::on("GET", &format!("/blobs/{layer}"))
                .fault(Fault::ResetResponseAfter(reset_after)),
        ],
    );
    let output = copy_app_cmd(&source, &proxy.host(), &dest)
        .args(extra)
        .output()
        .expect("run idpbuilder");
    assert_mirrored(&output, &dest, &image);
    assert_eq!(proxy.faults_injected(), 1, "the download was cut once");
    verify(&dest, "mirror/app:1.0", &image);
    ResetCopy {
        output,
        proxy,
        dest,
        layer,
    }
}

#[test]
fn a_reset_in_the_middle_of_a_blob_download_reads_on_from_the_byte_reached() {
    let ResetCopy {
        output,
        proxy,
        dest,
        layer,
    } = copy_through_one_reset(400_000, 150_000, &["--log-level", "debug"]);
    let gets = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "GET" && s.path.contains(layer.as_str()))
        .count();
    assert_eq!(gets, 2, "the layer was read on once after the cut");
    let stderr = stderr(&output);
    assert!(
        stderr.contains("broke while reading blob") && stderr.contains("reading on from byte"),
        "the debug log says where the read went on from: {stderr}"
    );
    assert!(
        !dest
            .log()
            .contains("\"DELETE /v2/mirror/app/blobs/uploads/"),
        "the upload it fed never broke, so no session was cancelled"
    );
    assert!(
        proxy.response_bytes_forwarded() < 400_000 + 150_000,
        "the bytes before the cut were not fetched again: {} bytes from the source",
        proxy.response_bytes_forwarded()
    );
}

#[test]
fn six_resets_inside_one_download_cost_the_bytes_in_flight_not_the_blob() {
    let (source, dest) = (plain_registry(), plain_registry());
    let size = 6 << 20;
    let image = seed_app(&source, &[size]);
    let layer = image.blob_digests[1].clone();
    let proxy = FaultProxy::start(
        &source.host(),
        vec![
            Rule::on("GET", &format!("/blobs/{layer}"))
                .times(6)
                .fault(Fault::ResetResponseAfter(800_000)),
        ],
    );
    let output = copy_app_cmd(&source, &proxy.host(), &dest)
        .output()
        .expect("run idpbuilder");
    assert_mirrored(&output, &dest, &image);
    assert_eq!(proxy.faults_injected(), 6, "the download was cut six times");
    verify(&dest, "mirror/app:1.0", &image);
    let fetched = proxy.response_bytes_forwarded();
    assert!(
        fetched < size as u64 + (64 << 10),
        "six cuts cost no more than the blob: {fetched} bytes fetched for {size}"
    );
}

#[test]
fn a_reset_while_a_blob_in_parts_is_read_ahead_is_survived() {
    // The first GET of the layer is the check ahead of its first part.
    copy_through_one_reset(1_500_000, 500_000, &["--chunk-size", "1MiB"]);
}

#[test]
fn a_copy_inside_one_registry_mounts_every_blob_and_sends_no_layer_bytes() {
    let registry =
        Registry::start(RegistryOptions::default().auth(Auth::token(DEST_USER, DEST_PASS)));
    let image = seed_app(&registry, &[600_000, 300_000]);
    let proxy = FaultProxy::start(&registry.host(), vec![]);

    // No source credentials: the destination's own are used, as it is the same registry.
    let output = copy_cmd(
        &registry,
        &proxy.host(),
        "team/app:1.0",
        &registry,
        &proxy.host(),
        "mirror/app:1.0",
    )
    .env_remove("IDPBUILDER_SRC_USERNAME")
    .env_remove("IDPBUILDER_SRC_PASSWORD")
    .args(["-o", "json"])
    .output()
    .expect("run idpbuilder");
    assert!(output.status.success(), "copy failed: {}", stderr(&output));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON summary");
    assert_eq!(summary["digest"], image.manifest_digest.as_str());
    assert_eq!(summary["blobs_uploaded"], 0, "{summary}");
    assert_eq!(summary["bytes_uploaded"], 0, "{summary}");
    let sent = proxy.body_bytes_forwarded();
    assert!(
        sent < 4096,
        "only the manifest went up, not 900 kB of layers: {sent} bytes"
    );
    let mounts = proxy
        .seen()
        .iter()
        .filter(|s| {
            s.method == "POST" && s.path.contains("mount=") && s.path.contains("from=team%2Fapp")
        })
        .count();
    assert_eq!(mounts, image.blob_digests.len(), "one mount per blob");
    assert_eq!(
        stderr(&output).matches("mounted sha256:").count(),
        image.blob_digests.len(),
        "{}",
        stderr(&output)
    );
    let scopes = registry.token_server().expect("token server").scopes();
    assert!(
        scopes.iter().any(|s| s == "repository:team/app:pull")
            && scopes
                .iter()
                .any(|s| s == "repository:mirror/app:pull,push"),
        "the destination's token may read the repository it mounts from: {scopes:?}"
    );
    verify(&registry, "mirror/app:1.0", &image);
}

/// A 1 MiB tmpfs at a new directory, unmounted on drop; `None` where mounting is not allowed.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount() -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[test]
fn a_copy_needs_no_more_than_a_1_mib_tmpdir() {
    let Some(tmpfs) = Tmpfs::mount() else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let (source, dest) = (plain_registry(), plain_registry());
    let image = seed_app(&source, &[3 << 20, 2 << 20]);
    let output = copy_app_cmd(&source, &source.host(), &dest)
        .env("TMPDIR", tmpfs.0.path())
        .output()
        .expect("run idpbuilder");
    assert_mirrored(&output, &dest, &image);
    let left = std::fs::read_dir(tmpfs.0.path()).expect("tmpfs").count();
    assert_eq!(left, 0, "nothing was written to TMPDIR");
    verify(&dest, "mirror/app:1.0", &image);
}

#[test]
fn the_source_password_never_shows_even_at_trace_level() {
    let (source, dest) = (basic_source(), token_destination());
    let image = seed_app(&source, &[20_000]);
    let output = copy_app_cmd(&source, &source.host(), &dest)
        .env_remove("IDPBUILDER_SRC_USERNAME")
        .env_remove("IDPBUILDER_SRC_PASSWORD")
        .args([
            "--src-creds",
            &format!("{SRC_USER}:{SRC_PASS}"),
            "-l",
            "trace",
        ])
        .output()
        .expect("run idpbuilder");
    assert_mirrored(&output, &dest, &image);
    let err = stderr(&output);
    assert!(
        err.contains("warning: a password given with --src-creds is visible to other users"),
        "{err}"
    );
    assert!(
        err.contains("credentials for the source"),
        "trace logs ran: {err}"
    );
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{SRC_USER}:{SRC_PASS}"));
    for secret in [SRC_PASS, DEST_PASS, basic.as_str()] {
        assert!(!err.contains(secret), "a secret in the logs");
        assert!(!stdout(&output).contains(secret), "a secret on stdout");
    }
}

#[test]
fn src_creds_without_a_password_asks_on_the_terminal() {
    if !support::launch::has_script() {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let (source, dest) = (basic_source(), plain_registry());
    let image = seed_app(&source, &[10_000]);
    let ca = source.ca_file().expect("TLS").display().to_string();
    let args: Vec<String> = [
        "push",
        "--plain-http",
        "--src-ca-file",
        &ca,
        "--src-creds",
        SRC_USER,
        &format!("docker://{}/team/app:1.0", source.host()),
        &format!("{}/mirror/app:1.0", dest.host()),
    ]
    .map(String::from)
    .to_vec();
    let mut child = idpbuilder_on_terminal(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run idpbuilder under script");
    // Typed once the prompt is up (echo off by then), as a user would.
    std::thread::sleep(Duration::from_secs(2));
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(format!("{SRC_PASS}\n").as_bytes())
            .expect("type the password");
    }
    let output = child.wait_with_output().expect("wait");
    let screen = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{screen}");
    assert!(
        screen.contains(&format!("Password for {SRC_USER} at {}:", source.host())),
        "{screen}"
    );
    assert!(
        !screen.contains(SRC_PASS),
        "the password was echoed: {screen}"
    );
    assert!(screen.contains(&image.manifest_digest), "{screen}");
}

// Bad inputs (rows in docs/bad-inputs.md).

#[test]
fn src_creds_without_a_password_and_no_terminal_exits_2_naming_the_other_ways() {
    let output = idpbuilder_without_terminal()
        .args([
            "push",
            "--src-creds",
            SRC_USER,
            "docker://127.0.0.1:9/team/app:1.0",
            "127.0.0.1:9/mirror/app:1.0",
        ])
        .timeout(Duration::from_secs(30))
        .output()
        .expect("run idpbuilder");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error: --src-creds names no password and there is no terminal"),
        "{err}"
    );
    assert!(
        err.contains("hint: write --src-creds USER:PASSWORD, or set IDPBUILDER_SRC_USERNAME"),
        "{err}"
    );
}

#[test]
fn an_unknown_source_host_exits_2_at_once_naming_it() {
    let started = Instant::now();
    let output = idpbuilder()
        .args([
            "push",
            "docker://no-such-host.invalid/team/app:1.0",
            "127.0.0.1:9/mirror/app:1.0",
        ])
        .timeout(Duration::from_secs(60))
        .output()
        .expect("run idpbuilder");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error: the source registry no-such-host.invalid is unknown: no-such-host.invalid does not resolve"),
        "{err}"
    );
    assert!(err.contains("hint: check the host in IMAGE"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not retried: {:?}",
        started.elapsed()
    );
}

#[test]
fn an_untrusted_source_certificate_exits_4_naming_the_source_flags() {
    let (source, dest) = (basic_source(), plain_registry());
    seed_app(&source, &[64]);
    // The source's CA given as --ca-file, the destination's flag: the mistake the hint corrects.
    let ca = source
        .ca_file()
        .expect("a TLS source")
        .display()
        .to_string();
    let output = idpbuilder()
        .args(["push", "--plain-http", "--ca-file", &ca])
        .env("IDPBUILDER_SRC_USERNAME", SRC_USER)
        .env("IDPBUILDER_SRC_PASSWORD", SRC_PASS)
        .arg(format!("docker://{}/team/app:1.0", source.host()))
        .arg(format!("{}/mirror/app:1.0", dest.host()))
        .timeout(Duration::from_secs(60))
        .output()
        .expect("run idpbuilder");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(4), "{err}");
    assert!(
        err.starts_with(&format!(
            "error: the TLS certificate of the source registry {} is not trusted",
            source.host()
        )),
        "{err}"
    );
    assert!(err.contains("hint: pass --src-ca-file"), "{err}");
}

#[test]
fn a_source_tag_or_digest_that_does_not_exist_exits_2_naming_the_image() {
    let (source, dest) = (basic_source(), plain_registry());
    seed_app(&source, &[1000]);
    let absent = sha256(b"not an image");
    for (from, shown) in [
        (
            "team/app:nope".to_string(),
            format!("{}/team/app:nope", source.host()),
        ),
        (
            format!("team/app@{absent}"),
            format!("{}/team/app@{absent}", source.host()),
        ),
        (
            "team/nothing:1.0".to_string(),
            format!("{}/team/nothing:1.0", source.host()),
        ),
    ] {
        let output = copy(&source, &from, &dest, "mirror/app:1.0", &[]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{from}: {err}");
        assert!(
            err.starts_with(&format!(
                "error: source image {shown} does not exist (404 Not Found)"
            )),
            "{from}: {err}"
        );
        assert!(
            err.contains("hint: check the repository and the tag or digest"),
            "{err}"
        );
    }
    assert!(dest.tags("mirror/app").is_empty());
}

#[test]
fn a_wrong_source_password_exits_3_with_basic_and_with_bearer_auth() {
    let bearer = Registry::start(
        RegistryOptions::default()
            .tls(Tls::CaSigned)
            .auth(Auth::token(SRC_USER, SRC_PASS)),
    );
    let basic = basic_source();
    let dest = plain_registry();
    for source in [&basic, &bearer] {
        seed_app(source, &[1000]);
        let output = copy_app_cmd(source, &source.host(), &dest)
            .env("IDPBUILDER_SRC_PASSWORD", "wrong-password")
            .output()
            .expect("run idpbuilder");
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(3), "{err}");
        assert!(
            err.starts_with(&format!(
                "error: source registry refused the credentials for {}/team/app",
                source.host()
            )),
            "{err}"
        );
        assert!(
            err.contains("hint: check the source's user name and password (-l debug names where they came from: --src-creds, IDPBUILDER_SRC_USERNAME/PASSWORD,"),
            "the credentials given are the ones to check: {err}"
        );
        assert!(!err.contains("wrong-password"));
    }
    assert!(dest.tags("mirror/app").is_empty());
}

/// A registry that serves `manifest` for `reference` (with `echoed` as its
/// `Docker-Content-Digest` when given) and each of `blobs` (digest, bytes) at its digest.
async fn fake_source(
    reference: &str,
    manifest: &[u8],
    echoed: Option<&str>,
    blobs: &[(String, Vec<u8>)],
) -> MockServer {
    let server = open_registry().await;
    let mut answer = ResponseTemplate::new(200)
        .insert_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .set_body_bytes(manifest.to_vec());
    if let Some(echoed) = echoed {
        answer = answer.insert_header("Docker-Content-Digest", echoed);
    }
    Mock::given(method("GET"))
        .and(path(format!("/v2/team/app/manifests/{reference}")))
        .respond_with(answer)
        .mount(&server)
        .await;
    for (digest, bytes) in blobs {
        Mock::given(method("GET"))
            .and(path(format!("/v2/team/app/blobs/{digest}")))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(bytes.clone()))
            .mount(&server)
            .await;
    }
    server
}

/// A small image: config, one layer of `layer` bytes, and its manifest.
fn small_image(layer: &[u8]) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(layer), "size": layer.len()}],
    })
    .to_string()
    .into_bytes();
    (
        manifest,
        vec![
            (sha256(config), config.to_vec()),
            (sha256(layer), layer.to_vec()),
        ],
    )
}

/// Copies `docker://HOST/team/app<reference>` over plain HTTP into `dest_host/mirror/app:1.0`.
async fn copy_from_fake(host: String, reference: String, dest_host: String) -> Output {
    tokio::task::spawn_blocking(move || {
        idpbuilder()
            .args(["push", "--src-plain-http", "--plain-http", "--retries", "2"])
            .arg(format!("docker://{host}/team/app{reference}"))
            .arg(format!("{dest_host}/mirror/app:1.0"))
            .timeout(Duration::from_secs(60))
            .output()
            .expect("run idpbuilder")
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_manifest_that_does_not_match_its_digest_exits_2() {
    let (manifest, _) = small_image(b"layer");
    let asked = sha256(b"the manifest someone meant");
    let by_digest = fake_source(&asked, &manifest, None, &[]).await;
    let output = copy_from_fake(
        by_digest.address().to_string(),
        format!("@{asked}"),
        "127.0.0.1:9".into(),
    )
    .await;
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("does not match its digest"), "{err}");
    assert!(
        err.contains(&format!("not to {asked} (the digest asked for)")),
        "{err}"
    );

    let echoed = sha256(b"what the registry claims");
    let by_tag = fake_source("1.0", &manifest, Some(&echoed), &[]).await;
    let output = copy_from_fake(
        by_tag.address().to_string(),
        ":1.0".into(),
        "127.0.0.1:9".into(),
    )
    .await;
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("not to {echoed} (its Docker-Content-Digest)")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_blob_whose_bytes_do_not_match_exits_2_and_tags_nothing() {
    let layer = vec![7u8; 50_000];
    let (manifest, mut blobs) = small_image(&layer);
    blobs[1].1 = vec![8u8; 50_000];
    let source = fake_source("1.0", &manifest, None, &blobs).await;
    let dest = tokio::task::spawn_blocking(plain_registry)
        .await
        .expect("registry");
    let output = copy_from_fake(source.address().to_string(), ":1.0".into(), dest.host()).await;
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "error: blob {} of the image does not match its digest",
            blobs[1].0
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "hint: the image is corrupt at {}/team/app",
            source.address()
        )),
        "{err}"
    );
    let dest = tokio::task::spawn_blocking(move || {
        let tags = dest.tags("mirror/app");
        let layer_there = dest.blob_exists("mirror/app", &sha256(&layer));
        (tags, layer_there)
    })
    .await
    .expect("join");
    assert_eq!(dest, (Vec::<String>::new(), false), "no tag, no wrong blob");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blob_redirected_to_another_host_is_fetched_without_the_source_credentials() {
    let layer = vec![3u8; 20_000];
    let (manifest, blobs) = small_image(&layer);
    let storage = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/bucket/layer"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(layer.clone()))
        .mount(&storage)
        .await;
    let source = MockServer::start().await;
    // Without Authorization: the Basic challenge; with it, the image.
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401).insert_header("WWW-Authenticate", r#"Basic realm="r""#),
        )
        .with_priority(10)
        .mount(&source)
        .await;
    let authed = |p: String| {
        Mock::given(method("GET"))
            .and(header_exists("authorization"))
            .and(path(p))
    };
    authed("/v2/".into())
        .respond_with(ResponseTemplate::new(200))
        .mount(&source)
        .await;
    authed("/v2/team/app/manifests/1.0".into())
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .set_body_bytes(manifest.clone()),
        )
        .mount(&source)
        .await;
    authed(format!("/v2/team/app/blobs/{}", blobs[0].0))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(blobs[0].1.clone()))
        .mount(&source)
        .await;
    authed(format!("/v2/team/app/blobs/{}", blobs[1].0))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("Location", format!("{}/bucket/layer", storage.uri())),
        )
        .mount(&source)
        .await;
    let dest = tokio::task::spawn_blocking(plain_registry)
        .await
        .expect("registry");
    let (host, dest_host) = (source.address().to_string(), dest.host());
    let output = tokio::task::spawn_blocking(move || {
        idpbuilder()
            .args(["push", "--src-plain-http", "--plain-http"])
            .env("IDPBUILDER_SRC_USERNAME", SRC_USER)
            .env("IDPBUILDER_SRC_PASSWORD", SRC_PASS)
            .arg(format!("docker://{host}/team/app:1.0"))
            .arg(format!("{dest_host}/mirror/app:1.0"))
            .timeout(Duration::from_secs(60))
            .output()
            .expect("run idpbuilder")
    })
    .await
    .expect("join");
    assert!(output.status.success(), "{}", stderr(&output));
    let received = storage.received_requests().await.unwrap_or_default();
    assert!(!received.is_empty(), "the layer came from the storage host");
    for request in &received {
        assert!(
            !request.headers.contains_key("authorization"),
            "credentials went to the storage host"
        );
    }
    let sent_to_source = source.received_requests().await.unwrap_or_default();
    assert!(
        sent_to_source
            .iter()
            .any(|r| r.headers.contains_key("authorization"))
    );
    drop(dest);
}
