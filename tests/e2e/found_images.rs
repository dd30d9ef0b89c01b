//! Image files other projects wrote, pushed into the real distribution registry (TLS +
//! htpasswd) and read back by skopeo (issue 20, "Found with image files other projects
//! wrote"): a Docker 25+ `docker save` by ID, a containerd-store save holding one platform of
//! its index, names taken from `io.containerd.image.name` and from a `RepoTag` without a tag,
//! and an index its layout calls a Docker manifest list. The refusals of the same section are
//! rows of `docs/bad-inputs.md` (`tests/e2e/bad_inputs/found.rs`).

use crate::support;

use support::fixtures::{self, ImageSpec};
use support::fixtures_docker;
use support::push::{push_and_verify, push_cmd, result_line, verify};
use support::registry::{Auth, Registry, RegistryOptions, Tls};
use support::stderr;

const USER: &str = "giteaadmin";
const PASS: &str = "s3cr3t-Pa55word";

fn distribution() -> Registry {
    Registry::start(
        RegistryOptions::default()
            .tls(Tls::CaSigned)
            .auth(Auth::basic(USER, PASS)),
    )
}

#[test]
fn a_docker_save_by_id_is_pushed_from_manifest_json_with_the_exports_own_manifest() {
    let registry = distribution();
    let work = tempfile::tempdir().expect("temp dir");
    let archive = work.path().join("byid.tar");
    let image = fixtures_docker::saved_by_id(&archive);
    let path = archive.display().to_string();
    push_and_verify(&registry, &path, "giteaadmin/byid:1.0", &image);
    let prefixed = format!("docker-archive:{path}");
    push_and_verify(&registry, &prefixed, "giteaadmin/byid:2.0", &image);
}

#[test]
fn a_containerd_save_holding_one_platform_of_its_index_pushes_that_platform() {
    let registry = distribution();
    let work = tempfile::tempdir().expect("temp dir");
    let archive = work.path().join("save.tar");
    let kept = fixtures_docker::containerd_save(&archive, &["arm64"]);
    let path = archive.display().to_string();
    push_and_verify(&registry, &path, "giteaadmin/partial:1.0", &kept[0]);
    let output = push_cmd(&registry, &path, "giteaadmin/partial:2.0")
        .arg("--platform=linux/arm64")
        .output()
        .expect("run idpbuilder");
    // Flags after the destination are flags all the same.
    assert!(output.status.success(), "{}", stderr(&output));
    verify(&registry, "giteaadmin/partial:2.0", &kept[0]);
}

#[test]
fn a_docker_25_archive_is_named_by_its_containerd_name_at_a_registry_only_destination() {
    let registry = distribution();
    let work = tempfile::tempdir().expect("temp dir");
    let archive = work.path().join("modern.tar");
    let image = fixtures::modern_docker_archive(
        &archive,
        &["app:2.0"],
        &ImageSpec::new("x", &[3_000]).seed(21),
    );
    let output = push_cmd(&registry, &archive.display().to_string(), "")
        .output()
        .expect("run idpbuilder");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        result_line(&output),
        format!(
            "{}/giteaadmin/app:2.0@{}",
            registry.host(),
            image.manifest_digest
        )
    );
    verify(&registry, "giteaadmin/app:2.0", &image);
}

#[test]
fn a_repo_tag_without_a_tag_is_pushed_as_latest_as_docker_reads_it() {
    let registry = distribution();
    let work = tempfile::tempdir().expect("temp dir");
    let archive = work.path().join("classic.tar");
    let image = fixtures::classic_docker_archive(
        &archive,
        &["test_image_1"],
        &ImageSpec::new("x", &[2_000]).seed(22),
    );
    let output = push_cmd(&registry, &archive.display().to_string(), "")
        .output()
        .expect("run idpbuilder");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        result_line(&output),
        format!(
            "{}/giteaadmin/test_image_1:latest@{}",
            registry.host(),
            image.manifest_digest
        )
    );
    verify(&registry, "giteaadmin/test_image_1:latest", &image);
}

/// distribution refuses the index under the Docker list type (its content names none); as the
/// OCI index it is, it goes in with its digest.
#[test]
fn an_index_its_layout_calls_a_docker_list_is_pushed_as_the_oci_index_it_is() {
    let registry = distribution();
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("mislabelled");
    let index = fixtures_docker::index_without_media_type(&dir);
    push_and_verify(
        &registry,
        &dir.display().to_string(),
        "giteaadmin/mislabelled:1.0",
        &index,
    );
}

/// A `.tar.xz` and a `.tar.bz2` docker archive (compressed by the real `xz` and `bzip2`) are
/// refused (exit 2, one ASCII `error:` line) with the command that decompresses them; that command, run
/// as the hint gives it, leaves an archive that pushes with its digests.
#[test]
fn xz_and_bzip2_archives_are_refused_with_a_command_that_makes_them_pushable() {
    let registry = distribution();
    for (compressor, suffix) in [("xz", "xz"), ("bzip2", "bz2")] {
        let work = tempfile::tempdir().expect("temp dir");
        let tar = work.path().join("app.tar");
        let image = fixtures::classic_docker_archive(
            &tar,
            &["app:1.0"],
            &ImageSpec::new("x", &[2_000]).seed(23),
        );
        let status = std::process::Command::new(compressor)
            .arg(&tar)
            .status()
            .expect("run the compressor");
        assert!(status.success(), "{compressor}");
        let compressed = work.path().join(format!("app.tar.{suffix}"));
        let output = push_cmd(
            &registry,
            &compressed.display().to_string(),
            "giteaadmin/compressed:1.0",
        )
        .output()
        .expect("run idpbuilder");
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{err}");
        assert!(
            err.starts_with(&format!(
                "error: {} is {compressor}-compressed, which is not supported",
                compressed.display()
            )),
            "{err}"
        );
        assert!(err.is_ascii(), "no binary bytes: {err}");
        let command = err
            .lines()
            .find_map(|l| l.strip_prefix("hint: decompress it first: "))
            .expect("a hint with the command");
        let words: Vec<&str> = command.split_whitespace().collect();
        let status = std::process::Command::new(words[0])
            .args(&words[1..])
            .status()
            .expect("run the hint's command");
        assert!(status.success(), "{command}");
        push_and_verify(
            &registry,
            &tar.display().to_string(),
            &format!("giteaadmin/compressed-{suffix}:1.0"),
            &image,
        );
    }
}
