//! The one walk of an image: index -> manifests -> blobs, with one nesting rule for every
//! source. A source says how to read a manifest and a config ([`ReadManifests`]); the walk
//! decides what is read: one platform with `--platform`, else every manifest under the index,
//! nested indexes followed (each after its own children, so a destination can take them in
//! order) up to [`MAX_DEPTH`], each manifest and blob once.
//!
//! Whether a destination takes a nested index is the destination's to say, not the walk's.

use std::collections::HashSet;

use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};

use super::document::{Descriptor, Document};
use super::manifest::Manifest;
use super::media_type::{OCI_ARTIFACT_MANIFEST, is_index};
use super::platform::{Platform, check_config, pick_platform};
use crate::error::{Error, Result};

/// How deep indexes may nest inside indexes.
pub const MAX_DEPTH: usize = 4;
/// Manifests of one index read at once.
const READS_AT_ONCE: usize = 4;

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
    let mut walk = Walk {
        reader,
        children: Vec::new(),
        blobs: Vec::new(),
        seen: HashSet::new(),
    };
    let (manifest, document) = root;
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
}

impl Walk<'_> {
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
            let reads: Vec<_> = entries
                .iter()
                .map(|entry| reader.manifest(entry, true))
                .collect();
            let read: Vec<(Manifest, Document)> = futures_util::stream::iter(reads)
                .buffered(READS_AT_ONCE)
                .try_collect()
                .await?;
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
