//! The one walk of an image: index -> manifests -> blobs, with one nesting rule for every
//! source. A source says how to read a manifest and a config ([`ReadManifests`]); the walk
//! decides what is read: one platform with `--platform`, else every manifest under the index,
//! nested indexes followed (each after its own children, so a destination can take them in
//! order) up to [`MAX_DEPTH`], each manifest and blob once.
//!
//! Whether a destination takes a nested index is the destination's to say, not the walk's.
//!
//! The manifests held add up to at most [`MANIFESTS_LIMIT`]: each entry of an index is read
//! once however often it is listed, and the sizes the index gives are added up before any of
//! them is read, so an index naming thousands of large manifests is refused having read only
//! itself.

use std::collections::HashSet;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;

use super::document::{Descriptor, Document};
use super::manifest::Manifest;
use super::media_type::{OCI_ARTIFACT_MANIFEST, is_index};
use super::platform::{Platform, check_config, pick_platform};
use crate::error::{Error, Result};

/// How deep indexes may nest inside indexes.
pub const MAX_DEPTH: usize = 4;
/// Manifests of one index read at once.
const READS_AT_ONCE: usize = 4;
/// The most bytes of manifests one image may hold, its index and every manifest under it:
/// four of the largest manifests registries take (4 MiB each), where a real image's add up to
/// a few KiB, a few hundred with a hundred platforms and their attestations.
pub const MANIFESTS_LIMIT: u64 = 16 << 20;

/// The refusal of an image whose manifests add up to more than [`MANIFESTS_LIMIT`]: exit 2,
/// before anything is uploaded. `name` names the image and so its source.
pub fn too_many_manifests(name: &str, manifests: usize, bytes: u64) -> Error {
    Error::input(format!(
        "the manifests of {name} add up to more than {} MiB ({manifests} manifests, {bytes} bytes), more than any image needs",
        MANIFESTS_LIMIT >> 20
    ))
    .with_hint("its index is damaged or made to exhaust memory; copy one image of it with --platform os/arch, or ask whoever made it")
}

/// How a source reads what the walk asks for.
pub trait ReadManifests: Sync {
    /// The manifest or index an index entry names, read and checked against its digest.
    /// `child`: it is listed by an index (rather than picked by `--platform`).
    fn manifest<'a>(
        &'a self,
        entry: &'a Descriptor,
        child: bool,
    ) -> BoxFuture<'a, Result<(Manifest, Document)>>;
    /// The bytes of an image config, for the `--platform` check.
    fn config<'a>(&'a self, config: &'a Descriptor) -> BoxFuture<'a, Result<Vec<u8>>>;
    /// How messages name the image (a path, `HOST/REPO:TAG`).
    fn name(&self) -> String;
}

/// What the walk found.
#[derive(Debug)]
pub struct Walked {
    /// Platform manifests and nested indexes, children before the index holding them.
    pub children: Vec<Manifest>,
    /// The manifest or index the tag will point at (the picked platform's with `--platform`).
    pub root: Manifest,
    /// Configs and layers of every image manifest, each digest once, in walk order.
    pub blobs: Vec<Descriptor>,
}

/// Walks the image whose root manifest or index is `root`.
pub async fn walk(
    reader: &dyn ReadManifests,
    root: (Manifest, Document),
    platform: Option<&Platform>,
) -> Result<Walked> {
    let (manifest, document) = root;
    let mut walk = Walk {
        reader,
        children: Vec::new(),
        blobs: Vec::new(),
        seen: HashSet::new(),
        held: manifest.bytes.len() as u64,
        counted: 1,
    };
    if !is_index(&manifest.media_type) {
        if let Some(platform) = platform {
            walk.check_platform(&manifest, &document, platform).await?;
        }
        walk.image(&manifest, &document)?;
        return Ok(walk.done(manifest));
    }
    let entries = document.manifests.as_deref().unwrap_or_default();
    match platform {
        None => {
            walk.tree(entries, 0).await?;
            Ok(walk.done(manifest))
        }
        Some(platform) => {
            let entry = pick_platform(entries, platform, &reader.name())?;
            let (child, child_document) = reader.manifest(entry, true).await?;
            if is_index(&child.media_type) {
                return Err(Error::input(format!(
                    "the {platform} entry of {} is itself an index, which --platform cannot pick from",
                    reader.name()
                ))
                .with_hint("leave out --platform to push the whole index"));
            }
            walk.image(&child, &child_document)?;
            Ok(walk.done(child))
        }
    }
}

