#![allow(dead_code)]
//! Image files other tools write that differ from the textbook: what Docker 25+ and its
//! containerd store `docker save` (an image saved by ID, an index naming platforms that were
//! not exported), and a layout whose index entry calls an OCI index a Docker manifest list.
//! Written by the specs with [`Layout`], then tarred as `docker save` tars them.

use std::path::Path;

use serde_json::{Value, json};

use super::fixtures::FixtureImage;
use super::fixtures_shapes::{DOCKER_LIST, Layout, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The platforms of [`containerd_save`]'s index, in order.
pub const PLATFORMS: [&str; 3] = ["amd64", "arm64", "s390x"];

fn blob_path(digest: &Value) -> String {
    let digest = digest.as_str().unwrap_or_default();
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

/// An image manifest for linux/`arch` whose config and layer paths `manifest.json` can name;
/// returns its descriptor (with platform), its config path and its layer paths.
fn image(layout: &mut Layout, arch: &str) -> (Value, String, Vec<String>) {
    let (layer, diff_id) =
        layout.gzip_layer(OCI_LAYER_GZIP, "arch.txt", format!("{arch}\n").as_bytes());
    let config = layout.config(
        "application/vnd.oci.image.config.v1+json",
        "linux",
        arch,
        &[diff_id],
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [layer],
    });
    let mut descriptor = layout.document(OCI_MANIFEST, &manifest);
    descriptor["platform"] = json!({"os": "linux", "architecture": arch});
    (
        descriptor,
        blob_path(&config["digest"]),
        vec![blob_path(&layer["digest"])],
    )
}

/// `docker save app:1.0` from Docker's containerd store: `index.json` names the index
/// (linux/amd64, linux/arm64, linux/s390x, one attestation) by `io.containerd.image.name` and
/// ref name `1.0`, but only the platforms `kept` were exported; `manifest.json` describes the
/// first of them. Returns, for each platform kept, its manifest's fixture (in `kept` order).
pub fn containerd_save(path: &Path, kept: &[&str]) -> Vec<FixtureImage> {
    let staging = tempfile::tempdir().expect("staging dir");
    let dir = staging.path();
    let mut layout = Layout::new(dir);
    let mut children = Vec::new();
    let mut images = Vec::new();
    for arch in PLATFORMS {
        let before = layout.written().len();
        let (descriptor, config, layers) = image(&mut layout, arch);
        let blobs = layout.written()[before..].to_vec();
        children.push(descriptor.clone());
        images.push((arch, descriptor, config, layers, blobs));
    }
    let statement = layout.blob("application/vnd.in-toto+json", b"{}");
    let empty = layout.blob("application/vnd.oci.image.config.v1+json", b"{}");
    let attestation = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": empty, "layers": [statement],
    });
    let mut attestation = layout.document(OCI_MANIFEST, &attestation);
    attestation["platform"] = json!({"os": "unknown", "architecture": "unknown"});
    attestation["annotations"] = json!({"vnd.docker.reference.type": "attestation-manifest"});
    children.push(attestation);
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children});
    let mut entry = layout.document(OCI_INDEX, &index);
    entry["annotations"] = json!({CONTAINERD_NAME: "docker.io/library/app:1.0", REF_NAME: "1.0"});
    let top = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]});
    std::fs::write(dir.join("index.json"), top.to_string()).expect("write index.json");

    let mut fixtures = Vec::new();
    let mut described = Vec::new();
    for wanted in kept {
        let Some((_, descriptor, config, layers, blobs)) =
            images.iter().find(|(arch, ..)| arch == wanted)
        else {
            continue;
        };
        if described.is_empty() {
            described.push(json!({"Config": config, "RepoTags": ["app:1.0"], "Layers": layers}));
        }
        fixtures.push(FixtureImage {
            manifest_digest: descriptor["digest"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            blob_digests: blobs.clone(),
            ref_name: "1.0".to_string(),
            children: Vec::new(),
        });
    }
    for (arch, descriptor, config, layers, _) in &images {
        if !kept.contains(arch) {
            for path in layers
                .iter()
                .chain([config, &blob_path(&descriptor["digest"])])
            {
                std::fs::remove_file(dir.join(path)).expect("drop a platform not exported");
            }
        }
    }
    std::fs::write(
        dir.join("manifest.json"),
        Value::from(described).to_string(),
    )
    .expect("write manifest.json");
    tar(dir, path);
    fixtures
}

/// `docker save IMAGE-ID` on Docker 25+: `index.json` with `manifests: null`, `manifest.json`
/// naming the config and layers (`RepoTags` null), the manifest among the blobs.
pub fn saved_by_id(path: &Path) -> FixtureImage {
    let staging = tempfile::tempdir().expect("staging dir");
    let dir = staging.path();
    let mut layout = Layout::new(dir);
    let (descriptor, config, layers) = image(&mut layout, "amd64");
    let blobs = layout.written();
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": null});
    std::fs::write(dir.join("index.json"), index.to_string()).expect("write index.json");
    let manifest = json!([{"Config": config, "RepoTags": null, "Layers": layers}]);
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).expect("write manifest.json");
    tar(dir, path);
    FixtureImage {
        manifest_digest: descriptor["digest"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        blob_digests: blobs,
        ref_name: String::new(),
        children: Vec::new(),
    }
}

/// An OCI layout whose `index.json` entry says Docker manifest list of an index whose own
/// content names no `mediaType` (so it is an OCI index: a Docker list always names itself).
pub fn index_without_media_type(dir: &Path) -> FixtureImage {
    let mut layout = Layout::new(dir);
    let (amd, ..) = image(&mut layout, "amd64");
    let (arm, ..) = image(&mut layout, "arm64");
    let children = vec![text(&amd["digest"]), text(&arm["digest"])];
    let index = json!({"schemaVersion": 2, "manifests": [amd, arm]});
    let mut root = layout.document(DOCKER_LIST, &index);
    root["mediaType"] = json!(DOCKER_LIST);
    layout.finish(&root, children)
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

/// Tars `dir` as `docker save` does (plain tar, paths relative to the root).
fn tar(dir: &Path, path: &Path) {
    let file = std::fs::File::create(path).expect("create archive");
    let mut builder = tar::Builder::new(file);
    builder.mode(tar::HeaderMode::Deterministic);
    builder.append_dir_all(".", dir).expect("tar directory");
    builder.into_inner().expect("finish archive");
}
