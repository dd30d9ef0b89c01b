//! Fault injection: `idpbuilder push` through a [`FaultProxy`] in front of a real distribution
//! registry. Transient faults below the retry budget are survived with every digest intact;
//! persistent ones fail with exit 1, one `error:` line and no tag; a proxy's early 413 shrinks
//! the chunks; a reset body never leaves a wrong blob; Ctrl-C and SIGTERM stop at once.
//!
//! The tool's idle timeout is lowered to [`IDLE_MS`] through `IDPBUILDER_TEST_READ_TIMEOUT_MS`
//! so that "the registry stops answering" costs a second, not two minutes.

use crate::support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use support::child::output_within;
use support::fault_proxy::{Fault, FaultProxy, Rule};
use support::launch::idpbuilder_process;
use support::raw_image::{RawImage, raw_layout};
use support::registry::{Registry, RegistryOptions};
use support::skopeo::TestRegistry as _;
use support::stderr;

/// The idle timeout the tool runs with here, in milliseconds.
const IDLE_MS: u64 = 1500;
/// Longer than [`IDLE_MS`]: a response held back this long is one the tool gave up on.
const PAST_TIMEOUT: Duration = Duration::from_millis(3000);

const UPLOADS: &str = "/blobs/uploads/";

/// The isolated binary (`support::launch`) with the idle timeout lowered to [`IDLE_MS`].
fn idpbuilder() -> Command {
    let mut cmd = idpbuilder_process();
    cmd.env("IDPBUILDER_TEST_READ_TIMEOUT_MS", IDLE_MS.to_string());
    cmd
}

/// `idpbuilder push --plain-http [extra] IMAGE PROXY/REPO_TAG`.
fn push(proxy: &FaultProxy, image: &RawImage, repo_tag: &str, extra: &[&str]) -> Output {
    push_idle(proxy, image, repo_tag, extra, IDLE_MS)
}

fn push_idle(
    proxy: &FaultProxy,
    image: &RawImage,
    repo_tag: &str,
    extra: &[&str],
    idle_ms: u64,
) -> Output {
    let mut cmd = idpbuilder();
    cmd.env("IDPBUILDER_TEST_READ_TIMEOUT_MS", idle_ms.to_string())
        .args(["push", "--plain-http"])
        .args(extra)
        .arg(image.path())
        .arg(format!("{}/{repo_tag}", proxy.host()));
    output_within(&mut cmd, Duration::from_secs(90))
}

fn lines_starting(output: &Output, prefix: &str) -> usize {
    stderr(output)
        .lines()
        .filter(|l| l.starts_with(prefix))
        .count()
}

/// The registry holds the image under `repo:1.0` exactly as the source has it.
fn assert_pushed(registry: &Registry, repo: &str, image: &RawImage) {
    let (manifest, digest) = registry.skopeo_inspect_raw(&format!("{repo}:1.0"));
    assert_eq!(
        digest, image.manifest_digest,
        "skopeo sees the source's digest"
    );
    assert_eq!(manifest, image.manifest, "the manifest, byte for byte");
    for blob in image.blob_digests() {
        assert!(registry.blob_exists(repo, &blob), "{repo} holds {blob}");
    }
    assert_stored_blobs_intact(registry);
}

/// Every blob in the registry's storage hashes to its name: no partial or wrong blob was ever
/// committed, whatever the faults did.
fn assert_stored_blobs_intact(registry: &Registry) {
    // The harness keeps storage in `storage/` of the registry's own temp dir.
    let root = registry
        .dir()
        .join("storage/docker/registry/v2/blobs/sha256");
    let Ok(prefixes) = std::fs::read_dir(&root) else {
        return;
    };
    for prefix in prefixes.flatten() {
        for blob in std::fs::read_dir(prefix.path())
            .expect("read blob dir")
            .flatten()
        {
            let data = blob.path().join("data");
            let bytes = std::fs::read(&data).expect("read stored blob");
            let name = blob.file_name().to_string_lossy().into_owned();
            assert_eq!(
                hex::encode(Sha256::digest(&bytes)),
                name,
                "stored blob {} holds other bytes",
                data.display()
            );
        }
    }
}

