//! Tests of [`super`]: layouts built in temporary directories.

use serde_json::json;

use super::*;
use crate::oci::media_type::{DOCKER_LIST, OCI_MANIFEST};
use crate::source::testing::{INDEX, Layout, digests, named};

fn open_dir(layout: &Layout, reference: Option<&str>, platform: Option<&str>) -> Result<Image> {
    let selection = Selection {
        reference: reference.map(str::to_string),
        platform: platform.map(|p| p.parse().unwrap()),
    };
    open(&Store::dir(&layout.dir), &selection, "oci")
}

fn new_layout() -> (tempfile::TempDir, Layout) {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::new(tmp.path());
    (tmp, layout)
}

#[test]
fn a_single_image_gives_its_config_and_layers_in_order() {
    let (_tmp, layout) = new_layout();
    let (desc, blobs) = layout.image("linux", "amd64", &[b"layer one", b"layer two"]);
    layout.finish(&[named(&desc, "1.0")]);
    let image = open_dir(&layout, None, None).unwrap();
    assert_eq!(digests(&image), blobs);
    assert!(image.children.is_empty());
    assert_eq!(image.root.digest.as_str(), desc["digest"]);
    assert_eq!(image.root.media_type, OCI_MANIFEST);
    assert_eq!(Digest::of(&image.root.bytes), image.root.digest);
    assert_eq!(image.source_tag.as_deref(), Some("1.0"));
    let layer = &image.blobs[1];
    assert_eq!(
        (layer.size, layer.location.offset, layer.location.len),
        (9, 0, 9)
    );
    assert_eq!(layer.media_type, crate::source::testing::LAYER_GZIP);
    assert!(
        layer
            .location
            .file
            .ends_with(format!("blobs/sha256/{}", layer.digest.hex()))
    );
}

#[test]
fn several_images_without_ref_is_an_error_listing_them() {
    let (_tmp, layout) = new_layout();
    let (a, _) = layout.image("linux", "amd64", &[b"a"]);
    let (b, _) = layout.image("linux", "amd64", &[b"b"]);
    let (c, _) = layout.image("linux", "amd64", &[b"c"]);
    layout.finish(&[named(&a, "1.0"), named(&b, "2.0"), c.clone()]);
    let err = open_dir(&layout, None, None).unwrap_err();
    let unnamed = format!("{} (linux/amd64)", c["digest"].as_str().unwrap());
    assert!(
        err.message().contains("holds 3 images: 1.0, 2.0"),
        "{}",
        err.message()
    );
    assert!(err.message().contains(&unnamed), "{}", err.message());
    let hint = format!("pick one with oci:{}:REF", layout.dir.display());
    assert_eq!(err.hint(), Some(hint.as_str()));
}

#[test]
fn an_image_with_several_names_is_counted_once_and_listed_with_all_of_them() {
    let (_tmp, layout) = new_layout();
    let (a, _) = layout.image("linux", "amd64", &[b"a"]);
    let (b, _) = layout.image("linux", "amd64", &[b"b"]);
    layout.finish(&[named(&a, "1.0"), named(&a, "latest"), named(&b, "2.0")]);
    let err = open_dir(&layout, None, None).unwrap_err();
    assert!(
        err.message().ends_with("holds 2 images: 1.0 latest, 2.0"),
        "{}",
        err.message()
    );
}

#[test]
fn a_ref_picks_one_image_by_name_or_digest() {
    let (_tmp, layout) = new_layout();
    let (a, _) = layout.image("linux", "amd64", &[b"a"]);
    let (b, b_blobs) = layout.image("linux", "amd64", &[b"b"]);
    layout.finish(&[named(&a, "1.0"), named(&b, "2.0")]);
    let image = open_dir(&layout, Some("2.0"), None).unwrap();
    assert_eq!(digests(&image), b_blobs);
    assert_eq!(image.source_tag.as_deref(), Some("2.0"));
    let image = open_dir(&layout, Some(b["digest"].as_str().unwrap()), None).unwrap();
    assert_eq!(image.root.digest.as_str(), b["digest"]);
}

#[test]
fn an_unknown_ref_is_an_error_listing_the_names() {
    let (_tmp, layout) = new_layout();
    let (a, _) = layout.image("linux", "amd64", &[b"a"]);
    layout.finish(&[named(&a, "1.0")]);
    let err = open_dir(&layout, Some("9.9"), None).unwrap_err();
    assert!(
        err.message().starts_with("no image \"9.9\" in "),
        "{}",
        err.message()
    );
    assert!(
        err.message().ends_with("(it holds: 1.0)"),
        "{}",
        err.message()
    );
}

