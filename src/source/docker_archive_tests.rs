//! Tests of [`super`]: classic and modern docker archives built in temporary directories.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::*;
use crate::source::testing::{Layout, digests, gzip, tar_dir, tar_files};

const CONFIG_JSON: &[u8] = br#"{"os":"linux","architecture":"amd64","rootfs":{"type":"layers"}}"#;

fn open_archive(path: &Path, reference: Option<&str>, platform: Option<&str>) -> Result<Image> {
    let selection = Selection {
        reference: reference.map(str::to_string),
        platform: platform.map(|p| p.parse().unwrap()),
    };
    open(&Store::archive(path)?, &selection)
}

/// A classic archive with one image of a plain layer and a gzip'd layer.
fn classic(dir: &Path, repo_tags: serde_json::Value) -> (PathBuf, Vec<u8>) {
    let gz_layer = gzip(b"gzip'd layer");
    let manifest = json!([{"Config": "abc.json", "RepoTags": repo_tags, "Layers": ["l1/layer.tar", "l2/layer.tar"]}]);
    let manifest = manifest.to_string();
    let path = dir.join("classic.tar");
    tar_files(
        &path,
        &[
            ("abc.json", CONFIG_JSON),
            ("l1/layer.tar", b"plain layer"),
            ("l2/layer.tar", &gz_layer),
            ("manifest.json", manifest.as_bytes()),
        ],
        false,
    );
    (path, gz_layer)
}

#[test]
fn a_classic_archive_gets_an_oci_manifest_over_its_exact_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, gz_layer) = classic(tmp.path(), json!(["foo:1.0"]));
    let image = open_archive(&path, None, None).unwrap();
    let config = Digest::of(CONFIG_JSON);
    let plain = Digest::of(b"plain layer");
    let gz = Digest::of(&gz_layer);
    assert_eq!(
        digests(&image),
        [config.to_string(), plain.to_string(), gz.to_string()]
    );
    let types: Vec<&str> = image.blobs.iter().map(|b| b.media_type.as_str()).collect();
    assert_eq!(types, [CONFIG, LAYER, LAYER_GZIP]);
    let expected = format!(
        concat!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","#,
            r#""config":{{"mediaType":"{}","digest":"{}","size":{}}},"layers":["#,
            r#"{{"mediaType":"{}","digest":"{}","size":11}},"#,
            r#"{{"mediaType":"{}","digest":"{}","size":{}}}]}}"#
        ),
        CONFIG,
        config,
        CONFIG_JSON.len(),
        LAYER,
        plain,
        LAYER_GZIP,
        gz,
        gz_layer.len()
    );
    assert_eq!(
        String::from_utf8(image.root.bytes.clone()).unwrap(),
        expected
    );
    assert_eq!(image.root.digest, Digest::of(expected.as_bytes()));
    assert_eq!(image.root.media_type, OCI_MANIFEST);
    assert_eq!(image.source_tag.as_deref(), Some("1.0"));
    assert!(image.children.is_empty());
    let again = open_archive(&path, None, None).unwrap();
    assert_eq!(
        again.root.digest, image.root.digest,
        "the same archive gives the same digest"
    );
}

#[test]
fn a_repeated_layer_stored_as_a_symlink_is_read_through_it() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest =
        json!([{"Config": "c.json", "RepoTags": null, "Layers": ["a/layer.tar", "b/layer.tar"]}]);
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("c.json", CONFIG_JSON),
        ("a/layer.tar", b"same layer".as_slice()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        builder.append_data(&mut header, name, data).unwrap();
    }
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    builder
        .append_link(&mut header, "b/layer.tar", "../a/layer.tar")
        .unwrap();
    let mut header = tar::Header::new_gnu();
    let manifest = manifest.to_string();
    header.set_size(manifest.len() as u64);
    builder
        .append_data(&mut header, "manifest.json", manifest.as_bytes())
        .unwrap();
    let path = tmp.path().join("linked.tar");
    std::fs::write(&path, builder.into_inner().unwrap()).unwrap();

    let image = open_archive(&path, None, None).unwrap();
    let layer = Digest::of(b"same layer");
    assert_eq!(
        digests(&image),
        [Digest::of(CONFIG_JSON).to_string(), layer.to_string()]
    );
    let manifest: serde_json::Value = serde_json::from_slice(&image.root.bytes).unwrap();
    assert_eq!(manifest["layers"][1]["digest"], layer.as_str());
    assert_eq!(image.source_tag, None);
}

#[test]
fn zstd_layers_get_the_zstd_media_type() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = json!([{"Config": "c.json", "Layers": ["z.tar.zst"]}]).to_string();
    let path = tmp.path().join("z.tar");
    let files: [(&str, &[u8]); 3] = [
        ("c.json", CONFIG_JSON),
        ("z.tar.zst", &[0x28, 0xb5, 0x2f, 0xfd, 1, 2]),
        ("manifest.json", manifest.as_bytes()),
    ];
    tar_files(&path, &files, false);
    let image = open_archive(&path, None, None).unwrap();
    assert_eq!(image.blobs[1].media_type, LAYER_ZSTD);
}