/// Upload sessions of `repo` still holding data. Distribution 2.8 leaves a cancelled
/// session's directory behind with only its hash state, so [`Registry::uploads_in_progress`]
/// counts those too; a session with `data` is one that was really left open.
fn sessions_with_data(registry: &Registry, repo: &str) -> usize {
    let dir = registry
        .dir()
        .join("storage/docker/registry/v2/repositories")
        .join(repo)
        .join("_uploads");
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("data").exists())
        .count()
}

/// The tool cancelled (DELETE) every upload session that failed. Distribution refuses to
/// cancel a session whose body was cut part-way (its `_state` no longer matches the data), so
/// those keep their partial data until the registry purges old uploads; any other failed
/// session must be gone.
fn assert_sessions_cancelled(registry: &Registry, repo: &str, proxy: &FaultProxy, what: &str) {
    let seen = proxy.seen();
    let cut = seen
        .iter()
        .filter(|s| matches!(s.fault, Some(Fault::ResetAfter(_))) && s.method != "POST")
        .count();
    let cancels = seen.iter().filter(|s| s.method == "DELETE").count();
    let left = sessions_with_data(registry, repo);
    assert!(left <= cut, "{what}: {left} upload sessions left open");
    let failed_uploads = seen
        .iter()
        .filter(|s| s.fault.is_some() && s.path.contains(UPLOADS) && s.method != "POST")
        .count();
    assert_eq!(
        cancels, failed_uploads,
        "{what}: each failed session was cancelled"
    );
}

fn assert_no_tag(registry: &Registry, repo: &str, image: &RawImage) {
    assert!(registry.tags(repo).is_empty(), "{repo} got no tag");
    assert!(!registry.manifest_exists(repo, &image.manifest_digest));
}

fn image(dir: &Path, sizes: &[usize], seed: u64) -> RawImage {
    raw_layout(&dir.join(format!("image-{seed}")), sizes, seed)
}

#[test]
fn each_transient_fault_once_is_retried_and_the_digests_match() {
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let small = image(work.path(), &[1_500_000, 300_000], 1);
    let chunked = image(work.path(), &[2_600_000], 2);
    let cases: Vec<(&str, Rule, &RawImage, &[&str])> = vec![
        (
            "500 to starting an upload",
            Rule::on("POST", UPLOADS).fault(Fault::Status(500)),
            &small,
            &[],
        ),
        (
            "502 to a blob PUT",
            Rule::on("PUT", UPLOADS).fault(Fault::Status(502)),
            &small,
            &[],
        ),
        (
            "503 to a blob check",
            Rule::on("HEAD", "/blobs/").fault(Fault::Status(503)),
            &small,
            &[],
        ),
        (
            "429 with Retry-After to the manifest",
            Rule::on("PUT", "/manifests/").fault(Fault::TooManyRequests),
            &small,
            &[],
        ),
        (
            "reset inside a blob body",
            Rule::on("PATCH", UPLOADS)
                .body_over(1_000_000)
                .fault(Fault::ResetAfter(64 * 1024)),
            &small,
            &[],
        ),
        (
            "reset inside the second PATCH chunk",
            Rule::on("PATCH", UPLOADS)
                .after(1)
                .fault(Fault::ResetAfter(100_000)),
            &chunked,
            &["--chunk-size", "1MiB"],
        ),
        (
            "no answer to the version check",
            Rule::on("GET", "/v2/$").fault(Fault::Delay(PAST_TIMEOUT)),
            &small,
            &[],
        ),
        (
            "no answer to the manifest",
            Rule::on("PUT", "/manifests/").fault(Fault::Delay(PAST_TIMEOUT)),
            &small,
            &[],
        ),
        (
            "truncated answer to a blob commit",
            Rule::on("PUT", UPLOADS).fault(Fault::TruncateResponse),
            &small,
            &[],
        ),
    ];
    for (i, (what, rule, image, extra)) in cases.into_iter().enumerate() {
        let proxy = FaultProxy::start(&registry.host(), vec![rule]);
        let repo = format!("faults/once-{i}");
        let output = push(&proxy, image, &format!("{repo}:1.0"), extra);
        assert!(
            output.status.success(),
            "{what}: {}\nregistry log:\n{}",
            stderr(&output),
            registry.log()
        );
        assert_eq!(proxy.faults_injected(), 1, "{what}: the fault happened");
        assert_pushed(&registry, &repo, image);
        assert_sessions_cancelled(&registry, &repo, &proxy, what);
        if what.starts_with("429") {
            let seen = proxy.seen();
            let refused = seen.iter().position(|s| s.fault.is_some());
            let again = refused.and_then(|i| seen.get(i + 1));
            let gap = again.map(|a| a.at - seen[refused.unwrap_or(0)].at);
            assert!(
                gap.is_some_and(|g| g >= Duration::from_millis(950)),
                "Retry-After: 1 was honoured ({gap:?})"
            );
        }
    }
}

