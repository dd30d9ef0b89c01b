//! The manifests of an engine's export, worked out once the tar has gone by (see
//! `engine_stream`): the exact manifest bytes of Docker 25+'s OCI form, or, for a classic
//! `docker save` (Docker before 25, Podman), the OCI manifest `docker_archive` builds for the same
//! archive read from a file, so both give the same digest.
//!
//! The OCI form may hold an index of which only the locally present platform is in the export
//! (Docker's containerd store): the index is pushed whole when every manifest it names is there,
//! else the one platform that is (or the one `--platform` picks). An `index.json` whose
//! `manifests` is `null` (saving by image ID) falls back to `manifest.json`, and the engine's own
//! manifest for that config and those layers is used when the export holds it.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use serde::Deserialize;

use super::stream::{Entry, ExportPlan, HINT_DAMAGED, Seen};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::media_type::{
    OCI_CONFIG as CONFIG, OCI_INDEX, OCI_LAYER as LAYER, OCI_LAYER_GZIP as LAYER_GZIP,
    OCI_LAYER_ZSTD as LAYER_ZSTD, OCI_MANIFEST,
};
use crate::oci::{
    Descriptor, Document, MANIFESTS_LIMIT, Manifest, Manifests, OciDescriptor, OciManifest,
    check_config, too_many_manifests,
};
use crate::source::names::matches_name;
use crate::source::store::{GZIP_MAGIC, ZSTD_MAGIC};

const MAX_LINK_HOPS: usize = 16;

/// The manifests to push, and the small blobs held in memory that they name.
pub(crate) struct Resolved {
    pub(crate) manifests: Manifests,
    pub(crate) from_memory: Vec<(Digest, Bytes)>,
}

/// One image of a classic `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Item {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

/// Works out the manifests of the export `seen`, for the image `plan` names.
pub(crate) fn resolve(seen: &Seen, plan: &ExportPlan) -> Result<Resolved> {
    let view = View::new(seen, plan);
    let index: Option<Document> = match seen.files.get("index.json") {
        Some(bytes) => Some(view.parse(bytes, "index.json")?),
        None => None,
    };
    let entries = index.and_then(|i| i.manifests).unwrap_or_default();
    let (manifests, needed) = if entries.is_empty() {
        view.classic()?
    } else {
        let chosen = view.select(&entries)?;
        view.walk(&chosen)?
    };
    let mut from_memory = Vec::new();
    let mut done = HashSet::new();
    for digest in needed {
        if !done.insert(digest.clone()) {
            continue;
        }
        match view.by_digest.get(&digest) {
            Some(Entry {
                bytes: Some(bytes), ..
            }) => from_memory.push((digest, bytes.clone())),
            Some(_) => {}
            None => {
                return Err(Error::input(format!(
                    "blob {digest} of {} is missing from the export",
                    plan.origin
                ))
                .with_hint(HINT_DAMAGED));
            }
        }
    }
    Ok(Resolved {
        manifests,
        from_memory,
    })
}

/// The export, looked up by path and by digest.
struct View<'a> {
    seen: &'a Seen,
    plan: &'a ExportPlan,
    by_digest: HashMap<Digest, &'a Entry>,
}

