//! An image written as one tar stream, in the two shapes image tools read: an OCI layout
//! (`oci-layout`, `blobs/sha256/...`, `index.json`; what `skopeo copy ... oci-archive:` writes)
//! and a docker archive (`manifest.json` naming config and layers; what `docker load` reads).
//! The tar goes to any writer (a temporary file, an engine's load request) one entry at a
//! time, each blob streamed with its digest checked, so memory does not grow with the image.

use std::io;

use serde_json::json;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::place::copy_checked;
use super::spool::Turn;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::media_type::{is_foreign_layer, is_index};
use crate::oci::{Document, Manifest, Manifests, SourceBlob};

/// The annotation an OCI layout names its images by.
pub(super) const REF_NAME: &str = "org.opencontainers.image.ref.name";
const BLOCK: usize = 512;
/// Image config media types `docker load` understands.
const CONFIGS: &[&str] = &[
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// What the tar holds besides the blobs.
#[derive(Debug, Clone)]
pub(super) enum Shape {
    /// An OCI layout; the root is named `reference` in `index.json` when there is one.
    Oci { reference: Option<String> },
    /// A docker archive; the image is loaded under `repo_tags`.
    Docker { repo_tags: Vec<String> },
}

impl Shape {
    /// Refuses, before any download, an image this shape cannot hold: a docker archive holds
    /// one container image whose layers are all in the registry.
    pub(super) fn check(&self, manifests: &Manifests, what: &str) -> Result<()> {
        let Shape::Docker { .. } = self else {
            return Ok(());
        };
        let root = &manifests.root;
        if is_index(&root.media_type) {
            return Err(Error::input(format!(
                "{what} holds one image, and {} is an index of several",
                root.digest
            ))
            .with_hint("pick one with --platform os/arch, or pull the whole index into oci:DIR"));
        }
        let document = parse(root)?;
        let config = document
            .config
            .as_ref()
            .and_then(|c| c.media_type.clone())
            .unwrap_or_default();
        if !config.is_empty() && !CONFIGS.contains(&config.as_str()) {
            return Err(Error::input(format!(
                "{what} holds container images, and {} is not one (its config is {config})",
                root.digest
            ))
            .with_hint("pull it into an OCI layout instead: oci:DIR"));
        }
        let foreign = document
            .layers
            .iter()
            .flatten()
            .find(|l| is_foreign_layer(l.media_type.as_deref().unwrap_or_default()));
        if let Some(layer) = foreign {
            return Err(Error::input(format!(
                "{what} needs every layer, and layer {} of {} is a foreign layer the registry does not hold",
                layer.digest, root.digest
            ))
            .with_hint("pull it into an OCI layout instead (oci:DIR), which keeps foreign layers as references"));
        }
        Ok(())
    }
}

/// The tar as it is written.
pub(super) struct ImageTar<W> {
    out: W,
    shape: Shape,
}

impl<W: AsyncWrite + Unpin + Send> ImageTar<W> {
    /// Starts the tar: the directories, and `oci-layout` for an OCI layout.
    pub(super) async fn start(out: W, shape: Shape) -> io::Result<ImageTar<W>> {
        let mut tar = ImageTar { out, shape };
        tar.directory("blobs/").await?;
        tar.directory("blobs/sha256/").await?;
        if let Shape::Oci { .. } = tar.shape {
            tar.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
                .await?;
        }
        Ok(tar)
    }

    /// One blob as `blobs/sha256/HEX`, checked against its digest as it is written. `written`
    /// maps a failure of the writer.
    pub(super) async fn blob(
        &mut self,
        blob: SourceBlob,
        progress: &(dyn Fn(u64) + Send + Sync),
        written: &(dyn Fn(io::Error) -> Error + Send + Sync),
    ) -> Result<u64> {
        let digest = blob
            .digest
            .clone()
            .ok_or_else(|| Error::input(format!("a blob of {} has no digest", blob.origin)))?;
        let size = blob.size;
        self.header(&blob_path(&digest), size, tar::EntryType::Regular)
            .await
            .map_err(written)?;
        copy_checked(blob, &mut self.out, progress, written).await?;
        self.pad(size).await.map_err(written)?;
        Ok(size)
    }

    /// One blob, from its source or from the spool file it waited in.
    pub(super) async fn put(
        &mut self,
        turn: Turn,
        progress: &(dyn Fn(u64) + Send + Sync),
        written: &(dyn Fn(io::Error) -> Error + Send + Sync),
    ) -> Result<u64> {
        let spooled = match turn {
            Turn::Now(blob) => return self.blob(blob, progress, written).await,
            Turn::Spooled(spooled) => spooled,
        };
        let size = spooled.size;
        self.header(&blob_path(&spooled.digest), size, tar::EntryType::Regular)
            .await
            .map_err(written)?;
        spooled.copy_into(&mut self.out, written).await?;
        self.pad(size).await.map_err(written)?;
        Ok(size)
    }

    /// A manifest or index under its digest (an OCI layout keeps them as blobs; a docker
    /// archive has no place for them).
    pub(super) async fn manifest(&mut self, manifest: &Manifest) -> io::Result<()> {
        if let Shape::Oci { .. } = self.shape {
            self.file(&blob_path(&manifest.digest), &manifest.bytes)
                .await?;
        }
        Ok(())
    }

    /// Ends the tar with what names the image (`index.json` or `manifest.json`) and returns
    /// the writer, flushed.
    pub(super) async fn finish(mut self, root: &Manifest) -> Result<W> {
        let (name, bytes) = match &self.shape {
            Shape::Oci { reference } => ("index.json", oci_index(root, reference.as_deref())),
            Shape::Docker { repo_tags } => ("manifest.json", docker_manifest(root, repo_tags)?),
        };
        let written =
            |e: io::Error| Error::input(format!("cannot write the image's {name}")).with_cause(e);
        self.manifest(root).await.map_err(written)?;
        self.file(name, &bytes).await.map_err(written)?;
        self.out
            .write_all(&[0u8; BLOCK * 2])
            .await
            .map_err(written)?;
        self.out.flush().await.map_err(written)?;
        Ok(self.out)
    }

    async fn file(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.header(name, bytes.len() as u64, tar::EntryType::Regular)
            .await?;
        self.out.write_all(bytes).await?;
        self.pad(bytes.len() as u64).await
    }

    async fn directory(&mut self, name: &str) -> io::Result<()> {
        self.header(name, 0, tar::EntryType::Directory).await
    }

    async fn header(&mut self, name: &str, size: u64, kind: tar::EntryType) -> io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_path(name)?;
        header.set_size(size);
        header.set_entry_type(kind);
        header.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_mtime(0);
        header.set_cksum();
        self.out.write_all(header.as_bytes()).await
    }

    async fn pad(&mut self, size: u64) -> io::Result<()> {
        let rest = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
        self.out.write_all(&[0u8; BLOCK][..rest]).await
    }
}

