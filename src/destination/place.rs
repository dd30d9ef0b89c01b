//! Writing a pulled blob so that a failure leaves nothing behind: bytes go to a temporary name
//! in the destination's own directory (renamed only once complete), and every blob's sha256 is
//! checked as its bytes arrive, before anything can point at it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::oci::{BlobBytes, SourceBlob, worth_reading_again};

/// Bytes read and written at a time.
const PIECE: usize = 64 << 10;
/// Fresh attempts at a blob whose download broke mid-way, each from where it stopped.
const READ_ATTEMPTS: u32 = 4;

/// A file or directory under a temporary name, removed when dropped unless [`persist`]ed.
///
/// [`persist`]: TempPath::persist
#[derive(Debug)]
pub(super) struct TempPath {
    path: PathBuf,
    kept: bool,
}

impl TempPath {
    /// A name no other pull uses, beside `target` in `dir` (hidden, so a half-written file is
    /// not mistaken for a finished one).
    pub(super) fn beside(dir: &Path, target: &str) -> TempPath {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!(".{target}.idpbuilder-{}-{n}.tmp", std::process::id());
        TempPath {
            path: dir.join(name),
            kept: false,
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames it to `to`, replacing a file there (not a non-empty directory).
    pub(super) fn persist(mut self, to: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, to)?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let gone = match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&self.path),
            Ok(_) => std::fs::remove_file(&self.path),
            Err(_) => Ok(()),
        };
        if let Err(e) = gone {
            tracing::debug!("cannot remove {}: {e}", self.path.display());
        }
    }
}

/// The error for a file or directory of the destination that cannot be written: an input
/// error (exit 2) whose hint fits the cause (a full disk, a read-only place).
pub(super) fn write_error(what: &Path, cause: io::Error) -> Error {
    let place = what.display();
    let (why, hint) = if cause.raw_os_error() == Some(28)
        || cause.kind() == io::ErrorKind::StorageFull
    {
        (
            "no space left on the device".to_string(),
            "free some space there, or pull to another directory",
        )
    } else if cause.kind() == io::ErrorKind::PermissionDenied || cause.raw_os_error() == Some(30) {
        (
            "permission denied (or a read-only file system)".to_string(),
            "pull to a directory you may write to",
        )
    } else {
        (cause.to_string(), "check the destination path")
    };
    Error::input(format!("cannot write {place}: {why}"))
        .with_hint(hint)
        .with_cause(cause)
}

/// Copies a blob's bytes into `out`, hashing them on the way, and fails unless they hash to
/// the blob's digest. A download that breaks mid-way is opened again from where it stopped
/// (the bytes already written stay, the hash goes on). `progress` hears each piece written;
/// `written` maps a failure of `out`. Returns the number of bytes.
pub(super) async fn copy_checked<W: AsyncWrite + Unpin>(
    blob: SourceBlob,
    out: &mut W,
    progress: &(dyn Fn(u64) + Send + Sync),
    written: &(dyn Fn(io::Error) -> Error + Send + Sync),
) -> Result<u64> {
    let expected = blob
        .digest
        .clone()
        .ok_or_else(|| Error::input(format!("a blob of {} has no digest", blob.origin)))?;
    let mut hasher = Hasher::new();
    let mut buffer = vec![0u8; PIECE];
    let mut attempts = 0;
    let (mut reader, reopen) = match blob.bytes {
        BlobBytes::Once(reader) => (Some(reader), None),
        BlobBytes::Reopenable(source) => (None, Some(source)),
    };
    loop {
        let mut current = match (reader.take(), &reopen) {
            (Some(current), _) => current,
            (None, Some(source)) => source
                .open_at(hasher.len())
                .await
                .map_err(|e| read_error(&expected, &blob.origin, e))?,
            (None, None) => {
                return Err(read_error(
                    &expected,
                    &blob.origin,
                    io::ErrorKind::UnexpectedEof.into(),
                ));
            }
        };
        attempts += 1;
        let broke = loop {
            match current.read(&mut buffer).await {
                Ok(0) => break None,
                Ok(n) => {
                    hasher.update(&buffer[..n]);
                    if hasher.len() > blob.size {
                        return Err(mismatch(&expected, &blob.origin, "is longer than its size"));
                    }
                    out.write_all(&buffer[..n]).await.map_err(written)?;
                    progress(n as u64);
                }
                Err(e) => break Some(e),
            }
        };
        match broke {
            None => break,
            Some(e) => {
                let error = read_error(&expected, &blob.origin, e);
                let transient = worth_reading_again(&error);
                if !transient || reopen.is_none() || attempts >= READ_ATTEMPTS {
                    return Err(error);
                }
                tracing::debug!(
                    "blob {} broke off after {} bytes ({error}); reading on from there",
                    expected.short(),
                    hasher.len()
                );
            }
        }
    }
    let size = hasher.len();
    if size != blob.size {
        return Err(mismatch(
            &expected,
            &blob.origin,
            "is shorter than its size",
        ));
    }
    let actual = hasher.finish();
    if actual != expected {
        return Err(mismatch(
            &expected,
            &blob.origin,
            &format!("hashes to {actual}"),
        ));
    }
    Ok(size)
}

