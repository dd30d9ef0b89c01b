//! A blob as it moves from a source to a destination: its digest and size when known, and how
//! its bytes can be had (again from any offset, or once as a stream goes by).

use std::pin::Pin;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::io::AsyncRead;

use crate::digest::Digest;

/// Bytes of a blob, read as a stream.
pub type BlobReader = Pin<Box<dyn AsyncRead + Send>>;

/// A blob whose bytes can be read again from any offset (a file, a registry).
pub trait Reopen: Send + Sync {
    fn open_at(&self, offset: u64) -> BoxFuture<'static, std::io::Result<BlobReader>>;
}

/// How a blob's bytes can be had.
pub enum BlobBytes {
    /// Again and again: a failed upload starts over and reads the blob anew.
    Reopenable(Arc<dyn Reopen>),
    /// Once, as a stream goes by: a failure after its first byte cannot be retried.
    Once(BlobReader),
}

/// One blob to push.
pub struct SourceBlob {
    /// `None` when the source learns the digest only by hashing the bytes.
    pub digest: Option<Digest>,
    pub size: u64,
    pub bytes: BlobBytes,
    /// Where the bytes come from, for messages: a file, an engine socket.
    pub origin: Arc<str>,
}

impl std::fmt::Debug for SourceBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceBlob")
            .field("digest", &self.digest)
            .field("size", &self.size)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}
