//! Issue 19: `idpbuilder pull`, against the real distribution registry (TLS with its own CA,
//! htpasswd), into every file destination; skopeo, the independent reader, reads what was
//! written and agrees on every digest.

use crate::support;

mod cluster;
mod engine;
mod faults;
mod gitea;
mod spool;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use support::fixtures::{self, FixtureImage, ImageSpec};
use support::push::result_line;
use support::registry::{Auth, Registry, RegistryOptions, Tls};
use support::skopeo::TestRegistry;
use support::{idpbuilder, sha256, stderr, stdout};

const USER: &str = "giteaadmin";
const PASS: &str = "pull-Pa55-wd-4410-qa";

/// TLS with its own CA, htpasswd Basic auth: what idpbuilder's Gitea looks like to a client.
fn registry() -> Registry {
    Registry::start(
        RegistryOptions::default()
            .tls(Tls::CaSigned)
            .auth(Auth::basic(USER, PASS)),
    )
}

/// A two-layer image in `registry` as `team/app:1.0`, put there by skopeo.
fn seed_app(registry: &Registry, seed: u64) -> FixtureImage {
    let work = tempfile::tempdir().expect("temp dir");
    let spec = ImageSpec::new("1.0", &[40_000, 300_000]).seed(seed);
    let layout = work.path().join("layout");
    let image = fixtures::oci_layout(&layout, &spec);
    registry.skopeo_copy_from_oci(&format!("oci:{}:1.0", layout.display()), "team/app:1.0");
    image
}

/// The two-platform fixture (linux/amd64, linux/arm64) in `registry` as `team/multi:1.0`.
fn seed_index(registry: &Registry) -> FixtureImage {
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("multi");
    let image = fixtures::multi_platform_layout(&layout, &[("linux", "amd64"), ("linux", "arm64")]);
    registry.skopeo_copy_from_oci(&format!("oci:{}:multi", layout.display()), "team/multi:1.0");
    image
}

/// `idpbuilder pull --ca-file CA -u USER --password-stdin HOST/repo_tag DESTINATION`.
fn pull(registry: &Registry, repo_tag: &str, destination: &str, extra: &[&str]) -> Output {
    pull_cmd(registry, repo_tag, destination)
        .args(extra)
        .output()
        .expect("run idpbuilder")
}

fn pull_cmd(registry: &Registry, repo_tag: &str, destination: &str) -> assert_cmd::Command {
    let mut cmd = idpbuilder();
    cmd.arg("pull")
        .args(registry.tls_args())
        .args(["--username", USER, "--password-stdin"])
        .write_stdin(format!("{PASS}\n"))
        .arg(format!("{}/{repo_tag}", registry.host()))
        .arg(destination);
    cmd
}

fn assert_ok(output: &Output, registry: &Registry) {
    assert!(
        output.status.success(),
        "pull failed: {}\nregistry log:\n{}",
        stderr(output),
        registry.log()
    );
}

