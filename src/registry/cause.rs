//! Why a registry could not be used, as typed causes in the registry's own terms. The client
//! attaches one to its error (`Error::with_reason`) and leaves the hint empty where the next step
//! is a flag or an environment variable: the command line is the report's to name
//! (`report::hint`), as skopeo words containers/image's errors.

use super::client::Role;
use crate::credentials::Origin;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Cause {
    /// The registry asked for credentials (a 401 or a token refused) and none were given.
    #[error("the registry asked for credentials and none were given")]
    CredentialsNeeded { role: Role },
    /// The registry refused the credentials it was given (401); `origin` is where they came
    /// from.
    #[error("the registry refused the credentials")]
    CredentialsRefused { role: Role, origin: Option<Origin> },
    /// The cluster's admin credentials would have gone over plain HTTP to a host that is not
    /// loopback; they were not sent.
    #[error("the cluster's credentials go over plain HTTP only to a loopback address")]
    ClusterCredentialsInClearText,
    /// A plain-HTTP request was answered 400, as an HTTPS server answers one.
    #[error("the registry may speak HTTPS on that port")]
    PlainHttpToHttps { role: Role },
    /// The registry's TLS certificate is not trusted.
    #[error("the registry's TLS certificate is not trusted")]
    UntrustedCertificate { role: Role },
    /// One of idpbuilder's own host names (`*.cnoe.localtest.me`) cannot be reached.
    #[error("idpbuilder's registry host cannot be reached")]
    IdpbuilderUnreachable,
}

/// The registry answered a request with an error status of its own, none of the [`Cause`]s:
/// what a layer above reads to tell "the registry refused this" from a network failure, where
/// the message alone would have to be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    pub status: u16,
}
