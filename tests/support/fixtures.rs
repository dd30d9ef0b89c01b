#![allow(dead_code)]
//! Test images on disk for the end-to-end tests: OCI layouts (single and multi-platform), OCI
//! archives, and docker archives in the classic and the docker 25+ form. Layers are real tars
//! holding random (incompressible) bytes from a seeded PRNG, written as streams, so large layers
//! cost no memory; configs carry correct `rootfs.diff_ids`, so skopeo accepts every image.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// What image to build.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// The ref name annotation (a tag such as `1.0`).
    pub ref_name: String,
    /// One layer per entry, holding a file of this many random bytes.
    pub layer_sizes: Vec<usize>,
    /// Seeds the random content: the same spec always gives the same digests.
    pub seed: u64,
    pub os: String,
    pub architecture: String,
}

impl ImageSpec {
    /// A linux/amd64 image with seed 1.
    pub fn new(ref_name: &str, layer_sizes: &[usize]) -> ImageSpec {
        ImageSpec {
            ref_name: ref_name.to_string(),
            layer_sizes: layer_sizes.to_vec(),
            seed: 1,
            os: "linux".to_string(),
            architecture: "amd64".to_string(),
        }
    }

    pub fn seed(mut self, seed: u64) -> ImageSpec {
        self.seed = seed;
        self
    }

    pub fn platform(mut self, os: &str, architecture: &str) -> ImageSpec {
        self.os = os.to_string();
        self.architecture = architecture.to_string();
        self
    }
}

/// What a fixture wrote, as `sha256:HEX` digests.
#[derive(Debug, Clone)]
pub struct FixtureImage {
    /// The manifest (or index) the tag should point at after a push.
    pub manifest_digest: String,
    /// Every config and layer blob, each once.
    pub blob_digests: Vec<String>,
    /// The name to select the image with (`oci:DIR:REF`, `docker-archive:FILE:REF`).
    pub ref_name: String,
    /// The platform manifests of an index (empty for a single image).
    pub children: Vec<String>,
}

/// Writes (or adds to) an OCI image layout in `dir`: gzip'd layers, config, manifest, and an
/// `index.json` entry named `spec.ref_name`. Calling it again with another spec gives a layout
/// holding several images.
pub fn oci_layout(dir: &Path, spec: &ImageSpec) -> FixtureImage {
    let image = write_image(dir, spec, true);
    let mut entry = descriptor(MANIFEST, &image.manifest_digest, image.manifest_size);
    entry["annotations"] = json!({ REF_NAME: spec.ref_name });
    add_to_index(dir, entry);
    image.fixture(&spec.ref_name)
}

/// Writes an OCI layout in `dir` whose one `index.json` entry (ref name `multi`) is an image
/// index with one manifest per `(os, architecture)`.
pub fn multi_platform_layout(dir: &Path, platforms: &[(&str, &str)]) -> FixtureImage {
    let mut entries = Vec::new();
    let mut blob_digests = Vec::new();
    let mut children = Vec::new();
    for (i, (os, architecture)) in platforms.iter().enumerate() {
        let spec = ImageSpec::new("multi", &[3000, 70_000])
            .seed(100 + i as u64)
            .platform(os, architecture);
        let image = write_image(dir, &spec, true);
        let mut entry = descriptor(MANIFEST, &image.manifest_digest, image.manifest_size);
        entry["platform"] = json!({"os": os, "architecture": architecture});
        entries.push(entry);
        blob_digests.extend(image.blob_digests());
        children.push(image.manifest_digest);
    }
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}).to_string();
    let (digest, size) = put_blob(dir, index.as_bytes());
    let mut entry = descriptor(INDEX, &digest, size);
    entry["annotations"] = json!({ REF_NAME: "multi" });
    add_to_index(dir, entry);
    FixtureImage {
        manifest_digest: digest,
        blob_digests,
        ref_name: "multi".to_string(),
        children,
    }
}

/// Writes an OCI archive (the layout of [`oci_layout`] in a tar, gzip'd when `path` ends in
/// `.gz`).
pub fn oci_archive(path: &Path, spec: &ImageSpec) -> FixtureImage {
    let staging = tempfile::tempdir().expect("staging dir");
    let image = oci_layout(staging.path(), spec);
    tar_dir(staging.path(), path);
    image
}

