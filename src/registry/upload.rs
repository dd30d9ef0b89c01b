//! The write steps of a push, one method per protocol request, as go-containerregistry names
//! them: `blob_exists` (HEAD), `initiate_upload` (POST), `put_whole` / `upload_in_chunks` (the
//! bytes), `commit_upload` (PUT `?digest=`), `cancel_upload` (DELETE), `put_manifest`.
//! `upload_blob` chains them inside one retry, and answers a proxy's body cap with smaller
//! chunks.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Body, Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use url::Url;

use super::client::{Attempt, Failure, Registry};
use super::timeouts::Watch;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Kind, Result};
use crate::progress::{Reporter, human_bytes};
use crate::source::{Blob, Manifest};

const READ_BUFFER: usize = 256 * 1024;
/// Below this, a proxy that refuses bodies is not worked around any further.
const MIN_CHUNK: u64 = 1 << 20;
/// The longest a failed upload's clean-up may hold up the retry.
const CANCEL_LIMIT: Duration = Duration::from_secs(10);

/// What happened to a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    Pushed,
    Exists,
}

/// The chunk size in force: `--chunk-size`, lowered for the rest of the push when a proxy
/// refuses a body.
#[derive(Debug)]
pub struct ChunkPolicy {
    size: AtomicU64,
    /// Set once a body was refused: the warning is printed, a cap is known to exist.
    warned: AtomicBool,
}

/// How a proxy refused a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// It answered 413.
    TooLarge,
    /// It dropped the connection part-way through the body, again: a proxy that answers 413
    /// before reading the body and closes at once leaves the client with a failed write, never
    /// the answer.
    Dropped,
}

impl ChunkPolicy {
    pub fn new(size: u64) -> Self {
        ChunkPolicy {
            size: AtomicU64::new(size.max(MIN_CHUNK)),
            warned: AtomicBool::new(false),
        }
    }

    pub fn current(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    /// Whether a body was refused earlier in this push.
    fn capped(&self) -> bool {
        self.warned.load(Ordering::Relaxed)
    }

    /// Halves the size below the body that was refused; `None` when already at the floor.
    /// Warns once per push.
    fn shrink(&self, refused: u64, how: Refusal, host: &str) -> Option<u64> {
        let current = self.current();
        if refused <= MIN_CHUNK {
            return None;
        }
        let next = (refused.min(current) / 2).max(MIN_CHUNK);
        self.size.fetch_min(next, Ordering::Relaxed);
        let next = self.current();
        let body = human_bytes(refused);
        let what = match how {
            Refusal::TooLarge => format!("refused a request body of {body} (413)"),
            Refusal::Dropped => {
                format!("dropped the connection twice while receiving a request body of {body}")
            }
        };
        if !self.warned.swap(true, Ordering::Relaxed) {
            eprintln!(
                "warning: {host} {what}; uploading in chunks of {} from now on",
                human_bytes(next)
            );
        } else {
            tracing::debug!("{host} {what}; lowering the chunk size to {next} bytes");
        }
        Some(next)
    }
}

impl Registry {
    /// `HEAD /v2/<name>/blobs/<digest>`: 200 when present, 404 when not.
    pub async fn blob_exists(&self, digest: &Digest) -> Result<bool> {
        let url = self.url(&format!("blobs/{digest}"))?;
        self.retrying("check a blob", || async {
            let response = self
                .send(
                    |_| async { Ok(self.request(Method::HEAD, url.clone())) },
                    &[StatusCode::OK, StatusCode::NOT_FOUND],
                )
                .await?;
            Ok(response.status() == StatusCode::OK)
        })
        .await
    }

