//! Local files as an [`ImageSource`]: every blob is a byte range of a file, opened afresh at any
//! offset, so uploads can run side by side and a failed one can start over.

use std::io::SeekFrom;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{BlobBytes, BlobReader, Image, ImageSource, Location, Manifests, Reopen, SourceBlob};
use crate::digest::Digest;
use crate::error::Result;

impl ImageSource for Image {
    fn source_tag(&self) -> Option<String> {
        self.source_tag.clone()
    }

    fn source_name(&self) -> Option<String> {
        self.source_name.clone()
    }

    fn planned_blobs(&self) -> Vec<(Digest, u64)> {
        self.blobs
            .iter()
            .map(|b| (b.digest.clone(), b.size))
            .collect()
    }

    fn manifests_known(&self) -> Option<Manifests> {
        Some(Manifests {
            children: self.children.clone(),
            root: self.root.clone(),
        })
    }

    fn blobs(&mut self) -> BoxStream<'static, Result<SourceBlob>> {
        let blobs: Vec<Result<SourceBlob>> = self
            .blobs
            .iter()
            .map(|blob| {
                Ok(SourceBlob {
                    digest: Some(blob.digest.clone()),
                    size: blob.size,
                    origin: blob.location.file.display().to_string().into(),
                    bytes: BlobBytes::Reopenable(Arc::new(FileRange {
                        location: blob.location.clone(),
                        keep_alive: self.keep_alive.clone(),
                    })),
                })
            })
            .collect();
        futures_util::stream::iter(blobs).boxed()
    }

    fn manifests(self: Box<Self>) -> BoxFuture<'static, Result<Manifests>> {
        let Image { children, root, .. } = *self;
        futures_util::future::ready(Ok(Manifests { children, root })).boxed()
    }
}

/// `len` bytes at `offset` of a file.
struct FileRange {
    location: Location,
    /// A decompressed temporary copy must outlive every read of it.
    #[allow(
        dead_code,
        reason = "held for its Drop, which removes the temporary copy"
    )]
    keep_alive: Option<Arc<tempfile::TempDir>>,
}

impl Reopen for FileRange {
    fn open_at(&self, offset: u64) -> BoxFuture<'static, std::io::Result<BlobReader>> {
        let Location {
            file,
            offset: start,
            len,
        } = self.location.clone();
        async move {
            let mut reader = tokio::fs::File::open(file.as_path()).await?;
            reader.seek(SeekFrom::Start(start + offset)).await?;
            let reader: BlobReader = Box::pin(reader.take(len.saturating_sub(offset)));
            Ok(reader)
        }
        .boxed()
    }
}