/// Writes a classic docker archive (`docker save` before docker 25): `manifest.json`,
/// `<hex>.json` config, `<hex>/layer.tar` uncompressed layers. `manifest_digest` is the digest of
/// the OCI manifest `idpbuilder push` builds for it (compact JSON, fields in the order
/// schemaVersion, mediaType, config, layers; each descriptor mediaType, digest, size).
pub fn classic_docker_archive(path: &Path, repo_tags: &[&str], spec: &ImageSpec) -> FixtureImage {
    let staging = tempfile::tempdir().expect("staging dir");
    let dir = staging.path();
    let image = write_image(dir, spec, false);
    let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
    let blob = |d: &str| dir.join("blobs/sha256").join(hex(d));
    let config_name = format!("{}.json", hex(&image.config.0));
    std::fs::rename(blob(&image.config.0), dir.join(&config_name)).expect("move config");
    let mut layer_names = Vec::new();
    for (digest, _) in &image.layers {
        let name = format!("{}/layer.tar", hex(digest));
        std::fs::create_dir_all(dir.join(hex(digest))).expect("layer dir");
        std::fs::rename(blob(digest), dir.join(&name)).expect("move layer");
        layer_names.push(name);
    }
    std::fs::remove_dir_all(dir.join("blobs")).expect("remove blobs");
    let manifest = json!([{"Config": config_name, "RepoTags": repo_tags, "Layers": layer_names}]);
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).expect("write manifest.json");
    tar_dir(dir, path);

    let desc = |media_type: &str, (digest, size): &(String, u64)| {
        format!(r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{size}}}"#)
    };
    let layers: Vec<String> = image.layers.iter().map(|l| desc(LAYER, l)).collect();
    let built = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{},"layers":[{}]}}"#,
        desc(CONFIG, &image.config),
        layers.join(",")
    );
    FixtureImage {
        manifest_digest: sha256(built.as_bytes()),
        ..image.fixture(repo_tags.first().unwrap_or(&""))
    }
}

/// Writes a docker archive as docker 25+ `docker save` does: an OCI layout with uncompressed
/// layers whose `index.json` entries carry `io.containerd.image.name` and the tag as ref name,
/// plus `manifest.json` pointing into `blobs/`.
pub fn modern_docker_archive(path: &Path, repo_tags: &[&str], spec: &ImageSpec) -> FixtureImage {
    let staging = tempfile::tempdir().expect("staging dir");
    let dir = staging.path();
    let image = write_image(dir, spec, false);
    for tag in repo_tags {
        let mut entry = descriptor(MANIFEST, &image.manifest_digest, image.manifest_size);
        let tag_part = tag.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
        entry["annotations"] =
            json!({"io.containerd.image.name": full_name(tag), REF_NAME: tag_part});
        add_to_index(dir, entry);
    }
    if repo_tags.is_empty() {
        add_to_index(
            dir,
            descriptor(MANIFEST, &image.manifest_digest, image.manifest_size),
        );
    }
    let path_of = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    let layers: Vec<String> = image.layers.iter().map(|(d, _)| path_of(d)).collect();
    let manifest =
        json!([{"Config": path_of(&image.config.0), "RepoTags": repo_tags, "Layers": layers}]);
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).expect("write manifest.json");
    tar_dir(dir, path);
    image.fixture(repo_tags.first().unwrap_or(&""))
}

/// `sha256:HEX` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Digests and sizes of one image written to `dir/blobs/sha256`.
struct Written {
    config: (String, u64),
    layers: Vec<(String, u64)>,
    manifest_digest: String,
    manifest_size: u64,
}

impl Written {
    fn blob_digests(&self) -> Vec<String> {
        let mut digests = vec![self.config.0.clone()];
        digests.extend(self.layers.iter().map(|(d, _)| d.clone()));
        digests
    }

    /// The single image's fixture: `manifest_digest` as written, named `ref_name`.
    fn fixture(&self, ref_name: &str) -> FixtureImage {
        FixtureImage {
            manifest_digest: self.manifest_digest.clone(),
            blob_digests: self.blob_digests(),
            ref_name: ref_name.to_string(),
            children: Vec::new(),
        }
    }
}

/// Writes layers, config and manifest of `spec` as blobs of the layout at `dir`.
fn write_image(dir: &Path, spec: &ImageSpec, gzip: bool) -> Written {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("create blobs dir");
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, size) in spec.layer_sizes.iter().enumerate() {
        let (digest, size, diff_id) = write_layer(
            dir,
            &format!("layer-{i}.bin"),
            *size,
            (spec.seed << 16) ^ i as u64,
            gzip,
        );
        layers.push((digest, size));
        diff_ids.push(diff_id);
    }
    let config = json!({
        "architecture": spec.architecture,
        "os": spec.os,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
    .to_string();
    let config = put_blob(dir, config.as_bytes());
    let layer_type = if gzip { LAYER_GZIP } else { LAYER };
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": descriptor(CONFIG, &config.0, config.1),
        "layers": layers.iter().map(|(d, s)| descriptor(layer_type, d, *s)).collect::<Vec<_>>(),
    })
    .to_string();
    let (manifest_digest, manifest_size) = put_blob(dir, manifest.as_bytes());
    Written {
        config,
        layers,
        manifest_digest,
        manifest_size,
    }
}

