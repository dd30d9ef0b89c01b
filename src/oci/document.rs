//! Descriptors, manifests and indexes as JSON: the lenient reading every source shares (only
//! the fields a copy needs, each optional where real images leave it out), and the manifest
//! written for images that have none of their own (a classic `docker save`).
//!
//! Our own types rather than oci-spec's: oci-spec's are strict where real inputs are not (a
//! descriptor without `mediaType` in older layouts, `manifests: null` in a Docker 25 export
//! saved by ID, Docker media types beside OCI ones), and a copy never re-serialises what it
//! reads: manifests travel as their exact bytes, so only the few fields the walk needs are
//! parsed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::media_type::{OCI_INDEX, OCI_MANIFEST, is_index};
use super::platform::PlatformJson;

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// Docker marks its attestation manifests (provenance, SBOM) in an index this way.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// An OCI content descriptor: only the fields we use.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: Option<String>,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub platform: Option<PlatformJson>,
}

impl Descriptor {
    /// The names this entry goes by: its ref name, then its containerd image name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let annotations = self.annotations.as_ref();
        [REF_NAME, CONTAINERD_NAME]
            .into_iter()
            .filter_map(move |key| annotations.and_then(|a| a.get(key)).map(String::as_str))
    }

    /// An attestation manifest of Docker's (provenance, SBOM), not an image.
    pub fn is_attestation(&self) -> bool {
        self.annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(REFERENCE_TYPE))
    }

    /// How messages name this entry: a name, else its digest and platform.
    pub fn label(&self) -> String {
        match (
            self.names().next(),
            self.platform.as_ref().and_then(PlatformJson::describe),
        ) {
            (Some(name), _) => name.to_string(),
            (None, Some(platform)) => format!("{} ({platform})", self.digest),
            (None, None) => self.digest.clone(),
        }
    }
}

/// A manifest or an index, as far as we need to walk it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    #[serde(default)]
    pub schema_version: Option<u32>,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Option<Vec<Descriptor>>,
    /// The blobs of an OCI 1.1-rc artifact manifest, which has neither config nor layers.
    #[serde(default)]
    pub blobs: Option<Vec<Descriptor>>,
}

impl Document {
    /// An index, by its media type or, without one, by its shape.
    pub fn is_index(&self) -> bool {
        match self.media_type.as_deref() {
            Some(media_type) => is_index(media_type),
            None => self.manifests.is_some() && self.config.is_none(),
        }
    }
}

impl Document {
    /// The media type to give these bytes: `given` (a registry's `Content-Type`, an index
    /// entry's `mediaType`) when there is one, else the document's own `mediaType`, else what
    /// its shape says (a Docker v2 manifest always names itself; an OCI one need not).
    pub fn media_type_or(&self, given: Option<&str>) -> String {
        match (given.filter(|t| !t.is_empty()), &self.media_type) {
            (Some(t), _) => t.to_string(),
            (None, Some(t)) if !t.is_empty() => t.clone(),
            _ if self.manifests.is_some() => OCI_INDEX.to_string(),
            _ => OCI_MANIFEST.to_string(),
        }
    }
}

/// The OCI image manifest we write for an image that has none (a classic `docker save`); field
/// order is fixed so the same image always gives the same digest.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciManifest<'a> {
    pub schema_version: u32,
    pub media_type: &'a str,
    pub config: OciDescriptor<'a>,
    pub layers: Vec<OciDescriptor<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciDescriptor<'a> {
    pub media_type: &'a str,
    pub digest: &'a str,
    pub size: u64,
}
