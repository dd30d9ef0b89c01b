//! Local files the tool must not trust (security review, issue 9), end to end against a real
//! registry:
//!
//! - a `.tar.gz` is read where it lies, never decompressed to disk: the push works with no
//!   usable `TMPDIR`, Ctrl-C leaves `TMPDIR` as it was, and a gzip bomb fills neither disk nor
//!   memory;
//! - a layout blob that is a link leading outside its layout is refused when the image is
//!   opened, before any request;
//! - a classic docker archive's layers are uploaded under their config's diff IDs, which the
//!   upload checks: a wrong one stops the push (exit 2) before any tag;
//! - a blob file cut short while it uploads is an input error naming the file (exit 2).

use crate::support;

use support::skopeo::TestRegistry;

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;
use support::child::{measured, output_within};
use support::fault_proxy::{Fault, FaultProxy, Rule};
use support::fixtures::{self, FixtureImage, ImageSpec};
use support::raw_image::{noise, raw_layout, sha256};
use support::registry::{Registry, RegistryOptions};

const UPLOADS: &str = "/blobs/uploads/";

/// The binary, cut off from this machine's credentials, kubeconfig and colour, with `TMPDIR`
/// set to `tmpdir`.
fn idpbuilder(tmpdir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_idpbuilder"));
    cmd.env_remove("IDPBUILDER_REGISTRY_USERNAME")
        .env_remove("IDPBUILDER_REGISTRY_PASSWORD")
        .env_remove("DOCKER_CONFIG")
        .env("HOME", "/nonexistent/home")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("NO_COLOR", "1")
        .env("TMPDIR", tmpdir)
        .stdin(Stdio::null());
    cmd
}

