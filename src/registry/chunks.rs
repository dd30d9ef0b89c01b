//! How big a `PATCH` may be, and the one decision after a failed upload attempt: try again,
//! shrink the chunks (a proxy's body cap), or give up. Pure logic, tested by table.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use indicatif::HumanBytes;
use reqwest::StatusCode;

use super::client::Failure;
use crate::progress::Reporter;

/// Below this, a proxy that refuses bodies is not worked around any further.
pub(super) const MIN_CHUNK: u64 = 1 << 20;

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
pub(super) enum Refusal {
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
    pub(super) fn capped(&self) -> bool {
        self.warned.load(Ordering::Relaxed)
    }

    /// Halves the size below the body that was refused; `None` when already at the floor.
    /// Warns once per push.
    pub(super) fn shrink(
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
pub(super) enum Next {
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
pub(super) struct History {
    /// Connections dropped mid-body without an answer, in a row.
    pub(super) cuts: u32,
    /// The registry answered an attempt with a status other than 413: it reads our requests,
    /// so a later dropped connection is the registry closing early, not a proxy's cap.
    pub(super) answered: bool,
}

/// The one decision after a failed attempt. Only a 413, or a connection dropped mid-body
/// without any answer, can mean a body cap; a registry that answered (500, 404, ...) never
/// shrinks the chunks.
pub(super) fn decide(
    failure: &Failure,
    body: u64,
    history: History,
    capped: bool,
    replayable: bool,
) -> Next {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::progress::Silent;

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
