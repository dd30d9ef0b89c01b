//! The one error type users see: what failed, what to try, and the exit code the SPEC assigns.

use std::any::Any;
use std::fmt;

/// What kind of failure this is; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad flags, bad reference, unreadable or invalid image (exit 2).
    Input,
    /// The registry refused our credentials (exit 3).
    Auth,
    /// The registry's TLS certificate is not trusted (exit 4).
    Tls,
    /// The registry or the network failed after retries (exit 1).
    Registry,
    /// Ctrl-C or SIGTERM (exit 130).
    Interrupted,
}

impl Kind {
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Registry => 1,
            Kind::Input => 2,
            Kind::Auth => 3,
            Kind::Tls => 4,
            Kind::Interrupted => 130,
        }
    }
}

type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A lower layer's typed account of the failure (the registry's `registry::Cause`), kept for an
/// upper layer to word the next step in its own terms, as skopeo words containers/image's errors.
type Reason = Box<dyn Any + Send + Sync + 'static>;

/// A failure with a lower-case message naming the object, an optional `hint:` with the next step,
/// the underlying cause (printed only at `-l debug`), and a typed reason for the layer that words
/// the hint. `Debug` leaves the cause out: a cause from a lower layer may quote more than we want
/// shown.
#[derive(thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: Kind,
    message: String,
    hint: Option<String>,
    #[source]
    cause: Option<Cause>,
    reason: Option<Reason>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hint: None,
            cause: None,
            reason: None,
        }
    }

    pub fn input(message: impl Into<String>) -> Self {
        Self::new(Kind::Input, message)
    }

    pub fn registry(message: impl Into<String>) -> Self {
        Self::new(Kind::Registry, message)
    }

    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(Kind::Auth, message)
    }

    pub fn tls(message: impl Into<String>) -> Self {
        Self::new(Kind::Tls, message)
    }

    pub fn interrupted() -> Self {
        Self::new(Kind::Interrupted, "interrupted").with_hint(
            "run the same command again: blobs the registry already has are skipped, and no tag was written",
        )
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_cause(mut self, cause: impl Into<Cause>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// Attaches a typed reason (see [`Error::reason`]).
    pub fn with_reason(mut self, reason: impl Any + Send + Sync) -> Self {
        self.reason = Some(Box::new(reason));
        self
    }

    /// The typed reason a lower layer attached, when it is an `R`: what an upper layer reads to
    /// say what to do next, where the lower one leaves the hint empty.
    pub fn reason<R: Any>(&self) -> Option<&R> {
        self.reason.as_deref()?.downcast_ref()
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("hint", &self.hint)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_spec() {
        assert_eq!(Kind::Registry.exit_code(), 1);
        assert_eq!(Kind::Input.exit_code(), 2);
        assert_eq!(Kind::Auth.exit_code(), 3);
        assert_eq!(Kind::Tls.exit_code(), 4);
        assert_eq!(Kind::Interrupted.exit_code(), 130);
    }

    #[test]
    fn cause_is_the_error_source() {
        let io = std::io::Error::other("disk on fire");
        let err = Error::input("cannot read image")
            .with_cause(io)
            .with_hint("check the path");
        let source = std::error::Error::source(&err).map(|s| s.to_string());
        assert_eq!(source.as_deref(), Some("disk on fire"));
        assert_eq!(err.hint(), Some("check the path"));
        assert_eq!(err.to_string(), "cannot read image");
    }

    #[test]
    fn a_reason_is_read_back_by_its_type_only() {
        #[derive(Debug, PartialEq)]
        enum Why {
            Refused,
        }
        let err = Error::auth("refused").with_reason(Why::Refused);
        assert_eq!(err.reason::<Why>(), Some(&Why::Refused));
        assert_eq!(err.reason::<String>(), None);
        assert_eq!(Error::auth("refused").reason::<Why>(), None);
        assert_eq!(err.hint(), None);
    }
}