/// `idpbuilder push --plain-http IMAGE HOST/REPO_TAG`, run to its end (at most 2 minutes).
fn push(host: &str, tmpdir: &Path, image: &Path, repo_tag: &str) -> Output {
    let mut cmd = idpbuilder(tmpdir);
    cmd.args(["push", "--plain-http"])
        .arg(image)
        .arg(format!("{host}/{repo_tag}"));
    output_within(&mut cmd, Duration::from_secs(120))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The `error:` lines printed.
fn error_lines(output: &Output) -> Vec<String> {
    stderr(output)
        .lines()
        .filter(|l| l.starts_with("error:"))
        .map(str::to_string)
        .collect()
}

/// What is in `dir`, by name.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read TMPDIR")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The registry holds `expected` under `repo_tag`, with every blob.
fn assert_pushed(registry: &Registry, output: &Output, repo_tag: &str, expected: &FixtureImage) {
    assert!(output.status.success(), "{}", stderr(output));
    let (_, digest) = registry.skopeo_inspect_raw(repo_tag);
    assert_eq!(digest, expected.manifest_digest, "the source's digest");
    let repo = repo_tag.split(':').next().unwrap_or_default();
    for blob in &expected.blob_digests {
        assert!(registry.blob_exists(repo, blob), "{repo} holds {blob}");
    }
}

fn assert_no_tag(registry: &Registry, repo: &str) {
    assert!(registry.tags(repo).is_empty(), "{repo} got no tag");
}

#[test]
fn a_tar_gz_is_pushed_without_a_usable_tmpdir() {
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    // A regular file: nothing can be created under it, not even by root.
    let tmpdir = work.path().join("not-a-directory");
    std::fs::write(&tmpdir, b"TMPDIR is a file").expect("write file");

    let oci = work.path().join("app-oci.tar.gz");
    let image = fixtures::oci_archive(&oci, &ImageSpec::new("1.0", &[300_000, 5_000]).seed(11));
    let output = push(&registry.host(), &tmpdir, &oci, "team/ocigz:1.0");
    assert_pushed(&registry, &output, "team/ocigz:1.0", &image);

    let docker = work.path().join("classic.tar.gz");
    let image = fixtures::classic_docker_archive(
        &docker,
        &["app:1.0"],
        &ImageSpec::new("x", &[200_000, 7_000]).seed(12),
    );
    let output = push(&registry.host(), &tmpdir, &docker, "team/classicgz:1.0");
    assert_pushed(&registry, &output, "team/classicgz:1.0", &image);
}

/// Sends SIGINT to `child` and checks it stops within 5 s with exit 130, leaving `tmpdir`
/// holding `before`.
fn interrupt(mut child: std::process::Child, tmpdir: &Path, before: &[String], when: &str) {
    let status = Command::new("kill")
        .args(["-INT".to_string(), child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -INT");
    let sent = Instant::now();
    let exited = loop {
        if let Some(status) = child.try_wait().expect("wait for idpbuilder") {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("{when}: idpbuilder still running 5 s after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = child.wait_with_output().expect("collect output");
    assert_eq!(exited.code(), Some(130), "{when}: {}", stderr(&output));
    assert_eq!(listing(tmpdir), before, "{when}: TMPDIR is as it was");
}

#[test]
fn ctrl_c_during_a_tar_gz_push_leaves_tmpdir_as_it_was() {
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let tmpdir = work.path().join("tmp");
    std::fs::create_dir_all(&tmpdir).expect("create TMPDIR");
    std::fs::write(tmpdir.join("already-here"), b"untouched").expect("write file");
    let before = listing(&tmpdir);

    // While the archive is being read, before any upload: 2 GiB take seconds to go through.
    let big = work.path().join("big.tar.gz");
    gzip_bomb(&big, 2);
    let child = idpbuilder(&tmpdir)
        .args(["push", "--plain-http"])
        .arg(&big)
        .arg(format!("{}/team/interrupted:1.0", registry.host()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start idpbuilder");
    std::thread::sleep(Duration::from_millis(700));
    interrupt(child, &tmpdir, &before, "while opening the archive");

    // While a layer uploads.
    let archive = work.path().join("app-oci.tar.gz");
    fixtures::oci_archive(&archive, &ImageSpec::new("1.0", &[4_000_000]).seed(13));
    let rule = Rule::on("PATCH", UPLOADS)
        .body_over(100_000)
        .always()
        .fault(Fault::Throttle(256_000));
    let proxy = FaultProxy::start(&registry.host(), vec![rule]);
    let child = idpbuilder(&tmpdir)
        .args(["push", "--plain-http"])
        .arg(&archive)
        .arg(format!("{}/team/interrupted:1.0", proxy.host()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start idpbuilder");
    proxy.wait_for(Duration::from_secs(60), "the layer upload", |p| {
        p.body_bytes_forwarded() > 100_000
    });
    interrupt(child, &tmpdir, &before, "while a layer uploads");
    assert_no_tag(&registry, "team/interrupted");
}

/// Writes a `.tar.gz` whose one entry holds `gib` GiB of zeros, as concatenated gzip members
/// (which every gunzip reads as one stream): about 1 MiB on disk per GiB, made in no time.
fn gzip_bomb(path: &Path, gib: u64) {
    let gz = |bytes: &[u8]| {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(bytes).expect("gzip");
        encoder.finish().expect("finish gzip")
    };
    let size = gib << 30;
    let mut header = tar::Header::new_ustar();
    header.set_path("zeros").expect("entry name");
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    let zeros = gz(&vec![0u8; 1 << 20]);
    let mut out = std::io::BufWriter::new(File::create(path).expect("create bomb"));
    out.write_all(&gz(header.as_bytes())).expect("write bomb");
    for _ in 0..(size >> 20) {
        out.write_all(&zeros).expect("write bomb");
    }
    out.write_all(&gz(&[0u8; 1024])).expect("write bomb");
    out.flush().expect("flush bomb");
}

#[test]
fn a_gzip_bomb_fills_neither_tmpdir_nor_memory() {
    let work = tempfile::tempdir().expect("temp dir");
    let tmpdir = work.path().join("tmp");
    std::fs::create_dir_all(&tmpdir).expect("create TMPDIR");
    let bomb = work.path().join("bomb.tar.gz");
    gzip_bomb(&bomb, 1);
    assert!(std::fs::metadata(&bomb).expect("bomb").len() < 8 << 20);

    let run = measured(
        idpbuilder(&tmpdir)
            .args(["push", "--plain-http"])
            .arg(&bomb)
            .arg("127.0.0.1:9/team/bomb:1.0"),
        Duration::from_secs(300),
    );
    let err = run.stderr();
    assert_eq!(run.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("bomb.tar.gz is neither a docker archive"),
        "{err}"
    );
    assert_eq!(listing(&tmpdir), Vec::<String>::new(), "nothing in TMPDIR");
    // Blocks written count when pages are dirtied, so a temporary copy deleted at the end
    // still shows. The bomb holds 1 GiB; a few MiB are allowed for whatever else the process
    // writes (under `make coverage`, its ~4 MiB coverage profile).
    let (peak_kib, written_kib) = (run.peak_kib, run.written_kib);
    eprintln!("a 1 GiB gzip bomb: peak RSS {peak_kib} KiB, {written_kib} KiB written");
    assert!(written_kib < 32 * 1024, "{written_kib} KiB written to disk");
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB");
}

#[test]
fn a_layout_blob_linked_outside_the_layout_is_refused_before_any_request() {
    let registry = Registry::start(RegistryOptions::default());
    let proxy = FaultProxy::start(&registry.host(), Vec::new());
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("layout");
    let image = raw_layout(&layout, &[50_000], 21);
    // The manifest names a layer digest; the file under that name is a link to something else
    // outside the layout, of the same size.
    let (layer, size) = image.blobs[1].clone();
    let outside = work.path().join("secret");
    std::fs::write(&outside, noise(99, size as usize)).expect("write secret");
    let blob = fixtures::blob_path(&layout, &layer);
    std::fs::remove_file(&blob).expect("remove layer");
    std::os::unix::fs::symlink(&outside, &blob).expect("link layer");

    let output = push(&proxy.host(), work.path(), &layout, "team/linked:1.0");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let errors = error_lines(&output);
    assert_eq!(errors.len(), 1, "{}", stderr(&output));
    let hex = layer.trim_start_matches("sha256:");
    assert!(
        errors[0].contains(&format!("blobs/sha256/{hex}"))
            && errors[0].contains(&layout.display().to_string())
            && errors[0].contains("outside the layout"),
        "{}",
        errors[0]
    );
    assert!(proxy.seen().is_empty(), "requests: {:?}", proxy.seen());
    assert_no_tag(&registry, "team/linked");
}

/// Writes a classic docker archive (`manifest.json`, `<hex>.json`, `<dir>/layer.tar`) whose
/// config gives `diff_ids` for `layers` (uncompressed tars). Returns the path.
fn classic_with_diff_ids(path: &Path, layers: &[Vec<u8>], diff_ids: &[String]) -> PathBuf {
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
    .to_string();
    let config_name = format!(
        "{}.json",
        sha256(config.as_bytes()).trim_start_matches("sha256:")
    );
    let names: Vec<String> = (0..layers.len())
        .map(|i| format!("l{i}/layer.tar"))
        .collect();
    let manifest =
        json!([{"Config": config_name, "RepoTags": ["app:1.0"], "Layers": names}]).to_string();
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, name, bytes)
            .expect("append entry");
    };
    add(&config_name, config.as_bytes());
    for (name, layer) in names.iter().zip(layers) {
        add(name, layer);
    }
    add("manifest.json", manifest.as_bytes());
    std::fs::write(path, builder.into_inner().expect("finish tar")).expect("write archive");
    path.to_path_buf()
}

/// An uncompressed layer: a tar holding `len` bytes of noise.
fn layer_tar(seed: u64, len: usize) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(len as u64);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "file.bin", noise(seed, len).as_slice())
        .expect("append file");
    builder.into_inner().expect("finish layer")
}

#[test]
fn a_classic_archive_with_a_wrong_diff_id_exits_2_naming_the_blob_and_tags_nothing() {
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let layers = [layer_tar(31, 40_000), layer_tar(32, 60_000)];
    let wrong = sha256(b"not the second layer");
    let archive = classic_with_diff_ids(
        &work.path().join("wrong.tar"),
        &layers,
        &[sha256(&layers[0]), wrong.clone()],
    );
    let output = push(
        &registry.host(),
        work.path(),
        &archive,
        "team/wrongdiff:1.0",
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let errors = error_lines(&output);
    assert_eq!(errors.len(), 1, "{}", stderr(&output));
    assert!(
        errors[0].contains(&format!("blob {wrong}"))
            && errors[0].contains("does not match its digest"),
        "{}",
        errors[0]
    );
    assert_no_tag(&registry, "team/wrongdiff");
    assert!(!registry.blob_exists("team/wrongdiff", &wrong));

    // The same archive with the right diff IDs pushes.
    let right = classic_with_diff_ids(
        &work.path().join("right.tar"),
        &layers,
        &[sha256(&layers[0]), sha256(&layers[1])],
    );
    let output = push(&registry.host(), work.path(), &right, "team/rightdiff:1.0");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(registry.blob_exists("team/rightdiff", &sha256(&layers[1])));
}

#[test]
fn a_layout_blob_cut_short_while_it_uploads_exits_2_naming_the_file() {
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("layout");
    let image = raw_layout(&layout, &[8_000_000], 41);
    let (layer, _) = image.blobs[1].clone();
    let blob = fixtures::blob_path(&layout, &layer);
    let rule = Rule::on("PATCH", UPLOADS)
        .body_over(100_000)
        .always()
        .fault(Fault::Throttle(512_000));
    let proxy = FaultProxy::start(&registry.host(), vec![rule]);
    let child = idpbuilder(work.path())
        .args(["push", "--plain-http"])
        .arg(&layout)
        .arg(format!("{}/team/truncated:1.0", proxy.host()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start idpbuilder");
    proxy.wait_for(Duration::from_secs(60), "the layer upload", |p| {
        p.body_bytes_forwarded() > 200_000
    });
    File::options()
        .write(true)
        .open(&blob)
        .and_then(|f| f.set_len(1_000_000))
        .expect("truncate the layer");
    let output = wait_output(child, Duration::from_secs(60));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let errors = error_lines(&output);
    assert_eq!(errors.len(), 1, "{}", stderr(&output));
    assert!(
        errors[0].contains(&blob.display().to_string()),
        "{}",
        errors[0]
    );
    assert_no_tag(&registry, "team/truncated");
    assert!(!registry.manifest_exists("team/truncated", &image.manifest_digest));
}

/// Collects a spawned child's output, killing it after `limit`.
fn wait_output(mut child: std::process::Child, limit: Duration) -> Output {
    let started = Instant::now();
    while child.try_wait().expect("wait for idpbuilder").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().expect("collect output");
            panic!("still running after {limit:?}: {}", stderr(&output));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect output")
}