impl<'a> View<'a> {
    fn new(seen: &'a Seen, plan: &'a ExportPlan) -> View<'a> {
        let mut by_digest = HashMap::new();
        for entry in seen.entries.values() {
            // Prefer an entry held in memory when the same bytes came twice.
            let slot = by_digest.entry(entry.digest.clone()).or_insert(entry);
            if slot.bytes.is_none() && entry.bytes.is_some() {
                *slot = entry;
            }
        }
        View {
            seen,
            plan,
            by_digest,
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, bytes: &[u8], what: &str) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::input(format!(
                "{what} in {} is not what an engine writes ({e})",
                self.plan.origin
            ))
            .with_hint(HINT_DAMAGED)
        })
    }

    fn digest(&self, text: &str) -> Result<Digest> {
        Digest::parse(text).map_err(|e| {
            Error::input(format!("{} names a bad digest: {e}", self.plan.origin))
                .with_hint(HINT_DAMAGED)
        })
    }

    /// The bytes of a manifest held in memory.
    fn held(&self, digest: &Digest) -> Option<&'a Bytes> {
        self.by_digest.get(digest).and_then(|e| e.bytes.as_ref())
    }

    fn manifest(&self, digest: &Digest) -> Result<(Manifest, Document)> {
        let bytes = self.held(digest).ok_or_else(|| {
            Error::input(format!(
                "manifest {digest} of {} is missing from the export",
                self.plan.origin
            ))
            .with_hint(HINT_DAMAGED)
        })?;
        let document: Document = self.parse(bytes, &format!("manifest {digest}"))?;
        let media_type = document.media_type.clone().unwrap_or_else(|| {
            if document.is_index() {
                OCI_INDEX
            } else {
                OCI_MANIFEST
            }
            .to_string()
        });
        Ok((
            Manifest {
                media_type,
                digest: digest.clone(),
                bytes: bytes.to_vec(),
            },
            document,
        ))
    }

    /// The entry of `index.json` that is the image asked for.
    fn select(&self, entries: &'a [Descriptor]) -> Result<Digest> {
        let digests: HashSet<&str> = entries.iter().map(|d| d.digest.as_str()).collect();
        if digests.len() == 1 {
            return self.digest(&entries[0].digest);
        }
        let named: HashSet<&str> = entries
            .iter()
            .filter(|d| d.names().any(|n| matches_name(n, &self.plan.image)))
            .map(|d| d.digest.as_str())
            .collect();
        match named.into_iter().collect::<Vec<_>>().as_slice() {
            [digest] => self.digest(digest),
            _ => Err(Error::input(format!(
                "the export of {} holds {} images and none is only {}",
                self.plan.origin,
                digests.len(),
                self.plan.image
            ))
            .with_hint("name the image by its ID (docker images --no-trunc)")),
        }
    }

    /// The manifests under `root` and the blobs they name.
    fn walk(&self, root: &Digest) -> Result<(Manifests, Vec<Digest>)> {
        let (manifest, document) = self.manifest(root)?;
        if !document.is_index() {
            return self.single(manifest, &document);
        }
        let children = document.manifests.as_deref().unwrap_or_default();
        if let Some(platform) = &self.plan.platform {
            let child = children
                .iter()
                .find(|c| {
                    !c.is_attestation() && c.platform.as_ref().is_some_and(|p| p.is(platform))
                })
                .ok_or_else(|| {
                    Error::input(format!(
                        "{} has no {platform} image; it has {}",
                        self.plan.origin,
                        labels(children)
                    ))
                    .with_hint("pick one of those with --platform, or leave it out")
                })?;
            let (manifest, document) = self.manifest(&self.digest(&child.digest)?)?;
            return self.single(manifest, &document);
        }
        // Each child once, however many times the index names it: an index may list one
        // manifest thousands of times, and each reading would be held.
        let mut present = Vec::new();
        let mut unique = HashSet::new();
        let mut missing = false;
        for child in children {
            let digest = self.digest(&child.digest)?;
            if !unique.insert(digest.clone()) {
                continue;
            }
            if self.held(&digest).is_some() {
                present.push((child, digest));
            } else {
                missing = true;
            }
        }
        if !missing {
            // Held once already (the export's small JSON); copied for the push only when they
            // add up to what one image may hold.
            let bytes = present
                .iter()
                .filter_map(|(_, digest)| self.held(digest))
                .fold(manifest.bytes.len() as u64, |sum, b| {
                    sum.saturating_add(b.len() as u64)
                });
            if bytes > MANIFESTS_LIMIT {
                return Err(too_many_manifests(
                    &self.plan.origin,
                    present.len() + 1,
                    bytes,
                ));
            }
            let mut needed = Vec::new();
            let mut manifests = Vec::new();
            for (_, digest) in present {
                let (child, document) = self.manifest(&digest)?;
                needed.extend(self.blobs_of(&document)?);
                manifests.push(child);
            }
            return Ok((
                Manifests {
                    children: manifests,
                    root: manifest,
                },
                needed,
            ));
        }
        // Only part of the index is in the engine: push the one platform that is.
        let images: Vec<&(&Descriptor, Digest)> = present
            .iter()
            .filter(|(c, _)| !c.is_attestation())
            .collect();
        match images.as_slice() {
            [(child, digest)] => {
                tracing::info!(
                    "{} holds only {} of index {root}; pushing that platform's manifest",
                    self.plan.origin,
                    child.label()
                );
                let (manifest, document) = self.manifest(digest)?;
                self.single(manifest, &document)
            }
            _ => Err(Error::input(format!(
                "the engine holds only part of index {root} of {}: {}",
                self.plan.origin,
                images
                    .iter()
                    .map(|(c, _)| c.label())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .with_hint("pick one platform with --platform os/arch")),
        }
    }

    fn single(&self, manifest: Manifest, document: &Document) -> Result<(Manifests, Vec<Digest>)> {
        let needed = self.blobs_of(document)?;
        if let (Some(platform), Some(config)) = (&self.plan.platform, needed.first())
            && let Some(bytes) = self.held(config)
        {
            check_config(platform, bytes, &self.plan.origin)?;
        }
        Ok((
            Manifests {
                children: Vec::new(),
                root: manifest,
            },
            needed,
        ))
    }

    /// The config, then the layers, of an image manifest.
    fn blobs_of(&self, document: &Document) -> Result<Vec<Digest>> {
        let mut needed = Vec::new();
        if let Some(config) = &document.config {
            needed.push(self.digest(&config.digest)?);
        }
        for layer in document.layers.as_deref().unwrap_or_default() {
            needed.push(self.digest(&layer.digest)?);
        }
        Ok(needed)
    }

    /// The entry at `path`, following links.
    fn at(&self, path: &str, what: &str) -> Result<&'a Entry> {
        let mut path = path.to_string();
        for _ in 0..MAX_LINK_HOPS {
            if let Some(entry) = self.seen.entries.get(&path) {
                return Ok(entry);
            }
            match self.seen.links.get(&path) {
                Some(target) => path = target.clone(),
                None => break,
            }
        }
        Err(Error::input(format!(
            "{what} {path} is missing from the export of {}",
            self.plan.origin
        ))
        .with_hint(HINT_DAMAGED))
    }

    /// A classic export (`manifest.json`): its config and layers, under the OCI manifest
    /// `docker_archive` writes for the same archive, or the engine's own manifest when the export
    /// holds one for exactly these blobs.
    fn classic(&self) -> Result<(Manifests, Vec<Digest>)> {
        let bytes = self.seen.files.get("manifest.json").ok_or_else(|| {
            Error::input(format!(
                "the export of {} has neither index.json nor manifest.json",
                self.plan.origin
            ))
            .with_hint(HINT_DAMAGED)
        })?;
        let items: Vec<Item> = self.parse(bytes, "manifest.json")?;
        let item = match items.as_slice() {
            [item] => item,
            _ => {
                let found: Vec<&Item> = items
                    .iter()
                    .filter(|i| {
                        i.repo_tags
                            .iter()
                            .flatten()
                            .any(|t| matches_name(t, &self.plan.image))
                    })
                    .collect();
                match found.as_slice() {
                    [item] => *item,
                    _ => {
                        return Err(Error::input(format!(
                            "the export of {} holds {} images, not one",
                            self.plan.origin,
                            items.len()
                        ))
                        .with_hint("name the image by its ID (docker images --no-trunc)"));
                    }
                }
            }
        };
        let config = self.at(&item.config, "config")?;
        let Some(config_bytes) = &config.bytes else {
            return Err(Error::input(format!(
                "the config of {} is not JSON of at most 4 MiB",
                self.plan.origin
            )));
        };
        let mut layers = Vec::with_capacity(item.layers.len());
        for path in &item.layers {
            layers.push(self.at(path, "layer")?);
        }
        self.check_diff_ids(config_bytes, &layers)?;
        if let Some(platform) = &self.plan.platform {
            check_config(platform, config_bytes, &self.plan.origin)?;
        }
        let mut needed = vec![config.digest.clone()];
        needed.extend(layers.iter().map(|l| l.digest.clone()));
        let root = match self.engine_manifest(&needed) {
            Some(manifest) => manifest,
            None => built(config, &layers)?,
        };
        Ok((
            Manifests {
                children: Vec::new(),
                root,
            },
            needed,
        ))
    }

    /// A manifest held in the export whose config and layers are exactly `needed`.
    fn engine_manifest(&self, needed: &[Digest]) -> Option<Manifest> {
        let mut candidates: Vec<&Digest> = self
            .by_digest
            .iter()
            .filter(|(_, e)| e.bytes.is_some())
            .map(|(d, _)| d)
            .collect();
        candidates.sort();
        candidates.into_iter().find_map(|digest| {
            let (manifest, document) = self.manifest(digest).ok()?;
            let is_image = !document.is_index() && document.config.is_some();
            (is_image && self.blobs_of(&document).ok()?.as_slice() == needed).then_some(manifest)
        })
    }

    /// Uncompressed layers are their own diff IDs: they must be the config's, in order.
    fn check_diff_ids(&self, config: &[u8], layers: &[&Entry]) -> Result<()> {
        if layers.iter().any(|l| media_type(l) != LAYER) {
            return Ok(());
        }
        #[derive(Deserialize)]
        struct Config {
            rootfs: Option<RootFs>,
        }
        #[derive(Deserialize)]
        struct RootFs {
            #[serde(default)]
            diff_ids: Vec<String>,
        }
        let parsed: Config = self.parse(config, "the config")?;
        let diff_ids: Vec<String> = parsed.rootfs.map(|r| r.diff_ids).unwrap_or_default();
        let digests: Vec<String> = layers.iter().map(|l| l.digest.to_string()).collect();
        if digests == diff_ids {
            return Ok(());
        }
        let wrong = digests
            .iter()
            .find(|d| !diff_ids.contains(d))
            .or(digests.first())
            .cloned()
            .unwrap_or_default();
        Err(Error::input(format!(
            "the layers of {} do not match its config: layer {wrong} is not among its {} diff IDs",
            self.plan.origin,
            diff_ids.len()
        ))
        .with_hint(HINT_DAMAGED))
    }
}

