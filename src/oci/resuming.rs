//! A blob read from a peer that may drop the connection part-way: after a cut, the read goes on
//! from the byte reached (a `Range` request, through [`Reopen::open_at`]) instead of starting the
//! blob over, so a flaky link costs the bytes in flight, not the blob. The digest is still
//! checked over the whole blob by whoever reads it.
//!
//! A blob read from a registry must also arrive at [`MIN_RATE`] on average, after a grace of
//! the idle time ([`Pace`]): the idle timer alone is per piece, so a peer sending one byte just
//! inside it would keep the run alive for ever. The deadline this gives is the blob's, shared by
//! every read of it in the run; past it the read ends with an error that is not read on or
//! retried ([`worth_reading_again`]).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::blob::{BlobReader, Reopen};
use crate::error::{Error, Kind};

/// Cuts in a row with no byte in between before the read gives up: the peer is down, not
/// flaky, and the caller's own retries (and their messages) take over.
const STALLS_ALLOWED: u32 = 3;

/// Cuts in all before the read gives up, so a peer that sends a byte per connection cannot
/// keep a blob going for ever.
const CUTS_ALLOWED: u32 = 32;

/// The slowest average rate a blob from a registry may arrive at, in bytes a second, once the
/// grace has passed: 8 KiB/s, a 64 kbit/s line, far below any link a registry is used over
/// (docker and containerd have no floor at all). A 4 MiB layer may take 8.5 minutes past the
/// grace, a 1 GiB one 36 hours: generous for an honest link, but an end.
pub const MIN_RATE: u64 = 8 << 10;

/// How a blob's reads are paced: `grace` before [`MIN_RATE`] applies (the idle timeout, so a
/// test that lowers that lowers this too), and `peer`, naming who sends it in the error
/// (`source registry HOST`).
#[derive(Debug, Clone)]
pub struct Pace {
    pub grace: Duration,
    pub peer: String,
}

/// Why a blob's read ended: it came slower than [`MIN_RATE`]. Attached to the error as its
/// reason; another read of the same blob would only wait again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooSlow;

/// Whether a failed read of a blob is worth reading on or again: the peer's network failed
/// (kind `Registry`), and not because the blob came too slowly.
pub fn worth_reading_again(error: &Error) -> bool {
    error.kind() == Kind::Registry && error.reason::<TooSlow>().is_none()
}

/// `reopen` with every reader it opens made [`resuming`] and held to `pace`: what a source
/// hands out for a blob whose connection may drop.
pub fn reading_on(reopen: Arc<dyn Reopen>, size: u64, name: String, pace: Pace) -> Arc<dyn Reopen> {
    Arc::new(ReadingOn {
        reopen,
        size,
        name,
        pace,
        deadline: Arc::new(OnceLock::new()),
    })
}

struct ReadingOn {
    reopen: Arc<dyn Reopen>,
    size: u64,
    name: String,
    pace: Pace,
    /// Set when the blob is first opened: its first read and every later one share it.
    deadline: Arc<OnceLock<Deadline>>,
}

/// When a blob's reads must be done by, and when they began (for the message).
#[derive(Debug, Clone, Copy)]
struct Deadline {
    began: Instant,
    by: Instant,
}

impl Deadline {
    fn for_blob(size: u64, grace: Duration) -> Deadline {
        let began = Instant::now();
        let allowed = grace + Duration::from_secs_f64(size as f64 / MIN_RATE as f64);
        Deadline {
            began,
            by: began + allowed,
        }
    }
}

impl Reopen for ReadingOn {
    fn open_at(&self, offset: u64) -> BoxFuture<'static, io::Result<BlobReader>> {
        let deadline = *self
            .deadline
            .get_or_init(|| Deadline::for_blob(self.size, self.pace.grace));
        let reader = open(
            self.reopen.clone(),
            offset,
            self.size,
            self.name.clone(),
            Some((deadline, self.pace.peer.clone())),
        );
        Box::pin(std::future::ready(Ok(reader)))
    }
}

/// Reads `reopen`'s blob from `offset` to `size`, going on from the byte reached after a
/// network failure. `name` names the blob in the debug line each resumption logs.
pub fn resuming(reopen: Arc<dyn Reopen>, offset: u64, size: u64, name: String) -> BlobReader {
    open(reopen, offset, size, name, None)
}

