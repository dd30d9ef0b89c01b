//! The core pushes against each registry implementation: CNCF distribution (Debian's
//! `docker-registry`, TLS and htpasswd) and container-registry 0.3.1 (plain HTTP, one password,
//! any user name). Each case is one body that takes the registry; skopeo proves that the registry
//! holds the source's digests. What each registry accepts is in `docs/registries.md`.
//!
//! container-registry takes only the upload flow docker and skopeo send (`POST`, `PATCH` with
//! the body, then an empty `PUT ?digest=`); it answers 500 to a final `PUT` that carries a body.

use crate::support;

use std::path::Path;

use support::container_registry::{ContainerRegistry, PASS as CONTAINER_REGISTRY_PASS};
use support::fixtures::{self, ImageSpec};
use support::push::{push_and_verify, push_cmd, verify};
use support::registry::{Auth, Registry, RegistryOptions, Tls};
use support::skopeo::TestRegistry;
use support::{idpbuilder, stderr, stdout};

const USER: &str = "giteaadmin";
const PASS: &str = "s3cr3t-Pa55word";

/// distribution as the other suites run it: a CA-signed certificate and htpasswd.
fn distribution() -> Registry {
    Registry::start(
        RegistryOptions::default()
            .tls(Tls::CaSigned)
            .auth(Auth::basic(USER, PASS)),
    )
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

// ---- one body per case ----

fn an_oci_layout(registry: &dyn TestRegistry) {
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("layout");
    let image = fixtures::oci_layout(&layout, &ImageSpec::new("1.0", &[2_000, 300_000]));
    push_and_verify(
        registry,
        &path_text(&layout),
        "giteaadmin/layout:1.0",
        &image,
    );
}

fn an_oci_archive(registry: &dyn TestRegistry) {
    let work = tempfile::tempdir().expect("temp dir");
    let archive = work.path().join("app-oci.tar");
    let image = fixtures::oci_archive(&archive, &ImageSpec::new("1.0", &[5_000]).seed(2));
    push_and_verify(
        registry,
        &path_text(&archive),
        "giteaadmin/ociarchive:1.0",
        &image,
    );
}

fn a_gzipped_oci_archive(registry: &dyn TestRegistry) {
    let work = tempfile::tempdir().expect("temp dir");
    let archive = work.path().join("app-oci.tar.gz");
    let image = fixtures::oci_archive(&archive, &ImageSpec::new("1.0", &[5_000]).seed(3));
    push_and_verify(
        registry,
        &path_text(&archive),
        "giteaadmin/ociarchivegz:1.0",
        &image,
    );
}

/// `docker save` before docker 25 (by detection) and after (by the `docker-archive:` prefix).
fn docker_archives(registry: &dyn TestRegistry) {
    let work = tempfile::tempdir().expect("temp dir");
    let classic = work.path().join("classic.tar");
    let image = fixtures::classic_docker_archive(
        &classic,
        &["app:1.0"],
        &ImageSpec::new("x", &[4_000, 9_000]).seed(4),
    );
    push_and_verify(
        registry,
        &path_text(&classic),
        "giteaadmin/classic:1.0",
        &image,
    );

    let modern = work.path().join("modern.tar");
    let image = fixtures::modern_docker_archive(
        &modern,
        &["app:2.0"],
        &ImageSpec::new("x", &[4_000]).seed(5),
    );
    push_and_verify(
        registry,
        &format!("docker-archive:{}", modern.display()),
        "giteaadmin/modern:2.0",
        &image,
    );
}

/// The whole index where the registry holds indexes; where it does not (container-registry
/// stores only image manifests, and only under a tag), the push fails with exit 1 and one
/// `error:` line and tags nothing. Everywhere `--platform` pushes one platform's manifest.
fn a_multi_platform_image(registry: &dyn TestRegistry, holds_indexes: bool) {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("multi");
    let index = fixtures::multi_platform_layout(&dir, &[("linux", "amd64"), ("linux", "arm64")]);
    if holds_indexes {
        push_and_verify(registry, &path_text(&dir), "giteaadmin/multi:1.0", &index);
    } else {
        let output = push_cmd(registry, &path_text(&dir), "giteaadmin/multi:1.0")
            .output()
            .expect("run idpbuilder");
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{err}");
        assert!(
            err.starts_with("error: ") || err.contains("\nerror: "),
            "{err}"
        );
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{err}"
        );
        assert!(!registry.has_manifest("giteaadmin/multi:1.0"), "no tag");
    }

    let output = push_cmd(registry, &path_text(&dir), "giteaadmin/arm:1.0")
        .args(["--platform", "linux/arm64"])
        .output()
        .expect("run idpbuilder");
    assert!(
        output.status.success(),
        "{}\nregistry log:\n{}",
        stderr(&output),
        registry.log()
    );
    let (manifest, digest) = registry.skopeo_inspect_raw("giteaadmin/arm:1.0");
    assert_eq!(
        digest, index.children[1],
        "the arm64 manifest, byte for byte"
    );
    assert!(String::from_utf8_lossy(&manifest).contains("\"layers\""));
}

/// The same image pushed again uploads nothing: every blob is found with `HEAD` and skipped,
/// and the tag still points at the same digest.
fn a_second_push(registry: &dyn TestRegistry) {
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("layout");
    let image = fixtures::oci_layout(&layout, &ImageSpec::new("1.0", &[3_000, 40_000]).seed(7));
    push_and_verify(
        registry,
        &path_text(&layout),
        "giteaadmin/again:1.0",
        &image,
    );

    let output = push_cmd(registry, &path_text(&layout), "giteaadmin/again:1.0")
        .args(["-o", "json"])
        .output()
        .expect("run idpbuilder");
    assert!(output.status.success(), "{}", stderr(&output));
    let report = json_report(&stdout(&output));
    assert_eq!(report["blobs_uploaded"], 0, "{report}");
    assert_eq!(
        report["blobs_skipped"],
        image.blob_digests.len(),
        "{report}"
    );
    assert_eq!(report["bytes_uploaded"], 0, "{report}");
    assert_eq!(report["digest"], image.manifest_digest.as_str(), "{report}");
    verify(registry, "giteaadmin/again:1.0", &image);
}