    /// Uploads one blob unless the registry has it. A failed attempt cancels its upload
    /// session and starts over in a new one, so the registry never keeps a partial blob, and
    /// only commits one whose digest it checked. A refused body (413, or the connection dropped
    /// part-way through a large body twice running) is retried at once in smaller chunks.
    pub async fn upload_blob(
        &self,
        blob: &Blob,
        chunks: &ChunkPolicy,
        reporter: &dyn Reporter,
    ) -> Result<BlobOutcome> {
        if self.blob_exists(&blob.digest).await? {
            return Ok(BlobOutcome::Exists);
        }
        let what = format!("upload {}", blob.digest.short());
        let cuts = AtomicU32::new(0);
        self.retrying(&what, || async {
            reporter.blob_restarted(&blob.digest);
            loop {
                let mut location = self.initiate_upload().await?;
                let chunk = chunks.current();
                let body = blob.size.min(chunk);
                let result = if blob.size <= chunk {
                    self.put_whole(&location, blob, reporter).await
                } else {
                    self.upload_in_chunks(&mut location, blob, chunk, reporter)
                        .await
                };
                let Err(failure) = result else {
                    return Ok(BlobOutcome::Pushed);
                };
                if !matches!(failure.error.kind(), Kind::Auth | Kind::Tls) {
                    self.cancel_upload(&location).await;
                }
                let refusal = if failure.status == Some(StatusCode::PAYLOAD_TOO_LARGE) {
                    Refusal::TooLarge
                } else if failure.body_cut && body > MIN_CHUNK {
                    // Once could be a glitch: retry as it is. Twice, or after an earlier
                    // refusal in this push, it is a cap.
                    if !chunks.capped() && cuts.fetch_add(1, Ordering::Relaxed) == 0 {
                        return Err(failure);
                    }
                    Refusal::Dropped
                } else {
                    cuts.store(0, Ordering::Relaxed);
                    return Err(failure);
                };
                cuts.store(0, Ordering::Relaxed);
                if chunks.shrink(body, refusal, self.host()).is_none() {
                    return Err(Failure::fatal(failure.error.with_hint(
                        "a proxy in front of the registry refuses even 1 MiB request bodies; raise its body size limit",
                    )));
                }
                reporter.blob_restarted(&blob.digest);
            }
        })
        .await
    }

    /// `POST /v2/<name>/blobs/uploads/`: 202 with the session's `Location`.
    async fn initiate_upload(&self) -> Attempt<Url> {
        let url = self.url("blobs/uploads/")?;
        let response = self
            .send(
                |_| async {
                    Ok(self
                        .request(Method::POST, url.clone())
                        .header(CONTENT_LENGTH, 0))
                },
                &[StatusCode::ACCEPTED],
            )
            .await?;
        self.next_location(&response)
    }

