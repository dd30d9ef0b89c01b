//! Where an image is written: the write side of a copy, mirroring the sources. A destination
//! takes blobs, then manifests by digest, then commits the root under its tags; the copy policy
//! (`push.rs`, `pull.rs`) decides the order and what is sent at all. A push writes to a
//! registry; a pull writes to an OCI layout, an archive file or the local engine, each a file
//! of its own, with the DESTINATION forms of a pull in `argument.rs`.

use futures_util::future::BoxFuture;

use crate::digest::Digest;
use crate::error::Result;
use crate::oci::{Manifest, Manifests, SourceBlob};
use crate::progress::{Reporter, Uploaded};

mod archive;
mod argument;
mod engine;
mod layout;
mod place;
mod registry;
mod spool;
mod tar;

pub use archive::ArchiveDestination;
pub use argument::PullTarget;
pub use engine::EngineDestination;
pub use layout::LayoutDestination;
pub use registry::RegistryDestination;

/// The write side of a copy. Methods are called in this order: [`open`](Self::open), then
/// [`check`](Self::check) as soon as the manifests are known, then blobs (several at once),
/// then every platform manifest, then [`commit`](Self::commit) once.
pub trait ImageDestination: Send + Sync {
    /// Gets ready to write (a registry checks TLS and logs in), so a refusal comes before any
    /// byte is read or sent.
    fn open(&self) -> BoxFuture<'_, Result<()>>;
    /// Refuses, before any blob is sent, an image this destination is known to refuse
    /// (Gitea: an index inside an index).
    fn check(&self, manifests: &Manifests) -> Result<()>;
    /// Whether the destination has this blob already.
    fn has_blob<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<bool>>;
    /// Writes one blob unless the destination has it, checking its digest as it goes.
    fn put_blob<'a>(
        &'a self,
        blob: SourceBlob,
        reporter: &'a dyn Reporter,
    ) -> BoxFuture<'a, Result<Uploaded>>;
    /// Writes a platform manifest (or a nested index) by its digest.
    fn put_manifest<'a>(&'a self, manifest: &'a Manifest) -> BoxFuture<'a, Result<()>>;
    /// Writes the root manifest or index under each of `tags`, in order, or by its digest when
    /// there is none: the step that makes the image visible.
    fn commit<'a>(&'a self, root: &'a Manifest, tags: &'a [String]) -> BoxFuture<'a, Result<()>>;
}