fn open(
    reopen: Arc<dyn Reopen>,
    offset: u64,
    size: u64,
    name: String,
    deadline: Option<(Deadline, String)>,
) -> BlobReader {
    let opening = reopen.open_at(offset);
    Box::pin(Resuming {
        reopen,
        position: offset,
        size,
        name,
        state: State::Opening(opening),
        stalls: 0,
        cuts: 0,
        deadline,
        timer: None,
    })
}

struct Resuming {
    reopen: Arc<dyn Reopen>,
    position: u64,
    size: u64,
    name: String,
    state: State,
    stalls: u32,
    cuts: u32,
    /// The blob's deadline and who sends it, when it is paced.
    deadline: Option<(Deadline, String)>,
    /// Wakes the read at the deadline; made on the first poll, inside the runtime.
    timer: Option<Pin<Box<Sleep>>>,
}

enum State {
    Opening(BoxFuture<'static, io::Result<BlobReader>>),
    Reading(BlobReader),
}

/// Whether a failure is the network's (worth reading on): the registry's own errors of kind
/// `Registry` (a broken body, a stall, a body that ended early). A 404, a wrong range or a
/// local failure is not.
fn is_cut(error: &io::Error) -> bool {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Error>())
        .is_some_and(worth_reading_again)
}

impl Resuming {
    /// The error once the blob's deadline has passed; else `None`, the timer set to wake the
    /// read then.
    fn overdue(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        let (deadline, peer) = self.deadline.as_ref()?;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.by)));
        if timer.as_mut().poll(cx).is_pending() {
            return None;
        }
        let seconds = (deadline.by - deadline.began).as_secs_f64();
        let message = format!(
            "{peer} sent {} too slowly: its {} bytes did not all come within {seconds:.1}s (at least {} KiB/s after the idle time)",
            self.name,
            self.size,
            MIN_RATE >> 10
        );
        Some(io::Error::other(
            Error::registry(message)
                .with_hint("the registry read from is too slow or stalled; check it or the network to it, then run the same command again")
                .with_reason(TooSlow),
        ))
    }
}

