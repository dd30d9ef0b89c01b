//! Memory stays flat: pushing a 256 MiB image must not hold layers in memory. The child's peak
//! RSS is its own (`support::child::measured`), not the test process's.

use crate::support;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use support::child::measured;
use support::launch::idpbuilder_process;
use support::registry::{Registry, RegistryOptions};

const LAYERS: usize = 4;
const LAYER_SIZE: usize = 64 << 20;
pub const LIMIT_KIB: i64 = 32 * 1024;

/// An OCI layout with uncompressed layers of pseudo-random bytes (no gzip: fast to write).
pub fn big_layout(dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("blobs dir");
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut layers = Vec::new();
    for _ in 0..LAYERS {
        let mut hasher = Sha256::new();
        let tmp = blobs.join("incoming");
        let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp).expect("create layer"));
        let mut chunk = vec![0u8; 1 << 20];
        for _ in 0..LAYER_SIZE / chunk.len() {
            for word in chunk.chunks_exact_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                word.copy_from_slice(&state.to_le_bytes());
            }
            hasher.update(&chunk);
            file.write_all(&chunk).expect("write layer");
        }
        drop(file);
        let hex = hex::encode(hasher.finalize());
        std::fs::rename(&tmp, blobs.join(&hex)).expect("name layer");
        layers.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": format!("sha256:{hex}"),
            "size": LAYER_SIZE,
        }));
    }
    let put = |bytes: &[u8]| {
        let hex = hex::encode(Sha256::digest(bytes));
        std::fs::write(blobs.join(&hex), bytes).expect("write blob");
        serde_json::json!({"digest": format!("sha256:{hex}"), "size": bytes.len()})
    };
    let diff_ids: Vec<_> = layers.iter().map(|l| l["digest"].clone()).collect();
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}});
    let mut config_desc = put(config.to_string().as_bytes());
    config_desc["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config_desc, "layers": layers});
    let mut entry = put(manifest.to_string().as_bytes());
    entry["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [entry]});
    std::fs::write(dir.join("index.json"), index.to_string()).expect("index.json");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
}

#[test]
fn pushing_256_mib_keeps_peak_rss_under_32_mib() {
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("big");
    big_layout(&layout);

    let run = measured(
        idpbuilder_process()
            .args(["push", "-q", "--plain-http"])
            .arg(&layout)
            .arg(format!("{}/team/big:1.0", registry.host())),
        Duration::from_secs(600),
    );
    assert_eq!(run.code(), Some(0), "push failed:\n{}", run.stderr());
    let peak_kib = run.peak_kib;
    eprintln!("peak RSS of the push: {} KiB", peak_kib);
    assert!(
        peak_kib < LIMIT_KIB,
        "peak RSS {peak_kib} KiB is over {LIMIT_KIB} KiB"
    );
}
