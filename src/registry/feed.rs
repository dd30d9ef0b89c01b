//! A blob's bytes on their way into requests: read from the source in pieces, hashed as they
//! go, and checked against the digest the source named when the last byte has gone by. A
//! reopenable source can be read again from any offset; a stream only once.

use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::io::AsyncReadExt;
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::client::Failure;
use super::timeouts::Watch;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::oci::{BlobBytes, BlobReader, Reopen, SourceBlob};

/// How much is read from a source at once.
const READ_BUFFER: usize = 256 * 1024;

/// What the upload knows of a blob besides its bytes.
pub(super) struct BlobInfo {
    pub(super) digest: Option<Digest>,
    pub(super) size: u64,
    pub(super) origin: Arc<str>,
}

impl BlobInfo {
    /// What messages need of a blob, and its bytes.
    pub(super) fn split(blob: SourceBlob) -> (BlobInfo, BlobBytes) {
        let SourceBlob {
            digest,
            size,
            bytes,
            origin,
        } = blob;
        (
            BlobInfo {
                digest,
                size,
                origin,
            },
            bytes,
        )
    }

    pub(super) fn name(&self) -> String {
        match &self.digest {
            Some(digest) => format!("blob {digest}"),
            None => "a blob".to_string(),
        }
    }
}

/// A local read failure is the image's fault, not the network's: an input error naming where
/// the bytes came from. A source that explains its own failure (an engine, a registry) passes
/// our error inside the `io::Error`.
pub(super) fn read_error(blob: &BlobInfo, error: io::Error) -> Error {
    if error.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        match error.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(ours)) => return *ours,
            _ => return Error::registry(format!("cannot read {}", blob.name())),
        }
    }
    Error::input(format!("cannot read {} from {}", blob.name(), blob.origin))
        .with_hint("check that the image is complete and readable, or export it again")
        .with_cause(error)
}

/// Reads a blob to its end without sending it (a dry run of a source known only once read) and
/// returns its digest, checked against the one the source named.
pub async fn read_through(blob: SourceBlob) -> Result<Digest> {
    let (blob, bytes) = BlobInfo::split(blob);
    let reader = match bytes {
        BlobBytes::Once(reader) => reader,
        BlobBytes::Reopenable(reopen) => {
            reopen.open_at(0).await.map_err(|e| read_error(&blob, e))?
        }
    };
    read_whole(reader, &blob).await
}

/// Reads a whole blob and returns its digest, checked against the one the source named: past
/// a blob the registry already has, ahead of an upload in several parts, or in a dry run.
pub(super) async fn read_whole(mut reader: BlobReader, blob: &BlobInfo) -> Result<Digest> {
    let mut hasher = Hasher::new();
    let mut buffer = vec![0; READ_BUFFER];
    let mut remaining = blob.size;
    while remaining > 0 {
        let want = remaining.min(READ_BUFFER as u64) as usize;
        let read = reader
            .read(&mut buffer[..want])
            .await
            .map_err(|e| read_error(blob, e))?;
        if read == 0 {
            return Err(read_error(blob, ended_early()));
        }
        hasher.update(&buffer[..read]);
        remaining -= read as u64;
    }
    let actual = hasher.finish();
    match &blob.digest {
        Some(digest) if *digest != actual => Err(Problem::Mismatch(actual).into_error(blob)),
        _ => Ok(actual),
    }
}

pub(super) fn ended_early() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "the blob ended early")
}

/// What a request carrying the blob's bytes needs: the blob, its feed, where progress goes.
pub(super) struct BlobBody<'a> {
    pub(super) blob: &'a BlobInfo,
    pub(super) feed: &'a Arc<Mutex<Feed>>,
    pub(super) progress: &'a Arc<dyn Fn(u64) + Send + Sync>,
}

/// Why a request carrying the blob's bytes failed: the source (its bytes do not match, it
/// could not be read), or the registry and the network between.
pub(super) enum BodyFailure {
    Source(Failure),
    Registry(Failure),
}

impl From<BodyFailure> for Failure {
    fn from(failure: BodyFailure) -> Failure {
        match failure {
            BodyFailure::Source(failure) | BodyFailure::Registry(failure) => failure,
        }
    }
}