impl AsyncRead for Resuming {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(error) = this.overdue(cx) {
            return Poll::Ready(Err(error));
        }
        loop {
            match &mut this.state {
                State::Opening(opening) => {
                    let reader = ready!(opening.as_mut().poll(cx))?;
                    this.state = State::Reading(reader);
                }
                State::Reading(reader) => {
                    let before = buf.filled().len();
                    match ready!(reader.as_mut().poll_read(cx, buf)) {
                        Ok(()) => {
                            let read = (buf.filled().len() - before) as u64;
                            if read > 0 {
                                this.position += read;
                                this.stalls = 0;
                            }
                            return Poll::Ready(Ok(()));
                        }
                        Err(error)
                            if is_cut(&error)
                                && this.position < this.size
                                && this.stalls < STALLS_ALLOWED
                                && this.cuts < CUTS_ALLOWED =>
                        {
                            this.stalls += 1;
                            this.cuts += 1;
                            tracing::debug!(
                                "{}: {}; reading on from byte {} of {}",
                                this.name,
                                error,
                                this.position,
                                this.size
                            );
                            this.state = State::Opening(this.reopen.open_at(this.position));
                        }
                        Err(error) => return Poll::Ready(Err(error)),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures_util::FutureExt;
    use tokio::io::AsyncReadExt;

    use super::*;

    /// A blob whose readers each give `per_open` bytes and then fail as a broken connection
    /// (or with `final_error` once `opens` reach `fail_from`); records every offset opened.
    struct Flaky {
        bytes: Vec<u8>,
        per_open: usize,
        opened: Mutex<Vec<u64>>,
        kind: Kind,
    }

    impl Reopen for Flaky {
        fn open_at(&self, offset: u64) -> BoxFuture<'static, io::Result<BlobReader>> {
            self.opened.lock().unwrap().push(offset);
            let start = offset as usize;
            let end = (start + self.per_open).min(self.bytes.len());
            let piece = self.bytes[start..end].to_vec();
            let whole = end == self.bytes.len();
            let kind = self.kind;
            async move {
                let error = match kind {
                    Kind::Registry => Error::registry("the connection broke"),
                    _ => Error::input("no such blob"),
                };
                let tail: BlobReader = if whole {
                    Box::pin(tokio::io::empty())
                } else {
                    Box::pin(Failing(Some(io::Error::other(error))))
                };
                let reader: BlobReader = Box::pin(std::io::Cursor::new(piece).chain(tail));
                Ok(reader)
            }
            .boxed()
        }
    }

    struct Failing(Option<io::Error>);

    impl AsyncRead for Failing {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Err(self
                .0
                .take()
                .unwrap_or_else(|| io::Error::other("failed"))))
        }
    }

    fn flaky(len: usize, per_open: usize, kind: Kind) -> Arc<Flaky> {
        Arc::new(Flaky {
            bytes: (0..len).map(|i| (i % 251) as u8).collect(),
            per_open,
            opened: Mutex::new(Vec::new()),
            kind,
        })
    }

    #[tokio::test]
    async fn a_cut_goes_on_from_the_byte_reached() {
        let blob = flaky(1000, 300, Kind::Registry);
        let mut reader = resuming(blob.clone(), 100, 1000, "blob x".into());
        let mut read = Vec::new();
        reader.read_to_end(&mut read).await.unwrap();
        assert_eq!(read, blob.bytes[100..]);
        assert_eq!(*blob.opened.lock().unwrap(), [100, 400, 700]);
    }

    #[tokio::test]
    async fn a_peer_that_sends_nothing_after_a_cut_ends_the_read() {
        let blob = flaky(1000, 0, Kind::Registry);
        let mut reader = resuming(blob.clone(), 0, 1000, "blob x".into());
        let error = reader.read_to_end(&mut Vec::new()).await.unwrap_err();
        assert!(
            error.to_string().contains("the connection broke"),
            "{error}"
        );
        assert_eq!(
            blob.opened.lock().unwrap().len(),
            1 + STALLS_ALLOWED as usize
        );
    }

    #[tokio::test]
    async fn cuts_are_bounded_even_when_each_connection_sends_a_little() {
        let blob = flaky(10_000, 10, Kind::Registry);
        let mut reader = resuming(blob.clone(), 0, 10_000, "blob x".into());
        assert!(reader.read_to_end(&mut Vec::new()).await.is_err());
        assert_eq!(blob.opened.lock().unwrap().len(), 1 + CUTS_ALLOWED as usize);
    }

    /// A blob whose every reader sends one byte every 20 ms, for ever.
    struct Trickle;

    impl Reopen for Trickle {
        fn open_at(&self, _: u64) -> BoxFuture<'static, io::Result<BlobReader>> {
            let bytes = futures_util::stream::unfold((), |()| async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Some((Ok::<_, io::Error>(bytes::Bytes::from_static(b"x")), ()))
            });
            let reader: BlobReader = Box::pin(tokio_util::io::StreamReader::new(bytes));
            async move { Ok(reader) }.boxed()
        }
    }

    #[tokio::test]
    async fn a_trickled_blob_ends_at_its_deadline_and_so_does_every_later_read() {
        let pace = Pace {
            grace: Duration::from_millis(100),
            peer: "source registry r.example".into(),
        };
        let blob = reading_on(Arc::new(Trickle), 1000, "blob x".into(), pace);
        let started = std::time::Instant::now();
        let mut reader = blob.open_at(0).await.unwrap();
        let error = reader.read_to_end(&mut Vec::new()).await.unwrap_err();
        // 100 ms of grace and 1000 bytes at 8 KiB/s: 222 ms.
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        let ours = error
            .into_inner()
            .and_then(|e| e.downcast::<Error>().ok())
            .unwrap();
        assert!(!worth_reading_again(&ours));
        assert_eq!(ours.kind(), Kind::Registry);
        assert!(
            ours.message()
                .starts_with("source registry r.example sent blob x too slowly: "),
            "{ours}"
        );
        let again = std::time::Instant::now();
        let mut reader = blob.open_at(0).await.unwrap();
        assert!(reader.read_to_end(&mut Vec::new()).await.is_err());
        assert!(
            again.elapsed() < Duration::from_millis(100),
            "the deadline is the blob's"
        );
    }

    #[tokio::test]
    async fn a_failure_that_is_not_the_networks_is_not_read_on() {
        let blob = flaky(1000, 300, Kind::Input);
        let mut reader = resuming(blob.clone(), 0, 1000, "blob x".into());
        let error = reader.read_to_end(&mut Vec::new()).await.unwrap_err();
        assert!(error.to_string().contains("no such blob"), "{error}");
        assert_eq!(*blob.opened.lock().unwrap(), [0]);
    }
}