/// A wrong password is a refusal (exit 3) with a hint, before anything is written.
fn a_wrong_password(registry: &dyn TestRegistry) {
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("layout");
    fixtures::oci_layout(&layout, &ImageSpec::new("1.0", &[1_000]));
    let output = idpbuilder()
        .arg("push")
        .args(registry.tls_args())
        .args(["-u", USER, "--password-stdin"])
        .write_stdin("not-the-password")
        .arg(&layout)
        .arg(format!("{}/giteaadmin/app:1.0", registry.host()))
        .output()
        .expect("run idpbuilder");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{err}");
    assert!(
        err.starts_with("error: registry refused the credentials"),
        "{err}"
    );
    assert!(err.contains("\nhint: "), "{err}");
    assert!(!registry.has_manifest("giteaadmin/app:1.0"), "no tag");
}

/// The `-o json` object on the last line of stdout.
fn json_report(stdout: &str) -> serde_json::Value {
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

// ---- the registries ----

mod distribution {
    use super::*;

    /// An index inside an index is an image distribution takes: it arrives whole (the inner
    /// index and its platform manifests by digest, then the outer one under the tag), where
    /// it once went up blob by blob and then failed.
    #[test]
    fn a_nested_index_goes_up_whole() {
        let registry = distribution();
        let work = tempfile::tempdir().expect("temp dir");
        let dir = work.path().join("nested");
        let image = fixtures::nested_index_layout(&dir);
        let output = push_cmd(&registry, &path_text(&dir), "giteaadmin/nested:1.0")
            .output()
            .expect("run idpbuilder");
        assert!(
            output.status.success(),
            "{}\nregistry log:\n{}",
            stderr(&output),
            registry.log()
        );
        let (_, digest) = registry.skopeo_inspect_raw("giteaadmin/nested:1.0");
        assert_eq!(
            digest, image.manifest_digest,
            "the outer index, byte for byte"
        );
        let inner = &image.children[0];
        assert!(
            registry.manifest_exists("giteaadmin/nested", inner),
            "inner index"
        );
        for blob in &image.blob_digests {
            assert!(registry.blob_exists("giteaadmin/nested", blob), "{blob}");
        }
    }

    #[test]
    fn an_oci_layout_arrives_with_its_digests() {
        an_oci_layout(&distribution());
    }

    #[test]
    fn an_oci_archive_arrives_with_its_digests() {
        an_oci_archive(&distribution());
    }

    #[test]
    fn a_gzipped_oci_archive_arrives_with_its_digests() {
        a_gzipped_oci_archive(&distribution());
    }

    #[test]
    fn docker_archives_arrive_with_their_digests() {
        docker_archives(&distribution());
    }

    #[test]
    fn a_multi_platform_image_goes_up_whole_or_one_platform() {
        a_multi_platform_image(&distribution(), true);
    }

    #[test]
    fn a_second_push_skips_every_blob() {
        a_second_push(&distribution());
    }

    #[test]
    fn a_wrong_password_exits_3_and_tags_nothing() {
        a_wrong_password(&distribution());
    }
}

mod container_registry {
    use super::*;

    /// container-registry for `test`, or `None` (skip) when it is not installed outside CI.
    fn start(test: &str) -> Option<ContainerRegistry> {
        ContainerRegistry::start_or_skip(&format!("container_registry::{test}"))
    }

    #[test]

    fn an_oci_layout_arrives_with_its_digests() {
        if let Some(registry) = start("an_oci_layout_arrives_with_its_digests") {
            an_oci_layout(&registry);
        }
    }

    #[test]

    fn an_oci_archive_arrives_with_its_digests() {
        if let Some(registry) = start("an_oci_archive_arrives_with_its_digests") {
            an_oci_archive(&registry);
        }
    }

    #[test]

    fn a_gzipped_oci_archive_arrives_with_its_digests() {
        if let Some(registry) = start("a_gzipped_oci_archive_arrives_with_its_digests") {
            a_gzipped_oci_archive(&registry);
        }
    }

    #[test]

    fn docker_archives_arrive_with_their_digests() {
        if let Some(registry) = start("docker_archives_arrive_with_their_digests") {
            docker_archives(&registry);
        }
    }

    /// container-registry 0.3.1 refuses an index and any manifest pushed by digest (400), so
    /// only `--platform` gets an image of a multi-platform source in.
    #[test]

    fn a_multi_platform_image_goes_up_whole_or_one_platform() {
        if let Some(registry) = start("a_multi_platform_image_goes_up_whole_or_one_platform") {
            a_multi_platform_image(&registry, false);
        }
    }

    #[test]

    fn a_second_push_skips_every_blob() {
        if let Some(registry) = start("a_second_push_skips_every_blob") {
            a_second_push(&registry);
        }
    }

    #[test]
    fn a_wrong_password_exits_3_and_tags_nothing() {
        if let Some(registry) = start("a_wrong_password_exits_3_and_tags_nothing") {
            assert_eq!(
                registry.credentials().map(|(_, p)| p),
                Some(CONTAINER_REGISTRY_PASS)
            );
            a_wrong_password(&registry);
        }
    }
}
