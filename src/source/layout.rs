//! OCI image layouts (`oci-layout`, `index.json`, `blobs/sha256/...`) read through a [`Store`]:
//! one code path for layout directories, OCI archives and docker 25+ archives. Picks the image
//! (by REF and `--platform`) and lists its manifests and blobs; only JSON is read.

use std::collections::HashSet;

use super::names::{matches_name, tag_of};
use super::store::{JSON_LIMIT, Store, read_location};
use super::{Blob, Image, Selection};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::media_type::{is_foreign_layer, is_index, is_schema1};
use crate::oci::{Descriptor, Document, Manifest, Platform, check_config, pick_platform};

/// How deep indexes may nest inside indexes.
const MAX_DEPTH: usize = 4;

/// Reads the image the selection names from the layout in `store`. `prefix` (`oci`,
/// `oci-archive`, `docker-archive`) is used in hints that show how to pick an image.
pub(crate) fn open(store: &Store, selection: &Selection, prefix: &str) -> Result<Image> {
    let bytes = store.read_small("index.json", JSON_LIMIT)?;
    let index: Document = serde_json::from_slice(&bytes).map_err(|e| {
        Error::input(format!(
            "index.json in {} is not valid JSON ({e})",
            store.source().display()
        ))
    })?;
    let entries = index.manifests.unwrap_or_default();
    let chosen = select(store, &entries, selection.reference.as_deref(), prefix)?;
    let tags: HashSet<String> = chosen
        .iter()
        .filter_map(|d| d.names().find_map(tag_of))
        .collect();
    let source_tag = if tags.len() == 1 {
        tags.into_iter().next()
    } else {
        None
    };
    let names: HashSet<&str> = chosen.iter().filter_map(|d| d.names().next()).collect();
    let source_name = match names.into_iter().collect::<Vec<_>>().as_slice() {
        [name] => super::full_name(name),
        _ => None,
    };
    let mut walk = Walk {
        store,
        blobs: Vec::new(),
        seen: HashSet::new(),
        children: Vec::new(),
    };
    let root = walk.root(chosen[0], selection.platform.as_ref())?;
    Ok(Image {
        blobs: walk.blobs,
        children: walk.children,
        root,
        source_tag,
        source_name,
    })
}

/// The entries of index.json that are the image asked for: all with the same digest.
fn select<'a>(
    store: &Store,
    entries: &'a [Descriptor],
    reference: Option<&str>,
    prefix: &str,
) -> Result<Vec<&'a Descriptor>> {
    let source = store.source().display();
    let labels = || {
        entries
            .iter()
            .map(Descriptor::label)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let hint = format!("pick one with {prefix}:{source}:REF");
    let chosen: Vec<&Descriptor> = match reference {
        Some(r) => entries
            .iter()
            .filter(|d| d.digest == r || d.names().any(|n| matches_name(n, r)))
            .collect(),
        None => entries.iter().collect(),
    };
    let digests: HashSet<&str> = chosen.iter().map(|d| d.digest.as_str()).collect();
    match (reference, digests.len()) {
        (_, 1) => Ok(chosen),
        (None, 0) => Err(Error::input(format!(
            "{source} holds no image (its index.json is empty)"
        ))),
        (Some(r), 0) if entries.is_empty() => Err(Error::input(format!(
            "no image {r:?} in {source}: it holds no image"
        ))),
        (Some(r), 0) => Err(Error::input(format!(
            "no image {r:?} in {source} (it holds: {})",
            labels()
        ))
        .with_hint(hint)),
        (None, n) => {
            Err(Error::input(format!("{source} holds {n} images: {}", labels())).with_hint(hint))
        }
        (Some(r), _) => {
            let found: Vec<String> = chosen
                .iter()
                .map(|d| match d.names().next() {
                    Some(name) => format!("{name} ({})", d.digest),
                    None => d.label(),
                })
                .collect();
            Err(Error::input(format!(
                "{r:?} names several images in {source}: {}",
                found.join(", ")
            ))
            .with_hint(hint))
        }
    }
}

/// Reading one image's manifests and blobs.
struct Walk<'a> {
    store: &'a Store,
    blobs: Vec<Blob>,
    seen: HashSet<Digest>,
    children: Vec<Manifest>,
}

