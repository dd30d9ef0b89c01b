//! The OCI model every source and destination shares: media types, descriptors, manifests and
//! indexes as read from JSON, platforms, and the blob and manifest values that move between a
//! source, the copy policy and a destination. A leaf: it builds on `digest` and `error` only.

mod blob;
mod document;
mod manifest;
pub mod media_type;
mod partial;
mod platform;
mod resuming;
mod walk;

pub use blob::{BlobBytes, BlobReader, Reopen, SourceBlob};
pub use document::{Descriptor, Document, OciDescriptor, OciManifest};
pub use manifest::{Manifest, Manifests};
pub use partial::{Part, present_part};
pub use platform::{Platform, PlatformJson, check_config, describe, pick_platform};
pub use resuming::{MIN_RATE, Pace, TooSlow, reading_on, resuming, worth_reading_again};
pub use walk::{MANIFESTS_LIMIT, MAX_DEPTH, ReadManifests, Walked, too_many_manifests, walk};