/// Where an OCI layout keeps a blob.
pub(super) fn blob_path(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// The `index.json` entry that names `root`.
pub(super) fn index_entry(root: &Manifest, reference: Option<&str>) -> serde_json::Value {
    let mut entry = json!({
        "mediaType": root.media_type,
        "digest": root.digest.as_str(),
        "size": root.bytes.len(),
    });
    if let Some(reference) = reference {
        entry["annotations"] = json!({ REF_NAME: reference });
    }
    entry
}

fn oci_index(root: &Manifest, reference: Option<&str>) -> Vec<u8> {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [index_entry(root, reference)],
    });
    index.to_string().into_bytes()
}

/// `manifest.json` of a docker archive: the config and the layers by path, and the names.
fn docker_manifest(root: &Manifest, repo_tags: &[String]) -> Result<Vec<u8>> {
    let document = parse(root)?;
    let config = document
        .config
        .as_ref()
        .ok_or_else(|| Error::input(format!("manifest {} has no config", root.digest)))?;
    let path = |text: &str| -> Result<String> {
        Digest::parse(text)
            .map(|d| blob_path(&d))
            .map_err(|e| Error::input(format!("{} in manifest {}", e.message(), root.digest)))
    };
    let layers: Vec<String> = document
        .layers
        .iter()
        .flatten()
        .map(|l| path(&l.digest))
        .collect::<Result<_>>()?;
    let manifest = json!([{
        "Config": path(&config.digest)?,
        "RepoTags": repo_tags,
        "Layers": layers,
    }]);
    Ok(manifest.to_string().into_bytes())
}

fn parse(manifest: &Manifest) -> Result<Document> {
    serde_json::from_slice(&manifest.bytes).map_err(|e| {
        Error::input(format!(
            "manifest {} is not valid JSON ({e})",
            manifest.digest
        ))
    })
}

#[cfg(test)]
#[path = "tar_tests.rs"]
mod tests;
