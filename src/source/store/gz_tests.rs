//! Tests of [`super`]: the streaming index of a gzip'd tar and ranges of its stream.

use std::io::Write as _;

use tokio::io::AsyncReadExt;

use super::*;
use crate::source::testing::{gzip, tar_bytes};

fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn held(nodes: &HashMap<String, Node>, name: &str) -> Vec<u8> {
    match nodes.get(name) {
        Some(Node::File { head, .. }) => head.0.to_vec(),
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn the_index_keeps_small_json_whole_and_only_the_head_of_anything_else() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = noise(100_000);
    let pretty = b"\n\n   \t   \n      {\n  \"schemaVersion\": 2\n}\n";
    let path = tmp.path().join("a.tar.gz");
    std::fs::write(
        &path,
        gzip(&tar_bytes(
            &[
                ("index.json", b"{\"manifests\":[]}"),
                ("pretty.json", pretty),
                ("layer", &layer),
                ("tiny", b"abc"),
            ],
            &[],
        )),
    )
    .unwrap();
    let nodes = index(&path).unwrap();
    assert_eq!(held(&nodes, "index.json"), b"{\"manifests\":[]}");
    assert_eq!(held(&nodes, "pretty.json"), pretty);
    assert_eq!(held(&nodes, "layer"), &layer[..HEAD]);
    assert_eq!(held(&nodes, "tiny"), b"abc");
}

#[test]
fn json_past_the_budget_is_not_held() {
    let tmp = tempfile::tempdir().unwrap();
    let json = format!("[{}0]", "0,".repeat(3 << 19));
    let files: Vec<(String, &[u8])> = (0..4)
        .map(|i| (format!("{i}.json"), json.as_bytes()))
        .collect();
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    let path = tmp.path().join("a.tar.gz");
    std::fs::write(&path, gzip(&tar_bytes(&files, &[]))).unwrap();
    let nodes = index(&path).unwrap();
    let whole = (0..4)
        .filter(|i| held(&nodes, &format!("{i}.json")).len() == json.len())
        .count();
    assert_eq!(whole, (HOLD_BUDGET / json.len() as u64) as usize);
}

#[test]
fn a_corrupt_or_cut_gzip_is_refused_while_indexing() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = gzip(&tar_bytes(
        &[("index.json", b"{}"), ("layer", &noise(50_000))],
        &[],
    ));
    let path = tmp.path().join("cut.tar.gz");
    std::fs::write(&path, &bytes[..bytes.len() - 6]).unwrap();
    let err = index(&path).unwrap_err();
    assert!(
        err.message()
            .contains("cut.tar.gz is not a readable gzip archive"),
        "{}",
        err.message()
    );
    let mut flipped = bytes.clone();
    let at = flipped.len() - 5;
    flipped[at] ^= 0xff; // the stored length: the checksum trailer no longer matches
    std::fs::write(&path, &flipped).unwrap();
    assert!(index(&path).is_err());
    let mut trailing = bytes;
    trailing.extend_from_slice(b"not gzip");
    std::fs::write(&path, &trailing).unwrap();
    assert!(
        index(&path)
            .unwrap_err()
            .message()
            .contains("is not a readable gzip archive")
    );
}

#[test]
fn json_is_spotted_by_its_first_non_blank_byte() {
    assert!(looks_like_json(b"{\"a\""));
    assert!(looks_like_json(b"  \n[1,"));
    assert!(looks_like_json(b"   "));
    assert!(!looks_like_json(&[0x1f, 0x8b, 8, 0]));
    assert!(!looks_like_json(b"ustar"));
}

#[tokio::test]
async fn a_range_streams_from_any_offset_and_a_short_stream_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = noise(1_000_000);
    let path = Arc::new(tmp.path().join("data.gz"));
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&data).unwrap();
    std::fs::write(path.as_path(), encoder.finish().unwrap()).unwrap();
    let parked: Arc<Parked> = Arc::default();
    for (offset, len) in [(0, 10), (0, 1_000_000), (123_457, 500_000), (999_999, 1)] {
        let mut reader = stream(path.clone(), parked.clone(), offset, len)
            .await
            .unwrap();
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.unwrap();
        assert_eq!(
            out,
            &data[offset as usize..(offset + len) as usize],
            "{offset}+{len}"
        );
    }
    let mut reader = stream(path.clone(), parked.clone(), 999_000, 5_000)
        .await
        .unwrap();
    let mut out = Vec::new();
    let err = reader.read_to_end(&mut out).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(out.len(), 1_000);
    // A range past the end, or a missing file, fails before the reader is handed out.
    let past = stream(path.clone(), parked.clone(), 2_000_000, 10)
        .await
        .err()
        .unwrap();
    assert_eq!(past.kind(), io::ErrorKind::UnexpectedEof);
    let gone = stream(Arc::new(tmp.path().join("gone.gz")), Arc::default(), 0, 10).await;
    assert_eq!(gone.err().unwrap().kind(), io::ErrorKind::NotFound);
    // A reader dropped part-way stops its thread.
    drop(
        stream(path.clone(), parked.clone(), 0, 1_000_000)
            .await
            .unwrap(),
    );
}

#[tokio::test]
async fn a_range_further_on_goes_on_from_where_the_last_one_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let data = noise(600_000);
    let path = Arc::new(tmp.path().join("data.gz"));
    std::fs::write(path.as_path(), gzip(&data)).unwrap();
    let parked: Arc<Parked> = Arc::default();
    let positions = || -> Vec<u64> {
        let mut positions: Vec<u64> = parked.0.lock().unwrap().iter().map(|(p, _)| *p).collect();
        positions.sort_unstable();
        positions
    };
    let ranges = [
        (100_000, 1_000, vec![101_000]),
        (200_000, 50_000, vec![250_000]), // went on from 101_000
        (250_000, 1, vec![250_001]),      // from exactly where it stopped
        (0, 10, vec![10, 250_001]),       // none before 0: a new decoder
        (500_000, 100_000, vec![10, 600_000]),
    ];
    for (offset, len, after) in ranges {
        let mut out = Vec::new();
        stream(path.clone(), parked.clone(), offset, len)
            .await
            .unwrap()
            .read_to_end(&mut out)
            .await
            .unwrap();
        assert_eq!(out, &data[offset as usize..(offset + len) as usize]);
        assert_eq!(positions(), after, "after {offset}+{len}");
    }
    // Each further back than any parked one, so each needs a new decoder.
    for offset in (0..PARKED_MAX as u64 + 2).rev() {
        let mut reader = stream(path.clone(), parked.clone(), offset, 1)
            .await
            .unwrap();
        reader.read_to_end(&mut Vec::new()).await.unwrap();
    }
    assert_eq!(
        positions().len(),
        PARKED_MAX,
        "no more than PARKED_MAX are kept"
    );
}
