//! The write steps of a push, one method per protocol request, as go-containerregistry names
//! them: `blob_exists` (HEAD), `mount_blob` (POST `?mount=&from=`), `initiate_upload` (POST),
//! `patch_chunk` (PATCH, the bytes), `commit_upload` (PUT `?digest=`, no body),
//! `cancel_upload` (DELETE), `put_manifest`.
//!
//! A blob goes the way docker, containerd, crane and skopeo send it: `POST`, one `PATCH`
//! streaming the whole blob (or `PATCH` chunks with `Content-Range` above the chunk size), then
//! an empty `PUT ?digest=`. Every registry we know takes this flow; some (container-registry)
//! take no other. `upload_blob` chains the steps and, after a failure, makes one decision
//! (`chunks.rs`'s `decide`): try again, shrink the chunks (a proxy's body cap), or give up. The
//! bytes go through `feed.rs`, which hashes them on the way.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Body, Method, StatusCode};
use tokio::sync::Mutex;
use url::Url;

use super::chunks::{ChunkPolicy, History, Next, decide};
use super::client::{Attempt, Failure, Registry};
use super::feed::{
    BlobBody, BlobInfo, BodyFailure, Feed, Part, Problem, Reading, read_error, read_whole,
};
use super::small::SMALL_BLOB;
use crate::digest::Digest;
use crate::error::{Error, Kind, Result};
use crate::oci::{BlobBytes, Manifest, SourceBlob};
use crate::progress::{BlobOutcome, Reporter, Uploaded};

/// The longest a failed upload's clean-up may hold up the retry.
const CANCEL_LIMIT: Duration = Duration::from_secs(10);

/// How the registry answered a mount.
enum Mount {
    /// 201: the blob is in the repository now.
    Mounted,
    /// 202: it started a normal upload session instead, at this location.
    Session(Url),
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
    /// over after its first byte was read. `known_absent`: a `HEAD` just found the blob missing,
    /// so it is not asked again.
    pub async fn upload_blob(
        &self,
        blob: SourceBlob,
        chunks: &ChunkPolicy,
        known_absent: bool,
        reporter: &dyn Reporter,
    ) -> Result<Uploaded> {
        let (blob, bytes) = BlobInfo::split(blob);
        let mut first_session = None;
        if let Some(digest) = &blob.digest {
            let outcome = if !known_absent && self.blob_exists(digest).await? {
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
                read_whole(reader, &blob).await.map_err(|error| {
                    if crate::oci::worth_reading_again(&error) {
                        Failure::transient(error)
                    } else {
                        Failure::fatal(error)
                    }
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
        // Small enough to spend its upload on round trips, known by digest, and readable again
        // should a shorter way turn out to be refused (`small.rs`). Never chunked: the chunk
        // size is at least 1 MiB.
        let small = blob.digest.is_some() && reopen.is_some() && blob.size <= SMALL_BLOB;
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
                .upload_in_session(&blob, &feed, chunk, small, &mut session, reporter)
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
    /// registry answered with an upload), the bytes, the commit. A `small` blob first tries
    /// the shorter ways this registry takes (`small.rs`). Returns the digest committed.
    async fn upload_in_session(
        &self,
        blob: &BlobInfo,
        feed: &Arc<Mutex<Feed>>,
        chunk: u64,
        small: bool,
        session: &mut Option<Url>,
        reporter: &dyn Reporter,
    ) -> Attempt<Digest> {
        let progress = match &blob.digest {
            Some(digest) => reporter.blob_progress_sink(digest),
            None => reporter.unnamed_progress_sink(),
        };
        let body = BlobBody {
            blob,
            feed,
            progress: &progress,
        };
        // A small blob tries its shorter ways first, opening its source only once it knows its
        // way: it may first wait for another blob's verdict (`small.rs`), and a source read's
        // deadline starts at opening.
        if small && let Some(digest) = self.upload_small(&body, session, reporter).await? {
            return Ok(digest);
        }
        // From the first byte: a fresh attempt, or a small blob with no shorter way (or one
        // refused part-way through the body).
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
            location = self.patch_chunk(&location, &body, part).await?;
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
    pub(super) async fn initiate_upload(&self) -> Attempt<Url> {
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

    pub(super) fn next_location(&self, response: &reqwest::Response) -> Attempt<Url> {
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
    /// when the blob goes in several parts): 202 with the next `Location`.
    async fn patch_chunk(&self, location: &Url, body: &BlobBody<'_>, part: Part) -> Attempt<Url> {
        let response = self
            .send_part(
                Method::PATCH,
                location,
                body,
                part,
                &[StatusCode::ACCEPTED, StatusCode::NO_CONTENT],
            )
            .await?;
        self.next_location(&response)
    }

    /// One request whose body is `part` of the blob, read from the feed as it goes. The digest
    /// is checked before the last bytes of the last part are handed over, so a corrupt blob
    /// never completes its request. A failure the source caused (its bytes do not match, it
    /// cannot be read) is told apart from the registry's.
    pub(super) async fn send_part(
        &self,
        method: Method,
        url: &Url,
        body: &BlobBody<'_>,
        part: Part,
        expected: &[StatusCode],
    ) -> std::result::Result<reqwest::Response, BodyFailure> {
        let BlobBody {
            blob,
            feed,
            progress,
        } = body;
        let problem: Arc<std::sync::Mutex<Option<Problem>>> = Arc::default();
        let start_hash = feed.lock().await.hasher.clone();
        let result = self
            .send(
                |watch| {
                    let feed = (*feed).clone();
                    let problem = problem.clone();
                    let start_hash = start_hash.clone();
                    let progress = (*progress).clone();
                    let expected = blob.digest.clone().filter(|_| part.last);
                    let method = method.clone();
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
                            .request(method, url.clone())
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
                expected,
            )
            .await;
        let problem = problem
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(problem) = problem {
            return Err(BodyFailure::Source(problem.into_failure(blob)));
        }
        result.map_err(BodyFailure::Registry)
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
    pub(super) async fn cancel_upload(&self, location: &Url) {
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

pub(super) fn with_digest(mut location: Url, digest: &Digest) -> Url {
    location
        .query_pairs_mut()
        .append_pair("digest", digest.as_str());
    location
}

#[cfg(test)]
mod tests {
    use super::*;

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
