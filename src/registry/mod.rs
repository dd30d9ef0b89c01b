//! Talking to an OCI registry: TLS trust, authentication, the write steps of a push and the
//! read steps of a copy from another registry.

mod auth;
mod cause;
mod chunks;
mod client;
mod download;
mod feed;
mod origin;
mod small;
mod status;
mod timeouts;
mod tls;
mod upload;

pub use auth::{Challenge, parse_challenge};
pub use cause::{Answered, Cause};
pub use chunks::ChunkPolicy;
pub use client::{Connection, Registry, Role};
pub use download::FetchedManifest;
pub use feed::read_through;
pub use small::SMALL_BLOB;
pub use timeouts::Timeouts;
pub use tls::{HostPin, Trust, install_default_provider};
