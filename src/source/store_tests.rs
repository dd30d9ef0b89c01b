//! Tests of [`super`]: tar indexing, links, gzip and damaged archives.

use super::*;

fn tar_bytes(files: &[(&str, &[u8])], links: &[(&str, &str, tar::EntryType)]) -> Vec<u8> {
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

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn read(store: &Store, path: &str) -> Vec<u8> {
    store.read_small(path, JSON_LIMIT).unwrap()
}

#[test]
fn normalise_drops_dot_prefixes_and_resolves_parents() {
    assert_eq!(normalise("./a/b").as_deref(), Some("a/b"));
    assert_eq!(normalise("/a//b/").as_deref(), Some("a/b"));
    assert_eq!(normalise("a/../../b").as_deref(), Some("b"));
    assert_eq!(normalise("./"), None);
}

#[test]
fn tar_entries_are_byte_ranges_of_the_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        tmp.path(),
        "a.tar",
        &tar_bytes(&[("./index.json", b"{}"), ("x/y", b"hello")], &[]),
    );
    let store = Store::archive(&path).unwrap();
    assert_eq!(read(&store, "index.json"), b"{}");
    let location = store.locate("./x/y").unwrap().unwrap();
    assert_eq!(location.len, 5);
    assert_eq!(location.file.as_path(), path.as_path());
    assert_eq!(hash(&location).unwrap(), Digest::of(b"hello"));
    assert_eq!(head(&location, 2).unwrap(), b"he");
    assert!(!store.exists("nope"));
    assert!(store.keep_alive().is_none());
}

#[test]
fn symlinks_and_hard_links_lead_to_their_target() {
    let tmp = tempfile::tempdir().unwrap();
    let links = [
        ("b/layer.tar", "../a/layer.tar", tar::EntryType::Symlink),
        ("c/layer.tar", "a/layer.tar", tar::EntryType::Link),
        ("d/layer.tar", "/b/layer.tar", tar::EntryType::Symlink),
        ("loop", "loop", tar::EntryType::Symlink),
    ];
    let path = write(
        tmp.path(),
        "l.tar",
        &tar_bytes(&[("a/layer.tar", b"data")], &links),
    );
    let store = Store::archive(&path).unwrap();
    for name in ["b/layer.tar", "c/layer.tar", "d/layer.tar"] {
        assert_eq!(read(&store, name), b"data", "{name}");
    }
    assert!(store.locate("loop").unwrap().is_none());
}

#[test]
fn gzip_is_detected_by_content_and_decompressed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar_bytes(&[("index.json", b"[1]")], &[]))
        .unwrap();
    let path = write(tmp.path(), "no-extension", &gz.finish().unwrap());
    let store = Store::archive(&path).unwrap();
    assert_eq!(read(&store, "index.json"), b"[1]");
    let location = store.locate("index.json").unwrap().unwrap();
    assert_ne!(location.file.as_path(), path.as_path());
    assert!(store.keep_alive().is_some());
}

#[test]
fn a_truncated_tar_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = tar_bytes(&[("big", &[7u8; 4000])], &[]);
    let path = write(tmp.path(), "cut.tar", &bytes[..2048]);
    let err = Store::archive(&path).unwrap_err();
    assert!(
        err.message()
            .contains("cut.tar is not a readable tar archive"),
        "{}",
        err.message()
    );
    let path = write(tmp.path(), "cut2.tar", &bytes[..700]);
    assert!(Store::archive(&path).is_err());
}

#[test]
fn a_truncated_gzip_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar_bytes(&[("index.json", &[1u8; 10000])], &[]))
        .unwrap();
    let bytes = gz.finish().unwrap();
    let path = write(tmp.path(), "cut.tar.gz", &bytes[..bytes.len() / 2]);
    let err = Store::archive(&path).unwrap_err();
    assert!(
        err.message()
            .contains("cut.tar.gz is not a readable gzip archive"),
        "{}",
        err.message()
    );
}

#[test]
fn text_and_zstd_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "notes.txt", &[b'x'; 1024]);
    assert!(
        Store::archive(&path)
            .unwrap_err()
            .message()
            .contains("notes.txt is not a readable tar")
    );
    let path = write(tmp.path(), "a.tar.zst", &[0x28, 0xb5, 0x2f, 0xfd, 0, 0]);
    assert!(
        Store::archive(&path)
            .unwrap_err()
            .message()
            .contains("zstd")
    );
}

#[test]
fn oversized_json_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("index.json"), b"[1,2,3]").unwrap();
    let store = Store::dir(tmp.path());
    assert_eq!(read(&store, "index.json"), b"[1,2,3]");
    let err = store.read_small("index.json", 3).unwrap_err();
    assert!(
        err.message().contains("more than the 3 allowed"),
        "{}",
        err.message()
    );
    assert!(
        store
            .read_small("missing.json", 3)
            .unwrap_err()
            .message()
            .contains("has no missing.json")
    );
}