    fn next_location(&self, response: &reqwest::Response) -> Attempt<Url> {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Error::registry(format!(
                    "{} started an upload without a Location header",
                    self.host()
                ))
            })?;
        Ok(self.resolve_location(location)?)
    }

    /// `PUT <location>?digest=<digest>` with the whole blob streamed as the body: 201.
    async fn put_whole(&self, location: &Url, blob: &Blob, reporter: &dyn Reporter) -> Attempt<()> {
        let url = with_digest(location.clone(), &blob.digest);
        let hasher = &Arc::new(Mutex::new(Hasher::new()));
        let mismatch = &Arc::new(OnceLock::new());
        let url = &url;
        let result = self
            .send(
                |watch| async move {
                    let range = Range {
                        start: 0,
                        len: blob.size,
                    };
                    let body = blob_body(
                        blob,
                        range,
                        hasher,
                        Hasher::new(),
                        Some(mismatch),
                        reporter,
                        watch,
                    )
                    .await?;
                    Ok(self
                        .request(Method::PUT, url.clone())
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_LENGTH, blob.size)
                        .body(body))
                },
                &[StatusCode::CREATED],
            )
            .await;
        check_mismatch(blob, mismatch)?;
        result.map(drop)
    }

    /// `PATCH` chunks with `Content-Range: start-end`, following each new `Location` (kept in
    /// `location`, so a failed upload can be cancelled), then commit once every byte is in and
    /// its digest checked.
    async fn upload_in_chunks(
        &self,
        location: &mut Url,
        blob: &Blob,
        chunk: u64,
        reporter: &dyn Reporter,
    ) -> Attempt<()> {
        let hasher = &Arc::new(Mutex::new(Hasher::new()));
        let mismatch = Arc::new(OnceLock::new());
        let mut start = 0;
        while start < blob.size {
            let len = chunk.min(blob.size - start);
            let last = start + len == blob.size;
            let verify = last.then_some(&mismatch);
            let url = &location.clone();
            let before = &lock(hasher).clone();
            let result = self
                .send(
                    |watch| async move {
                        let range = Range { start, len };
                        let body =
                            blob_body(blob, range, hasher, before.clone(), verify, reporter, watch)
                                .await?;
                        Ok(self
                            .request(Method::PATCH, url.clone())
                            .header(CONTENT_TYPE, "application/octet-stream")
                            .header(CONTENT_RANGE, format!("{}-{}", start, start + len - 1))
                            .header(CONTENT_LENGTH, len)
                            .body(body))
                    },
                    &[StatusCode::ACCEPTED, StatusCode::NO_CONTENT],
                )
                .await;
            check_mismatch(blob, &mismatch)?;
            *location = self.next_location(&result?)?;
            start += len;
        }
        self.commit_upload(location, &blob.digest).await
    }

    /// `PUT <location>?digest=<digest>` with no body: 201.
    async fn commit_upload(&self, location: &Url, digest: &Digest) -> Attempt<()> {
        let url = with_digest(location.clone(), digest);
        self.send(
            |_| async {
                Ok(self
                    .request(Method::PUT, url.clone())
                    .header(CONTENT_LENGTH, 0))
            },
            &[StatusCode::CREATED],
        )
        .await
        .map(drop)
    }

    /// `DELETE <location>`: ends a failed upload session so the registry drops its partial
    /// data now rather than at its next purge (204). Best effort: one try, bounded in time;
    /// a session that already ended answers 404, which is fine.
    async fn cancel_upload(&self, location: &Url) {
        let cancel = self.send(
            |_| async { Ok(self.request(Method::DELETE, location.clone())) },
            &[StatusCode::NO_CONTENT, StatusCode::ACCEPTED, StatusCode::OK],
        );
        let limit = CANCEL_LIMIT.min(self.timeouts().idle);
        match tokio::time::timeout(limit, cancel).await {
            Ok(Ok(_)) => tracing::debug!("cancelled upload session {}", location.path()),
            Ok(Err(failure)) => tracing::debug!(
                "could not cancel upload session {}: {}",
                location.path(),
                failure.error
            ),
            Err(_) => tracing::debug!("cancelling upload session {} timed out", location.path()),
        }
    }

    /// `PUT /v2/<name>/manifests/<reference>` with the manifest's exact bytes: 201. Checks the
    /// digest the registry computed against ours.
    pub async fn put_manifest(&self, reference: &str, manifest: &Manifest) -> Result<()> {
        let url = self.url(&format!("manifests/{reference}"))?;
        let body = Bytes::from(manifest.bytes.clone());
        self.retrying("push the manifest", || async {
            let response = self
                .send(
                    |_| async {
                        Ok(self
                            .request(Method::PUT, url.clone())
                            .header(CONTENT_TYPE, manifest.media_type.as_str())
                            .body(body.clone()))
                    },
                    &[StatusCode::CREATED, StatusCode::OK],
                )
                .await?;
            let echoed = response
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok());
            if let Some(echoed) = echoed
                && echoed != manifest.digest.as_str()
            {
                return Err(Failure::fatal(Error::registry(format!(
                    "{} stored manifest {} as {echoed}",
                    self.host(),
                    manifest.digest
                ))));
            }
            Ok(())
        })
        .await
    }
}

fn with_digest(mut location: Url, digest: &Digest) -> Url {
    location
        .query_pairs_mut()
        .append_pair("digest", digest.as_str());
    location
}

fn check_mismatch(blob: &Blob, mismatch: &OnceLock<Digest>) -> Attempt<()> {
    match mismatch.get() {
        Some(actual) => Err(Failure::fatal(
            Error::input(format!(
                "blob {} of the image does not match its digest (its bytes hash to {actual})",
                blob.digest
            ))
            .with_hint("the image file is corrupt; export or save the image again"),
        )),
        None => Ok(()),
    }
}

/// Which bytes of a blob a request carries.
#[derive(Debug, Clone, Copy)]
struct Range {
    start: u64,
    len: u64,
}