/// Writes a tar holding `name` (`size` random bytes), gzip'd or not, as a blob of `dir`.
/// Returns the blob digest, its size and the diff id (digest of the uncompressed tar).
fn write_layer(dir: &Path, name: &str, size: usize, seed: u64, gz: bool) -> (String, u64, String) {
    let tar_path = dir.join(format!("partial-{name}.tar"));
    let mut tar = tar::Builder::new(BufWriter::new(
        File::create(&tar_path).expect("create layer"),
    ));
    let mut header = tar::Header::new_ustar();
    header.set_size(size as u64);
    header.set_mode(0o644);
    let data = RandomReader::new(seed, size);
    tar.append_data(&mut header, name, data)
        .expect("write layer");
    tar.into_inner()
        .expect("finish tar")
        .flush()
        .expect("flush layer");
    let diff_id = sha256_file(&tar_path);
    let blob = if gz {
        let gz_path = dir.join(format!("partial-{name}.tar.gz"));
        let out = BufWriter::new(File::create(&gz_path).expect("create gzip layer"));
        let mut gz = GzEncoder::new(out, Compression::fast());
        io::copy(&mut File::open(&tar_path).expect("open layer"), &mut gz).expect("gzip layer");
        gz.finish()
            .expect("finish gzip")
            .flush()
            .expect("flush gzip");
        std::fs::remove_file(&tar_path).expect("remove tar");
        gz_path
    } else {
        tar_path
    };
    let digest = sha256_file(&blob);
    let len = std::fs::metadata(&blob).expect("layer size").len();
    std::fs::rename(&blob, blob_path(dir, &digest)).expect("name layer");
    (digest, len, diff_id)
}

fn sha256_file(path: &Path) -> String {
    let mut hasher = Sha256::new();
    io::copy(&mut File::open(path).expect("open file"), &mut hasher).expect("hash file");
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// Writes `bytes` as a blob of the layout at `dir`; returns its digest and size.
fn put_blob(dir: &Path, bytes: &[u8]) -> (String, u64) {
    let digest = sha256(bytes);
    std::fs::write(blob_path(dir, &digest), bytes).expect("write blob");
    (digest, bytes.len() as u64)
}

fn descriptor(media_type: &str, digest: &str, size: u64) -> Value {
    json!({"mediaType": media_type, "digest": digest, "size": size})
}

/// Appends `entry` to `dir/index.json`, creating it and `oci-layout` when absent.
fn add_to_index(dir: &Path, entry: Value) {
    let layout = r#"{"imageLayoutVersion":"1.0.0"}"#;
    std::fs::write(dir.join("oci-layout"), layout).expect("write oci-layout");
    let path = dir.join("index.json");
    let mut index = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).expect("parse index.json"),
        Err(_) => json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": []}),
    };
    index["manifests"]
        .as_array_mut()
        .expect("manifests array")
        .push(entry);
    std::fs::write(path, index.to_string()).expect("write index.json");
}

/// `foo:1.0` as docker names it in full: `docker.io/library/foo:1.0`.
fn full_name(tag: &str) -> String {
    match tag.split_once('/') {
        Some((host, _)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            tag.to_string()
        }
        Some(_) => format!("docker.io/{tag}"),
        None => format!("docker.io/library/{tag}"),
    }
}

/// Tars the contents of `dir` into `path` (gzip'd when the name ends in `.gz`).
fn tar_dir(dir: &Path, path: &Path) {
    let file = BufWriter::new(File::create(path).expect("create archive"));
    let gzip = path.extension().is_some_and(|e| e == "gz");
    let out: Box<dyn Write> = if gzip {
        Box::new(GzEncoder::new(file, Compression::fast()))
    } else {
        Box::new(file)
    };
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    tar.append_dir_all(".", dir).expect("tar directory");
    tar.into_inner()
        .expect("finish archive")
        .flush()
        .expect("flush archive");
}

/// `remaining` bytes of xorshift64*: deterministic for a seed, and incompressible.
struct RandomReader {
    state: u64,
    remaining: usize,
}

impl RandomReader {
    fn new(seed: u64, remaining: usize) -> RandomReader {
        let state = seed.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        RandomReader { state, remaining }
    }
}

impl Read for RandomReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.remaining);
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state >> 12;
            self.state ^= self.state << 25;
            self.state ^= self.state >> 27;
            let bytes = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        self.remaining -= n;
        Ok(n)
    }
}

/// The path of a blob of the layout at `dir`.
pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// Writes the two-platform layout of [`multi_platform_layout`] wrapped in one more index: the
/// one `index.json` entry (ref name `multi`) is an index whose only manifest is the
/// two-platform index. Returns the outer index as `manifest_digest` and the inner one as the
/// only child.
pub fn nested_index_layout(dir: &Path) -> FixtureImage {
    let inner = multi_platform_layout(dir, &[("linux", "amd64"), ("linux", "arm64")]);
    let inner_bytes = std::fs::read(blob_path(dir, &inner.manifest_digest)).expect("inner index");
    let outer = json!({
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [descriptor(INDEX, &inner.manifest_digest, inner_bytes.len() as u64)],
    })
    .to_string();
    let (digest, size) = put_blob(dir, outer.as_bytes());
    let mut entry = descriptor(INDEX, &digest, size);
    entry["annotations"] = json!({ REF_NAME: "multi" });
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [entry]});
    std::fs::write(dir.join("index.json"), index.to_string()).expect("write index.json");
    FixtureImage {
        manifest_digest: digest,
        blob_digests: inner.blob_digests,
        ref_name: "multi".to_string(),
        children: vec![inner.manifest_digest],
    }
}
