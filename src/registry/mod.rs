//! Talking to an OCI registry: TLS trust, authentication, and the write steps of a push.

mod auth;
mod client;
mod origin;
mod status;
mod timeouts;
mod tls;
mod upload;

pub use auth::{Challenge, parse_challenge};
pub use client::{Connection, Registry};
pub use tls::{HostPin, Trust, install_default_provider};
pub use upload::{BlobOutcome, ChunkPolicy, Uploaded};
