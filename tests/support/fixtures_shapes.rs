#![allow(dead_code)]
//! The image shapes people build, as OCI layouts written by the specs (no network, no tool):
//! a BuildKit index with attestation manifests, a Docker schema 2 manifest list, zstd layers,
//! foreign (non-distributable) layers, OCI artifacts (`artifactType` with the empty config, a
//! Helm chart, the 1.1-rc artifact manifest), and a referrer (a manifest with a `subject`).
//!
//! [`Layout`] writes any JSON as a blob, so each shape is a few lines of the spec's JSON. Every
//! shape is tagged `1.0` (the ref name) and returned as a [`FixtureImage`].

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::fixtures::{FixtureImage, sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_NONDISTRIBUTABLE: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const OCI_ARTIFACT_MANIFEST: &str = "application/vnd.oci.artifact.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
pub const HELM_CHART: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An OCI layout being written: blobs by digest, then `index.json`.
pub struct Layout {
    pub dir: PathBuf,
    /// Every blob written that a push uploads (configs and layers), each once.
    blobs: Vec<String>,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("create blobs dir");
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("write oci-layout");
        Layout {
            dir: dir.to_path_buf(),
            blobs: Vec::new(),
        }
    }

    /// Stores `bytes`; returns the descriptor `{mediaType, digest, size}`.
    pub fn put(&mut self, media_type: &str, bytes: &[u8]) -> Value {
        let digest = sha256(bytes);
        let path = self
            .dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        std::fs::write(path, bytes).expect("write blob");
        json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
    }

    /// The configs and layers written so far, each once, in order.
    pub fn written(&self) -> Vec<String> {
        self.blobs.clone()
    }

    /// Stores a config or layer a push uploads.
    pub fn blob(&mut self, media_type: &str, bytes: &[u8]) -> Value {
        let descriptor = self.put(media_type, bytes);
        let digest = text(&descriptor["digest"]);
        if !self.blobs.contains(&digest) {
            self.blobs.push(digest);
        }
        descriptor
    }

    /// Stores a manifest or index (compact JSON, as written).
    pub fn document(&mut self, media_type: &str, document: &Value) -> Value {
        self.put(media_type, document.to_string().as_bytes())
    }

    /// A config for `os/arch` whose diff IDs are those of `layers` (the uncompressed tars).
    pub fn config(&mut self, media_type: &str, os: &str, arch: &str, diff_ids: &[String]) -> Value {
        let config = json!({
            "architecture": arch,
            "os": os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        self.blob(media_type, config.to_string().as_bytes())
    }

    /// A gzip'd one-file tar layer and its diff ID.
    pub fn gzip_layer(&mut self, media_type: &str, name: &str, content: &[u8]) -> (Value, String) {
        let tar = tar_of(name, content);
        let diff_id = sha256(&tar);
        (self.blob(media_type, &gzip(&tar)), diff_id)
    }

    /// An image manifest for `os/arch` with one gzip'd layer holding `content`: OCI media
    /// types, or Docker schema 2 ones with `docker`. Returns its descriptor, with `platform`.
    pub fn image(&mut self, os: &str, arch: &str, content: &[u8], docker: bool) -> Value {
        let (manifest_type, config_type, layer_type) = if docker {
            (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER)
        } else {
            (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP)
        };
        let (layer, diff_id) = self.gzip_layer(layer_type, "file.txt", content);
        let config = self.config(config_type, os, arch, &[diff_id]);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": config,
            "layers": [layer],
        });
        let mut descriptor = self.document(manifest_type, &manifest);
        descriptor["platform"] = json!({"os": os, "architecture": arch});
        descriptor
    }

    /// Writes `index.json` with `root` as its one entry, named `1.0`; the fixture to expect.
    pub fn finish(self, root: &Value, children: Vec<String>) -> FixtureImage {
        let mut entry = root.clone();
        if let Some(fields) = entry.as_object_mut() {
            fields.remove("platform");
        }
        entry["annotations"] = json!({ REF_NAME: "1.0" });
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]});
        std::fs::write(self.dir.join("index.json"), index.to_string()).expect("write index.json");
        FixtureImage {
            manifest_digest: text(&root["digest"]),
            blob_digests: self.blobs,
            ref_name: "1.0".to_string(),
            children,
        }
    }
}

