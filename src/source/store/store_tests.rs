//! Tests of [`super`]: tar indexing, links, gzip and damaged archives.

use std::io::Write as _;

use super::*;
use crate::source::testing::{gzip, tar_bytes};

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
    assert_eq!(location.encoding, Encoding::Plain);
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
fn gzip_is_detected_by_content_and_indexed_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        tmp.path(),
        "no-extension",
        &gzip(&tar_bytes(&[("index.json", b"[1]")], &[])),
    );
    let store = Store::archive(&path).unwrap();
    assert_eq!(read(&store, "index.json"), b"[1]");
    let location = store.locate("index.json").unwrap().unwrap();
    assert_eq!(location.file.as_path(), path.as_path());
    assert_eq!(location.encoding, Encoding::Gzip);
    assert_eq!(location.offset, 512, "an offset in the decompressed tar");
    let files: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
    assert_eq!(files.len(), 1, "nothing was written next to it: {files:?}");
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
fn xz_and_bzip2_files_are_refused_with_the_command_that_decompresses_them() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, bytes, kind, command) in [
        (
            "a.tar.xz",
            &b"\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4\x46"[..],
            "xz",
            "xz -d -k",
        ),
        (
            "a.tar.bz2",
            &b"BZh91AY&SY\x00\x01"[..],
            "bzip2",
            "bunzip2 -k",
        ),
    ] {
        let path = write(tmp.path(), name, bytes);
        let err = Store::archive(&path).unwrap_err();
        assert!(
            err.message().ends_with(&format!(
                "{name} is {kind}-compressed, which is not supported"
            )),
            "{}",
            err.message()
        );
        let hint = err.hint().unwrap_or_default();
        assert!(
            hint.contains(&format!("{command} {}", path.display())),
            "{hint}"
        );
    }
}

#[test]
fn a_tar_cut_inside_an_entrys_padding_is_truncated() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = tar_bytes(&[("blob", &[7u8; 700]), ("index.json", b"{}")], &[]);
    // The first entry's data ends 700 bytes after its header; its padding runs to 1024.
    let path = write(tmp.path(), "cut.tar", &bytes[..512 + 800]);
    let err = Store::archive(&path).unwrap_err();
    assert!(
        err.message().contains(
            "cut.tar is not a readable tar archive (blob is cut short: the file is truncated)"
        ),
        "{}",
        err.message()
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

#[test]
fn links_never_lead_out_of_the_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let escapes = [
        (
            "up",
            "../../../../../../etc/passwd",
            tar::EntryType::Symlink,
        ),
        ("deep/up", "../../../../etc/passwd", tar::EntryType::Symlink),
        ("absolute", "/etc/passwd", tar::EntryType::Symlink),
        ("hard", "../../etc/passwd", tar::EntryType::Link),
    ];
    let bytes = tar_bytes(&[("index.json", b"{}")], &escapes);
    for gzipped in [false, true] {
        let path = write(
            tmp.path(),
            "escape.tar",
            &if gzipped { gzip(&bytes) } else { bytes.clone() },
        );
        let store = Store::archive(&path).unwrap();
        for (name, _, _) in escapes {
            assert!(
                store.locate(name).unwrap().is_none(),
                "{name}: no such entry"
            );
        }
    }
    // With an entry of that name inside the archive, the links lead to it, never to the host's.
    let path = write(
        tmp.path(),
        "inside.tar",
        &tar_bytes(&[("etc/passwd", b"the archive's own")], &escapes),
    );
    let store = Store::archive(&path).unwrap();
    for (name, _, _) in escapes {
        let location = store.locate(name).unwrap().unwrap();
        assert_eq!(location.file.as_path(), path.as_path(), "{name}");
        assert_eq!(read(&store, name), b"the archive's own", "{name}");
    }
}

#[test]
fn entry_names_climbing_above_the_root_stay_inside_the_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    // `append_data` refuses `..`; a hostile archive need not.
    let name = b"../../evil";
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &b"evil"[..]).unwrap();
    let path = write(tmp.path(), "climb.tar", &builder.into_inner().unwrap());
    let store = Store::archive(&path).unwrap();
    assert_eq!(read(&store, "evil"), b"evil");
    assert_eq!(read(&store, "../evil"), b"evil");
}