/// A body streaming `range` of the blob, feeding `hasher`, the progress reporter and the
/// request's `watch`. With `verify`, the digest is checked before the last bytes are handed
/// over, so a corrupt blob never completes its request.
async fn blob_body(
    blob: &Blob,
    Range { start, len }: Range,
    hasher: &Arc<Mutex<Hasher>>,
    hashed_before: Hasher,
    verify: Option<&Arc<OnceLock<Digest>>>,
    reporter: &dyn Reporter,
    watch: Watch,
) -> Result<Body> {
    let mut file = tokio::fs::File::open(blob.location.file.as_path())
        .await
        .map_err(|e| {
            Error::input(format!(
                "cannot read blob {} from {}",
                blob.digest,
                blob.location.file.display()
            ))
            .with_cause(e)
        })?;
    file.seek(io::SeekFrom::Start(blob.location.offset + start))
        .await
        .map_err(|e| Error::input(format!("cannot read blob {}", blob.digest)).with_cause(e))?;
    // A request sent again re-reads the same range, so the hash restarts from the state it had
    // where this range begins.
    watch.expect_body(len);
    let reading = Reading {
        watch,
        file,
        remaining: len,
        hasher: hasher.clone(),
        snapshot: Some(hashed_before),
        expected: verify.map(|m| (blob.digest.clone(), m.clone())),
        progress: reporter.blob_progress_sink(&blob.digest),
    };
    Ok(Body::wrap_stream(reading.into_stream()))
}

struct Reading {
    watch: Watch,
    file: tokio::fs::File,
    remaining: u64,
    hasher: Arc<Mutex<Hasher>>,
    snapshot: Option<Hasher>,
    expected: Option<(Digest, Arc<OnceLock<Digest>>)>,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
}

fn lock(hasher: &Mutex<Hasher>) -> std::sync::MutexGuard<'_, Hasher> {
    hasher
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Reading {
    fn into_stream(self) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        futures_util::stream::try_unfold(self, |mut reading| async move {
            if let Some(snapshot) = reading.snapshot.take() {
                *lock(&reading.hasher) = snapshot;
            }
            if reading.remaining == 0 {
                return Ok(None);
            }
            let want = reading.remaining.min(READ_BUFFER as u64) as usize;
            let mut buffer = BytesMut::with_capacity(want);
            while buffer.len() < want {
                let read = (&mut reading.file)
                    .take((want - buffer.len()) as u64)
                    .read_buf(&mut buffer)
                    .await?;
                if read == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the blob file ended early",
                    ));
                }
            }
            reading.remaining -= want as u64;
            let mut hasher = lock(&reading.hasher);
            hasher.update(&buffer);
            if reading.remaining == 0
                && let Some((expected, mismatch)) = reading.expected.take()
            {
                let actual = hasher.clone().finish();
                if actual != expected {
                    let _ = mismatch.set(actual);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "blob digest mismatch",
                    ));
                }
            }
            drop(hasher);
            reading.watch.sent(want as u64);
            (reading.progress)(want as u64);
            Ok(Some((buffer.freeze(), reading)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_policy_halves_below_the_refused_body_and_stops_at_the_floor() {
        let policy = ChunkPolicy::new(512 << 20);
        assert!(!policy.capped());
        assert_eq!(
            policy.shrink(40 << 20, Refusal::TooLarge, "h"),
            Some(20 << 20)
        );
        assert!(policy.capped());
        assert_eq!(policy.current(), 20 << 20);
        assert_eq!(
            policy.shrink(20 << 20, Refusal::Dropped, "h"),
            Some(10 << 20)
        );
        assert_eq!(policy.shrink(MIN_CHUNK, Refusal::TooLarge, "h"), None);
    }

    #[test]
    fn digest_goes_into_the_query_next_to_the_state() {
        let url = Url::parse("https://h/v2/a/blobs/uploads/u?_state=xyz").unwrap();
        let d = Digest::of(b"");
        let url = with_digest(url, &d);
        assert_eq!(
            url.query(),
            Some(&*format!("_state=xyz&digest=sha256%3A{}", d.hex()))
        );
    }
}