/// A BuildKit index (`docker buildx build --provenance --sbom`): linux/amd64 and linux/arm64,
/// each followed by its attestation manifest (`unknown/unknown`, annotated
/// `vnd.docker.reference.type: attestation-manifest`, in-toto layers).
pub fn buildkit_index(dir: &Path) -> FixtureImage {
    let mut layout = Layout::new(dir);
    let mut entries = Vec::new();
    for arch in ["amd64", "arm64"] {
        let image = layout.image(
            "linux",
            arch,
            format!("built for {arch}\n").as_bytes(),
            false,
        );
        let statement = json!({
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://slsa.dev/provenance/v0.2",
            "subject": [{"name": "pkg:docker/app@1.0", "digest": {"sha256": text(&image["digest"]).trim_start_matches("sha256:")}}],
            "predicate": {"builder": {"id": ""}, "buildType": "https://mobyproject.org/buildkit@v1"},
        });
        let mut layer = layout.blob(IN_TOTO, statement.to_string().as_bytes());
        layer["annotations"] =
            json!({"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"});
        let config = layout.config(OCI_CONFIG, "unknown", "unknown", &[]);
        let attestation = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": [layer],
        });
        let mut attestation = layout.document(OCI_MANIFEST, &attestation);
        attestation["platform"] = json!({"os": "unknown", "architecture": "unknown"});
        attestation["annotations"] = json!({
            "vnd.docker.reference.digest": image["digest"],
            "vnd.docker.reference.type": "attestation-manifest",
        });
        entries.push(image);
        entries.push(attestation);
    }
    index_of(layout, OCI_INDEX, entries)
}

/// A Docker schema 2 manifest list over Docker schema 2 manifests (linux/amd64, linux/arm64).
pub fn docker_manifest_list(dir: &Path) -> FixtureImage {
    let mut layout = Layout::new(dir);
    let entries = ["amd64", "arm64"]
        .iter()
        .map(|arch| layout.image("linux", arch, format!("docker {arch}\n").as_bytes(), true))
        .collect();
    index_of(layout, DOCKER_LIST, entries)
}

/// An OCI image whose layers are zstd-compressed (`tar+zstd`): real zstd frames.
pub fn zstd_image(dir: &Path) -> FixtureImage {
    let mut layout = Layout::new(dir);
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (name, content) in [
        ("a.txt", &b"zstd layer one\n"[..]),
        ("b.txt", &[9u8; 5000][..]),
    ] {
        let tar = tar_of(name, content);
        diff_ids.push(sha256(&tar));
        layers.push(layout.blob(OCI_LAYER_ZSTD, &zstd_frame(&tar)));
    }
    let config = layout.config(OCI_CONFIG, "linux", "amd64", &diff_ids);
    let manifest =
        json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers});
    let root = layout.document(OCI_MANIFEST, &manifest);
    layout.finish(&root, Vec::new())
}

/// An OCI image with a non-distributable (foreign) base layer: named with `urls`, absent from
/// the layout, never uploaded; `blob_digests` holds only what is uploaded.
pub fn foreign_layer_image(dir: &Path) -> (FixtureImage, String) {
    let mut layout = Layout::new(dir);
    let foreign_tar = tar_of("windows-base.txt", b"a base layer that lives elsewhere\n");
    let foreign_gz = gzip(&foreign_tar);
    let foreign_digest = sha256(&foreign_gz);
    let foreign = json!({
        "mediaType": OCI_NONDISTRIBUTABLE,
        "digest": foreign_digest,
        "size": foreign_gz.len(),
        "urls": [format!("https://mcr.microsoft.com/v2/windows/blobs/{foreign_digest}")],
    });
    let (own, own_diff_id) = layout.gzip_layer(OCI_LAYER_GZIP, "app.txt", b"our own layer\n");
    let config = layout.config(
        OCI_CONFIG,
        "linux",
        "amd64",
        &[sha256(&foreign_tar), own_diff_id],
    );
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [foreign, own]});
    let root = layout.document(OCI_MANIFEST, &manifest);
    (layout.finish(&root, Vec::new()), foreign_digest)
}

/// An OCI 1.1 artifact: an image manifest with `artifactType`, the empty config (`{}`), and one
/// layer of the artifact's own type (as `oras push` writes).
pub fn artifact_with_empty_config(dir: &Path) -> FixtureImage {
    let mut layout = Layout::new(dir);
    let config = layout.blob(OCI_EMPTY, b"{}");
    let mut layer = layout.blob("text/plain", b"an artifact's only file\n");
    layer["annotations"] = json!({"org.opencontainers.image.title": "notes.txt"});
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.notes",
        "config": config,
        "layers": [layer],
    });
    let root = layout.document(OCI_MANIFEST, &manifest);
    layout.finish(&root, Vec::new())
}

