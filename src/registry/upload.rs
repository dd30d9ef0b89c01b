//! The write steps of a push, one method per protocol request, as go-containerregistry names
//! them: `blob_exists` (HEAD), `mount_blob` (POST `?mount=&from=`), `initiate_upload` (POST),
//! `patch_chunk` (PATCH, the bytes), `commit_upload` (PUT `?digest=`, no body),
//! `cancel_upload` (DELETE), `put_manifest`.
//!
//! A blob goes the way docker, containerd, crane and skopeo send it: `POST`, one `PATCH`
//! streaming the whole blob (or `PATCH` chunks with `Content-Range` above the chunk size), then
//! an empty `PUT ?digest=`. Every registry we know takes this flow; some (container-registry)
//! take no other. `upload_blob` chains the steps and, after a failure, makes one decision
//! ([`decide`]): try again, shrink the chunks (a proxy's body cap), or give up.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use indicatif::HumanBytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Body, Method, StatusCode};
use tokio::io::AsyncReadExt;
use tokio::sync::{Mutex, OwnedMutexGuard};
use url::Url;

use super::client::{Attempt, Failure, Registry};
use super::timeouts::Watch;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Kind, Result};
use crate::oci::{BlobBytes, BlobReader, Manifest, Reopen, SourceBlob};
use crate::progress::{BlobOutcome, Reporter};

const READ_BUFFER: usize = 256 * 1024;
/// Below this, a proxy that refuses bodies is not worked around any further.
const MIN_CHUNK: u64 = 1 << 20;
/// The longest a failed upload's clean-up may hold up the retry.
const CANCEL_LIMIT: Duration = Duration::from_secs(10);

/// How the registry answered a mount.
enum Mount {
    /// 201: the blob is in the repository now.
    Mounted,
    /// 202: it started a normal upload session instead, at this location.
    Session(Url),
}

/// A blob that is in the registry now, under the digest its bytes hash to.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub digest: Digest,
    pub size: u64,
    pub outcome: BlobOutcome,
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
    /// It dropped the connection part-way through the body, again, without answering: a proxy
    /// that answers 413 before reading the body and closes at once leaves the client with a
    /// failed write, never the answer.
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
    fn shrink(
        &self,
        refused: u64,
        how: Refusal,
        host: &str,
        reporter: &dyn Reporter,
    ) -> Option<u64> {
        let current = self.current();
        if refused <= MIN_CHUNK {
            return None;
        }
        let next = (refused.min(current) / 2).max(MIN_CHUNK);
        self.size.fetch_min(next, Ordering::Relaxed);
        let next = self.current();
        let body = HumanBytes(refused);
        let what = match how {
            Refusal::TooLarge => format!("refused a request body of {body} (413)"),
            Refusal::Dropped => {
                format!("dropped the connection twice while receiving a request body of {body}")
            }
        };
        if !self.warned.swap(true, Ordering::Relaxed) {
            reporter.warn(&format!(
                "{host} {what}; uploading in chunks of {} from now on",
                HumanBytes(next)
            ));
        } else {
            tracing::debug!("{host} {what}; lowering the chunk size to {next} bytes");
        }
        Some(next)
    }
}

/// What to do after a failed upload attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Start over in a new session, after the backoff delay. `cut` marks a connection dropped
    /// mid-body without an answer: once may be a glitch, twice is a cap.
    Retry {
        cut: bool,
    },
    /// Start over at once with smaller chunks.
    Shrink(Refusal),
    Fail,
}

/// What earlier attempts at one blob ran into.
#[derive(Debug, Clone, Copy, Default)]
struct History {
    /// Connections dropped mid-body without an answer, in a row.
    cuts: u32,
    /// The registry answered an attempt with a status other than 413: it reads our requests,
    /// so a later dropped connection is the registry closing early, not a proxy's cap.
    answered: bool,
}

