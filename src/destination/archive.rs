//! An image archive file as a destination: `oci-archive:FILE[:REF]` (a tar holding an OCI
//! layout) or `docker-archive:FILE[:NAME:TAG]` (what `docker load -i` reads). The tar is
//! written to a temporary file beside FILE, one blob after the other as they arrive, and
//! renamed to FILE only once complete: a failed pull leaves no file, and an existing FILE as it
//! was.

use std::path::{Path, PathBuf};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::Mutex;

use super::ImageDestination;
use super::place::{TempPath, write_error};
use super::spool;
use super::tar::{ImageTar, Shape};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::{Manifest, Manifests, SourceBlob};
use crate::progress::{BlobOutcome, Reporter, Uploaded};

pub struct ArchiveDestination {
    file: PathBuf,
    shape: Shape,
    /// The tar being written and its temporary file; blobs take turns.
    writing: Mutex<Option<(ImageTar<tokio::fs::File>, TempPath)>>,
}

impl ArchiveDestination {
    /// An OCI archive whose image is named `reference` in `index.json`.
    pub fn oci(file: PathBuf, reference: Option<String>) -> ArchiveDestination {
        Self::new(file, Shape::Oci { reference })
    }

    /// A docker archive whose image loads as `repo_tags`.
    pub fn docker(file: PathBuf, repo_tags: Vec<String>) -> ArchiveDestination {
        Self::new(file, Shape::Docker { repo_tags })
    }

    fn new(file: PathBuf, shape: Shape) -> ArchiveDestination {
        ArchiveDestination {
            file,
            shape,
            writing: Mutex::new(None),
        }
    }

    fn what(&self) -> String {
        match self.shape {
            Shape::Oci { .. } => format!("the OCI archive {}", self.file.display()),
            Shape::Docker { .. } => format!("the docker archive {}", self.file.display()),
        }
    }

    /// The temporary file beside FILE, after checking FILE can be written there.
    async fn start(&self) -> Result<(ImageTar<tokio::fs::File>, TempPath)> {
        let file = &self.file;
        if file.is_dir() {
            return Err(Error::input(format!(
                "{} is a directory, not an archive file",
                file.display()
            ))
            .with_hint(format!(
                "name a file, or write a layout directory with oci:{}",
                file.display()
            )));
        }
        let dir = match file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(Error::input(format!(
                "cannot write {}: the directory {} does not exist",
                file.display(),
                dir.display()
            ))
            .with_hint(format!(
                "create it first (mkdir -p {}), or name another file",
                dir.display()
            )));
        }
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image.tar".into());
        let temp = TempPath::beside(dir, &name);
        let out = tokio::fs::File::create(temp.path())
            .await
            .map_err(|e| write_error(dir, e))?;
        let tar = ImageTar::start(out, self.shape.clone())
            .await
            .map_err(|e| write_error(dir, e))?;
        Ok((tar, temp))
    }
}

impl ImageDestination for ArchiveDestination {
    fn open(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            let started = self.start().await?;
            *self.writing.lock().await = Some(started);
            Ok(())
        }
        .boxed()
    }

    fn check(&self, manifests: &Manifests) -> Result<()> {
        self.shape.check(manifests, &self.what())
    }

    fn has_blob<'a>(&'a self, _digest: &'a Digest) -> BoxFuture<'a, Result<bool>> {
        futures_util::future::ready(Ok(false)).boxed()
    }

    fn put_blob<'a>(
        &'a self,
        blob: SourceBlob,
        reporter: &'a dyn Reporter,
    ) -> BoxFuture<'a, Result<Uploaded>> {
        async move {
            let digest = blob
                .digest
                .clone()
                .ok_or_else(|| Error::input(format!("a blob of {} has no digest", blob.origin)))?;
            let progress = reporter.blob_progress_sink(&digest);
            let (mut writing, turn) =
                spool::wait_turn(&self.writing, blob, progress.as_ref()).await?;
            let (tar, temp) = writing
                .as_mut()
                .ok_or_else(|| Error::input(format!("{} was not opened", self.what())))?;
            let place = temp.path().to_path_buf();
            let size = tar
                .put(turn, progress.as_ref(), &|e| write_error(&place, e))
                .await?;
            Ok(Uploaded {
                digest,
                size,
                outcome: BlobOutcome::Pulled,
            })
        }
        .boxed()
    }

    fn put_manifest<'a>(&'a self, manifest: &'a Manifest) -> BoxFuture<'a, Result<()>> {
        async move {
            let mut writing = self.writing.lock().await;
            let (tar, temp) = writing
                .as_mut()
                .ok_or_else(|| Error::input(format!("{} was not opened", self.what())))?;
            tar.manifest(manifest)
                .await
                .map_err(|e| write_error(temp.path(), e))
        }
        .boxed()
    }

    fn commit<'a>(&'a self, root: &'a Manifest, _tags: &'a [String]) -> BoxFuture<'a, Result<()>> {
        async move {
            let (tar, temp) = self
                .writing
                .lock()
                .await
                .take()
                .ok_or_else(|| Error::input(format!("{} was not opened", self.what())))?;
            let file = tar.finish(root).await?;
            file.sync_all()
                .await
                .map_err(|e| write_error(temp.path(), e))?;
            drop(file);
            temp.persist(&self.file)
                .map_err(|e| write_error(&self.file, e))
        }
        .boxed()
    }
}
