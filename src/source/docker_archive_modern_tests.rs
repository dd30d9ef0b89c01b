//! Tests of [`super`] with what docker 25+ and its containerd store write: an image saved by ID
//! (`index.json` listing nothing), an index naming platforms that were not exported, names
//! taken from `RepoTags` and `io.containerd.image.name`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;
use crate::source::testing::{Layout, digests, tar_dir};

fn open_archive(path: &Path, platform: Option<&str>) -> Result<Image> {
    let selection = Selection {
        reference: None,
        platform: platform.map(|p| p.parse().unwrap()),
    };
    open(&Store::archive(path)?, &selection)
}

fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

/// A docker 25+ export of one image saved by ID: `manifests: null`, `manifest.json` beside it.
/// Returns the archive, the manifest descriptor and the blob digests.
fn saved_by_id(dir: &Path, keep_manifest: bool) -> (PathBuf, Value, Vec<String>) {
    let layout = Layout::new(&dir.join("byid"));
    let (desc, blobs) = layout.image("linux", "amd64", &[b"one", b"two"]);
    let index = json!({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": null});
    std::fs::write(layout.dir.join("index.json"), index.to_string()).unwrap();
    let manifest = json!([{
        "Config": blob_path(&blobs[0]),
        "RepoTags": null,
        "Layers": blobs[1..].iter().map(|b| blob_path(b)).collect::<Vec<_>>(),
    }]);
    std::fs::write(layout.dir.join("manifest.json"), manifest.to_string()).unwrap();
    if !keep_manifest {
        std::fs::remove_file(layout.dir.join(blob_path(desc["digest"].as_str().unwrap()))).unwrap();
    }
    let path = dir.join("byid.tar");
    tar_dir(&layout.dir, &path, false);
    (path, desc, blobs)
}

const INDEX_TYPE: &str = crate::oci::media_type::OCI_INDEX;

#[test]
fn an_image_saved_by_id_is_read_from_manifest_json_under_the_exports_own_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, desc, blobs) = saved_by_id(tmp.path(), true);
    let image = open_archive(&path, None).unwrap();
    assert_eq!(image.root.digest.as_str(), desc["digest"]);
    assert_eq!(image.root.media_type, OCI_MANIFEST);
    assert_eq!(digests(&image), blobs);
    assert_eq!((image.source_tag, image.source_name), (None, None));
}

#[test]
fn an_image_saved_by_id_without_its_manifest_gets_one_built() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, desc, blobs) = saved_by_id(tmp.path(), false);
    let image = open_archive(&path, None).unwrap();
    assert_ne!(image.root.digest.as_str(), desc["digest"]);
    assert_eq!(image.root.media_type, OCI_MANIFEST);
    assert_eq!(digests(&image), blobs);
}

#[test]
fn a_repo_tag_without_a_tag_is_latest() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, _, _) = saved_by_id(tmp.path(), true);
    // The same export, its manifest.json naming the image without a tag.
    let layout = tmp.path().join("byid");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(layout.join("manifest.json")).unwrap()).unwrap();
    let mut manifest = manifest;
    manifest[0]["RepoTags"] = json!(["test_image_1"]);
    std::fs::write(layout.join("manifest.json"), manifest.to_string()).unwrap();
    tar_dir(&layout, &path, false);
    let image = open_archive(&path, None).unwrap();
    assert_eq!(image.source_tag.as_deref(), Some("latest"));
    assert_eq!(image.source_name.as_deref(), Some("test_image_1:latest"));
    for reference in ["test_image_1:latest", "test_image_1", "latest"] {
        let by_name = Selection {
            reference: Some(reference.into()),
            platform: None,
        };
        assert!(
            open(&Store::archive(&path).unwrap(), &by_name).is_ok(),
            "{reference}"
        );
    }
}

#[test]
fn a_modern_archive_is_named_by_its_containerd_name_not_its_bare_ref_name() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::new(&tmp.path().join("modern"));
    let (mut desc, _) = layout.image("linux", "amd64", &[b"layer"]);
    desc["annotations"] = json!({
        "io.containerd.image.name": "docker.io/library/foo:latest",
        "org.opencontainers.image.ref.name": "latest",
    });
    layout.finish(&[desc]);
    let path = tmp.path().join("modern.tar");
    tar_dir(&layout.dir, &path, false);
    let image = open_archive(&path, None).unwrap();
    assert_eq!(image.source_tag.as_deref(), Some("latest"));
    assert_eq!(
        image.source_name.as_deref(),
        Some("docker.io/library/foo:latest")
    );
}