impl Walk<'_> {
    /// The manifest or index the tag will point at, after collecting everything below it.
    fn root(&mut self, entry: &Descriptor, platform: Option<&Platform>) -> Result<Manifest> {
        let (manifest, document) = self.manifest(entry, false)?;
        if !is_index(&manifest.media_type) {
            self.image(&manifest, &document, platform)?;
            return Ok(manifest);
        }
        let children = document.manifests.as_deref().unwrap_or_default();
        match platform {
            None => {
                self.tree(children, 0)?;
                Ok(manifest)
            }
            Some(platform) => {
                let child = self.pick(children, platform)?;
                let (child_manifest, child_document) = self.manifest(child, true)?;
                if is_index(&child_manifest.media_type) {
                    return Err(Error::input(format!(
                        "the {platform} entry of {} is itself an index, which --platform cannot pick from",
                        self.store.source().display()
                    ))
                    .with_hint("leave out --platform to push the whole index"));
                }
                self.image(&child_manifest, &child_document, None)?;
                Ok(child_manifest)
            }
        }
    }

    /// Every manifest under an index (nested indexes first), and their blobs.
    fn tree(&mut self, entries: &[Descriptor], depth: usize) -> Result<()> {
        for entry in entries {
            let (manifest, document) = self.manifest(entry, true)?;
            if self.children.iter().any(|c| c.digest == manifest.digest) {
                continue;
            }
            if is_index(&manifest.media_type) {
                if depth >= MAX_DEPTH {
                    return Err(Error::input(format!(
                        "indexes in {} are nested too deeply",
                        self.store.source().display()
                    )));
                }
                self.tree(document.manifests.as_deref().unwrap_or_default(), depth + 1)?;
            } else {
                self.image(&manifest, &document, None)?;
            }
            self.children.push(manifest);
        }
        Ok(())
    }

    /// The blobs of one image manifest; checks its config against `platform` when given.
    fn image(
        &mut self,
        manifest: &Manifest,
        document: &Document,
        platform: Option<&Platform>,
    ) -> Result<()> {
        let source = self.store.source().display();
        let config = document.config.as_ref().ok_or_else(|| {
            Error::input(format!(
                "manifest {} in {source} has no config: it is not an OCI or docker v2 image manifest",
                manifest.digest
            ))
        })?;
        if let Some(platform) = platform {
            let digest = parse_digest(self.store, &config.digest)?;
            let location = self.present(&digest, config.size, "config")?;
            let path = blob_path(&digest);
            let bytes =
                read_location(&location, JSON_LIMIT).map_err(|e| self.store.corrupt(&path, e))?;
            check_config(platform, &bytes, &source.to_string())?;
        }
        self.blob(config)?;
        for layer in document.layers.as_deref().unwrap_or_default() {
            self.blob(layer)?;
        }
        Ok(())
    }

    /// The index entry for the platform the user asked for.
    fn pick<'e>(&self, entries: &'e [Descriptor], platform: &Platform) -> Result<&'e Descriptor> {
        pick_platform(
            entries,
            platform,
            &self.store.source().display().to_string(),
        )
    }

    /// Reads and checks a manifest or index blob. `child`: it is listed by an index.
    fn manifest(&self, entry: &Descriptor, child: bool) -> Result<(Manifest, Document)> {
        let source = self.store.source().display();
        let digest = parse_digest(self.store, &entry.digest)?;
        let location = self.present(&digest, entry.size, "manifest").map_err(|e| {
            if child {
                e.with_hint("the index lists platforms that were not exported; pass --platform to push one that is here")
            } else {
                e
            }
        })?;
        let bytes = read_location(&location, JSON_LIMIT)
            .map_err(|e| self.store.corrupt(&blob_path(&digest), e))?;
        if Digest::of(&bytes) != digest {
            return Err(Error::input(format!(
                "manifest {digest} in {source} does not match its digest"
            ))
            .with_hint("the image is corrupt; export it again"));
        }
        let document: Document = serde_json::from_slice(&bytes).map_err(|e| {
            Error::input(format!(
                "manifest {digest} in {source} is not valid JSON ({e})"
            ))
        })?;
        // In a layout the document's own `mediaType` comes before its index entry's.
        let given = document
            .media_type
            .as_deref()
            .or(entry.media_type.as_deref());
        let media_type = document.media_type_or(given);
        if is_schema1(&media_type) {
            return Err(Error::input(format!(
                "{source} holds a docker schema 1 manifest, which is not supported"
            ))
            .with_hint("convert it first: skopeo copy --format v2s2 ..."));
        }
        Ok((
            Manifest {
                media_type,
                digest,
                bytes,
            },
            document,
        ))
    }

    /// Adds a config or layer blob, once per digest.
    fn blob(&mut self, entry: &Descriptor) -> Result<()> {
        let digest = parse_digest(self.store, &entry.digest)?;
        if self.seen.contains(&digest) {
            return Ok(());
        }
        let media_type = entry.media_type.clone().unwrap_or_default();
        let foreign = is_foreign_layer(&media_type);
        if foreign && self.store.locate(&blob_path(&digest))?.is_none() {
            return Ok(());
        }
        let location = self.present(&digest, entry.size, "blob")?;
        self.seen.insert(digest.clone());
        self.blobs.push(Blob {
            digest,
            size: entry.size,
            media_type,
            location,
        });
        Ok(())
    }

    /// The blob file of `digest`, which must exist and be `size` bytes long.
    fn present(&self, digest: &Digest, size: u64, what: &str) -> Result<super::Location> {
        let source = self.store.source().display();
        let location = self.store.locate(&blob_path(digest))?.ok_or_else(|| {
            Error::input(format!("{what} {digest} is missing from {source}"))
                .with_hint("the image is incomplete; export it again")
        })?;
        if location.len != size {
            return Err(Error::input(format!(
                "{what} {digest} in {source} is {} bytes, but its descriptor says {size}",
                location.len
            ))
            .with_hint("the image is corrupt or truncated; export it again"));
        }
        Ok(location)
    }
}

fn blob_path(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

fn parse_digest(store: &Store, text: &str) -> Result<Digest> {
    Digest::parse(text)
        .map_err(|e| Error::input(format!("{} in {}", e.message(), store.source().display())))
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
