//! Blobs waiting for their turn in a tar. A tar is one stream, so a pull into the engine or an
//! archive writes blobs into it one after another; a blob that finds the tar busy is downloaded
//! meanwhile into a spool file (checked against its digest as it arrives) and copied in when
//! its turn comes, if it is small ([`SPOOL_LIMIT`]). Such pulls so fetch small blobs
//! `--concurrency` at once, as a pull into a layout does, instead of one round trip after
//! another (issue 19); large ones stream straight into the tar. A spool file is unlinked
//! as soon as it is made, so nothing is left behind however the pull ends; with no usable
//! temporary directory a blob waits and streams straight into the tar, as before.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Mutex, MutexGuard};

use super::place::copy_checked;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::SourceBlob;

/// Bytes copied from a spool file at a time.
const PIECE: usize = 64 << 10;
/// The largest blob spooled. Small blobs are bound by latency, which spooling hides; a large
/// one is bound by bandwidth, and a second copy through the disk costs more than it saves
/// (measured with `make bench`, 1 GiB in 8 layers from a local registry: into a docker archive
/// 6.79 s with every blob spooled against 5.60 s without, into the engine 12.18 s vs 11.90 s).
const SPOOL_LIMIT: u64 = 16 << 20;

/// How a blob goes into the tar once the tar is free.
pub(super) enum Turn {
    /// Straight from its source.
    Now(SourceBlob),
    /// From its spool file, already checked.
    Spooled(Spooled),
}

/// A blob downloaded and checked into an unlinked temporary file.
pub(super) struct Spooled {
    file: tokio::fs::File,
    pub(super) digest: Digest,
    pub(super) size: u64,
}

/// Waits for the tar behind `lock`, spooling `blob` meanwhile when the tar is busy. The
/// download's progress goes to `progress` while it is spooled.
pub(super) async fn wait_turn<'m, T>(
    lock: &'m Mutex<T>,
    blob: SourceBlob,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<(MutexGuard<'m, T>, Turn)> {
    if let Ok(free) = lock.try_lock() {
        return Ok((free, Turn::Now(blob)));
    }
    if blob.size > SPOOL_LIMIT {
        return Ok((lock.lock().await, Turn::Now(blob)));
    }
    let Some(file) = spool_file() else {
        return Ok((lock.lock().await, Turn::Now(blob)));
    };
    let spooled = fill(file, blob, progress).await?;
    Ok((lock.lock().await, Turn::Spooled(spooled)))
}

/// A new temporary file, already unlinked; `None` when the temporary directory takes none.
fn spool_file() -> Option<tokio::fs::File> {
    static MADE: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        ".idpbuilder-spool-{}-{}",
        std::process::id(),
        MADE.fetch_add(1, Ordering::Relaxed)
    );
    let path = std::env::temp_dir().join(name);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path);
    match file {
        Ok(file) => {
            // Unlinked at once: the open handle keeps the bytes, and nothing outlives the pull.
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::debug!("cannot unlink spool file {}: {e}", path.display());
                return None;
            }
            Some(tokio::fs::File::from_std(file))
        }
        Err(e) => {
            tracing::debug!("no spool file in {}: {e}", path.display());
            None
        }
    }
}

async fn fill(
    mut file: tokio::fs::File,
    blob: SourceBlob,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Spooled> {
    let digest = blob
        .digest
        .clone()
        .ok_or_else(|| Error::input(format!("a blob of {} has no digest", blob.origin)))?;
    let size = copy_checked(blob, &mut file, progress, &spool_error).await?;
    file.flush().await.map_err(spool_error)?;
    file.seek(io::SeekFrom::Start(0))
        .await
        .map_err(spool_error)?;
    Ok(Spooled { file, digest, size })
}

fn spool_error(error: io::Error) -> Error {
    Error::input(format!(
        "cannot write a blob waiting for its turn into a temporary file in {}",
        std::env::temp_dir().display()
    ))
    .with_cause(error)
    .with_hint("free space there, or set TMPDIR to a directory with room for a few layers")
}

impl Spooled {
    /// Copies the spooled bytes into `out`; `written` maps a failure of `out`.
    pub(super) async fn copy_into<W: AsyncWrite + Unpin>(
        mut self,
        out: &mut W,
        written: &(dyn Fn(io::Error) -> Error + Send + Sync),
    ) -> Result<()> {
        let mut buffer = vec![0u8; PIECE];
        let mut left = self.size;
        while left > 0 {
            let want = left.min(PIECE as u64) as usize;
            let n = self
                .file
                .read(&mut buffer[..want])
                .await
                .map_err(spool_error)?;
            if n == 0 {
                return Err(spool_error(io::ErrorKind::UnexpectedEof.into()));
            }
            out.write_all(&buffer[..n]).await.map_err(written)?;
            left -= n as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::oci::BlobBytes;

    fn blob(bytes: &'static [u8], digest: Digest) -> SourceBlob {
        SourceBlob {
            digest: Some(digest),
            size: bytes.len() as u64,
            bytes: BlobBytes::Once(Box::pin(bytes)),
            origin: Arc::from("the test"),
        }
    }

    #[tokio::test]
    async fn a_blob_waits_in_a_spool_file_only_while_the_tar_is_busy() {
        let lock = Mutex::new(());
        let (free, turn) = wait_turn(&lock, blob(b"now", Digest::of(b"now")), &|_| {})
            .await
            .expect("free");
        assert!(matches!(turn, Turn::Now(_)));
        let (spooled, busy) = (Digest::of(b"later"), free);
        let waiting = wait_turn(&lock, blob(b"later", spooled.clone()), &|_| {});
        let released = async {
            tokio::task::yield_now().await;
            drop(busy);
        };
        let ((_guard, turn), ()) =
            tokio::join!(async { waiting.await.expect("spooled") }, released);
        let Turn::Spooled(spooled_blob) = turn else {
            panic!("a blob that found the tar busy is spooled");
        };
        assert_eq!(spooled_blob.digest, spooled);
        let mut out = Vec::new();
        spooled_blob
            .copy_into(&mut out, &|e| Error::input(e.to_string()))
            .await
            .expect("copied");
        assert_eq!(out, b"later");
    }

    #[tokio::test]
    async fn a_spooled_blob_that_does_not_match_its_digest_is_refused() {
        let lock = Mutex::new(());
        let _busy = lock.lock().await;
        let wrong = wait_turn(&lock, blob(b"bytes", Digest::of(b"other")), &|_| {});
        let Err(error) = tokio::time::timeout(std::time::Duration::from_secs(5), wrong)
            .await
            .expect("refused before the tar is free")
        else {
            panic!("a wrong blob was spooled");
        };
        assert!(
            error.to_string().contains("does not match its digest"),
            "{error}"
        );
    }
}