/// A containerd-store export: an index of linux/amd64, linux/arm64 and linux/s390x with an
/// attestation, of which only the platforms `kept` (and the attestation) were exported.
fn partial(dir: &Path, kept: &[&str]) -> (Layout, Vec<Value>) {
    let layout = Layout::new(&dir.join("partial"));
    let mut children = Vec::new();
    for arch in ["amd64", "arm64", "s390x"] {
        let (desc, _) = layout.image("linux", arch, &[arch.as_bytes()]);
        children.push(desc);
    }
    let (mut attestation, _) = layout.image("unknown", "unknown", &[b"in-toto"]);
    attestation["annotations"] = json!({"vnd.docker.reference.type": "attestation-manifest"});
    children.push(attestation);
    let mut index = layout.index(&children);
    index["annotations"] = json!({
        "io.containerd.image.name": "docker.io/library/app:1.0",
        "org.opencontainers.image.ref.name": "1.0",
    });
    layout.finish(&[index]);
    for (arch, child) in ["amd64", "arm64", "s390x"].iter().zip(&children) {
        if !kept.contains(arch) {
            let path = layout
                .dir
                .join(blob_path(child["digest"].as_str().unwrap()));
            std::fs::remove_file(path).unwrap();
        }
    }
    (layout, children)
}

fn archive_of(layout: &Layout, dir: &Path) -> PathBuf {
    let path = dir.join("partial.tar");
    tar_dir(&layout.dir, &path, false);
    path
}

#[test]
fn a_docker_save_holding_one_platform_of_its_index_pushes_that_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, children) = partial(tmp.path(), &["arm64"]);
    let path = archive_of(&layout, tmp.path());
    let image = open_archive(&path, None).unwrap();
    assert_eq!(image.root.digest.as_str(), children[1]["digest"]);
    assert!(image.children.is_empty());
    assert_eq!(
        image.source_name.as_deref(),
        Some("docker.io/library/app:1.0")
    );
    let picked = open_archive(&path, Some("linux/arm64")).unwrap();
    assert_eq!(picked.root.digest.as_str(), children[1]["digest"]);
}

#[test]
fn a_platform_that_was_not_exported_is_refused_naming_those_that_were() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, _) = partial(tmp.path(), &["arm64"]);
    let path = archive_of(&layout, tmp.path());
    let err = open_archive(&path, Some("linux/amd64")).unwrap_err();
    assert!(
        err.message()
            .contains("has no linux/amd64 image: index sha256:")
            && err
                .message()
                .ends_with("names one, but it was not exported"),
        "{}",
        err.message()
    );
    assert_eq!(
        err.hint(),
        Some("it holds linux/arm64: pick one with --platform")
    );
}

#[test]
fn several_platforms_of_an_index_exported_need_platform_and_the_hint_names_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, _) = partial(tmp.path(), &["amd64", "s390x"]);
    let path = archive_of(&layout, tmp.path());
    let err = open_archive(&path, None).unwrap_err();
    assert!(
        err.message()
            .contains("holds only 2 of the 3 images index sha256:"),
        "{}",
        err.message()
    );
    assert_eq!(
        err.hint(),
        Some("pick one of those present with --platform: linux/amd64, linux/s390x")
    );
    let picked = open_archive(&path, Some("linux/s390x")).unwrap();
    assert!(picked.children.is_empty());
}

#[test]
fn an_oci_layout_holding_part_of_its_index_needs_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, children) = partial(tmp.path(), &["amd64"]);
    let store = Store::dir(&layout.dir);
    let err = layout::open(&store, &Selection::default(), "oci").unwrap_err();
    assert_eq!(
        err.hint(),
        Some("pick one of those present with --platform: linux/amd64")
    );
    let picked = Selection {
        reference: None,
        platform: Some("linux/amd64".parse().unwrap()),
    };
    let image = layout::open(&store, &picked, "oci").unwrap();
    assert_eq!(image.root.digest.as_str(), children[0]["digest"]);
}

#[test]
fn an_index_missing_only_attestations_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, children) = partial(tmp.path(), &["amd64", "arm64", "s390x"]);
    let attestation = layout
        .dir
        .join(blob_path(children[3]["digest"].as_str().unwrap()));
    std::fs::remove_file(attestation).unwrap();
    let path = archive_of(&layout, tmp.path());
    let err = open_archive(&path, None).unwrap_err();
    assert!(
        err.message()
            .ends_with("but not all its attestation manifests"),
        "{}",
        err.message()
    );
    assert_eq!(
        err.hint(),
        Some("pick one of those present with --platform: linux/amd64, linux/arm64, linux/s390x")
    );
}
