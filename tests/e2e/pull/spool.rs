//! A pull into a docker archive writes one tar, blob after blob; blobs waiting for their turn
//! download meanwhile into spool files, so the pull takes about as long as its slowest
//! downloads side by side, not their sum, and leaves nothing in TMPDIR.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support;
use support::hostile::{Hostile, respond};
use support::sha256;

/// Each blob is answered after this long, as a far registry would.
const BLOB_DELAY: Duration = Duration::from_millis(600);

#[test]
fn blobs_waiting_for_the_tar_download_meanwhile_and_leave_no_spool_file() {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let layers: Vec<Vec<u8>> = (0..4u8).map(|n| vec![b'a' + n; 3000]).collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": layers.iter().map(|l| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(l), "size": l.len()})).collect::<Vec<_>>(),
    })
    .to_string();
    let blobs: Vec<(String, Vec<u8>)> = std::iter::once(config.clone())
        .chain(layers.clone())
        .map(|b| (sha256(&b), b))
        .collect();
    let registry = Hostile::start(move |request, conn| {
        let path = request.path.as_str();
        if path == "/v2/" {
            return respond(conn, "200 OK", &[], b"{}");
        }
        if path.contains("/manifests/") {
            let media_type = ("Content-Type", "application/vnd.oci.image.manifest.v1+json");
            return respond(conn, "200 OK", &[media_type], manifest.as_bytes());
        }
        if let Some((_, blob)) = blobs.iter().find(|(digest, _)| path.ends_with(digest)) {
            std::thread::sleep(BLOB_DELAY);
            return respond(conn, "200 OK", &[], blob);
        }
        respond(conn, "404 Not Found", &[], b"{}")
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).expect("TMPDIR");
    let archive = dir.path().join("app.tar");
    let started = Instant::now();
    let output = support::idpbuilder()
        .env("TMPDIR", &tmp)
        .args(["pull", "-q", "--plain-http", "--concurrency", "4"])
        .arg(format!("{}/team/src:1.0", registry.host()))
        .arg(format!("docker-archive:{}", archive.display()))
        .timeout(Duration::from_secs(60))
        .output()
        .expect("run idpbuilder pull");
    let took = started.elapsed();
    assert!(output.status.success(), "{}", support::stderr(&output));
    // One after another, the five blobs take 3 s; four at a time, two rounds.
    assert!(
        took < BLOB_DELAY * 4,
        "took {took:?}: the blobs were downloaded one after another"
    );
    let mut names = Vec::new();
    let mut tar = tar::Archive::new(std::fs::File::open(&archive).expect("the archive"));
    for entry in tar.entries().expect("a tar") {
        let entry = entry.expect("an entry");
        names.push(entry.path().expect("a name").display().to_string());
    }
    for layer in &layers {
        let name = format!("blobs/sha256/{}", &sha256(layer)[7..]);
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let left: Vec<_> = std::fs::read_dir(&tmp).expect("TMPDIR").collect();
    assert!(left.is_empty(), "spool files left in TMPDIR: {left:?}");
}