/// Which bytes of a blob one request carries.
#[derive(Debug, Clone, Copy)]
pub(super) struct Part {
    pub(super) start: u64,
    pub(super) len: u64,
    pub(super) last: bool,
    /// Sent with `Content-Range`: the blob goes in several parts.
    pub(super) ranged: bool,
}

/// Why a body stopped that is not the network's doing.
#[derive(Debug)]
pub(super) enum Problem {
    /// The bytes hash to this, not to the digest the source named.
    Mismatch(Digest),
    /// The source could not be read.
    Read(io::Error),
}

impl Problem {
    pub(super) fn into_error(self, blob: &BlobInfo) -> Error {
        match self {
            Problem::Mismatch(actual) => Error::input(format!(
                "{} of the image does not match its digest (its bytes hash to {actual})",
                blob.name()
            ))
            .with_hint(format!(
                "the image is corrupt at {}; export, save or push it there again",
                blob.origin
            )),
            Problem::Read(e) => read_error(blob, e),
        }
    }

    /// What the upload makes of it: a source whose own network broke mid-blob (a registry
    /// source passes an error of kind `Registry`) is worth another attempt, which reads the
    /// blob anew; a local read error, wrong bytes or a source too slow for its deadline are final.
    pub(super) fn into_failure(self, blob: &BlobInfo) -> Failure {
        let error = self.into_error(blob);
        if crate::oci::worth_reading_again(&error) {
            Failure::transient(error)
        } else {
            Failure::fatal(error)
        }
    }
}

/// The blob's bytes across the requests of one upload: a reader, how far it has read, and the
/// hash of what it read.
pub(super) struct Feed {
    pub(super) bytes: FeedBytes,
    pub(super) reader: Option<BlobReader>,
    pub(super) position: u64,
    pub(super) hasher: Hasher,
    /// The digest of every byte, once the last one was read.
    pub(super) digest: Option<Digest>,
}

pub(super) enum FeedBytes {
    Reopenable(Arc<dyn Reopen>),
    /// A stream read once; `touched` once a byte of it was asked for.
    Once {
        touched: bool,
    },
}

impl Feed {
    pub(super) fn new(bytes: BlobBytes) -> Feed {
        let (bytes, reader) = match bytes {
            BlobBytes::Reopenable(reopen) => (FeedBytes::Reopenable(reopen), None),
            BlobBytes::Once(reader) => (FeedBytes::Once { touched: false }, Some(reader)),
        };
        Feed {
            bytes,
            reader,
            position: 0,
            hasher: Hasher::new(),
            digest: None,
        }
    }

    /// Whether another attempt can read the blob from its start.
    pub(super) fn can_restart(&self) -> bool {
        match self.bytes {
            FeedBytes::Reopenable(_) => true,
            FeedBytes::Once { touched } => !touched,
        }
    }

    /// Back to the first byte, for a new attempt.
    pub(super) async fn rewind(&mut self) -> io::Result<()> {
        self.seek(0, Hasher::new()).await
    }

    /// Positions the reader at `start`, with `hashed` the hash of the bytes before it. A
    /// request sent again (after a 401) reads its part again.
    pub(super) async fn seek(&mut self, start: u64, hashed: Hasher) -> io::Result<()> {
        if self.position == start && self.reader.is_some() {
            return Ok(());
        }
        match &self.bytes {
            FeedBytes::Reopenable(reopen) => {
                self.reader = Some(reopen.open_at(start).await?);
                self.position = start;
                self.hasher = hashed;
                self.digest = None;
                Ok(())
            }
            FeedBytes::Once { .. } => Err(io::Error::other(
                "the blob was read once from a stream and cannot be read again",
            )),
        }
    }

    /// The digest to commit: the one the bytes hash to, which matched the source's own.
    pub(super) fn finished(&mut self, blob: &BlobInfo) -> Result<Digest> {
        if blob.size == 0 {
            let empty = Hasher::new().finish();
            return match &blob.digest {
                Some(digest) if *digest != empty => Err(Problem::Mismatch(empty).into_error(blob)),
                _ => Ok(empty),
            };
        }
        self.digest
            .clone()
            .ok_or_else(|| Error::registry(format!("{} was not read to its end", blob.name())))
    }
}

