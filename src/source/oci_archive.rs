//! OCI archives: a tar (or gzip'd tar) holding an OCI image layout, read in place through a
//! [`Store`] index of the tar.

use super::store::Store;
use super::{Image, Selection, layout};
use crate::error::{Error, Result};

/// Reads the image the selection names from the OCI archive in `store`.
pub(crate) fn open(store: &Store, selection: &Selection) -> Result<Image> {
    if !store.exists("index.json") {
        let source = store.source().display();
        let error = Error::input(format!(
            "{source} is not an OCI archive (it has no index.json)"
        ));
        return Err(if store.exists("manifest.json") {
            error.with_hint(format!(
                "it looks like a docker archive: use docker-archive:{source}"
            ))
        } else {
            error
        });
    }
    layout::open(store, selection, "oci-archive")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Encoding;
    use crate::source::store::{JSON_LIMIT, read_location};
    use crate::source::testing::{Layout, digests, named, tar_dir, tar_files};

    fn archive(gzip: bool) -> (tempfile::TempDir, std::path::PathBuf, Vec<String>) {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::new(&tmp.path().join("layout"));
        let (desc, blobs) = layout.image("linux", "amd64", &[b"first layer", b"second layer"]);
        layout.finish(&[named(&desc, "v1")]);
        let path = tmp
            .path()
            .join(if gzip { "image.tar.gz" } else { "image.tar" });
        tar_dir(&layout.dir, &path, gzip);
        (tmp, path, blobs)
    }

    #[test]
    fn blobs_of_a_plain_archive_are_ranges_of_the_archive() {
        let (_tmp, path, blobs) = archive(false);
        let image = open(&Store::archive(&path).unwrap(), &Selection::default()).unwrap();
        assert_eq!(digests(&image), blobs);
        assert_eq!(image.source_tag.as_deref(), Some("v1"));
        let layer = &image.blobs[2];
        assert_eq!(layer.location.file.as_path(), path.as_path());
        assert!(layer.location.offset > 0);
        assert_eq!(
            read_location(&layer.location, JSON_LIMIT).unwrap(),
            b"second layer"
        );
        assert_eq!(layer.location.encoding, Encoding::Plain);
    }

    #[test]
    fn blobs_of_a_gzipped_archive_are_ranges_of_its_decompressed_stream() {
        let (tmp, path, blobs) = archive(true);
        let image = open(&Store::archive(&path).unwrap(), &Selection::default()).unwrap();
        assert_eq!(digests(&image), blobs);
        let layer = &image.blobs[1].location;
        assert_eq!(layer.file.as_path(), path.as_path());
        assert_eq!(layer.encoding, Encoding::Gzip);
        assert!(layer.offset > 0);
        assert_eq!(read_location(layer, JSON_LIMIT).unwrap(), b"first layer");
        let config = &image.blobs[0].location;
        assert!(
            config.held().is_some(),
            "the config is JSON, kept in memory"
        );
        let files: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
        assert_eq!(files.len(), 2, "only the layout and the archive: {files:?}");
    }

    #[test]
    fn a_tar_without_index_json_is_not_an_oci_archive() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("d.tar");
        tar_files(&path, &[("manifest.json", b"[]")], false);
        let err = open(&Store::archive(&path).unwrap(), &Selection::default()).unwrap_err();
        assert!(
            err.message()
                .ends_with("d.tar is not an OCI archive (it has no index.json)")
        );
        assert!(err.hint().unwrap().contains("docker-archive:"));
    }
}