fn two_images(dir: &Path) -> PathBuf {
    let manifest = json!([
        {"Config": "a.json", "RepoTags": ["foo:1.0"], "Layers": ["a.tar"]},
        {"Config": "b.json", "RepoTags": ["docker.io/library/bar:2.0", "bar:latest"], "Layers": ["b.tar"]},
    ])
    .to_string();
    let path = dir.join("two.tar.gz");
    let files: [(&str, &[u8]); 5] = [
        ("a.json", CONFIG_JSON),
        ("b.json", br#"{"os":"linux","architecture":"arm64"}"#),
        ("a.tar", b"a"),
        ("b.tar", b"b"),
        ("manifest.json", manifest.as_bytes()),
    ];
    tar_files(&path, &files, true);
    path
}

#[test]
fn several_images_without_ref_is_an_error_listing_repo_tags() {
    let tmp = tempfile::tempdir().unwrap();
    let path = two_images(tmp.path());
    let err = open_archive(&path, None, None).unwrap_err();
    assert!(
        err.message()
            .ends_with("holds 2 images: foo:1.0, docker.io/library/bar:2.0 bar:latest"),
        "{}",
        err.message()
    );
    assert_eq!(
        err.hint(),
        Some(format!("pick one with docker-archive:{}:REF", path.display()).as_str())
    );
}

#[test]
fn a_ref_picks_an_image_by_repo_tag_in_short_or_full_form() {
    let tmp = tempfile::tempdir().unwrap();
    let path = two_images(tmp.path());
    for reference in ["bar:2.0", "docker.io/library/bar:2.0", "2.0"] {
        let image = open_archive(&path, Some(reference), None).unwrap();
        assert_eq!(image.blobs[1].digest, Digest::of(b"b"), "{reference}");
        assert_eq!(image.source_tag.as_deref(), Some("2.0"));
        // The image has two RepoTags; the one the REF picked is its name.
        assert_eq!(
            image.source_name.as_deref(),
            Some("docker.io/library/bar:2.0"),
            "{reference}"
        );
    }
    let image = open_archive(&path, None, None);
    assert!(image.is_err(), "two images need a REF");
    let image = open_archive(&path, Some("foo:1.0"), None).unwrap();
    assert_eq!(image.source_name.as_deref(), Some("foo:1.0"));
    assert_eq!(image.blobs[1].digest, Digest::of(b"a"));
    let err = open_archive(&path, Some("baz:1"), None).unwrap_err();
    assert!(
        err.message().starts_with("no image \"baz:1\" in "),
        "{}",
        err.message()
    );
}

#[test]
fn a_classic_image_for_another_platform_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = two_images(tmp.path());
    let err = open_archive(&path, Some("bar:2.0"), Some("linux/amd64")).unwrap_err();
    assert!(
        err.message()
            .ends_with("is for platform linux/arm64, not linux/amd64"),
        "{}",
        err.message()
    );
    assert!(open_archive(&path, Some("bar:2.0"), Some("linux/arm64")).is_ok());
}

#[test]
fn a_missing_layer_file_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = json!([{"Config": "c.json", "Layers": ["gone/layer.tar"]}]).to_string();
    let path = tmp.path().join("m.tar");
    tar_files(
        &path,
        &[
            ("c.json", CONFIG_JSON),
            ("manifest.json", manifest.as_bytes()),
        ],
        false,
    );
    let err = open_archive(&path, None, None).unwrap_err();
    assert!(
        err.message()
            .starts_with("layer gone/layer.tar is missing from "),
        "{}",
        err.message()
    );
}

#[test]
fn a_modern_archive_is_read_as_its_oci_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::new(&tmp.path().join("modern"));
    let (mut desc, blobs) = layout.image("linux", "amd64", &[b"layer"]);
    desc["annotations"] = json!({
        "io.containerd.image.name": "docker.io/library/foo:1.0",
        "org.opencontainers.image.ref.name": "1.0",
    });
    layout.finish(&[desc.clone()]);
    let config_path = format!("blobs/sha256/{}", &blobs[0]["sha256:".len()..]);
    let manifest = json!([{"Config": config_path, "RepoTags": ["foo:1.0"], "Layers": []}]);
    std::fs::write(layout.dir.join("manifest.json"), manifest.to_string()).unwrap();
    let path = tmp.path().join("modern.tar");
    tar_dir(&layout.dir, &path, false);
    for reference in [None, Some("foo:1.0"), Some("docker.io/library/foo:1.0")] {
        let image = open_archive(&path, reference, None).unwrap();
        assert_eq!(image.root.digest.as_str(), desc["digest"], "{reference:?}");
        assert_eq!(digests(&image), blobs);
        assert_eq!(image.source_tag.as_deref(), Some("1.0"));
    }
    let err = open_archive(&path, Some("bar:1.0"), None).unwrap_err();
    assert!(
        err.hint()
            .unwrap()
            .starts_with("pick one with docker-archive:")
    );
}