/// A Helm chart as `helm push` stores it: the Helm config and the chart's `.tgz`.
pub fn helm_chart(dir: &Path) -> FixtureImage {
    let mut layout = Layout::new(dir);
    let config =
        json!({"name": "app", "version": "1.0.0", "apiVersion": "v2", "description": "a chart"});
    let config = layout.blob(HELM_CONFIG, config.to_string().as_bytes());
    let chart = gzip(&tar_of(
        "app/Chart.yaml",
        b"apiVersion: v2\nname: app\nversion: 1.0.0\n",
    ));
    let chart = layout.blob(HELM_CHART, &chart);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [chart],
        "annotations": {"org.opencontainers.image.title": "app", "org.opencontainers.image.version": "1.0.0"},
    });
    let root = layout.document(OCI_MANIFEST, &manifest);
    layout.finish(&root, Vec::new())
}

/// The OCI 1.1 release candidates' artifact manifest (`application/vnd.oci.artifact.manifest.v1+json`):
/// `blobs` instead of config and layers, dropped from the final spec.
pub fn artifact_manifest(dir: &Path) -> FixtureImage {
    let mut layout = Layout::new(dir);
    let blob = layout.blob("text/plain", b"signed by nobody\n");
    let manifest = json!({
        "mediaType": OCI_ARTIFACT_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "blobs": [blob],
    });
    let root = layout.document(OCI_ARTIFACT_MANIFEST, &manifest);
    layout.finish(&root, Vec::new())
}

/// A referrer: an artifact whose `subject` is an image. The layout holds the subject image too,
/// under its own name (`subject`), so both can be pushed; the fixture is the referrer, and the
/// subject's fixture comes second.
pub fn referrer(dir: &Path) -> (FixtureImage, FixtureImage) {
    let mut layout = Layout::new(dir);
    let subject = layout.image("linux", "amd64", b"the image that is signed\n", false);
    let subject_blobs = layout.blobs.clone();
    layout.blobs.clear();
    let config = layout.blob(OCI_EMPTY, b"{}");
    let signature = layout.blob("application/vnd.example.signature", b"signature bytes\n");
    let mut subject_descriptor = subject.clone();
    if let Some(fields) = subject_descriptor.as_object_mut() {
        fields.remove("platform");
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "config": config,
        "layers": [signature],
        "subject": subject_descriptor,
    });
    let root = layout.document(OCI_MANIFEST, &manifest);
    let referrer = layout.finish(&root, Vec::new());
    // Name the subject too: index.json gets a second entry.
    let index_path = dir.join("index.json");
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(&index_path).expect("read index.json"))
            .expect("index.json");
    let mut entry = subject_descriptor;
    entry["annotations"] = json!({ REF_NAME: "subject" });
    index["manifests"]
        .as_array_mut()
        .expect("manifests")
        .push(entry);
    std::fs::write(&index_path, index.to_string()).expect("write index.json");
    let subject = FixtureImage {
        manifest_digest: text(&subject["digest"]),
        blob_digests: subject_blobs,
        ref_name: "subject".to_string(),
        children: Vec::new(),
    };
    let referrer = FixtureImage {
        ref_name: "1.0".to_string(),
        ..referrer
    };
    (referrer, subject)
}

/// An index of `media_type` over `entries`, tagged `1.0`.
fn index_of(mut layout: Layout, media_type: &str, entries: Vec<Value>) -> FixtureImage {
    let children = entries.iter().map(|e| text(&e["digest"])).collect();
    let index = json!({"schemaVersion": 2, "mediaType": media_type, "manifests": entries});
    let root = layout.document(media_type, &index);
    layout.finish(&root, children)
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

/// A tar holding one file.
pub fn tar_of(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_ustar();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append_data(&mut header, name, content)
        .expect("tar entry");
    builder.into_inner().expect("finish tar")
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("finish gzip")
}

/// `bytes` as one zstd frame of raw (stored) blocks, written by RFC 8878 without a zstd
/// library: magic, a frame header with the content size, blocks of at most 128 KiB.
pub fn zstd_frame(bytes: &[u8]) -> Vec<u8> {
    const MAX_BLOCK: usize = 128 << 10;
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd];
    // Frame header descriptor: a 4-byte content size, single segment, no checksum.
    frame.push(0b1010_0000);
    frame.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    let mut chunks: Vec<&[u8]> = bytes.chunks(MAX_BLOCK).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        // Block header: last-block bit, type 0 (raw), size; 3 bytes little-endian.
        let header = ((chunk.len() as u32) << 3) | u32::from(i == last);
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.extend_from_slice(chunk);
    }
    frame
}
