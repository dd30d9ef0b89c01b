//! Docker archives (`docker save`, `podman save`). The modern form (docker 25+) is also an OCI
//! layout and is read as one; the classic form (`manifest.json`, a config file and layer tars)
//! gets an OCI image manifest built here, whose blobs keep their exact bytes.
//!
//! An uncompressed layer's digest is its diff ID, which the config lists: it is taken from there
//! rather than by hashing the layer at open, and the upload, which hashes every blob as it
//! streams, proves it (a wrong one stops the push before any manifest). A compressed layer's
//! digest is not its diff ID, so it is hashed here.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use super::names::{matches_name, tag_of, with_default_tag};
use super::store::{
    GZIP_MAGIC, JSON_LIMIT, Store, ZSTD_MAGIC, hash, hash_all, head, read_location,
};
use super::{Blob, Encoding, Image, Location, Selection, layout};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::media_type::{
    OCI_CONFIG as CONFIG, OCI_LAYER as LAYER, OCI_LAYER_GZIP as LAYER_GZIP,
    OCI_LAYER_ZSTD as LAYER_ZSTD, OCI_MANIFEST,
};
use crate::oci::{Document, Manifest, OciDescriptor, OciManifest, check_config};

/// The largest blob looked at as a docker 25+ export's own manifest.
const OWN_MANIFEST_LIMIT: u64 = 256 << 10;

/// One image of `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

impl Entry {
    fn tags(&self) -> &[String] {
        self.repo_tags.as_deref().unwrap_or_default()
    }

    /// How messages name this image: its RepoTags, else its config file.
    fn label(&self) -> String {
        match self.tags() {
            [] => self.config.clone(),
            tags => tags.join(" "),
        }
    }
}

/// What we read of an image config: the diff IDs of its layers.
#[derive(Debug, Default, Deserialize)]
struct ConfigJson {
    #[serde(default)]
    rootfs: Option<RootFs>,
}

#[derive(Debug, Default, Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Option<Vec<String>>,
}

/// Reads the image the selection names from the docker archive in `store`.
pub(crate) fn open(store: &Store, selection: &Selection) -> Result<Image> {
    let layout = store.exists("index.json") && store.exists("oci-layout");
    if layout && !(lists_no_image(store) && store.exists("manifest.json")) {
        return layout::open(store, selection, "docker-archive");
    }
    let source = store.source().display();
    let bytes = store.read_small("manifest.json", JSON_LIMIT)?;
    let mut entries: Vec<Entry> = serde_json::from_slice(&bytes).map_err(|e| {
        Error::input(format!(
            "manifest.json in {source} is not a docker archive manifest ({e})"
        ))
    })?;
    for entry in &mut entries {
        for tag in entry.repo_tags.iter_mut().flatten() {
            *tag = with_default_tag(tag);
        }
    }
    let (entry, name) = select(store, &entries, selection.reference.as_deref())?;

    let (config, diff_ids) = config(store, &entry.config)?;
    if let Some(platform) = &selection.platform {
        let bytes = read_location(&config.location, JSON_LIMIT)
            .map_err(|e| store.corrupt(&entry.config, e))?;
        check_config(platform, &bytes, &source.to_string())?;
    }
    let layers = layers(store, entry, diff_ids)?;
    let root = match own_manifest(store, &config, &layers) {
        Some(root) => root,
        None => built(&config, &layers, &source.to_string())?,
    };

    let mut blobs: Vec<Blob> = vec![config];
    for layer in layers {
        if !blobs.iter().any(|b| b.digest == layer.digest) {
            blobs.push(layer);
        }
    }
    Ok(Image {
        blobs,
        children: Vec::new(),
        root,
        source_tag: name.as_deref().and_then(tag_of),
        source_name: name.as_deref().and_then(super::full_name),
    })
}

/// Whether `index.json` lists no image: docker 25+ writes `manifests: null` when an image is
/// saved by its ID, and `manifest.json` beside it is then the only description of the image.
fn lists_no_image(store: &Store) -> bool {
    store
        .read_small("index.json", JSON_LIMIT)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Document>(&bytes).ok())
        .is_some_and(|index| index.manifests.unwrap_or_default().is_empty())
}

