//! Small blobs in fewer round trips. A blob of 1 MiB or less spends its upload waiting on
//! round trips, not sending bytes, so it goes the shortest way the registry takes: one
//! `POST ?digest=` with the body (Gitea: 1 request), else `POST` and `PUT ?digest=` with the
//! body (distribution: 2), else `POST`, `PATCH`, empty `PUT` (container-registry; every
//! registry takes it: 3). Which way a registry takes is learnt once per push, by the first blob
//! that tries it, and shared by every blob after it; a refused way is never tried again.
//!
//! The bytes go through the same hash-checked feed as every upload (`feed.rs`), so a corrupt
//! blob never completes its request, whichever way it goes.

use reqwest::{Method, StatusCode};
use tokio::sync::watch;
use url::Url;

use super::client::{Attempt, Failure, Registry};
use super::feed::{BlobBody, BodyFailure, Part, read_error};
use super::upload::with_digest;
use crate::digest::Digest;
use crate::error::Kind;
use crate::progress::Reporter;

/// Blobs up to this size try the shorter ways (and, in `push.rs`, go beside the large ones).
/// The chunk size is never below it, so such a blob is always one part.
pub const SMALL_BLOB: u64 = 1 << 20;

/// What a registry made of one way of sending a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// No blob has tried it yet.
    Unknown,
    /// One blob is trying it now.
    Trying,
    Works,
    Refused,
}

/// One shorter way on one registry: its verdict, learnt from the first blob that tries it.
pub(super) struct Way {
    /// How the way is named in the debug log.
    name: &'static str,
    verdict: watch::Sender<Verdict>,
}

/// A blob's turn at a way.
enum Turn<'a> {
    /// Known to work.
    Use,
    /// This blob tries it for every blob.
    Try(Trial<'a>),
    /// Refused, or tried by another blob just now and not worth waiting for.
    Skip,
}

/// The one blob trying a way. Dropped without a verdict (the blob failed for reasons of its
/// own: its source, the credentials), it leaves the way to the next blob.
struct Trial<'a> {
    way: &'a Way,
}

impl Drop for Trial<'_> {
    fn drop(&mut self) {
        self.way.verdict.send_if_modified(|verdict| {
            let unsettled = *verdict == Verdict::Trying;
            if unsettled {
                *verdict = Verdict::Unknown;
            }
            unsettled
        });
    }
}

impl Way {
    fn new(name: &'static str) -> Way {
        Way {
            name,
            verdict: watch::Sender::new(Verdict::Unknown),
        }
    }

    /// This blob's turn: the first blob to ask tries the way for all of them. While it does,
    /// the others wait for its verdict (`wait`), so a refused way costs one wasted body and not
    /// one per blob in flight, or go on without the way.
    async fn turn(&self, wait: bool) -> Turn<'_> {
        loop {
            let mut claimed = false;
            self.verdict.send_if_modified(|verdict| {
                claimed = *verdict == Verdict::Unknown;
                if claimed {
                    *verdict = Verdict::Trying;
                }
                claimed
            });
            if claimed {
                return Turn::Try(Trial { way: self });
            }
            let mut verdicts = self.verdict.subscribe();
            let now = *verdicts.borrow_and_update();
            match now {
                Verdict::Works => return Turn::Use,
                Verdict::Refused => return Turn::Skip,
                Verdict::Trying if !wait => return Turn::Skip,
                Verdict::Trying | Verdict::Unknown => {
                    // Settled, or left to the next blob: either way, ask again. The sender
                    // lives as long as `self`, so this cannot fail.
                    let _ = verdicts.wait_for(|v| *v != Verdict::Trying).await;
                }
            }
        }
    }

    fn settle(&self, verdict: Verdict) {
        self.verdict.send_replace(verdict);
    }
}

/// The shorter ways of one registry, learnt by the blobs of a push and shared by them.
pub(super) struct Shortcuts {
    single_post: Way,
    put_with_body: Way,
}

impl Default for Shortcuts {
    fn default() -> Shortcuts {
        Shortcuts {
            single_post: Way::new("POST ?digest= with the body"),
            put_with_body: Way::new("PUT ?digest= with the body"),
        }
    }
}

