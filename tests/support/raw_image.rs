//! Large test images made fast, for the fault and protocol tests: an OCI layout whose layers are
//! raw pseudo-random bytes (no tar, no gzip). Neither `idpbuilder push` nor a registry looks
//! inside a layer, and building a 40 MiB layer this way takes milliseconds instead of the
//! seconds that gzip at opt-level 0 needs in [`super::fixtures`].

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest as _, Sha256};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// What [`raw_layout`] wrote.
#[derive(Debug, Clone)]
pub struct RawImage {
    /// The layout directory (ref name `1.0`).
    pub dir: PathBuf,
    pub manifest_digest: String,
    pub manifest: Vec<u8>,
    /// Config first, then each layer: `(sha256:HEX, size)`.
    pub blobs: Vec<(String, u64)>,
}

impl RawImage {
    pub fn blob_digests(&self) -> Vec<String> {
        self.blobs.iter().map(|(d, _)| d.clone()).collect()
    }

    pub fn path(&self) -> String {
        self.dir.display().to_string()
    }
}

/// Writes an OCI layout in `dir` with one manifest (ref name `1.0`) whose layers hold
/// `layer_sizes` bytes each, different for every `seed`.
pub fn raw_layout(dir: &Path, layer_sizes: &[usize], seed: u64) -> RawImage {
    let blobs_dir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs_dir).expect("create blobs dir");
    let put = |bytes: &[u8]| -> (String, u64) {
        let hex = hex::encode(Sha256::digest(bytes));
        let mut file = std::fs::File::create(blobs_dir.join(&hex)).expect("create blob");
        file.write_all(bytes).expect("write blob");
        (format!("sha256:{hex}"), bytes.len() as u64)
    };
    let layers: Vec<(String, u64)> = layer_sizes
        .iter()
        .enumerate()
        .map(|(i, size)| put(&noise(seed.wrapping_mul(1000) + i as u64, *size)))
        .collect();
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|(d, _)| d).collect::<Vec<_>>()},
    })
    .to_string();
    let config = put(config.as_bytes());
    let descriptor = |media_type: &str, (digest, size): &(String, u64)| json!({"mediaType": media_type, "digest": digest, "size": size});
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
        "layers": layers.iter().map(|l| descriptor("application/vnd.oci.image.layer.v1.tar", l)).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes();
    let (manifest_digest, manifest_size) = put(&manifest);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": MANIFEST,
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "1.0"},
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("write index.json");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("write oci-layout");
    let mut blobs = vec![config];
    blobs.extend(layers);
    RawImage {
        dir: dir.to_path_buf(),
        manifest_digest,
        manifest,
        blobs,
    }
}

/// `len` bytes of a 64-bit LCG seeded with `seed`: cheap, and distinct for each seed.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `sha256:HEX` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
