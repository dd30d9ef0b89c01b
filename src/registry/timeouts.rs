//! Connect and idle timeouts, and the [`Watch`] that enforces the idle one: a request fails
//! when nothing has moved for the idle time (no body bytes taken by the connection, no
//! response), however long a large upload takes as a whole. reqwest's own `read_timeout` runs
//! from the start of a request until the response head, so it would cut off a slow but steady
//! upload of a big blob; it is not used.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long to wait for a connection, and for any progress once connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub idle: Duration,
}

/// The idle timeout in milliseconds, for tests only: the fault-injection tests hold responses
/// back past it and must not wait two minutes. Read here and nowhere else; not a user setting.
pub const IDLE_TIMEOUT_ENV: &str = "IDPBUILDER_TEST_READ_TIMEOUT_MS";

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(15),
            idle: Duration::from_secs(120),
        }
    }
}

impl Timeouts {
    /// The defaults, with the idle timeout from [`IDLE_TIMEOUT_ENV`] when it holds a number.
    pub fn from_env() -> Self {
        Self::with_override(std::env::var(IDLE_TIMEOUT_ENV).ok().as_deref())
    }

    fn with_override(idle_ms: Option<&str>) -> Self {
        let mut timeouts = Timeouts::default();
        if let Some(ms) = idle_ms.and_then(|v| v.trim().parse::<u64>().ok()) {
            timeouts.idle = Duration::from_millis(ms.max(1));
        }
        timeouts
    }
}

/// The progress of one request: when something last moved, and how much of its body the
/// connection has taken. Cloned into the body stream, which reports each piece it hands over.
#[derive(Debug, Clone)]
pub struct Watch(Arc<Progress>);

#[derive(Debug)]
struct Progress {
    origin: Instant,
    /// Milliseconds after `origin` of the last progress.
    last: AtomicU64,
    body_len: AtomicU64,
    body_sent: AtomicU64,
    /// Reads of the body's source under way: waiting on the source is not the peer's silence.
    source_reads: AtomicU64,
}

impl Default for Watch {
    fn default() -> Self {
        Self::new()
    }
}

impl Watch {
    pub fn new() -> Self {
        Watch(Arc::new(Progress {
            origin: Instant::now(),
            last: AtomicU64::new(0),
            body_len: AtomicU64::new(0),
            body_sent: AtomicU64::new(0),
            source_reads: AtomicU64::new(0),
        }))
    }

    /// The request carries a body of `len` bytes.
    pub fn expect_body(&self, len: u64) {
        self.0.body_len.store(len, Ordering::Relaxed);
        self.0.body_sent.store(0, Ordering::Relaxed);
        self.touch();
    }

    /// The connection took `bytes` more of the body.
    pub fn sent(&self, bytes: u64) {
        self.0.body_sent.fetch_add(bytes, Ordering::Relaxed);
        self.touch();
    }

    pub fn touch(&self) {
        let now = self.0.origin.elapsed().as_millis() as u64;
        self.0.last.fetch_max(now, Ordering::Relaxed);
    }

    /// Whether the request failed part-way through its body: the mark of a connection dropped
    /// by a proxy that refused the body before reading it (or of a plain reset).
    pub fn body_cut(&self) -> bool {
        let len = self.0.body_len.load(Ordering::Relaxed);
        len > 0 && self.0.body_sent.load(Ordering::Relaxed) < len
    }

    /// The body is being read from its source until the guard is dropped. Meanwhile the idle
    /// timer does not run out: the peer is waiting on us, and the source has a deadline of its
    /// own that names it (a trickled `docker://` blob drew "REGISTRY did not answer in time"
    /// warnings about the destination before its own error).
    pub fn reading_source(&self) -> SourceRead {
        self.0.source_reads.fetch_add(1, Ordering::Relaxed);
        SourceRead(self.clone())
    }

    fn last_progress(&self) -> Instant {
        self.0.origin + Duration::from_millis(self.0.last.load(Ordering::Relaxed))
    }

    /// Runs `work` until it finishes, or until nothing has moved for `idle` (`None`).
    pub async fn within<F: Future>(&self, idle: Duration, work: F) -> Option<F::Output> {
        let mut work = std::pin::pin!(work);
        loop {
            let deadline = self.last_progress() + idle;
            tokio::select! {
                output = &mut work => return Some(output),
                () = tokio::time::sleep_until(deadline.into()) => {
                    if self.0.source_reads.load(Ordering::Relaxed) > 0 {
                        self.touch();
                    } else if self.last_progress() + idle <= Instant::now() {
                        return None;
                    }
                }
            }
        }
    }
}

/// A read of the body's source under way ([`Watch::reading_source`]); its end counts as
/// progress.
pub struct SourceRead(Watch);

impl Drop for SourceRead {
    fn drop(&mut self) {
        self.0.0.source_reads.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_on_the_source_is_not_the_peers_silence() {
        let idle = Duration::from_millis(50);
        let watch = Watch::new();
        let reading = watch.reading_source();
        let slow_source = tokio::time::sleep(Duration::from_millis(300));
        assert_eq!(watch.within(idle, slow_source).await, Some(()));
        drop(reading);
        let silent_peer = tokio::time::sleep(Duration::from_millis(300));
        assert_eq!(watch.within(idle, silent_peer).await, None);
    }

    #[test]
    fn the_idle_timeout_is_two_minutes_unless_a_test_lowers_it() {
        assert_eq!(Timeouts::with_override(None).idle, Duration::from_secs(120));
        assert_eq!(
            Timeouts::with_override(Some("250")).idle,
            Duration::from_millis(250)
        );
        assert_eq!(
            Timeouts::with_override(Some("soon")),
            Timeouts::default(),
            "garbage is ignored"
        );
        assert_eq!(Timeouts::default().connect, Duration::from_secs(15));
    }

    #[test]
    fn a_body_is_cut_when_the_connection_took_less_than_all_of_it() {
        let watch = Watch::new();
        assert!(!watch.body_cut(), "no body");
        watch.expect_body(10);
        watch.sent(4);
        assert!(watch.body_cut());
        watch.sent(6);
        assert!(!watch.body_cut());
    }

    #[tokio::test]
    async fn progress_keeps_a_long_request_alive_and_silence_ends_it() {
        let idle = Duration::from_millis(200);
        let watch = Watch::new();
        let feeder = watch.clone();
        let steady = async move {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                feeder.sent(1);
            }
            "done"
        };
        assert_eq!(watch.within(idle, steady).await, Some("done"));

        let silent = Watch::new();
        let started = Instant::now();
        let stuck = tokio::time::sleep(Duration::from_secs(5));
        assert_eq!(silent.within(idle, stuck).await, None);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
