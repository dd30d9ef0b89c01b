//! Media types by name, and the few questions asked of them: is it an index, a schema 1
//! manifest, a layer that is referenced but never uploaded.

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// The short-lived OCI 1.1 release-candidate artifact manifest; Gitea refuses it.
pub const OCI_ARTIFACT_MANIFEST: &str = "application/vnd.oci.artifact.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// What a manifest GET accepts: OCI and Docker v2 image manifests and indexes (no schema 1).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// An index (OCI image index or Docker manifest list).
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// A Docker schema 1 manifest, which nothing here reads or writes.
pub fn is_schema1(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.docker.distribution.manifest.v1")
}

/// A media type a manifest or index can have on the wire: the registry's `Content-Type` is
/// taken as the type only when it is one of these families.
pub fn is_manifest_family(content_type: &str) -> bool {
    content_type.starts_with("application/vnd.oci.image.")
        || content_type.starts_with("application/vnd.docker.distribution.manifest.")
}

/// A foreign or non-distributable layer: named by its manifest, fetched from its `urls`, and
/// absent from registries and exports alike.
pub fn is_foreign_layer(media_type: &str) -> bool {
    media_type.contains("nondistributable") || media_type.contains("foreign")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_schema1_and_foreign_layers_are_told_apart() {
        assert!(is_index(OCI_INDEX) && is_index(DOCKER_LIST));
        assert!(!is_index(OCI_MANIFEST) && !is_index(DOCKER_MANIFEST));
        assert!(is_schema1(
            "application/vnd.docker.distribution.manifest.v1+prettyjws"
        ));
        assert!(!is_schema1(DOCKER_MANIFEST));
        assert!(is_foreign_layer(
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        ));
        assert!(is_foreign_layer(
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        ));
        assert!(!is_foreign_layer(OCI_LAYER_GZIP));
        assert!(is_manifest_family(DOCKER_MANIFEST) && !is_manifest_family("application/json"));
    }
}