/// A blob whose bytes are not what its digest says: nothing is written that points at it.
fn mismatch(digest: &Digest, origin: &str, what: &str) -> Error {
    Error::input(format!(
        "blob {digest} from {origin} does not match its digest: what the registry sent {what}"
    ))
    .with_hint(format!(
        "the registry serves a corrupt or altered blob, and nothing was written; push the image to {origin} again, or ask its operator"
    ))
}

/// A read that failed: our own error when the registry side gave one (a network failure is
/// kind `Registry`, worth another attempt), else a registry error naming the blob.
fn read_error(digest: &Digest, origin: &str, error: io::Error) -> Error {
    match error.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(ours)) => *ours,
        Some(Err(other)) => Error::registry(format!(
            "reading blob {} from {origin} failed: {other}",
            digest.short()
        )),
        None => Error::registry(format!(
            "reading blob {} from {origin} failed",
            digest.short()
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_util::FutureExt;
    use futures_util::future::BoxFuture;

    use super::*;
    use crate::error::Kind;
    use crate::oci::{BlobReader, Reopen};

    fn blob_of(bytes: &'static [u8], digest: Digest) -> SourceBlob {
        SourceBlob {
            digest: Some(digest),
            size: bytes.len() as u64,
            bytes: BlobBytes::Once(Box::pin(bytes)),
            origin: "r.example/app".into(),
        }
    }

    fn no_write_error(e: io::Error) -> Error {
        Error::input(e.to_string())
    }

    #[tokio::test]
    async fn right_bytes_are_copied_and_counted() {
        let mut out = Vec::new();
        let seen = Arc::new(AtomicU64::new(0));
        let counter = seen.clone();
        let progress = move |n| {
            counter.fetch_add(n, Ordering::Relaxed);
        };
        let size = copy_checked(
            blob_of(b"layer", Digest::of(b"layer")),
            &mut out,
            &progress,
            &no_write_error,
        )
        .await
        .expect("copied");
        assert_eq!((size, out.as_slice()), (5, &b"layer"[..]));
        assert_eq!(seen.load(Ordering::Relaxed), 5);
    }

    #[tokio::test]
    async fn wrong_bytes_are_an_input_error_naming_the_digest() {
        let mut out = Vec::new();
        let error = copy_checked(
            blob_of(b"tampered", Digest::of(b"original")),
            &mut out,
            &|_| {},
            &no_write_error,
        )
        .await
        .expect_err("mismatch");
        assert_eq!(error.kind(), Kind::Input);
        assert!(
            error.message().contains("does not match its digest"),
            "{error}"
        );
        assert!(error.message().contains(Digest::of(b"original").as_str()));
    }

    /// Breaks after `cut` bytes on the first read, then serves the rest from the offset asked.
    struct Flaky {
        bytes: &'static [u8],
        cut: usize,
        opened: AtomicU64,
    }

    impl Reopen for Flaky {
        fn open_at(&self, offset: u64) -> BoxFuture<'static, io::Result<BlobReader>> {
            let first = self.opened.fetch_add(1, Ordering::Relaxed) == 0;
            let rest = &self.bytes[offset as usize..];
            let cut = self.cut;
            async move {
                if first {
                    let broken = io::Error::other(Error::registry("connection reset"));
                    let head = tokio::io::AsyncReadExt::chain(&rest[..cut], Failing(Some(broken)));
                    return Ok(Box::pin(head) as BlobReader);
                }
                Ok(Box::pin(rest) as BlobReader)
            }
            .boxed()
        }
    }

    struct Failing(Option<io::Error>);

    impl tokio::io::AsyncRead for Failing {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Err(self
                .0
                .take()
                .unwrap_or_else(|| io::Error::other("again"))))
        }
    }

    #[tokio::test]
    async fn a_download_cut_mid_way_goes_on_from_where_it_stopped() {
        let bytes: &'static [u8] = b"0123456789abcdef";
        let flaky = Arc::new(Flaky {
            bytes,
            cut: 6,
            opened: AtomicU64::new(0),
        });
        let blob = SourceBlob {
            digest: Some(Digest::of(bytes)),
            size: bytes.len() as u64,
            bytes: BlobBytes::Reopenable(flaky.clone()),
            origin: "r.example/app".into(),
        };
        let mut out = Vec::new();
        copy_checked(blob, &mut out, &|_| {}, &no_write_error)
            .await
            .expect("copied after one break");
        assert_eq!(out, bytes);
        assert_eq!(flaky.opened.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_full_disk_and_a_read_only_place_read_as_such() {
        let full = write_error(Path::new("/d/x"), io::Error::from_raw_os_error(28));
        assert!(full.message().contains("no space left"), "{full}");
        assert_eq!(full.kind(), Kind::Input);
        let read_only = write_error(Path::new("/d/x"), io::Error::from_raw_os_error(30));
        assert!(read_only.message().contains("read-only"), "{read_only}");
    }

    #[test]
    fn a_temporary_path_is_removed_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let temp = TempPath::beside(dir.path(), "a.tar");
        std::fs::write(temp.path(), b"half").unwrap();
        let name = temp.path().to_path_buf();
        drop(temp);
        assert!(!name.exists());
        let temp = TempPath::beside(dir.path(), "a.tar");
        std::fs::write(temp.path(), b"whole").unwrap();
        temp.persist(&dir.path().join("a.tar")).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a.tar")).unwrap(), b"whole");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