/// `skopeo inspect --raw REF` of a local file or layout: the bytes and their digest.
fn skopeo_raw(reference: &str) -> (Vec<u8>, String) {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", reference])
        .output()
        .expect("cannot run skopeo");
    assert!(
        out.status.success(),
        "skopeo inspect --raw {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = sha256(&out.stdout);
    (out.stdout, digest)
}

/// `skopeo inspect --config --raw REF`'s digest.
fn skopeo_config_digest(reference: &str) -> String {
    let out = Command::new("skopeo")
        .args(["inspect", "--config", "--raw", reference])
        .output()
        .expect("cannot run skopeo");
    assert!(
        out.status.success(),
        "skopeo inspect --config {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    sha256(&out.stdout)
}

/// Every blob file of a layout holds bytes that hash to its name.
fn assert_blobs_hash_to_their_names(dir: &Path) {
    for entry in std::fs::read_dir(dir.join("blobs/sha256")).expect("blobs") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert!(!name.starts_with('.'), "a temporary file was left: {name}");
        let bytes = std::fs::read(&path).expect("blob");
        assert_eq!(sha256(&bytes), format!("sha256:{name}"));
    }
}

fn json_of(output: &Output) -> Value {
    serde_json::from_str(stdout(output).trim()).expect("-o json prints one object")
}

/// The config digest of the manifest `raw`.
fn config_of(raw: &[u8]) -> String {
    let manifest: Value = serde_json::from_slice(raw).expect("manifest");
    manifest["config"]["digest"]
        .as_str()
        .expect("config")
        .to_string()
}

#[test]
fn an_image_pulled_into_a_new_layout_has_the_registrys_digests() {
    let registry = registry();
    let image = seed_app(&registry, 7);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("layout");
    let output = pull(
        &registry,
        "team/app:1.0",
        &format!("oci:{}:app", dir.display()),
        &[],
    );
    assert_ok(&output, &registry);
    assert_eq!(
        result_line(&output),
        format!("oci:{}:app@{}", dir.display(), image.manifest_digest)
    );
    let (_, digest) = skopeo_raw(&format!("oci:{}:app", dir.display()));
    assert_eq!(
        digest, image.manifest_digest,
        "skopeo reads the pulled manifest"
    );
    for blob in &image.blob_digests {
        let hex = blob.strip_prefix("sha256:").unwrap();
        assert!(dir.join("blobs/sha256").join(hex).is_file(), "{blob}");
    }
    assert_blobs_hash_to_their_names(&dir);
    let left: Vec<_> = std::fs::read_dir(work.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "only the layout: {left:?}");
}

#[test]
fn a_second_pull_into_the_same_layout_downloads_nothing() {
    let registry = registry();
    let image = seed_app(&registry, 8);
    let work = tempfile::tempdir().unwrap();
    let destination = format!("oci:{}", work.path().join("layout").display());
    assert_ok(
        &pull(&registry, "team/app:1.0", &destination, &[]),
        &registry,
    );
    let again = pull(&registry, "team/app:1.0", &destination, &["-o", "json"]);
    assert_ok(&again, &registry);
    let json = json_of(&again);
    assert_eq!(json["blobs_downloaded"], 0, "{json}");
    assert_eq!(json["blobs_skipped"], image.blob_digests.len(), "{json}");
    assert_eq!(json["bytes_downloaded"], 0, "{json}");
    assert_eq!(json["digest"], image.manifest_digest.as_str());
    for key in ["reference", "destination", "seconds"] {
        assert!(json.get(key).is_some(), "{key} in {json}");
    }
    // The default REF is the tag pulled.
    let (_, digest) = skopeo_raw(&format!("{destination}:1.0"));
    assert_eq!(digest, image.manifest_digest);
}

#[test]
fn an_existing_layout_gains_the_image_and_keeps_what_it_had() {
    let registry = registry();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("layout");
    let other = fixtures::oci_layout(&dir, &ImageSpec::new("other", &[5000]).seed(31));
    let image = seed_app(&registry, 9);
    let output = pull(
        &registry,
        "team/app:1.0",
        &format!("oci:{}:app", dir.display()),
        &[],
    );
    assert_ok(&output, &registry);
    let (_, kept) = skopeo_raw(&format!("oci:{}:other", dir.display()));
    assert_eq!(kept, other.manifest_digest);
    let (_, pulled) = skopeo_raw(&format!("oci:{}:app", dir.display()));
    assert_eq!(pulled, image.manifest_digest);
}

#[test]
fn a_multi_platform_index_goes_into_a_layout_whole() {
    let registry = registry();
    let image = seed_index(&registry);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("layout");
    let output = pull(
        &registry,
        "team/multi:1.0",
        &format!("oci:{}:multi", dir.display()),
        &[],
    );
    assert_ok(&output, &registry);
    let (raw, digest) = skopeo_raw(&format!("oci:{}:multi", dir.display()));
    assert_eq!(digest, image.manifest_digest, "the index, byte for byte");
    assert!(serde_json::from_slice::<Value>(&raw).unwrap()["manifests"].is_array());
    for child in image.children.iter().chain(&image.blob_digests) {
        let hex = child.strip_prefix("sha256:").unwrap();
        assert!(dir.join("blobs/sha256").join(hex).is_file(), "{child}");
    }
}

#[test]
fn platform_picks_one_manifest_of_an_index() {
    let registry = registry();
    let image = seed_index(&registry);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("arm");
    let output = pull(
        &registry,
        "team/multi:1.0",
        &format!("oci:{}", dir.display()),
        &["--platform", "linux/arm64"],
    );
    assert_ok(&output, &registry);
    let (_, digest) = skopeo_raw(&format!("oci:{}:1.0", dir.display()));
    assert_eq!(digest, image.children[1], "the arm64 manifest");
}

#[test]
fn an_oci_archive_is_read_by_skopeo_with_the_same_digests() {
    let registry = registry();
    let image = seed_app(&registry, 10);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("app-oci.tar");
    let output = pull(
        &registry,
        "team/app:1.0",
        &format!("oci-archive:{}:app", file.display()),
        &[],
    );
    assert_ok(&output, &registry);
    assert_eq!(
        result_line(&output),
        format!(
            "oci-archive:{}:app@{}",
            file.display(),
            image.manifest_digest
        )
    );
    let (_, digest) = skopeo_raw(&format!("oci-archive:{}:app", file.display()));
    assert_eq!(digest, image.manifest_digest);
    let left: Vec<_> = std::fs::read_dir(work.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "only the archive: {left:?}");
}

#[test]
fn a_docker_archive_holds_the_registrys_config_under_the_name_asked_for() {
    let registry = registry();
    let image = seed_app(&registry, 11);
    let (raw, _) = registry.skopeo_inspect_raw("team/app:1.0");
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("app.tar");
    let output = pull(
        &registry,
        "team/app:1.0",
        &format!("docker-archive:{}:team/app:1.0", file.display()),
        &[],
    );
    assert_ok(&output, &registry);
    assert_eq!(
        result_line(&output),
        format!(
            "docker-archive:{}:team/app:1.0@{}",
            file.display(),
            image.manifest_digest
        )
    );
    let config = skopeo_config_digest(&format!("docker-archive:{}", file.display()));
    assert_eq!(config, config_of(&raw));
    let archive = std::fs::File::open(&file).unwrap();
    let mut tar = tar::Archive::new(archive);
    let manifest = tar
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().to_string_lossy() == "manifest.json")
        .map(|mut e| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut e, &mut text).unwrap();
            text
        })
        .expect("manifest.json");
    let manifest: Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(manifest[0]["RepoTags"][0], "team/app:1.0");
}

