//! Local files as an [`ImageSource`]: every blob is a byte range of a file (or of the
//! decompressed stream of a `.tar.gz`), opened afresh at any offset, so uploads can run side by
//! side and a failed one can start over.

use std::io::SeekFrom;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::store::gz;
use super::{Encoding, Image, ImageSource, Location, Plan};
use crate::digest::Digest;
use crate::error::Result;
use crate::oci::{BlobBytes, BlobReader, Manifests, Reopen, SourceBlob};

/// Local files opened: the image and what it tells before reading.
pub(super) struct FileImage {
    image: Image,
    plan: Plan,
}

impl FileImage {
    pub(super) fn new(image: Image) -> FileImage {
        let plan = Plan {
            tag: image.source_tag.clone(),
            name: image.source_name.clone(),
            blobs: image
                .blobs
                .iter()
                .map(|b| (b.digest.clone(), b.size))
                .collect(),
            manifests: Some(Manifests {
                children: image.children.clone(),
                root: image.root.clone(),
            }),
            ..Plan::default()
        };
        FileImage { image, plan }
    }
}

impl ImageSource for FileImage {
    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn blobs(&mut self, _present: &[Digest]) -> BoxStream<'static, Result<SourceBlob>> {
        let blobs: Vec<Result<SourceBlob>> = self
            .image
            .blobs
            .iter()
            .map(|blob| {
                Ok(SourceBlob {
                    digest: Some(blob.digest.clone()),
                    size: blob.size,
                    origin: blob.location.file.display().to_string().into(),
                    bytes: BlobBytes::Reopenable(Arc::new(FileRange {
                        location: blob.location.clone(),
                    })),
                })
            })
            .collect();
        futures_util::stream::iter(blobs).boxed()
    }

    fn manifests(self: Box<Self>) -> BoxFuture<'static, Result<Manifests>> {
        let Image { children, root, .. } = self.image;
        futures_util::future::ready(Ok(Manifests { children, root })).boxed()
    }
}

/// `len` bytes at `offset` of a file, or of the decompressed stream of a gzip'd file.
pub(super) struct FileRange {
    pub(super) location: Location,
}

impl Reopen for FileRange {
    fn open_at(&self, offset: u64) -> BoxFuture<'static, std::io::Result<BlobReader>> {
        let location = self.location.clone();
        let offset = offset.min(location.len);
        async move {
            if offset == location.len {
                let reader: BlobReader = Box::pin(tokio::io::empty());
                return Ok(reader);
            }
            if let Some(bytes) = location.held() {
                let reader: BlobReader =
                    Box::pin(std::io::Cursor::new(bytes.slice(offset as usize..)));
                return Ok(reader);
            }
            let Location {
                file,
                offset: start,
                len,
                encoding,
                parked,
                ..
            } = location;
            match encoding {
                Encoding::Plain => {
                    let mut reader = tokio::fs::File::open(file.as_path()).await?;
                    reader.seek(SeekFrom::Start(start + offset)).await?;
                    let reader: BlobReader = Box::pin(reader.take(len - offset));
                    Ok(reader)
                }
                Encoding::Gzip => {
                    let parked = parked.unwrap_or_default();
                    gz::stream(file, parked, start + offset, len - offset).await
                }
            }
        }
        .boxed()
    }
}

#[cfg(test)]
#[path = "files_tests.rs"]
mod tests;