#[test]
fn persistent_faults_exit_1_with_one_error_line_and_no_tag() {
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let image = image(work.path(), &[600_000, 2_000], 3);
    let cases = [
        (
            "503 to every blob PUT",
            Rule::on("PUT", UPLOADS).always().fault(Fault::Status(503)),
            "answered 503",
        ),
        (
            // Any method: a small blob's body goes in a POST or PUT where the registry takes it.
            "reset in every large blob body",
            Rule::on("*", UPLOADS)
                .body_over(100_000)
                .always()
                .fault(Fault::ResetAfter(10_000)),
            "connection",
        ),
        (
            "no answer to blob checks, ever",
            Rule::on("HEAD", "/blobs/")
                .always()
                .fault(Fault::Delay(PAST_TIMEOUT)),
            "did not answer in time",
        ),
        (
            "429 to every blob check",
            Rule::on("HEAD", "/blobs/")
                .always()
                .fault(Fault::TooManyRequests),
            "answered 429",
        ),
    ];
    for (i, (what, rule, message)) in cases.into_iter().enumerate() {
        let proxy = FaultProxy::start(&registry.host(), vec![rule]);
        let repo = format!("faults/persistent-{i}");
        let output = push(&proxy, &image, &format!("{repo}:1.0"), &["--retries", "2"]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{what}: {err}");
        assert_eq!(lines_starting(&output, "error:"), 1, "{what}: {err}");
        let line = err
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default();
        assert!(
            line.contains(&proxy.host()),
            "{what}: names the host: {line}"
        );
        assert!(line.contains(message), "{what}: {line}");
        assert!(
            proxy.faults_injected() >= 2,
            "{what}: retried before giving up"
        );
        assert!(output.stdout.is_empty(), "{what}: no result line");
        assert_no_tag(&registry, &repo, &image);
        assert_stored_blobs_intact(&registry);
    }
}

/// One push of a twelve-layer image with a fault on every third request: 5xx, 429, resets,
/// truncated and withheld answers, 20 in all. Each blob upload, blob check, manifest PUT and the
/// version check has its own budget of `--retries` attempts (a blob upload restarts in a new
/// session on each attempt), so faults spread like this are survived.
#[test]
fn twenty_faults_spread_over_one_push_are_all_survived() {
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let sizes = [
        2_000_000, 1_200_000, 900_000, 800_000, 600_000, 400_000, 250_000, 150_000, 40_000, 5_000,
        2_000, 700,
    ];
    let image = image(work.path(), &sizes, 4);
    let kinds = [
        Fault::Status(500),
        Fault::ResetAfter(32 * 1024),
        Fault::Status(502),
        Fault::TruncateResponse,
        Fault::Status(503),
        Fault::TooManyRequests,
        Fault::Delay(PAST_TIMEOUT),
    ];
    let rule = Rule::any().after(1).every(3).times(20).faults(&kinds);
    let proxy = FaultProxy::start(&registry.host(), vec![rule]);
    let started = Instant::now();
    let output = push(&proxy, &image, "faults/spread:1.0", &["--retries", "10"]);
    assert!(
        output.status.success(),
        "{}\nregistry log:\n{}",
        stderr(&output),
        registry.log()
    );
    assert_eq!(proxy.faults_injected(), 20, "all 20 faults were injected");
    assert_pushed(&registry, "faults/spread", &image);
    eprintln!(
        "20 faults over {} requests survived in {:.1}s",
        proxy.seen().len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_blob_reset_mid_body_never_leaves_a_wrong_or_partial_blob() {
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let size = 1_000_000;
    let image = image(work.path(), &[size], 5);
    let layer = image.blobs[1].1;
    // After the first byte, half-way, and one byte short of the end; in any method, since a
    // blob this small goes in a POST or PUT body where the registry takes it.
    let rule = Rule::on("*", UPLOADS).body_over(100_000).times(3).faults(&[
        Fault::ResetAfter(1),
        Fault::ResetAfter(layer / 2),
        Fault::ResetAfter(layer - 1),
    ]);
    let proxy = FaultProxy::start(&registry.host(), vec![rule]);
    let output = push(&proxy, &image, "faults/reset:1.0", &["--retries", "4"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(proxy.faults_injected(), 3);
    assert_pushed(&registry, "faults/reset", &image);
    assert_sessions_cancelled(&registry, "faults/reset", &proxy, "reset");
}

/// The idle timeout counts from the last progress, not from the start of the request. (The
/// socket buffers hold a few MB the tool cannot see draining, so the body is large and the
/// timeout 2 s here.)
#[test]
fn a_slow_but_steady_upload_outlives_the_idle_timeout() {
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let image = image(work.path(), &[16_000_000], 6);
    // About 4 s for the layer, twice the idle timeout, but never idle.
    let rule = Rule::on("PATCH", UPLOADS)
        .body_over(100_000)
        .fault(Fault::Throttle(4_000_000));
    let proxy = FaultProxy::start(&registry.host(), vec![rule]);
    let started = Instant::now();
    let output = push_idle(&proxy, &image, "faults/slow:1.0", &[], 2000);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        started.elapsed() > Duration::from_secs(3),
        "the upload was slow"
    );
    let puts = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "PUT" && s.path.contains(UPLOADS))
        .count();
    assert_eq!(puts, 2, "each blob went up once, nothing was retried");
    assert_pushed(&registry, "faults/slow", &image);
}

/// A registry that answers 500 to every upload (after reading the body, or at once and closing)
/// is a registry error, retried and then reported: it never shrinks the chunks and never reads
/// as a proxy's body cap. (A server that closes without its answer reaching us looks exactly
/// like a proxy's cut; that case is the early 413 test below.)
#[test]
fn a_500_to_the_upload_is_retried_never_taken_for_a_body_cap() {
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let image = image(work.path(), &[20_000_000, 1_000], 8);
    let faults = [
        Fault::Status(500),
        Fault::EarlyStatus {
            status: 500,
            linger: true,
        },
    ];
    for (i, fault) in faults.into_iter().enumerate() {
        let rule = Rule::on("PATCH", UPLOADS)
            .body_over(4 << 20)
            .always()
            .fault(fault.clone());
        let proxy = FaultProxy::start(&registry.host(), vec![rule]);
        let repo = format!("faults/answered-500-{i}");
        let output = push(&proxy, &image, &format!("{repo}:1.0"), &["--retries", "3"]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{fault:?}: {err}");
        assert!(!err.contains("dropped the connection"), "{fault:?}: {err}");
        assert!(!err.contains("uploading in chunks"), "{fault:?}: {err}");
        let bodies: Vec<Option<u64>> = proxy
            .seen()
            .iter()
            .filter(|s| s.method == "PATCH")
            .map(|s| s.content_length)
            .collect();
        assert!(
            bodies.iter().all(|len| *len != Some(20_000_000 / 2)),
            "{fault:?}: no smaller chunks were tried: {bodies:?}"
        );
        assert!(
            bodies
                .iter()
                .filter(|len| **len == Some(20_000_000))
                .count()
                >= 3,
            "{fault:?}: the whole blob was tried again: {bodies:?}"
        );
        assert_no_tag(&registry, &repo, &image);
    }
}

/// nginx answers 413 as soon as it sees a `Content-Length` over its limit. When it closes the
/// connection without reading the body, the tool may only see a failed write; it must still
/// treat the refusal as a body cap and shrink its chunks, with one warning.
#[test]
fn an_early_413_from_a_proxy_shrinks_the_chunks_even_when_the_write_fails() {
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let image = image(work.path(), &[20_000_000, 1_000], 7);
    for linger in [true, false] {
        let rule = Rule::on("*", UPLOADS)
            .body_over(4 << 20)
            .always()
            .fault(Fault::Early413 { linger });
        let proxy = FaultProxy::start(&registry.host(), vec![rule]);
        let repo = format!("faults/cap-{linger}");
        let output = push(&proxy, &image, &format!("{repo}:1.0"), &[]);
        let err = stderr(&output);
        assert!(output.status.success(), "linger {linger}: {err}");
        assert_eq!(
            lines_starting(&output, "warning:"),
            1,
            "linger {linger}: {err}"
        );
        let warning = err.lines().find(|l| l.starts_with("warning:"));
        assert!(
            warning.is_some_and(|w| w.contains("uploading in chunks of")),
            "{err}"
        );
        assert!(
            proxy
                .seen()
                .iter()
                .any(|s| s.method == "PATCH" && s.fault.is_none()),
            "the blob went up in chunks"
        );
        assert_pushed(&registry, &repo, &image);
    }
}

/// Starts a push of a 4 MB layer that the proxy forwards at 256 kB/s, waits until the body is
/// flowing, sends `signal`, and checks the tool is gone within a second with exit 130 and
/// nothing tagged.
fn interrupt_with(signal: &str) {
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let image = image(work.path(), &[4_000_000], 8);
    let rule = Rule::on("PATCH", UPLOADS)
        .body_over(100_000)
        .always()
        .fault(Fault::Throttle(256_000));
    let proxy = FaultProxy::start(&registry.host(), vec![rule]);
    let repo = format!("faults/{}", signal.to_ascii_lowercase());
    let mut child = idpbuilder()
        .args(["push", "--plain-http"])
        .arg(image.path())
        .arg(format!("{}/{repo}:1.0", proxy.host()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start idpbuilder");
    proxy.wait_for(Duration::from_secs(20), "the layer upload", |p| {
        p.body_bytes_forwarded() > 100_000
    });
    let sent = Instant::now();
    let status = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal}");
    let exited = loop {
        if let Some(status) = child.try_wait().expect("wait for idpbuilder") {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("idpbuilder still running 5 s after SIG{signal}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = sent.elapsed();
    eprintln!("SIG{signal}: exited {took:?} after the signal");
    let output = child.wait_with_output().expect("collect output");
    assert_eq!(exited.code(), Some(130), "{}", stderr(&output));
    assert!(took <= Duration::from_secs(1), "exited after {took:?}");
    assert!(
        stderr(&output).contains("error: interrupted"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("hint: run the same command again"),
        "{}",
        stderr(&output)
    );
    assert_no_tag(&registry, &repo, &image);
    assert!(
        !proxy.seen().iter().any(|s| s.path.contains("/manifests/")),
        "no manifest was sent"
    );
}

#[test]
fn ctrl_c_stops_a_push_at_once_with_exit_130_and_no_tag() {
    interrupt_with("INT");
}

#[test]
fn sigterm_stops_a_push_at_once_with_exit_130_and_no_tag() {
    interrupt_with("TERM");
}

/// A corrupt blob never sends more than one part: a blob of one part withholds its last bytes,
/// and a blob of several parts is checked before its first part goes.
#[test]
fn a_corrupt_blob_in_several_parts_sends_none_of_them() {
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let image = image(work.path(), &[3_000_000], 9);
    let layer = &image.blobs[1].0;
    let path = image
        .dir
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&path).expect("read layer");
    bytes[2_500_000] ^= 0xff;
    std::fs::write(&path, bytes).expect("corrupt layer");
    let proxy = FaultProxy::start(&registry.host(), vec![]);
    let output = push(
        &proxy,
        &image,
        "faults/corrupt:1.0",
        &["--chunk-size", "1MiB"],
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("does not match its digest"), "{err}");
    let patches = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "PATCH" && s.content_length.unwrap_or(0) > 1_000)
        .count();
    assert_eq!(patches, 0, "no part of the corrupt layer was sent: {err}");
    assert_no_tag(&registry, "faults/corrupt", &image);
}