/// The manifest a docker 25+ export holds for exactly this config and these layers, so that
/// the push keeps the digest the engine gives the image (the engine path does the same);
/// `None` in a classic archive, which holds no manifest.
fn own_manifest(store: &Store, config: &Blob, layers: &[Blob]) -> Option<Manifest> {
    let wanted: Vec<&str> = std::iter::once(config)
        .chain(layers)
        .map(|b| b.digest.as_str())
        .collect();
    store.files_in("blobs/sha256").into_iter().find_map(|path| {
        let location = store.locate(&path).ok()??;
        let small = location.len <= OWN_MANIFEST_LIMIT;
        let readable = location.encoding == Encoding::Plain || location.held().is_some();
        if !small || !readable || !head(&location, 1).ok()?.starts_with(b"{") {
            return None;
        }
        let bytes = read_location(&location, OWN_MANIFEST_LIMIT).ok()?;
        let document: Document = serde_json::from_slice(&bytes).ok()?;
        let named: Vec<&str> = document
            .config
            .iter()
            .chain(document.layers.iter().flatten())
            .map(|d| d.digest.as_str())
            .collect();
        let digest = Digest::of(&bytes);
        let is_file_name = path.ends_with(digest.hex());
        (!document.is_index() && named == wanted && is_file_name).then(|| Manifest {
            media_type: document.media_type_or(None),
            digest,
            bytes,
        })
    })
}

/// The OCI manifest for a classic archive's config and layers, which has none of its own.
fn built(config: &Blob, layers: &[Blob], source: &str) -> Result<Manifest> {
    let manifest = OciManifest {
        schema_version: 2,
        media_type: OCI_MANIFEST,
        config: describe(config),
        layers: layers.iter().map(describe).collect(),
    };
    let bytes = serde_json::to_vec(&manifest)
        .map_err(|e| Error::input(format!("cannot write a manifest for {source} ({e})")))?;
    Ok(Manifest {
        media_type: OCI_MANIFEST.to_string(),
        digest: Digest::of(&bytes),
        bytes,
    })
}

