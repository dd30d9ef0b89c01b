//! Test helpers: small OCI layouts and tar archives built in temporary directories.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::digest::Digest;

pub(crate) use crate::oci::media_type::{
    OCI_CONFIG as CONFIG, OCI_INDEX as INDEX, OCI_LAYER_GZIP as LAYER_GZIP,
    OCI_MANIFEST as MANIFEST,
};

/// An OCI layout directory being written.
pub(crate) struct Layout {
    pub(crate) dir: PathBuf,
}

impl Layout {
    pub(crate) fn new(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_path_buf(),
        }
    }

    /// Stores `bytes` as a blob; returns its descriptor.
    pub(crate) fn blob(&self, media_type: &str, bytes: &[u8]) -> Value {
        let digest = Digest::of(bytes);
        std::fs::write(self.dir.join("blobs/sha256").join(digest.hex()), bytes).unwrap();
        json!({"mediaType": media_type, "digest": digest.as_str(), "size": bytes.len()})
    }

    /// An image for `os/arch` with the given layer contents; returns the manifest descriptor
    /// (with a platform field) and the config + layer digests.
    pub(crate) fn image(&self, os: &str, arch: &str, layers: &[&[u8]]) -> (Value, Vec<String>) {
        let config = json!({"os": os, "architecture": arch, "rootfs": {"type": "layers"}});
        let config = self.blob(CONFIG, config.to_string().as_bytes());
        let layers: Vec<Value> = layers.iter().map(|l| self.blob(LAYER_GZIP, l)).collect();
        let mut digests = vec![config["digest"].as_str().unwrap().to_string()];
        digests.extend(
            layers
                .iter()
                .map(|l| l["digest"].as_str().unwrap().to_string()),
        );
        let manifest =
            json!({"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": layers});
        let mut desc = self.blob(MANIFEST, manifest.to_string().as_bytes());
        desc["platform"] = json!({"os": os, "architecture": arch});
        (desc, digests)
    }

    /// An image index over `children`; returns its descriptor.
    pub(crate) fn index(&self, children: &[Value]) -> Value {
        let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": children});
        self.blob(INDEX, index.to_string().as_bytes())
    }

    /// Writes `index.json` with these entries.
    pub(crate) fn finish(&self, entries: &[Value]) {
        let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries});
        std::fs::write(self.dir.join("index.json"), index.to_string()).unwrap();
    }
}

/// `desc` with a ref name annotation.
pub(crate) fn named(desc: &Value, name: &str) -> Value {
    let mut desc = desc.clone();
    desc["annotations"] = json!({"org.opencontainers.image.ref.name": name});
    desc
}

/// Tars the contents of `dir` (paths relative to it, `./`-prefixed as GNU tar does) into `out`,
/// gzip'd when `gzip`.
pub(crate) fn tar_dir(dir: &Path, out: &Path, gzip: bool) {
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_dir_all(".", dir).unwrap();
    let bytes = builder.into_inner().unwrap();
    write_maybe_gzip(out, &bytes, gzip);
}

/// Builds a tar of `files` (name, content) into `out`.
pub(crate) fn tar_files(out: &Path, files: &[(&str, &[u8])], gzip: bool) {
    write_maybe_gzip(out, &tar_bytes(files, &[]), gzip);
}

/// A tar in memory: `files` (name, content, mode 0644), then `links` (name, target, kind).
pub(crate) fn tar_bytes(
    files: &[(&str, &[u8])],
    links: &[(&str, &str, tar::EntryType)],
) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, *data).unwrap();
    }
    for (name, target, kind) in links {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_size(0);
        builder.append_link(&mut header, name, target).unwrap();
    }
    builder.into_inner().unwrap()
}

pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn write_maybe_gzip(out: &Path, bytes: &[u8], compress: bool) {
    let bytes = if compress {
        gzip(bytes)
    } else {
        bytes.to_vec()
    };
    std::fs::write(out, bytes).unwrap();
}

/// The digests of an image's blobs, for comparing with expectations.
pub(crate) fn digests(image: &super::Image) -> Vec<String> {
    image.blobs.iter().map(|b| b.digest.to_string()).collect()
}