#[test]
fn a_gzipped_file_that_is_not_held_is_read_from_the_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let big_json = format!("{{\"pad\":\"{}\"}}", "x".repeat(JSON_LIMIT as usize));
    let layer: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let bytes = tar_bytes(
        &[
            ("index.json", b"{\"a\":1}"),
            ("big.json", big_json.as_bytes()),
            ("layer", &layer),
        ],
        &[("again", "layer", tar::EntryType::Symlink)],
    );
    let path = write(tmp.path(), "a.tar.gz", &gzip(&bytes));
    let store = Store::archive(&path).unwrap();
    let small = store.locate("index.json").unwrap().unwrap();
    assert_eq!(
        small.held().map(|b| b.to_vec()),
        Some(b"{\"a\":1}".to_vec())
    );
    let big = store.locate("big.json").unwrap().unwrap();
    assert!(big.held().is_none(), "over JSON_LIMIT: not held");
    assert_eq!(
        read_location(&big, 2 * JSON_LIMIT).unwrap(),
        big_json.as_bytes()
    );
    let layer_location = store.locate("layer").unwrap().unwrap();
    assert!(layer_location.held().is_none());
    assert_eq!(head(&layer_location, 4).unwrap(), &layer[..4]);
    assert_eq!(hash(&layer_location).unwrap(), Digest::of(&layer));

    let plain = write(tmp.path(), "a.tar", &bytes);
    let plain = Store::archive(&plain).unwrap();
    let locations = [
        store.locate("layer").unwrap().unwrap(),
        plain.locate("layer").unwrap().unwrap(),
        store.locate("big.json").unwrap().unwrap(),
        small,
        store.locate("again").unwrap().unwrap(),
    ];
    let digests: Vec<Digest> = hash_all(&locations)
        .into_iter()
        .map(|d| d.unwrap())
        .collect();
    let layer_digest = Digest::of(&layer);
    assert_eq!(
        digests,
        [
            layer_digest.clone(),
            layer_digest.clone(),
            Digest::of(big_json.as_bytes()),
            Digest::of(b"{\"a\":1}"),
            layer_digest,
        ]
    );
}

#[test]
fn a_range_past_the_end_of_a_gzipped_stream_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        tmp.path(),
        "a.tar.gz",
        &gzip(&tar_bytes(&[("layer", &[7u8; 5000])], &[])),
    );
    let store = Store::archive(&path).unwrap();
    let mut location = store.locate("layer").unwrap().unwrap();
    location.offset += 1 << 20;
    assert!(hash(&location).is_err());
    assert!(hash_all(&[location]).remove(0).is_err());
}

#[test]
fn a_tar_of_more_than_max_entries_files_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("many.tar");
    let mut builder = tar::Builder::new(std::io::BufWriter::new(File::create(&path).unwrap()));
    for i in 0..=MAX_ENTRIES {
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        builder
            .append_data(&mut header, format!("f{i}"), &[][..])
            .unwrap();
    }
    builder.into_inner().unwrap().flush().unwrap();
    let err = Store::archive(&path).unwrap_err();
    assert!(
        err.message().contains("holds more than 100000 files"),
        "{}",
        err.message()
    );
}

#[test]
fn a_layout_file_linked_outside_the_layout_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::create_dir_all(layout.join("other")).unwrap();
    std::fs::write(tmp.path().join("secret"), b"outside").unwrap();
    std::fs::write(layout.join("other/inside"), b"inside").unwrap();
    std::os::unix::fs::symlink(tmp.path().join("secret"), layout.join("blobs/sha256/out")).unwrap();
    std::os::unix::fs::symlink("../../other/inside", layout.join("blobs/sha256/in")).unwrap();
    let store = Store::dir(&layout);
    assert_eq!(read(&store, "blobs/sha256/in"), b"inside");
    let err = store.locate("blobs/sha256/out").unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "blobs/sha256/out in {} is a link that leads outside the layout (to {})",
            layout.display(),
            tmp.path().join("secret").canonicalize().unwrap().display()
        )
    );
    assert!(err.hint().unwrap().contains("cp --dereference"));
    assert!(!store.exists("blobs/sha256/out"));

    // A linked directory on the way is the same.
    std::fs::create_dir_all(tmp.path().join("elsewhere")).unwrap();
    std::fs::write(tmp.path().join("elsewhere/blob"), b"x").unwrap();
    std::os::unix::fs::symlink(tmp.path().join("elsewhere"), layout.join("blobs/linked")).unwrap();
    let err = store.locate("blobs/linked/blob").unwrap_err();
    assert!(
        err.message().contains("leads outside the layout"),
        "{}",
        err.message()
    );

    // A layout reached through a link is fine.
    std::os::unix::fs::symlink(&layout, tmp.path().join("alias")).unwrap();
    let store = Store::dir(&tmp.path().join("alias"));
    assert_eq!(read(&store, "blobs/sha256/in"), b"inside");
}

#[test]
fn the_files_in_a_folder_are_listed_alike_from_a_directory_and_a_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    std::fs::create_dir_all(dir.join("blobs/sha256/nested")).unwrap();
    for name in [
        "blobs/sha256/bb",
        "blobs/sha256/aa",
        "blobs/sha256/nested/cc",
        "index.json",
    ] {
        std::fs::write(dir.join(name), b"x").unwrap();
    }
    let bytes = tar_bytes(
        &[
            ("./blobs/sha256/bb", b"x"),
            ("blobs/sha256/aa", b"x"),
            ("blobs/sha256/nested/cc", b"x"),
            ("index.json", b"x"),
        ],
        &[("blobs/sha256/link", "aa", tar::EntryType::Symlink)],
    );
    let tar = write(tmp.path(), "layout.tar", &bytes);
    for store in [Store::dir(&dir), Store::archive(&tar).unwrap()] {
        assert_eq!(
            store.files_in("blobs/sha256"),
            ["blobs/sha256/aa", "blobs/sha256/bb"],
            "{store:?}"
        );
        assert!(store.files_in("missing").is_empty());
    }
}
