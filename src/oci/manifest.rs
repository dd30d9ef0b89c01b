//! Manifests and indexes as a copy moves them: the exact bytes with their digest and media
//! type, and the set one image is made of (platform manifests, then the root).

use super::media_type::is_index;
use crate::digest::Digest;

/// A manifest or index, kept as the exact bytes of the source so its digest does not change.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub media_type: String,
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

/// The manifests a push writes: platform manifests of an index first, then the root.
#[derive(Debug, Clone)]
pub struct Manifests {
    /// Platform manifests of an index (pushed before the index); empty for a single image.
    pub children: Vec<Manifest>,
    /// The manifest or index the tag will point at.
    pub root: Manifest,
}

impl Manifests {
    /// A platform manifest that is itself an index: an index nested in the root index.
    pub fn nested_index(&self) -> Option<&Manifest> {
        self.children
            .iter()
            .find(|child| is_index(&child.media_type))
    }
}