/// How the registry answered a `POST ?digest=` with the body.
enum Posted {
    /// 201: the blob is stored.
    Stored,
    /// 202: the registry ignored the body and opened an upload session at this location.
    Session(Url),
}

impl Registry {
    /// A small blob by the shortest way this registry takes: `Some(digest)` once stored;
    /// `None` leaves it to `POST`, `PATCH`, empty `PUT` (in `session`, when one is open). A way
    /// refused while a blob tries it costs that blob a fresh start and is not tried again on
    /// this registry; one that worked and now fails fails the attempt, which is retried as any.
    pub(super) async fn upload_small(
        &self,
        body: &BlobBody<'_>,
        session: &mut Option<Url>,
        reporter: &dyn Reporter,
    ) -> Attempt<Option<Digest>> {
        let Some(digest) = body.blob.digest.clone() else {
            return Ok(None);
        };
        let ways = self.shortcuts();
        // A blob that sent its body once already does not wait for another blob's verdict:
        // its source's deadline runs from that first read (`oci::resuming`).
        let mut read_once = false;
        if session.is_none() {
            // Nobody waits while one blob tries the single POST: the others' plain POST opens
            // the session that the next way needs anyway.
            let turn = ways.single_post.turn(false).await;
            if let Some(trial) = trying(turn) {
                read_once = true;
                match self.post_with_body(body, &digest).await {
                    Ok(Posted::Stored) => {
                        self.judged(&ways.single_post, trial, Verdict::Works, "took it");
                        return self.stored(body).await.map(Some);
                    }
                    Ok(Posted::Session(location)) => {
                        self.judged(
                            &ways.single_post,
                            trial,
                            Verdict::Refused,
                            "answered 202 and dropped the body",
                        );
                        *session = Some(location);
                        reporter.blob_restarted(&digest);
                    }
                    Err(failure) => {
                        self.way_failed(&ways.single_post, trial, failure)?;
                        reporter.blob_restarted(&digest);
                    }
                }
            }
        }
        let turn = ways.put_with_body.turn(!read_once).await;
        let Some(trial) = trying(turn) else {
            return Ok(None);
        };
        let location = match session.take() {
            Some(location) => location,
            None => self.initiate_upload().await?,
        };
        *session = Some(location.clone());
        match self.put_with_body(&location, body, &digest).await {
            Ok(()) => {
                self.judged(&ways.put_with_body, trial, Verdict::Works, "took it");
                self.stored(body).await.map(Some)
            }
            Err(failure) => {
                self.way_failed(&ways.put_with_body, trial, failure)?;
                // The session may hold some of the body: the blob starts over in a new one.
                self.cancel_upload(&location).await;
                *session = None;
                reporter.blob_restarted(&digest);
                Ok(None)
            }
        }
    }

    /// `POST /v2/<name>/blobs/uploads/?digest=<digest>` with the blob as the body: 201 when the
    /// registry stored it (Gitea), 202 with a session when it ignored the body.
    async fn post_with_body(
        &self,
        body: &BlobBody<'_>,
        digest: &Digest,
    ) -> std::result::Result<Posted, BodyFailure> {
        let mut url = self
            .url("blobs/uploads/")
            .map_err(|e| BodyFailure::Registry(e.into()))?;
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        self.rewind(body).await?;
        let response = self
            .send_part(
                Method::POST,
                &url,
                body,
                whole(body),
                &[StatusCode::CREATED, StatusCode::ACCEPTED],
            )
            .await?;
        if response.status() == StatusCode::CREATED {
            return Ok(Posted::Stored);
        }
        self.next_location(&response)
            .map(Posted::Session)
            .map_err(BodyFailure::Registry)
    }

    /// `PUT <location>?digest=<digest>` with the blob as the body: 201.
    async fn put_with_body(
        &self,
        location: &Url,
        body: &BlobBody<'_>,
        digest: &Digest,
    ) -> std::result::Result<(), BodyFailure> {
        let url = with_digest(location.clone(), digest);
        self.rewind(body).await?;
        self.send_part(Method::PUT, &url, body, whole(body), &[StatusCode::CREATED])
            .await
            .map(drop)
    }