#[test]
fn a_docker_archive_of_an_index_takes_this_machines_platform() {
    let registry = registry();
    let image = seed_index(&registry);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("multi.tar");
    let output = pull(
        &registry,
        "team/multi:1.0",
        &format!("docker-archive:{}", file.display()),
        &["-o", "json"],
    );
    assert_ok(&output, &registry);
    let own = match std::env::consts::ARCH {
        "aarch64" => 1,
        _ => 0,
    };
    assert_eq!(json_of(&output)["digest"], image.children[own].as_str());
}

#[test]
fn quiet_prints_only_the_result_and_digestfile_gets_the_digest() {
    let registry = registry();
    let image = seed_app(&registry, 12);
    let work = tempfile::tempdir().unwrap();
    let digest_file = work.path().join("digest");
    let dir = work.path().join("layout");
    let output = pull(
        &registry,
        "team/app:1.0",
        &format!("oci:{}", dir.display()),
        &["-q", "--digestfile", &digest_file.display().to_string()],
    );
    assert_ok(&output, &registry);
    assert_eq!(
        stdout(&output),
        format!("oci:{}:1.0@{}\n", dir.display(), image.manifest_digest)
    );
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(&digest_file).unwrap(),
        image.manifest_digest
    );
}

/// `idpbuilder push IMAGE HOST/repo_tag`; the digest it printed.
fn push_digest(registry: &Registry, image: &str, repo_tag: &str) -> String {
    let output = support::push::push_cmd(registry, image, repo_tag)
        .output()
        .expect("run idpbuilder push");
    assert_ok(&output, registry);
    result_line(&output)
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .expect("a digest")
}

#[test]
fn every_source_kind_pushed_then_pulled_into_a_layout_keeps_its_digests() {
    let registry = registry();
    let work = tempfile::tempdir().unwrap();
    let spec = ImageSpec::new("1.0", &[3000, 20_000]).seed(13);
    let layout = work.path().join("src-layout");
    let oci_archive = work.path().join("src-oci.tar");
    let classic = work.path().join("src-classic.tar");
    let modern = work.path().join("src-modern.tar");
    let sources = [
        (
            format!("oci:{}:1.0", layout.display()),
            fixtures::oci_layout(&layout, &spec),
        ),
        (
            oci_archive.display().to_string(),
            fixtures::oci_archive(&oci_archive, &spec.clone().seed(14)),
        ),
        (
            classic.display().to_string(),
            fixtures::classic_docker_archive(&classic, &["app:1.0"], &spec.clone().seed(15)),
        ),
        (
            modern.display().to_string(),
            fixtures::modern_docker_archive(&modern, &["app:1.0"], &spec.clone().seed(16)),
        ),
    ];
    for (i, (image, fixture)) in sources.iter().enumerate() {
        let repo_tag = format!("team/round{i}:1.0");
        let pushed = push_digest(&registry, image, &repo_tag);
        let dir = work.path().join(format!("pulled-{i}"));
        let output = pull(&registry, &repo_tag, &format!("oci:{}", dir.display()), &[]);
        assert_ok(&output, &registry);
        let (raw, digest) = skopeo_raw(&format!("oci:{}:1.0", dir.display()));
        assert_eq!(digest, pushed, "{image}: the pushed digest comes back");
        let manifest: Value = serde_json::from_slice(&raw).unwrap();
        let mut blobs = vec![manifest["config"]["digest"].as_str().unwrap().to_string()];
        for layer in manifest["layers"].as_array().unwrap() {
            blobs.push(layer["digest"].as_str().unwrap().to_string());
        }
        assert_eq!(blobs.len(), fixture.blob_digests.len(), "{image}");
        for blob in blobs {
            let hex = blob.trim_start_matches("sha256:");
            let bytes = std::fs::read(dir.join("blobs/sha256").join(hex)).expect("blob");
            assert_eq!(sha256(&bytes), blob, "{image}");
        }
    }
}