#[test]
fn containerd_names_from_docker_match_full_short_or_tag_forms() {
    let (_tmp, layout) = new_layout();
    let (a, _) = layout.image("linux", "amd64", &[b"a"]);
    let (b, _) = layout.image("linux", "amd64", &[b"b"]);
    let mut a = a.clone();
    a["annotations"] = json!({"io.containerd.image.name": "docker.io/library/foo:1.0"});
    let mut b = b.clone();
    b["annotations"] = json!({"io.containerd.image.name": "docker.io/library/bar:2.0"});
    layout.finish(&[a.clone(), b]);
    for reference in ["foo:1.0", "docker.io/library/foo:1.0", "1.0"] {
        let image = open_dir(&layout, Some(reference), None).unwrap();
        assert_eq!(image.root.digest.as_str(), a["digest"], "{reference}");
        assert_eq!(image.source_tag.as_deref(), Some("1.0"));
    }
}

#[test]
fn the_same_image_under_two_names_is_one_image_without_a_single_tag() {
    let (_tmp, layout) = new_layout();
    let (a, _) = layout.image("linux", "amd64", &[b"a"]);
    layout.finish(&[named(&a, "1.0"), named(&a, "latest")]);
    let image = open_dir(&layout, None, None).unwrap();
    assert_eq!(image.source_tag, None);
    assert_eq!(
        open_dir(&layout, Some("latest"), None)
            .unwrap()
            .source_tag
            .as_deref(),
        Some("latest")
    );
}

fn multi_platform(
    layout: &Layout,
) -> (serde_json::Value, Vec<serde_json::Value>, Vec<Vec<String>>) {
    let (amd, amd_blobs) = layout.image("linux", "amd64", &[b"shared", b"amd"]);
    let (mut arm, arm_blobs) = layout.image("linux", "arm64", &[b"shared", b"arm"]);
    arm["platform"]["variant"] = json!("v8");
    let index = layout.index(&[amd.clone(), arm.clone()]);
    layout.finish(&[named(&index, "multi")]);
    (index, vec![amd, arm], vec![amd_blobs, arm_blobs])
}

#[test]
fn an_index_is_pushed_whole_children_first() {
    let (_tmp, layout) = new_layout();
    let (index, children, blobs) = multi_platform(&layout);
    let image = open_dir(&layout, None, None).unwrap();
    assert_eq!(image.root.digest.as_str(), index["digest"]);
    assert_eq!(image.root.media_type, INDEX);
    let child_digests: Vec<&str> = image.children.iter().map(|c| c.digest.as_str()).collect();
    assert_eq!(
        child_digests,
        [
            children[0]["digest"].as_str().unwrap(),
            children[1]["digest"].as_str().unwrap()
        ]
    );
    let mut expected = blobs[0].clone();
    expected.extend(blobs[1].iter().filter(|d| !blobs[0].contains(d)).cloned());
    assert_eq!(digests(&image), expected, "shared layer listed once");
    assert_eq!(image.source_tag.as_deref(), Some("multi"));
}

#[test]
fn platform_picks_one_manifest_of_an_index() {
    let (_tmp, layout) = new_layout();
    let (_, children, blobs) = multi_platform(&layout);
    let image = open_dir(&layout, None, Some("linux/arm64")).unwrap();
    assert_eq!(image.root.digest.as_str(), children[1]["digest"]);
    assert!(image.children.is_empty());
    assert_eq!(digests(&image), blobs[1]);
}

#[test]
fn a_platform_missing_from_an_index_is_an_error_listing_those_present() {
    let (_tmp, layout) = new_layout();
    multi_platform(&layout);
    let err = open_dir(&layout, None, Some("linux/s390x")).unwrap_err();
    assert!(
        err.message().ends_with(
            "has no image for platform linux/s390x (it has: linux/amd64, linux/arm64/v8)"
        ),
        "{}",
        err.message()
    );
}

#[test]
fn a_single_image_for_another_platform_is_an_error() {
    let (_tmp, layout) = new_layout();
    let (a, _) = layout.image("linux", "arm64", &[b"a"]);
    layout.finish(&[a]);
    let err = open_dir(&layout, None, Some("linux/amd64")).unwrap_err();
    assert!(
        err.message()
            .ends_with("is for platform linux/arm64, not linux/amd64"),
        "{}",
        err.message()
    );
    assert!(open_dir(&layout, None, Some("linux/arm64")).is_ok());
}

#[test]
fn a_blob_of_the_wrong_size_is_an_error() {
    let (_tmp, layout) = new_layout();
    let (a, blobs) = layout.image("linux", "amd64", &[b"layer"]);
    layout.finish(&[a]);
    let layer = Digest::parse(&blobs[1]).unwrap();
    std::fs::write(layout.dir.join("blobs/sha256").join(layer.hex()), b"lay").unwrap();
    let err = open_dir(&layout, None, None).unwrap_err();
    assert!(
        err.message().contains(&format!("blob {layer} in ")),
        "{}",
        err.message()
    );
    assert!(
        err.message()
            .ends_with("is 3 bytes, but its descriptor says 5"),
        "{}",
        err.message()
    );
}