fn labels(children: &[Descriptor]) -> String {
    children
        .iter()
        .filter(|c| !c.is_attestation())
        .map(Descriptor::label)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A layer's media type from its first bytes, as `docker_archive` decides it.
fn media_type(entry: &Entry) -> &'static str {
    if entry.head.starts_with(&GZIP_MAGIC) {
        LAYER_GZIP
    } else if entry.head.starts_with(&ZSTD_MAGIC) {
        LAYER_ZSTD
    } else {
        LAYER
    }
}

/// The OCI manifest `docker_archive` builds for a classic archive with this config and these
/// layers, byte for byte.
fn built(config: &Entry, layers: &[&Entry]) -> Result<Manifest> {
    let manifest = OciManifest {
        schema_version: 2,
        media_type: OCI_MANIFEST,
        config: OciDescriptor {
            media_type: CONFIG,
            digest: config.digest.as_str(),
            size: config.size,
        },
        layers: layers
            .iter()
            .map(|l| OciDescriptor {
                media_type: media_type(l),
                digest: l.digest.as_str(),
                size: l.size,
            })
            .collect(),
    };
    let bytes = serde_json::to_vec(&manifest)
        .map_err(|e| Error::input(format!("cannot write a manifest ({e})")))?;
    Ok(Manifest {
        media_type: OCI_MANIFEST.to_string(),
        digest: Digest::of(&bytes),
        bytes,
    })
}