struct Walk<'a> {
    reader: &'a dyn ReadManifests,
    children: Vec<Manifest>,
    blobs: Vec<Descriptor>,
    seen: HashSet<String>,
    /// Bytes of manifests read or about to be, and how many.
    held: u64,
    counted: usize,
}

impl Walk<'_> {
    /// Counts `bytes` more of manifests (`manifests` of them) against [`MANIFESTS_LIMIT`].
    fn hold(&mut self, bytes: u64, manifests: usize) -> Result<()> {
        self.held = self.held.saturating_add(bytes);
        self.counted += manifests;
        if self.held > MANIFESTS_LIMIT {
            return Err(too_many_manifests(
                &self.reader.name(),
                self.counted,
                self.held,
            ));
        }
        Ok(())
    }

    fn done(self, root: Manifest) -> Walked {
        Walked {
            children: self.children,
            root,
            blobs: self.blobs,
        }
    }

    /// Every manifest under an index (a nested index after its own children), and their blobs.
    fn tree<'s>(
        &'s mut self,
        entries: &'s [Descriptor],
        depth: usize,
    ) -> BoxFuture<'s, Result<()>> {
        Box::pin(async move {
            let reader = self.reader;
            // Each manifest once, however often the index names it, and none read unless
            // the sizes the index gives fit the limit. The set is this index's, not the
            // walk's: a manifest an outer index lists after a nested index that lists it too
            // must still be read here, so that it goes up before the nested index does.
            let mut unique = HashSet::new();
            let fresh: Vec<&Descriptor> = entries
                .iter()
                .filter(|entry| unique.insert(entry.digest.as_str()))
                .collect();
            let declared = fresh.iter().fold(0u64, |sum, e| sum.saturating_add(e.size));
            self.hold(declared, fresh.len())?;
            let reads: Vec<_> = fresh
                .iter()
                .map(|entry| reader.manifest(entry, true))
                .collect();
            let mut reading = futures_util::stream::iter(reads).buffered(READS_AT_ONCE);
            let mut read = Vec::with_capacity(fresh.len());
            // A source that does not hold a manifest to the size its index gives is held to
            // what it sent, as it sends it.
            let (mut sent, mut past_held) = (0u64, 0u64);
            while let Some(next) = reading.next().await {
                let (manifest, document) = next?;
                sent = sent.saturating_add(manifest.bytes.len() as u64);
                let past = sent.saturating_sub(declared);
                if past > past_held {
                    self.hold(past - past_held, 0)?;
                    past_held = past;
                }
                read.push((manifest, document));
            }
            for (manifest, document) in read {
                if self.children.iter().any(|c| c.digest == manifest.digest) {
                    continue;
                }
                if is_index(&manifest.media_type) {
                    if depth >= MAX_DEPTH {
                        return Err(Error::input(format!(
                            "indexes in {} are nested too deeply",
                            reader.name()
                        )));
                    }
                    let nested = document.manifests.as_deref().unwrap_or_default();
                    self.tree(nested, depth + 1).await?;
                } else {
                    self.image(&manifest, &document)?;
                }
                self.children.push(manifest);
            }
            Ok(())
        })
    }

    /// The config and layers of one image manifest (the blobs of an artifact manifest), each
    /// blob once.
    fn image(&mut self, manifest: &Manifest, document: &Document) -> Result<()> {
        let config = if manifest.media_type == OCI_ARTIFACT_MANIFEST {
            None
        } else {
            Some(self.config_of(manifest, document)?)
        };
        let layers = document.layers.as_deref().unwrap_or_default();
        let artifact_blobs = document.blobs.as_deref().unwrap_or_default();
        for blob in config.into_iter().chain(layers).chain(artifact_blobs) {
            if self.seen.insert(blob.digest.clone()) {
                self.blobs.push(blob.clone());
            }
        }
        Ok(())
    }

    fn config_of<'d>(&self, manifest: &Manifest, document: &'d Document) -> Result<&'d Descriptor> {
        document.config.as_ref().ok_or_else(|| {
            Error::input(format!(
                "manifest {} in {} has no config: it is not an OCI or docker v2 image manifest",
                manifest.digest,
                self.reader.name()
            ))
        })
    }

    /// A single image's config must be for the platform asked for.
    async fn check_platform(
        &self,
        manifest: &Manifest,
        document: &Document,
        platform: &Platform,
    ) -> Result<()> {
        if manifest.media_type == OCI_ARTIFACT_MANIFEST {
            // No config, so no platform to check.
            return Ok(());
        }
        let config = self.config_of(manifest, document)?;
        let bytes = self.reader.config(config).await?;
        check_config(platform, &bytes, &self.reader.name())
    }
}

#[cfg(test)]
#[path = "walk_tests.rs"]
mod tests;