/// A classic archive of `layers` (name, bytes) whose config lists `diff_ids`.
fn with_diff_ids(dir: &Path, name: &str, layers: &[(&str, &[u8])], diff_ids: &[&str]) -> PathBuf {
    let config = json!({"os": "linux", "architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": diff_ids}}).to_string();
    let names: Vec<&str> = layers.iter().map(|(n, _)| *n).collect();
    let manifest =
        json!([{"Config": "c.json", "RepoTags": ["app:1.0"], "Layers": names}]).to_string();
    let mut files: Vec<(&str, &[u8])> = vec![("c.json", config.as_bytes())];
    files.extend_from_slice(layers);
    files.push(("manifest.json", manifest.as_bytes()));
    let path = dir.join(name);
    tar_files(&path, &files, name.ends_with(".gz"));
    path
}

#[test]
fn uncompressed_layers_take_their_digest_from_the_configs_diff_ids_unhashed() {
    let tmp = tempfile::tempdir().unwrap();
    let gz_layer = gzip(b"gzip'd layer");
    // Made up: were the layer hashed, its digest would be another.
    let claimed = Digest::of(b"what the config says");
    let gz_diff_id = Digest::of(b"the gzip'd layer's content");
    let path = with_diff_ids(
        tmp.path(),
        "a.tar",
        &[
            ("l1/layer.tar", b"plain layer"),
            ("l2/layer.tar", &gz_layer),
        ],
        &[claimed.as_str(), gz_diff_id.as_str()],
    );
    let image = open_archive(&path, None, None).unwrap();
    assert_eq!(image.blobs[1].digest, claimed, "taken from the config");
    assert_eq!(image.blobs[1].size, 11);
    assert_eq!(
        image.blobs[2].digest,
        Digest::of(&gz_layer),
        "a compressed layer is hashed: its diff ID is not its digest"
    );
    let manifest: serde_json::Value = serde_json::from_slice(&image.root.bytes).unwrap();
    assert_eq!(manifest["layers"][0]["digest"], claimed.as_str());
}

#[test]
fn layers_are_hashed_when_the_diff_ids_do_not_match_them_in_number() {
    let tmp = tempfile::tempdir().unwrap();
    let claimed = Digest::of(b"only one");
    let path = with_diff_ids(
        tmp.path(),
        "a.tar",
        &[("a/layer.tar", b"first"), ("b/layer.tar", b"second")],
        &[claimed.as_str()],
    );
    let image = open_archive(&path, None, None).unwrap();
    assert_eq!(image.blobs[1].digest, Digest::of(b"first"));
    assert_eq!(image.blobs[2].digest, Digest::of(b"second"));
}

#[test]
fn one_diff_id_claimed_by_two_different_layer_files_makes_them_hashed() {
    let tmp = tempfile::tempdir().unwrap();
    let claimed = Digest::of(b"first");
    let path = with_diff_ids(
        tmp.path(),
        "a.tar",
        &[("a/layer.tar", b"first"), ("b/layer.tar", b"second")],
        &[claimed.as_str(), claimed.as_str()],
    );
    let image = open_archive(&path, None, None).unwrap();
    assert_eq!(
        digests(&image)[1..],
        [claimed.to_string(), Digest::of(b"second").to_string()]
    );
}

#[test]
fn a_malformed_diff_id_is_an_error_naming_the_config_and_the_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let path = with_diff_ids(
        tmp.path(),
        "a.tar",
        &[("a/layer.tar", b"first")],
        &["sha256:nothex"],
    );
    let err = open_archive(&path, None, None).unwrap_err();
    assert!(
        err.message().starts_with("config c.json in ")
            && err
                .message()
                .contains("lists a bad diff ID for layer a/layer.tar"),
        "{}",
        err.message()
    );
}

#[test]
fn compressed_layers_of_a_tar_gz_are_hashed_in_one_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (gzip(&[1u8; 70_000]), gzip(b"two"));
    let path = with_diff_ids(
        tmp.path(),
        "a.tar.gz",
        &[
            ("1/layer.tar", &one),
            ("2/layer.tar", &two),
            ("3/layer.tar", &one),
        ],
        &[],
    );
    let image = open_archive(&path, None, None).unwrap();
    assert_eq!(
        digests(&image)[1..],
        [Digest::of(&one).to_string(), Digest::of(&two).to_string()]
    );
    assert_eq!(
        image.blobs[1].location.encoding,
        crate::source::Encoding::Gzip
    );
}