#[test]
fn a_missing_blob_is_an_error_naming_its_digest() {
    let (_tmp, layout) = new_layout();
    let (a, blobs) = layout.image("linux", "amd64", &[b"layer"]);
    layout.finish(&[a]);
    let layer = Digest::parse(&blobs[1]).unwrap();
    std::fs::remove_file(layout.dir.join("blobs/sha256").join(layer.hex())).unwrap();
    let err = open_dir(&layout, None, None).unwrap_err();
    assert!(
        err.message()
            .starts_with(&format!("blob {layer} is missing from ")),
        "{}",
        err.message()
    );
}

#[test]
fn a_missing_platform_manifest_suggests_platform() {
    let (_tmp, layout) = new_layout();
    let (_, children, _) = multi_platform(&layout);
    let arm = Digest::parse(children[1]["digest"].as_str().unwrap()).unwrap();
    std::fs::remove_file(layout.dir.join("blobs/sha256").join(arm.hex())).unwrap();
    let err = open_dir(&layout, None, None).unwrap_err();
    assert!(
        err.message()
            .contains("holds only 1 of the 2 images index sha256:"),
        "{}",
        err.message()
    );
    assert_eq!(
        err.hint(),
        Some("pick one of those present with --platform: linux/amd64")
    );
    assert!(open_dir(&layout, None, Some("linux/amd64")).is_ok());
}

#[test]
fn a_manifest_whose_bytes_changed_does_not_match_its_digest() {
    let (_tmp, layout) = new_layout();
    let (a, _) = layout.image("linux", "amd64", &[b"layer"]);
    layout.finish(std::slice::from_ref(&a));
    let digest = Digest::parse(a["digest"].as_str().unwrap()).unwrap();
    let path = layout.dir.join("blobs/sha256").join(digest.hex());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] = b' ';
    std::fs::write(&path, bytes).unwrap();
    let err = open_dir(&layout, None, None).unwrap_err();
    assert!(
        err.message().ends_with("does not match its digest"),
        "{}",
        err.message()
    );
}

#[test]
fn an_empty_index_is_an_error() {
    let (_tmp, layout) = new_layout();
    layout.finish(&[]);
    let err = open_dir(&layout, None, None).unwrap_err();
    assert!(
        err.message()
            .ends_with("holds no image (its index.json is empty)"),
        "{}",
        err.message()
    );
}

#[test]
fn a_blob_linked_outside_the_layout_is_refused_when_the_image_is_opened() {
    let (tmp, layout) = new_layout();
    let (desc, blobs) = layout.image("linux", "amd64", &[b"layer"]);
    layout.finish(&[named(&desc, "1.0")]);
    let hex = &blobs[1]["sha256:".len()..];
    let blob = layout.dir.join("blobs/sha256").join(hex);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"other").unwrap();
    std::fs::remove_file(&blob).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), &blob).unwrap();
    let err = open_dir(&layout, None, None).unwrap_err();
    assert!(
        err.message().starts_with(&format!(
            "blobs/sha256/{hex} in {} is a link that leads outside the layout",
            tmp.path().display()
        )),
        "{}",
        err.message()
    );

    // A link that stays inside is fine.
    std::fs::create_dir_all(layout.dir.join("store")).unwrap();
    std::fs::write(layout.dir.join("store/layer"), b"layer").unwrap();
    std::fs::remove_file(&blob).unwrap();
    std::os::unix::fs::symlink("../../store/layer", &blob).unwrap();
    let image = open_dir(&layout, None, None).unwrap();
    assert_eq!(digests(&image), blobs);
}

#[test]
fn an_entry_saying_docker_list_of_an_index_naming_no_type_is_read_as_oci() {
    let (_tmp, layout) = new_layout();
    let (amd, _) = layout.image("linux", "amd64", &[b"a"]);
    let index = json!({"schemaVersion": 2, "manifests": [amd]});
    let mut entry = layout.blob(DOCKER_LIST, index.to_string().as_bytes());
    entry["mediaType"] = json!(DOCKER_LIST);
    layout.finish(&[named(&entry, "1.0")]);
    let image = open_dir(&layout, None, None).unwrap();
    assert_eq!(image.root.media_type, crate::oci::media_type::OCI_INDEX);
    assert_eq!(image.root.digest.as_str(), entry["digest"]);
    assert_eq!(image.children.len(), 1);
}
