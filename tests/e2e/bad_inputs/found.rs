//! Setups for the input cases found with image files other projects wrote (issue 20): archives
//! compressed as `docker load` reads them but we do not, a tar cut in an entry's padding,
//! skopeo's `dir:` format, and Docker 25+ exports holding only part of their index.

use std::path::Path;

use super::support::fixtures_docker;
use super::support::fixtures_shapes;

/// The first bytes of an xz stream (magic, flags, CRC) and of a bzip2 one: the tool reads no
/// further than the magic.
const XZ_START: &[u8] = b"\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4\x46\x02\x00\x21\x01";
const BZIP2_START: &[u8] = b"BZh91AY&SY\x00\x01\x02\x03";

pub fn xz_archive(dir: &Path) {
    std::fs::write(dir.join("app.tar.xz"), XZ_START).expect("write file");
}

pub fn bzip2_archive(dir: &Path) {
    std::fs::write(dir.join("app.tar.bz2"), BZIP2_START).expect("write file");
}

/// A tar whose first entry (700 bytes, padded to 1024) is cut 100 bytes into its padding.
pub fn tar_cut_in_padding(dir: &Path) {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, size) in [("manifest.json", 700usize), ("layer.tar", 2000)] {
        let mut header = tar::Header::new_ustar();
        header.set_size(size as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, name, &vec![b' '; size][..])
            .expect("tar entry");
    }
    let bytes = builder.into_inner().expect("finish tar");
    std::fs::write(dir.join("cut.tar"), &bytes[..512 + 800]).expect("write tar");
}

/// A directory as `skopeo copy ... dir:DIR` writes it.
pub fn skopeo_dir(dir: &Path) {
    let dir = dir.join("d");
    std::fs::create_dir_all(&dir).expect("create dir");
    std::fs::write(dir.join("version"), "Directory Transport Version: 1.1\n").expect("version");
    std::fs::write(dir.join("manifest.json"), "{}").expect("manifest.json");
}

/// A layout directory with `index.json` but no `oci-layout` file.
pub fn layout_without_oci_layout(dir: &Path) {
    let dir = dir.join("l");
    std::fs::create_dir_all(&dir).expect("create dir");
    std::fs::write(
        dir.join("index.json"),
        r#"{"schemaVersion":2,"manifests":[]}"#,
    )
    .expect("index.json");
}

pub fn buildkit_index(dir: &Path) {
    fixtures_shapes::buildkit_index(&dir.join("bk"));
}

/// `docker save` from the containerd store holding linux/amd64 and linux/s390x of three.
pub fn containerd_save_of_two(dir: &Path) {
    fixtures_docker::containerd_save(&dir.join("save.tar"), &["amd64", "s390x"]);
}

/// `docker save` from the containerd store holding only linux/arm64 of three.
pub fn containerd_save_of_one(dir: &Path) {
    fixtures_docker::containerd_save(&dir.join("save.tar"), &["arm64"]);
}