    /// Back to the blob's first byte, hash and all: each way sends the whole body.
    async fn rewind(&self, body: &BlobBody<'_>) -> std::result::Result<(), BodyFailure> {
        body.feed
            .lock()
            .await
            .rewind()
            .await
            .map_err(|e| BodyFailure::Source(Failure::fatal(read_error(body.blob, e))))
    }

    /// The digest of the bytes that went, checked against the source's on the way.
    async fn stored(&self, body: &BlobBody<'_>) -> Attempt<Digest> {
        body.feed
            .lock()
            .await
            .finished(body.blob)
            .map_err(Failure::fatal)
    }

    /// A way failed for this blob. Refused while the blob tried it, or refused outright (an
    /// answer that trying again would not change) once it worked: not tried again on this
    /// registry, and the blob goes on the longer way (`Ok`). A failure of the source, the
    /// credentials or the trust, a 404, or a passing one of a way known to work, is the
    /// attempt's.
    fn way_failed(&self, way: &Way, trial: Option<Trial<'_>>, failure: BodyFailure) -> Attempt<()> {
        let failure = match failure {
            BodyFailure::Source(failure) => return Err(failure),
            BodyFailure::Registry(failure) => failure,
        };
        // A 404 names a repository or session that is not there, which no other way changes.
        let ours =
            failure.error.kind() == Kind::Registry && failure.status != Some(StatusCode::NOT_FOUND);
        let outright = failure.status.is_some() && !failure.transient;
        if !ours || (trial.is_none() && !outright) {
            return Err(failure);
        }
        let why = format!("refused it ({})", failure.error);
        self.judged(way, trial, Verdict::Refused, &why);
        Ok(())
    }

    /// Settles a way: what a blob trying it found, or a refusal of a way known to work.
    fn judged(&self, way: &Way, trial: Option<Trial<'_>>, verdict: Verdict, what: &str) {
        if trial.is_none() && verdict == Verdict::Works {
            return;
        }
        way.settle(verdict);
        drop(trial);
        let then = match verdict {
            Verdict::Works => "small blobs go this way",
            _ => "small blobs go a longer way",
        };
        tracing::debug!(
            "{} {what} when sent {}: {then} from now on",
            self.host(),
            way.name
        );
    }
}

/// Whether to go this way: `None` to skip it; else `Some` with the trial when this blob is
/// the one trying it (`Some(None)`: known to work).
fn trying(turn: Turn<'_>) -> Option<Option<Trial<'_>>> {
    match turn {
        Turn::Use => Some(None),
        Turn::Try(trial) => Some(Some(trial)),
        Turn::Skip => None,
    }
}

/// The whole blob as one part.
fn whole(body: &BlobBody<'_>) -> Part {
    Part {
        start: 0,
        len: body.blob.size,
        last: true,
        ranged: false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn the_first_blob_tries_a_way_and_the_others_wait_for_its_verdict() {
        let way = Arc::new(Way::new("test"));
        let Turn::Try(trial) = way.turn(true).await else {
            panic!("the first blob tries the way");
        };
        assert!(matches!(way.turn(false).await, Turn::Skip));
        let waiting = {
            let way = way.clone();
            tokio::spawn(async move { matches!(way.turn(true).await, Turn::Use) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "waits while the way is tried");
        way.settle(Verdict::Works);
        drop(trial);
        assert!(waiting.await.unwrap_or(false), "then uses it");
        assert!(matches!(way.turn(true).await, Turn::Use));
    }

    #[tokio::test]
    async fn a_trial_dropped_without_a_verdict_leaves_the_way_to_the_next_blob() {
        let way = Arc::new(Way::new("test"));
        let first = way.turn(true).await;
        assert!(matches!(first, Turn::Try(_)));
        let next = {
            let way = way.clone();
            tokio::spawn(async move { matches!(way.turn(true).await, Turn::Try(_)) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        assert!(next.await.unwrap_or(false), "the next blob tries it");
    }

    #[tokio::test]
    async fn a_refused_way_is_skipped() {
        let way = Way::new("test");
        way.settle(Verdict::Refused);
        assert!(matches!(way.turn(true).await, Turn::Skip));
    }
}
