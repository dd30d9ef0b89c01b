//! Shared test support: the one way to launch the binary (`launch`), real registries
//! (distribution and container-registry), wiremock registries, a fault-injecting proxy, a
//! stateful model of Gitea's registry (and a wiremock Gitea fake), certificates, a token server
//! and small images.
//!
//! Each test binary says `mod support;` and uses what it needs, so unused items are normal here.
#![allow(dead_code)]

pub mod certs;
pub mod child;
pub mod container_registry;
pub mod engine;
pub mod fault_proxy;
pub mod fixtures;
pub mod fixtures_docker;
pub mod fixtures_shapes;
pub mod gitea_fake;
pub mod gitea_model;
pub mod hostile;
pub mod kube_api;
pub mod launch;
pub mod mock_registry;
pub mod push;
pub mod raw_image;
pub mod registry;
pub mod server_process;
pub mod skopeo;
pub mod slow_link;
pub mod token_server;

use std::io::Write as _;
use std::path::{Path, PathBuf};

// The launch helpers every suite uses, at the top of `support`.
#[allow(unused_imports)]
pub use launch::{idpbuilder, idpbuilder_at, stderr, stdout, text};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;
use sha2::{Digest as _, Sha256};

/// The ref name (`org.opencontainers.image.ref.name`) of the image [`tiny_layout`] writes.
pub const TINY_TAG: &str = "1.0";

/// Writes a minimal single-platform OCI image layout in `dir/tiny`: one gzip'd tar layer
/// holding `hello.txt`, a config whose `rootfs.diff_ids` match it, a manifest, `index.json`
/// (ref name [`TINY_TAG`]) and `oci-layout`. The content is fixed, so digests are stable.
/// Returns the layout directory and its skopeo reference `oci:DIR:1.0`.
pub fn tiny_layout(dir: &Path) -> (PathBuf, String) {
    let layout = dir.join("tiny");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("create layout blobs dir");

    let content = b"hello from idpbuilder-push tests\n";
    let mut header = tar::Header::new_ustar();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append_data(&mut header, "hello.txt", &content[..])
        .expect("append tar entry");
    let tar = builder.into_inner().expect("finish tar");
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&tar).expect("gzip layer");
    let layer = gz.finish().expect("finish gzip");

    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&tar)]},
    })
    .to_string();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", config.as_bytes()),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", &layer)],
    })
    .to_string();
    let mut manifest_desc = descriptor(
        "application/vnd.oci.image.manifest.v1+json",
        manifest.as_bytes(),
    );
    manifest_desc["annotations"] = json!({"org.opencontainers.image.ref.name": TINY_TAG});
    let index = json!({"schemaVersion": 2, "manifests": [manifest_desc]}).to_string();

    for blob in [&layer[..], config.as_bytes(), manifest.as_bytes()] {
        let digest = sha256(blob);
        let hex = digest.trim_start_matches("sha256:");
        std::fs::write(blobs.join(hex), blob).expect("write layout blob");
    }
    std::fs::write(layout.join("index.json"), index).expect("write index.json");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("write oci-layout");
    let reference = format!("oci:{}:{TINY_TAG}", layout.display());
    (layout, reference)
}

/// `sha256:HEX` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()})
}