/// One `PATCH` body: `remaining` bytes from the feed, hashed as they go.
pub(super) struct Reading {
    /// Held for the whole body, released with its last bytes.
    pub(super) feed: Option<OwnedMutexGuard<Feed>>,
    pub(super) remaining: u64,
    /// The digest to check at the end, on the last part.
    pub(super) expected: Option<Digest>,
    pub(super) last: bool,
    pub(super) problem: Arc<std::sync::Mutex<Option<Problem>>>,
    pub(super) watch: Watch,
    pub(super) progress: Arc<dyn Fn(u64) + Send + Sync>,
}

/// Ends a body for a reason of the source's, kept in `slot` for the upload to report.
pub(super) fn stop(slot: &std::sync::Mutex<Option<Problem>>, problem: Problem) -> io::Error {
    let error = io::Error::other(match &problem {
        Problem::Mismatch(_) => "blob digest mismatch".to_string(),
        Problem::Read(e) => e.to_string(),
    });
    slot.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get_or_insert(problem);
    error
}

impl Reading {
    pub(super) fn into_stream(self) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        futures_util::stream::try_unfold(self, |mut reading| async move {
            if reading.remaining == 0 {
                return Ok(None);
            }
            let Some(feed) = reading.feed.as_mut() else {
                return Ok(None);
            };
            if let FeedBytes::Once { touched } = &mut feed.bytes {
                *touched = true;
            }
            let want = reading.remaining.min(READ_BUFFER as u64) as usize;
            let mut buffer = BytesMut::with_capacity(want);
            let source_read = reading.watch.reading_source();
            while buffer.len() < want {
                let Some(reader) = feed.reader.as_mut() else {
                    return Err(stop(
                        &reading.problem,
                        Problem::Read(io::Error::other("no reader")),
                    ));
                };
                let asked = (want - buffer.len()) as u64;
                match reader.take(asked).read_buf(&mut buffer).await {
                    Ok(0) => return Err(stop(&reading.problem, Problem::Read(ended_early()))),
                    Ok(_) => {}
                    Err(e) => return Err(stop(&reading.problem, Problem::Read(e))),
                }
            }
            drop(source_read);
            reading.remaining -= want as u64;
            feed.position += want as u64;
            feed.hasher.update(&buffer);
            if reading.remaining == 0 && reading.last {
                let actual = feed.hasher.clone().finish();
                if let Some(expected) = reading.expected.take()
                    && actual != expected
                {
                    return Err(stop(&reading.problem, Problem::Mismatch(actual)));
                }
                feed.digest = Some(actual);
            }
            if reading.remaining == 0 {
                reading.feed = None;
            }
            reading.watch.sent(want as u64);
            (reading.progress)(want as u64);
            Ok(Some((buffer.freeze(), reading)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;
    use crate::registry::chunks::{History, Next, decide};

    #[test]
    fn a_source_network_failure_mid_blob_is_retried_and_a_local_one_is_final() {
        let blob = BlobInfo {
            digest: Some(Digest::of(b"x")),
            size: 1,
            origin: "registry.example/team/app".into(),
        };
        let network = io::Error::other(Error::registry("the connection to src broke"));
        let failure = Problem::Read(network).into_failure(&blob);
        assert!(
            failure.transient,
            "a registry source's broken body is retried"
        );
        assert!(!failure.body_cut, "and never taken for a proxy's body cap");
        assert_eq!(failure.error.kind(), Kind::Registry);
        assert_eq!(
            decide(&failure, 40 << 20, History::default(), false, true),
            Next::Retry { cut: false }
        );

        let disk = io::Error::other("input/output error");
        let failure = Problem::Read(disk).into_failure(&blob);
        assert!(!failure.transient);
        assert_eq!(failure.error.kind(), Kind::Input);
        let failure = Problem::Mismatch(Digest::of(b"y")).into_failure(&blob);
        assert!(!failure.transient);
        assert_eq!(failure.error.kind(), Kind::Input);
    }
}