/// The entry of `manifest.json` the REF names (a RepoTag), or the only one; with the RepoTag
/// that names it: the one the REF matched, or its only one.
fn select<'a>(
    store: &Store,
    entries: &'a [Entry],
    reference: Option<&str>,
) -> Result<(&'a Entry, Option<String>)> {
    let source = store.source().display();
    let labels = || {
        entries
            .iter()
            .map(Entry::label)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let hint = format!("pick one with docker-archive:{source}:REF");
    let Some(reference) = reference else {
        return match entries {
            [entry] => Ok((entry, single(entry.tags().iter()))),
            [] => Err(Error::input(format!(
                "{source} holds no image (its manifest.json is empty)"
            ))),
            _ => Err(Error::input(format!(
                "{source} holds {} images: {}",
                entries.len(),
                labels()
            ))
            .with_hint(hint)),
        };
    };
    let found: Vec<(&Entry, Vec<&String>)> = entries
        .iter()
        .map(|e| {
            (
                e,
                e.tags()
                    .iter()
                    .filter(|t| matches_name(t, reference))
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, tags)| !tags.is_empty())
        .collect();
    match found.as_slice() {
        [(entry, tags)] => Ok((entry, single(tags.iter().copied()))),
        [] => Err(Error::input(format!(
            "no image {reference:?} in {source} (it holds: {})",
            labels()
        ))
        .with_hint(hint)),
        _ => {
            let names: Vec<String> = found.iter().map(|(e, _)| e.label()).collect();
            Err(Error::input(format!(
                "{reference:?} names several images in {source}: {}",
                names.join(", ")
            ))
            .with_hint(hint))
        }
    }
}

/// The only name given, if there is exactly one.
fn single<'a>(mut names: impl Iterator<Item = &'a String>) -> Option<String> {
    match (names.next(), names.next()) {
        (Some(name), None) => Some(name.clone()),
        _ => None,
    }
}

fn locate(store: &Store, path: &str, what: &str) -> Result<Location> {
    store.locate(path)?.ok_or_else(|| {
        Error::input(format!(
            "{what} {path} is missing from {}",
            store.source().display()
        ))
        .with_hint("the archive is incomplete; export it again")
    })
}

/// The config file as a blob, with the diff IDs it lists (`None` when it lists none or cannot
/// be read as a config: then the layers are hashed).
fn config(store: &Store, path: &str) -> Result<(Blob, Option<Vec<String>>)> {
    let location = locate(store, path, "config")?;
    let (digest, diff_ids) = if location.len <= JSON_LIMIT {
        let bytes = read_location(&location, JSON_LIMIT).map_err(|e| store.corrupt(path, e))?;
        let parsed: Option<ConfigJson> = serde_json::from_slice(&bytes).ok();
        let diff_ids = parsed.and_then(|c| c.rootfs).and_then(|r| r.diff_ids);
        (Digest::of(&bytes), diff_ids)
    } else {
        (hash(&location).map_err(|e| store.corrupt(path, e))?, None)
    };
    let blob = Blob {
        digest,
        size: location.len,
        media_type: CONFIG.to_string(),
        location,
    };
    Ok((blob, diff_ids))
}

/// The layer files of `entry` as blobs, in order. An uncompressed layer's digest is its diff ID
/// when the config lists one per layer; any other layer is hashed, all in one pass.
fn layers(store: &Store, entry: &Entry, diff_ids: Option<Vec<String>>) -> Result<Vec<Blob>> {
    let diff_ids = diff_ids.filter(|ids| ids.len() == entry.layers.len());
    if diff_ids.is_none() && !entry.layers.is_empty() {
        tracing::debug!(
            "{} lists no diff ID for each layer of {}: hashing its layers",
            entry.config,
            store.source().display()
        );
    }
    let mut digests: Vec<Option<Digest>> = Vec::with_capacity(entry.layers.len());
    let mut locations = Vec::with_capacity(entry.layers.len());
    let mut media_types = Vec::with_capacity(entry.layers.len());
    for (i, path) in entry.layers.iter().enumerate() {
        let location = locate(store, path, "layer")?;
        let magic = head(&location, 4).map_err(|e| store.corrupt(path, e))?;
        let media_type = if magic.starts_with(&GZIP_MAGIC) {
            LAYER_GZIP
        } else if magic.starts_with(&ZSTD_MAGIC) {
            LAYER_ZSTD
        } else {
            LAYER
        };
        let diff_id = match diff_ids.as_ref().and_then(|ids| ids.get(i)) {
            Some(id) if media_type == LAYER => Some(Digest::parse(id).map_err(|e| {
                Error::input(format!(
                    "config {} in {} lists a bad diff ID for layer {path}: {}",
                    entry.config,
                    store.source().display(),
                    e.message()
                ))
                .with_hint("the image is corrupt; export it again")
            })?),
            _ => None,
        };
        digests.push(diff_id);
        locations.push(location);
        media_types.push(media_type);
    }
    // A diff ID claimed by two different files cannot be true of both: hash them.
    let mut claimed: HashMap<&Digest, (&Path, u64)> = HashMap::new();
    let mut disputed: HashSet<Digest> = HashSet::new();
    for (digest, location) in digests.iter().zip(&locations) {
        if let Some(digest) = digest {
            let here = (location.file.as_path(), location.offset);
            if *claimed.entry(digest).or_insert(here) != here {
                disputed.insert(digest.clone());
            }
        }
    }
    for digest in &mut digests {
        if digest.as_ref().is_some_and(|d| disputed.contains(d)) {
            *digest = None;
        }
    }
    // Hash the rest, each file range once however often it is listed.
    let mut ranges: HashMap<(&Path, u64), usize> = HashMap::new();
    let mut to_hash: Vec<Location> = Vec::new();
    let mut slots: Vec<(usize, usize)> = Vec::new();
    for (i, location) in locations.iter().enumerate() {
        if digests[i].is_none() {
            let key = (location.file.as_path(), location.offset);
            let slot = *ranges.entry(key).or_insert_with(|| {
                to_hash.push(location.clone());
                to_hash.len() - 1
            });
            slots.push((i, slot));
        }
    }
    let hashed = hash_all(&to_hash);
    for (i, slot) in slots {
        let digest = match hashed.get(slot) {
            Some(Ok(digest)) => digest.clone(),
            Some(Err(e)) => return Err(store.corrupt(&entry.layers[i], Error::input(e.message()))),
            None => return Err(Error::input(format!("{} was not read", entry.layers[i]))),
        };
        digests[i] = Some(digest);
    }
    let mut blobs = Vec::with_capacity(digests.len());
    for ((digest, location), media_type) in digests.into_iter().zip(locations).zip(media_types) {
        let Some(digest) = digest else {
            return Err(Error::input(format!(
                "a layer of {} could not be read",
                store.source().display()
            )));
        };
        blobs.push(Blob {
            digest,
            size: location.len,
            media_type: media_type.to_string(),
            location,
        });
    }
    Ok(blobs)
}

fn describe(blob: &Blob) -> OciDescriptor<'_> {
    OciDescriptor {
        media_type: &blob.media_type,
        digest: blob.digest.as_str(),
        size: blob.size,
    }
}

#[cfg(test)]
#[path = "docker_archive_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "docker_archive_modern_tests.rs"]
mod modern_tests;