/// The one decision after a failed attempt. Only a 413, or a connection dropped mid-body
/// without any answer, can mean a body cap; a registry that answered (500, 404, ...) never
/// shrinks the chunks.
fn decide(failure: &Failure, body: u64, history: History, capped: bool, replayable: bool) -> Next {
    if !replayable {
        return Next::Fail;
    }
    if failure.status == Some(StatusCode::PAYLOAD_TOO_LARGE) {
        return Next::Shrink(Refusal::TooLarge);
    }
    if failure.body_cut && failure.status.is_none() && body > MIN_CHUNK && !history.answered {
        return if capped || history.cuts > 0 {
            Next::Shrink(Refusal::Dropped)
        } else {
            Next::Retry { cut: true }
        };
    }
    if failure.transient {
        Next::Retry { cut: false }
    } else {
        Next::Fail
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
    /// only commits one whose digest it checked. A blob read once from a stream cannot start
    /// over after its first byte was read.
    pub async fn upload_blob(
        &self,
        blob: SourceBlob,
        chunks: &ChunkPolicy,
        reporter: &dyn Reporter,
    ) -> Result<Uploaded> {
        let (blob, bytes) = BlobInfo::split(blob);
        let mut first_session = None;
        if let Some(digest) = &blob.digest {
            let outcome = if self.blob_exists(digest).await? {
                Some(BlobOutcome::Exists)
            } else {
                match self.mount_blob(digest).await {
                    Some(Mount::Mounted) => Some(BlobOutcome::Mounted),
                    Some(Mount::Session(location)) => {
                        first_session = Some(location);
                        None
                    }
                    None => None,
                }
            };
            if let Some(outcome) = outcome {
                if let BlobBytes::Once(reader) = bytes {
                    // The stream must move on past it, and it is checked all the same.
                    read_whole(reader, &blob).await?;
                }
                return Ok(Uploaded {
                    digest: digest.clone(),
                    size: blob.size,
                    outcome,
                });
            }
        }
        // A blob that goes in several parts is checked before its first part is sent, so a
        // corrupt one never sends more than one (a blob of one part withholds its last bytes).
        if let (Some(digest), BlobBytes::Reopenable(reopen)) = (&blob.digest, &bytes)
            && blob.size > chunks.current()
        {
            // Opening retries on its own; a network source's body that breaks is read again.
            self.retrying(&format!("check {}", digest.short()), || async {
                let reader = reopen
                    .open_at(0)
                    .await
                    .map_err(|e| Failure::fatal(read_error(&blob, e)))?;
                read_whole(reader, &blob)
                    .await
                    .map_err(|error| match error.kind() {
                        Kind::Registry => Failure::transient(error),
                        _ => Failure::fatal(error),
                    })
            })
            .await?;
        }
        let what = match &blob.digest {
            Some(digest) => format!("upload {}", digest.short()),
            None => format!("upload a blob of {}", blob.origin),
        };
        // A reopenable blob gets a fresh feed for each attempt, so nothing an abandoned request
        // still holds can hold up the next one; a stream keeps its one feed.
        let reopen = match &bytes {
            BlobBytes::Reopenable(reopen) => Some(reopen.clone()),
            BlobBytes::Once(_) => None,
        };
        let mut feed = Arc::new(Mutex::new(Feed::new(bytes)));
        let mut delays = self.backoff();
        let mut history = History::default();
        loop {
            if let Some(reopen) = &reopen {
                feed = Arc::new(Mutex::new(Feed::new(BlobBytes::Reopenable(reopen.clone()))));
            }
            if let Some(digest) = &blob.digest {
                reporter.blob_restarted(digest);
            }
            let chunk = chunks.current();
            let mut session = first_session.take();
            let failure = match self
                .upload_in_session(&blob, &feed, chunk, &mut session, reporter)
                .await
            {
                Ok(digest) => {
                    return Ok(Uploaded {
                        digest,
                        size: blob.size,
                        outcome: BlobOutcome::Pushed,
                    });
                }
                Err(failure) => failure,
            };
            if let Some(location) = &session
                && !matches!(failure.error.kind(), Kind::Auth | Kind::Tls)
            {
                self.cancel_upload(location).await;
            }
            let replayable = reopen.is_some() || feed.lock().await.can_restart();
            let body = blob.size.min(chunk);
            if failure
                .status
                .is_some_and(|s| s != StatusCode::PAYLOAD_TOO_LARGE)
            {
                history.answered = true;
            }
            match decide(&failure, body, history, chunks.capped(), replayable) {
                Next::Fail => return Err(failure.error),
                Next::Shrink(how) => {
                    history.cuts = 0;
                    if chunks.shrink(body, how, self.host(), reporter).is_none() {
                        return Err(failure.error.with_hint(
                            "a proxy in front of the registry refuses even 1 MiB request bodies; raise its body size limit",
                        ));
                    }
                }
                Next::Retry { cut } => {
                    let Some(delay) = delays.next() else {
                        return Err(failure.error);
                    };
                    let delay = failure.retry_after.map_or(delay, |r| r.max(delay));
                    if cut {
                        history.cuts += 1;
                        tracing::debug!(
                            "{what}: {} (the connection dropped mid-body; retrying in {:.1}s)",
                            failure.error,
                            delay.as_secs_f64()
                        );
                    } else {
                        history.cuts = 0;
                        self.notify_retry(&what, &failure, delay);
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// One attempt: a new session (or the one `session` holds already, from a mount the
    /// registry answered with an upload), the bytes, the commit. Returns the digest committed.
    async fn upload_in_session(
        &self,
        blob: &BlobInfo,
        feed: &Arc<Mutex<Feed>>,
        chunk: u64,
        session: &mut Option<Url>,
        reporter: &dyn Reporter,
    ) -> Attempt<Digest> {
        feed.lock()
            .await
            .rewind()
            .await
            .map_err(|e| Failure::fatal(read_error(blob, e)))?;
        let mut location = match session.take() {
            Some(location) => location,
            None => self.initiate_upload().await?,
        };
        *session = Some(location.clone());
        let progress = match &blob.digest {
            Some(digest) => reporter.blob_progress_sink(digest),
            None => reporter.unnamed_progress_sink(),
        };
        let chunked = blob.size > chunk;
        let mut start = 0;
        while start < blob.size {
            let len = chunk.min(blob.size - start);
            let part = Part {
                start,
                len,
                last: start + len == blob.size,
                ranged: chunked,
            };
            location = self
                .patch_chunk(&location, blob, feed, part, &progress)
                .await?;
            *session = Some(location.clone());
            start += len;
        }
        let digest = feed.lock().await.finished(blob).map_err(Failure::fatal)?;
        self.commit_upload(&location, &digest).await?;
        Ok(digest)
    }

    /// `POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repository>`, when blobs are
    /// mounted from a repository of this registry: 201 when the registry mounted the blob, 202
    /// with an upload session's `Location` when it did not. Any other outcome (a registry that
    /// refuses mounts, a repository it will not read for us) is logged and leaves a normal
    /// upload to do the work: `None`.
    async fn mount_blob(&self, digest: &Digest) -> Option<Mount> {
        let from = self.mount_from()?;
        let mut url = self.url("blobs/uploads/").ok()?;
        url.query_pairs_mut()
            .append_pair("mount", digest.as_str())
            .append_pair("from", from);
        let answer = self
            .retrying(&format!("mount {}", digest.short()), || async {
                let response = self
                    .post_empty(&url, &[StatusCode::CREATED, StatusCode::ACCEPTED])
                    .await?;
                if response.status() == StatusCode::CREATED {
                    return Ok(Mount::Mounted);
                }
                self.next_location(&response).map(Mount::Session)
            })
            .await;
        match answer {
            Ok(mount) => Some(mount),
            Err(error) => {
                tracing::debug!("mounting {digest} from {from} failed ({error}); uploading it");
                None
            }
        }
    }

    /// `POST /v2/<name>/blobs/uploads/`: 202 with the session's `Location`.
    async fn initiate_upload(&self) -> Attempt<Url> {
        let url = self.url("blobs/uploads/")?;
        let response = self.post_empty(&url, &[StatusCode::ACCEPTED]).await?;
        self.next_location(&response)
    }

    /// A `POST` with no body to `url` (starting an upload session, or a mount).
    async fn post_empty(&self, url: &Url, expected: &[StatusCode]) -> Attempt<reqwest::Response> {
        self.send(
            |_| async {
                Ok(self
                    .request(Method::POST, url.clone())
                    .header(CONTENT_LENGTH, 0))
            },
            expected,
        )
        .await
    }

    fn next_location(&self, response: &reqwest::Response) -> Attempt<Url> {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Error::registry(format!(
                    "{} answered an upload request without a Location header",
                    self.host()
                ))
            })?;
        Ok(self.resolve_location(location)?)
    }

    /// `PATCH <location>` with `part` of the blob as the body (and `Content-Range: start-end`
    /// when the blob goes in several parts): 202 with the next `Location`. The digest is
    /// checked before the last bytes of the last part are handed over, so a corrupt blob never
    /// completes its request.
    async fn patch_chunk(
        &self,
        location: &Url,
        blob: &BlobInfo,
        feed: &Arc<Mutex<Feed>>,
        part: Part,
        progress: &Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Attempt<Url> {
        let problem: Arc<std::sync::Mutex<Option<Problem>>> = Arc::default();
        let start_hash = feed.lock().await.hasher.clone();
        let result = self
            .send(
                |watch| {
                    let feed = feed.clone();
                    let problem = problem.clone();
                    let start_hash = start_hash.clone();
                    let progress = progress.clone();
                    let expected = blob.digest.clone().filter(|_| part.last);
                    async move {
                        let mut feed = feed.lock_owned().await;
                        feed.seek(part.start, start_hash)
                            .await
                            .map_err(|e| read_error(blob, e))?;
                        watch.expect_body(part.len);
                        let reading = Reading {
                            feed: Some(feed),
                            remaining: part.len,
                            expected,
                            last: part.last,
                            problem,
                            watch,
                            progress,
                        };
                        let mut request = self
                            .request(Method::PATCH, location.clone())
                            .header(CONTENT_TYPE, "application/octet-stream")
                            .header(CONTENT_LENGTH, part.len);
                        if part.ranged {
                            request = request.header(
                                CONTENT_RANGE,
                                format!("{}-{}", part.start, part.start + part.len - 1),
                            );
                        }
                        Ok(request.body(Body::wrap_stream(reading.into_stream())))
                    }
                },
                &[StatusCode::ACCEPTED, StatusCode::NO_CONTENT],
            )
            .await;
        let problem = problem
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(problem) = problem {
            return Err(problem.into_failure(blob));
        }
        self.next_location(&result?)
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

/// What the upload knows of a blob besides its bytes.
struct BlobInfo {
    digest: Option<Digest>,
    size: u64,
    origin: Arc<str>,
}

impl BlobInfo {
    /// What messages need of a blob, and its bytes.
    fn split(blob: SourceBlob) -> (BlobInfo, BlobBytes) {
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

    fn name(&self) -> String {
        match &self.digest {
            Some(digest) => format!("blob {digest}"),
            None => "a blob".to_string(),
        }
    }
}

/// A local read failure is the image's fault, not the network's: an input error naming where
/// the bytes came from. A source that explains its own failure (an engine, a registry) passes
/// our error inside the `io::Error`.
fn read_error(blob: &BlobInfo, error: io::Error) -> Error {
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
async fn read_whole(mut reader: BlobReader, blob: &BlobInfo) -> Result<Digest> {
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

fn ended_early() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "the blob ended early")
}

/// Which bytes of a blob one `PATCH` carries.
#[derive(Debug, Clone, Copy)]
struct Part {
    start: u64,
    len: u64,
    last: bool,
    /// Sent with `Content-Range`: the blob goes in several parts.
    ranged: bool,
}

/// Why a body stopped that is not the network's doing.
#[derive(Debug)]
enum Problem {
    /// The bytes hash to this, not to the digest the source named.
    Mismatch(Digest),
    /// The source could not be read.
    Read(io::Error),
}

impl Problem {
    fn into_error(self, blob: &BlobInfo) -> Error {
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
    /// blob anew; a local read error or wrong bytes are final.
    fn into_failure(self, blob: &BlobInfo) -> Failure {
        let error = self.into_error(blob);
        if error.kind() == Kind::Registry {
            Failure::transient(error)
        } else {
            Failure::fatal(error)
        }
    }
}

/// The blob's bytes across the requests of one upload: a reader, how far it has read, and the
/// hash of what it read.
struct Feed {
    bytes: FeedBytes,
    reader: Option<BlobReader>,
    position: u64,
    hasher: Hasher,
    /// The digest of every byte, once the last one was read.
    digest: Option<Digest>,
}

enum FeedBytes {
    Reopenable(Arc<dyn Reopen>),
    /// A stream read once; `touched` once a byte of it was asked for.
    Once {
        touched: bool,
    },
}

impl Feed {
    fn new(bytes: BlobBytes) -> Feed {
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
    fn can_restart(&self) -> bool {
        match self.bytes {
            FeedBytes::Reopenable(_) => true,
            FeedBytes::Once { touched } => !touched,
        }
    }

    /// Back to the first byte, for a new attempt.
    async fn rewind(&mut self) -> io::Result<()> {
        self.seek(0, Hasher::new()).await
    }

    /// Positions the reader at `start`, with `hashed` the hash of the bytes before it. A
    /// request sent again (after a 401) reads its part again.
    async fn seek(&mut self, start: u64, hashed: Hasher) -> io::Result<()> {
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
    fn finished(&mut self, blob: &BlobInfo) -> Result<Digest> {
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
struct Reading {
    /// Held for the whole body, released with its last bytes.
    feed: Option<OwnedMutexGuard<Feed>>,
    remaining: u64,
    /// The digest to check at the end, on the last part.
    expected: Option<Digest>,
    last: bool,
    problem: Arc<std::sync::Mutex<Option<Problem>>>,
    watch: Watch,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
}

/// Ends a body for a reason of the source's, kept in `slot` for the upload to report.
fn stop(slot: &std::sync::Mutex<Option<Problem>>, problem: Problem) -> io::Error {
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
    fn into_stream(self) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
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
    use crate::progress::Silent;

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

    #[test]
    fn chunk_policy_halves_below_the_refused_body_and_stops_at_the_floor() {
        let policy = ChunkPolicy::new(512 << 20);
        assert!(!policy.capped());
        assert_eq!(
            policy.shrink(40 << 20, Refusal::TooLarge, "h", &Silent::default()),
            Some(20 << 20)
        );
        assert!(policy.capped());
        assert_eq!(policy.current(), 20 << 20);
        assert_eq!(
            policy.shrink(20 << 20, Refusal::Dropped, "h", &Silent::default()),
            Some(10 << 20)
        );
        assert_eq!(
            policy.shrink(MIN_CHUNK, Refusal::TooLarge, "h", &Silent::default()),
            None
        );
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

    fn answered(status: StatusCode) -> Failure {
        Failure {
            status: Some(status),
            transient: status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS,
            ..Failure::fatal(Error::registry("answered"))
        }
    }

    fn cut() -> Failure {
        Failure {
            body_cut: true,
            ..Failure::transient(Error::registry("reset"))
        }
    }

    const BIG: u64 = 40 << 20;

    fn cuts(cuts: u32) -> History {
        History {
            cuts,
            answered: false,
        }
    }

    #[test]
    fn a_413_shrinks_the_chunks() {
        let next = decide(
            &answered(StatusCode::PAYLOAD_TOO_LARGE),
            BIG,
            cuts(0),
            false,
            true,
        );
        assert_eq!(next, Next::Shrink(Refusal::TooLarge));
    }

    #[test]
    fn a_registry_that_answers_500_is_retried_never_shrunk() {
        for cuts in [0, 1, 5] {
            for capped in [false, true] {
                let failure = Failure {
                    body_cut: true,
                    ..answered(StatusCode::INTERNAL_SERVER_ERROR)
                };
                let history = History {
                    cuts,
                    answered: false,
                };
                assert_eq!(
                    decide(&failure, BIG, history, capped, true),
                    Next::Retry { cut: false },
                    "an answer, even with the body cut short, is not a body cap"
                );
            }
        }
    }

    #[test]
    fn a_cut_without_an_answer_is_retried_once_then_shrinks() {
        assert_eq!(
            decide(&cut(), BIG, cuts(0), false, true),
            Next::Retry { cut: true }
        );
        assert_eq!(
            decide(&cut(), BIG, cuts(1), false, true),
            Next::Shrink(Refusal::Dropped)
        );
        assert_eq!(
            decide(&cut(), BIG, cuts(0), true, true),
            Next::Shrink(Refusal::Dropped),
            "after an earlier refusal in this push, the first cut is a cap"
        );
    }

    #[test]
    fn cuts_after_the_registry_answered_are_the_registry_closing_early() {
        let history = History {
            cuts: 3,
            answered: true,
        };
        assert_eq!(
            decide(&cut(), BIG, history, true, true),
            Next::Retry { cut: false }
        );
    }

    #[test]
    fn a_cut_in_a_small_body_is_a_plain_retry() {
        assert_eq!(
            decide(&cut(), MIN_CHUNK, cuts(3), true, true),
            Next::Retry { cut: false }
        );
    }

    #[test]
    fn final_failures_and_spent_streams_fail() {
        assert_eq!(
            decide(&answered(StatusCode::NOT_FOUND), BIG, cuts(0), false, true),
            Next::Fail
        );
        assert_eq!(
            decide(
                &answered(StatusCode::SERVICE_UNAVAILABLE),
                BIG,
                cuts(0),
                false,
                false
            ),
            Next::Fail,
            "a stream read once cannot be sent again"
        );
    }
}
