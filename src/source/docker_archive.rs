//! Docker archives (`docker save`, `podman save`). The modern form (docker 25+) is also an OCI
//! layout and is read as one; the classic form (`manifest.json`, a config file and layer tars)
//! gets an OCI image manifest built here, whose blobs keep their exact bytes.

use serde::{Deserialize, Serialize};

use super::names::{matches_name, tag_of};
use super::platform::check_config;
use super::store::{JSON_LIMIT, Store, ZSTD_MAGIC, hash, head, read_location};
use super::{Blob, Image, Location, Manifest, Selection, layout};
use crate::digest::Digest;
use crate::error::{Error, Result};

pub(crate) const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub(crate) const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub(crate) const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

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

/// The OCI image manifest we write for a classic archive; field order is fixed so the same
/// archive always gives the same digest.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OciManifest<'a> {
    pub(crate) schema_version: u32,
    pub(crate) media_type: &'a str,
    pub(crate) config: OciDescriptor<'a>,
    pub(crate) layers: Vec<OciDescriptor<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OciDescriptor<'a> {
    pub(crate) media_type: &'a str,
    pub(crate) digest: &'a str,
    pub(crate) size: u64,
}

/// Reads the image the selection names from the docker archive in `store`.
pub(crate) fn open(store: &Store, selection: &Selection) -> Result<Image> {
    if store.exists("index.json") && store.exists("oci-layout") {
        return layout::open(store, selection, "docker-archive");
    }
    let source = store.source().display();
    let bytes = store.read_small("manifest.json", JSON_LIMIT)?;
    let entries: Vec<Entry> = serde_json::from_slice(&bytes).map_err(|e| {
        Error::input(format!(
            "manifest.json in {source} is not a docker archive manifest ({e})"
        ))
    })?;
    let (entry, source_tag) = select(store, &entries, selection.reference.as_deref())?;

    let config = blob(store, &entry.config, CONFIG)?;
    if let Some(platform) = &selection.platform {
        let bytes = read_location(&config.location, JSON_LIMIT)
            .map_err(|e| store.corrupt(&entry.config, e))?;
        check_config(platform, &bytes, &source.to_string())?;
    }
    let mut layers = Vec::with_capacity(entry.layers.len());
    for path in &entry.layers {
        let location = locate(store, path, "layer")?;
        let magic = head(&location, 4).map_err(|e| store.corrupt(path, e))?;
        let media_type = if magic.starts_with(&super::store::GZIP_MAGIC) {
            LAYER_GZIP
        } else if magic.starts_with(&ZSTD_MAGIC) {
            LAYER_ZSTD
        } else {
            LAYER
        };
        layers.push(blob(store, path, media_type)?);
    }

    let manifest = OciManifest {
        schema_version: 2,
        media_type: layout::OCI_MANIFEST,
        config: describe(&config),
        layers: layers.iter().map(describe).collect(),
    };
    let bytes = serde_json::to_vec(&manifest)
        .map_err(|e| Error::input(format!("cannot write a manifest for {source} ({e})")))?;
    let root = Manifest {
        media_type: layout::OCI_MANIFEST.to_string(),
        digest: Digest::of(&bytes),
        bytes,
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
        source_name: source_tag
            .as_ref()
            .and_then(|_| single_name(entry.tags().iter())),
        source_tag,
        keep_alive: store.keep_alive(),
    })
}

/// The entry of `manifest.json` the REF names (a RepoTag), or the only one; with its tag.
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
            [entry] => Ok((entry, single_tag(entry.tags().iter()))),
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
        [(entry, tags)] => Ok((entry, single_tag(tags.iter().copied()))),
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

/// The tag of the only name given, if there is exactly one.
fn single_name<'a>(mut names: impl Iterator<Item = &'a String>) -> Option<String> {
    match (names.next(), names.next()) {
        (Some(name), None) => super::full_name(name),
        _ => None,
    }
}

fn single_tag<'a>(mut names: impl Iterator<Item = &'a String>) -> Option<String> {
    match (names.next(), names.next()) {
        (Some(name), None) => tag_of(name),
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

/// A config or layer file of the archive as a blob, its digest computed from its bytes.
fn blob(store: &Store, path: &str, media_type: &str) -> Result<Blob> {
    let what = if media_type == CONFIG {
        "config"
    } else {
        "layer"
    };
    let location = locate(store, path, what)?;
    let digest = hash(&location).map_err(|e| store.corrupt(path, e))?;
    Ok(Blob {
        digest,
        size: location.len,
        media_type: media_type.to_string(),
        location,
    })
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
