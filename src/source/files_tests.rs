//! Tests of [`super`]: blob ranges reopened at any offset, whatever holds them.

use tokio::io::AsyncReadExt;

use super::*;
use crate::source::store::Store;
use crate::source::testing::tar_files;

async fn read_from(location: &Location, offset: u64) -> Vec<u8> {
    let range = FileRange {
        location: location.clone(),
    };
    let mut out = Vec::new();
    range
        .open_at(offset)
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    out
}

#[tokio::test]
async fn a_range_reads_the_same_from_a_tar_a_tar_gz_or_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let layer: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let files: [(&str, &[u8]); 3] = [
        ("config.json", b"{\"os\":\"linux\"}"),
        ("layer", &layer),
        ("index.json", b"{}"),
    ];
    for gzip in [false, true] {
        let path = tmp.path().join(if gzip { "a.tar.gz" } else { "a.tar" });
        tar_files(&path, &files, gzip);
        let store = Store::archive(&path).unwrap();
        let location = store.locate("layer").unwrap().unwrap();
        let encoding = if gzip {
            Encoding::Gzip
        } else {
            Encoding::Plain
        };
        assert_eq!(location.encoding, encoding);
        for offset in [0, 1, 65_537, 199_999, 200_000, 300_000] {
            let start = (offset as usize).min(layer.len());
            assert_eq!(
                read_from(&location, offset).await,
                &layer[start..],
                "gzip {gzip}, offset {offset}"
            );
        }
        let config = store.locate("config.json").unwrap().unwrap();
        assert_eq!(
            config.held().is_some(),
            gzip,
            "held in memory from a .tar.gz"
        );
        assert_eq!(read_from(&config, 7).await, b"linux\"}");
    }
}
