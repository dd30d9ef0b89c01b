//! OCI image layouts (`oci-layout`, `index.json`, `blobs/sha256/...`) read through a [`Store`]:
//! one code path for layout directories, OCI archives and docker 25+ archives. Picks the image
//! (by REF) and reads manifests and configs for the one walk (`oci::walk`), then finds each blob
//! it names; only JSON is read.

use std::collections::HashSet;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::names::{matches_name, tag_of};
use super::store::{JSON_LIMIT, Store, read_location};
use super::{Blob, Image, Selection};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::media_type::{
    DOCKER_LIST, DOCKER_MANIFEST, is_foreign_layer, is_index, is_schema1,
};
use crate::oci::{
    Descriptor, Document, Manifest, Part, PlatformJson, ReadManifests, pick_platform, present_part,
    walk,
};

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
    // The name a registry-only destination is taken from: a full name (`app:1.0`), never a
    // bare ref name beside it (docker 25+ names `latest` and `docker.io/library/app:latest`).
    let names: HashSet<&str> = chosen
        .iter()
        .filter_map(|d| d.names().find(|n| super::full_name(n).is_some()))
        .collect();
    let source_name = match names.into_iter().collect::<Vec<_>>().as_slice() {
        [name] => Some(name.to_string()),
        _ => None,
    };
    let reader = Reader { store };
    let root = reader.read_manifest(chosen[0], false)?;
    let root = reader.present_part(root, selection, prefix)?;
    // Every read of a layout is a file read, done by the time its future is polled: the walk
    // completes in one poll.
    let walked = walk(&reader, root, selection.platform.as_ref())
        .now_or_never()
        .unwrap_or_else(|| Err(Error::input("reading the layout did not complete")))?;
    let mut blobs = Vec::new();
    for entry in &walked.blobs {
        blobs.extend(reader.blob(entry)?);
    }
    Ok(Image {
        blobs,
        children: walked.children,
        root: walked.root,
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
    let labels = || images(entries).join(", ");
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

/// One label per image of index.json: entries with the same digest are one image, named by
/// all their names (as `docker save` lists one image's RepoTags), so the count and the list
/// agree.
fn images(entries: &[Descriptor]) -> Vec<String> {
    let mut digests: Vec<&str> = Vec::new();
    for entry in entries {
        if !digests.contains(&entry.digest.as_str()) {
            digests.push(&entry.digest);
        }
    }
    digests
        .into_iter()
        .map(|digest| {
            let same: Vec<&Descriptor> = entries.iter().filter(|e| e.digest == digest).collect();
            let mut names: Vec<&str> = Vec::new();
            for name in same.iter().flat_map(|e| e.names()) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            match names.as_slice() {
                [] => same[0].label(),
                _ => names.join(" "),
            }
        })
        .collect()
}

/// How the walk reads a layout: manifests and configs from its blob files.
struct Reader<'a> {
    store: &'a Store,
}

impl Reader<'_> {
    /// Reads and checks a manifest or index blob. `child`: it is listed by an index.
    fn read_manifest(&self, entry: &Descriptor, child: bool) -> Result<(Manifest, Document)> {
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
        // In a layout the document's own `mediaType` comes before its index entry's. An entry
        // saying Docker of a document that names no type is wrong: a Docker manifest or list
        // always names itself, so the content is OCI, and registries refuse it under the
        // Docker type.
        let given = document.media_type.as_deref().or(entry
            .media_type
            .as_deref()
            .filter(|t| ![DOCKER_LIST, DOCKER_MANIFEST].contains(t)));
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

    /// The part of an index root that the layout holds. All of it: the root as it is. Part of
    /// it: a docker archive (Docker's containerd store saves the index it pulled, with only the
    /// platforms it has) gives the one image it holds, as the engine's export does; any other
    /// layout, or several images, needs `--platform`, and the hint names the ones present.
    fn present_part(
        &self,
        root: (Manifest, Document),
        selection: &Selection,
        prefix: &str,
    ) -> Result<(Manifest, Document)> {
        if !is_index(&root.0.media_type) {
            return Ok(root);
        }
        let present = |d: &Descriptor| {
            Digest::parse(&d.digest).is_ok_and(|d| self.store.exists(&blob_path(&d)))
        };
        let children = root.1.manifests.as_deref().unwrap_or_default();
        let part = present_part(children, present);
        let source = self.store.source().display();
        let digest = &root.0.digest;
        let platforms = |list: &[&Descriptor]| {
            list.iter()
                .map(|d| {
                    d.platform
                        .as_ref()
                        .and_then(PlatformJson::describe)
                        .unwrap_or_else(|| d.label())
                })
                .collect::<Vec<_>>()
        };
        let here = match part {
            Part::Whole => return Ok(root),
            Part::One(entry) if selection.platform.is_none() && prefix == "docker-archive" => {
                tracing::info!(
                    "{source} holds only {} of index {digest}; pushing that platform's manifest",
                    entry.label()
                );
                return self.read_manifest(entry, true);
            }
            Part::One(entry) => platforms(&[entry]),
            Part::Several(entries) => platforms(&entries),
            Part::Nothing => {
                return Err(Error::input(format!(
                    "{source} holds none of the images its index {digest} names"
                ))
                .with_hint("the image is incomplete; export it again"));
            }
        };
        if let Some(platform) = &selection.platform {
            let entry = pick_platform(children, platform, &source.to_string())?;
            if present(entry) {
                return Ok(root);
            }
            return Err(Error::input(format!(
                "{source} has no {platform} image: index {digest} names one, but it was not exported"
            ))
            .with_hint(format!("it holds {}: pick one with --platform", here.join(", "))));
        }
        let images = children.iter().filter(|c| !c.is_attestation()).count();
        let what = if here.len() == images {
            format!(
                "{source} holds the images of index {digest} but not all its attestation manifests"
            )
        } else {
            format!(
                "{source} holds only {} of the {images} images index {digest} names",
                here.len()
            )
        };
        Err(Error::input(what).with_hint(format!(
            "pick one of those present with --platform: {}",
            here.join(", ")
        )))
    }

    /// Where a config or layer blob lies; `None` for a foreign layer the layout leaves out.
    fn blob(&self, entry: &Descriptor) -> Result<Option<Blob>> {
        let digest = parse_digest(self.store, &entry.digest)?;
        let media_type = entry.media_type.clone().unwrap_or_default();
        if is_foreign_layer(&media_type) && self.store.locate(&blob_path(&digest))?.is_none() {
            return Ok(None);
        }
        let location = self.present(&digest, entry.size, "blob")?;
        Ok(Some(Blob {
            digest,
            size: entry.size,
            media_type,
            location,
        }))
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

impl ReadManifests for Reader<'_> {
    fn manifest<'a>(
        &'a self,
        entry: &'a Descriptor,
        child: bool,
    ) -> BoxFuture<'a, Result<(Manifest, Document)>> {
        futures_util::future::ready(self.read_manifest(entry, child)).boxed()
    }

    fn config<'a>(&'a self, config: &'a Descriptor) -> BoxFuture<'a, Result<Vec<u8>>> {
        let read = || {
            let digest = parse_digest(self.store, &config.digest)?;
            let location = self.present(&digest, config.size, "config")?;
            read_location(&location, JSON_LIMIT)
                .map_err(|e| self.store.corrupt(&blob_path(&digest), e))
        };
        futures_util::future::ready(read()).boxed()
    }

    fn name(&self) -> String {
        self.store.source().display().to_string()
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
