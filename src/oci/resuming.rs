//! A blob read from a peer that may drop the connection part-way: after a cut, the read goes on
//! from the byte reached (a `Range` request, through [`Reopen::open_at`]) instead of starting the
//! blob over, so a flaky link costs the bytes in flight, not the blob. The digest is still
//! checked over the whole blob by whoever reads it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, ReadBuf};

use super::blob::{BlobReader, Reopen};
use crate::error::{Error, Kind};

/// Cuts in a row with no byte in between before the read gives up: the peer is down, not
/// flaky, and the caller's own retries (and their messages) take over.
const STALLS_ALLOWED: u32 = 3;

/// Cuts in all before the read gives up, so a peer that sends a byte per connection cannot
/// keep a blob going for ever.
const CUTS_ALLOWED: u32 = 32;

/// `reopen` with every reader it opens made [`resuming`]: what a source hands out for a blob
/// whose connection may drop.
pub fn reading_on(reopen: Arc<dyn Reopen>, size: u64, name: String) -> Arc<dyn Reopen> {
    Arc::new(ReadingOn { reopen, size, name })
}

struct ReadingOn {
    reopen: Arc<dyn Reopen>,
    size: u64,
    name: String,
}

impl Reopen for ReadingOn {
    fn open_at(&self, offset: u64) -> BoxFuture<'static, io::Result<BlobReader>> {
        let reader = resuming(self.reopen.clone(), offset, self.size, self.name.clone());
        Box::pin(std::future::ready(Ok(reader)))
    }
}

/// Reads `reopen`'s blob from `offset` to `size`, going on from the byte reached after a
/// network failure. `name` names the blob in the debug line each resumption logs.
pub fn resuming(reopen: Arc<dyn Reopen>, offset: u64, size: u64, name: String) -> BlobReader {
    let opening = reopen.open_at(offset);
    Box::pin(Resuming {
        reopen,
        position: offset,
        size,
        name,
        state: State::Opening(opening),
        stalls: 0,
        cuts: 0,
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
        .is_some_and(|ours| ours.kind() == Kind::Registry)
}

impl AsyncRead for Resuming {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
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

    #[tokio::test]
    async fn a_failure_that_is_not_the_networks_is_not_read_on() {
        let blob = flaky(1000, 300, Kind::Input);
        let mut reader = resuming(blob.clone(), 0, 1000, "blob x".into());
        let error = reader.read_to_end(&mut Vec::new()).await.unwrap_err();
        assert!(error.to_string().contains("no such blob"), "{error}");
        assert_eq!(*blob.opened.lock().unwrap(), [0]);
    }
}
