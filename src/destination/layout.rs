//! An OCI image layout directory as a destination (`oci:DIR[:REF]`). A new layout is built
//! under a temporary name beside DIR and renamed at the end; an existing one gains the image:
//! blobs it has are neither downloaded nor rewritten, new ones are written under a temporary
//! name in `blobs/sha256/` and renamed once their digest is checked, and `index.json` is
//! replaced by a rename. So a failed pull leaves no new directory, and an existing layout's
//! `index.json` as it was.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::io::AsyncWriteExt;

use super::ImageDestination;
use super::place::{TempPath, copy_checked, write_error};
use super::tar::{REF_NAME, blob_path, index_entry};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::{Manifest, Manifests, SourceBlob};
use crate::progress::{BlobOutcome, Reporter, Uploaded};

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

pub struct LayoutDestination {
    /// DIR as the user named it.
    dir: PathBuf,
    reference: Option<String>,
    /// Where the layout is being written: DIR, or a temporary directory beside it.
    state: Mutex<Option<Opened>>,
}

/// What `open` found.
struct Opened {
    root: PathBuf,
    /// A new layout under a temporary name, renamed to DIR at the end.
    fresh: Option<TempPath>,
}

impl LayoutDestination {
    pub fn new(dir: PathBuf, reference: Option<String>) -> LayoutDestination {
        LayoutDestination {
            dir,
            reference,
            state: Mutex::new(None),
        }
    }

    /// Where blobs go, once open.
    fn root(&self) -> Result<PathBuf> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|o| o.root.clone())
            .ok_or_else(|| Error::input("the layout was not opened"))
    }

    fn prepare(&self) -> Result<Opened> {
        let dir = &self.dir;
        match std::fs::metadata(dir) {
            Ok(meta) if !meta.is_dir() => Err(Error::input(format!(
                "{} is a file, not an OCI layout directory",
                dir.display()
            ))
            .with_hint(format!(
                "name a directory, or write a file with oci-archive:{0} or docker-archive:{0}",
                dir.display()
            ))),
            Ok(_) => {
                let is_layout = dir.join("oci-layout").is_file();
                let empty = std::fs::read_dir(dir)
                    .map_err(|e| write_error(dir, e))?
                    .next()
                    .is_none();
                if !is_layout && !empty {
                    return Err(Error::input(format!(
                        "{} is a directory but not an OCI image layout (no oci-layout)",
                        dir.display()
                    ))
                    .with_hint("name a new directory, an empty one, or an existing layout"));
                }
                let blobs = dir.join("blobs/sha256");
                std::fs::create_dir_all(&blobs).map_err(|e| write_error(&blobs, e))?;
                // A read-only layout is found now, not after the download.
                let probe = TempPath::beside(&blobs, "probe");
                std::fs::write(probe.path(), b"").map_err(|e| write_error(&blobs, e))?;
                Ok(Opened {
                    root: dir.clone(),
                    fresh: None,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let parent = parent_of(dir);
                if !parent.is_dir() {
                    return Err(Error::input(format!(
                        "cannot create the layout {}: the directory {} does not exist",
                        dir.display(),
                        parent.display()
                    ))
                    .with_hint(format!(
                        "create it first (mkdir -p {}), or name another directory",
                        parent.display()
                    )));
                }
                let name = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "layout".into());
                let fresh = TempPath::beside(parent, &name);
                let blobs = fresh.path().join("blobs/sha256");
                std::fs::create_dir_all(&blobs).map_err(|e| write_error(parent, e))?;
                std::fs::write(fresh.path().join("oci-layout"), OCI_LAYOUT)
                    .map_err(|e| write_error(parent, e))?;
                Ok(Opened {
                    root: fresh.path().to_path_buf(),
                    fresh: Some(fresh),
                })
            }
            Err(e) => Err(write_error(dir, e)),
        }
    }

    /// Writes `bytes` (a manifest) as a blob unless the layout has it.
    async fn write_small_blob(&self, root: &Path, digest: &Digest, bytes: &[u8]) -> Result<()> {
        let target = root.join(blob_path(digest));
        if target.is_file() {
            return Ok(());
        }
        let dir = root.join("blobs/sha256");
        let temp = TempPath::beside(&dir, digest.hex());
        tokio::fs::write(temp.path(), bytes)
            .await
            .map_err(|e| write_error(&dir, e))?;
        temp.persist(&target).map_err(|e| write_error(&target, e))
    }

    /// `index.json` with the root named `reference`: an entry of the same name is replaced,
    /// every other entry kept. Written under a temporary name and renamed, while holding an
    /// exclusive lock on the layout's `oci-layout` file, so two pulls into one layout at once
    /// each add their entry instead of one replacing the other's.
    fn write_index(&self, root_dir: &Path, root: &Manifest) -> Result<()> {
        let marker = root_dir.join("oci-layout");
        let lock = std::fs::File::open(&marker).map_err(|e| write_error(&marker, e))?;
        lock.lock().map_err(|e| write_error(&marker, e))?;
        let written = self.merge_index(root_dir, root);
        // Closing the file releases the lock too; unlocking first says so.
        let _ = lock.unlock();
        written
    }

    fn merge_index(&self, root_dir: &Path, root: &Manifest) -> Result<()> {
        let path = root_dir.join("index.json");
        let mut index = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| {
                Error::input(format!("{} is not valid JSON ({e})", path.display()))
                    .with_hint("repair the layout, or pull into a new directory")
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [],
            }),
            Err(e) => return Err(write_error(&path, e)),
        };
        let reference = self.reference.as_deref();
        let entry = index_entry(root, reference);
        let Some(manifests) = index.get_mut("manifests").and_then(|m| m.as_array_mut()) else {
            return Err(
                Error::input(format!("{} has no manifests list", path.display()))
                    .with_hint("repair the layout, or pull into a new directory"),
            );
        };
        manifests.retain(|m| {
            let name = m.pointer(&format!("/annotations/{}", REF_NAME.replace('/', "~1")));
            match reference {
                Some(reference) => name.and_then(|n| n.as_str()) != Some(reference),
                None => !(name.is_none() && m.get("digest") == entry.get("digest")),
            }
        });
        manifests.push(entry);
        let temp = TempPath::beside(root_dir, "index.json");
        std::fs::write(temp.path(), index.to_string()).map_err(|e| write_error(root_dir, e))?;
        temp.persist(&path).map_err(|e| write_error(&path, e))
    }
}

/// The directory DIR is in (`.` for a bare name).
fn parent_of(dir: &Path) -> &Path {
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

impl ImageDestination for LayoutDestination {
    fn open(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            let opened = self.prepare()?;
            *self.state.lock().unwrap_or_else(|p| p.into_inner()) = Some(opened);
            Ok(())
        }
        .boxed()
    }

    fn check(&self, _manifests: &Manifests) -> Result<()> {
        Ok(())
    }

    fn has_blob<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<bool>> {
        async move { Ok(self.root()?.join(blob_path(digest)).is_file()) }.boxed()
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
            let root = self.root()?;
            let target = root.join(blob_path(&digest));
            if target.is_file() {
                return Ok(Uploaded {
                    digest,
                    size: blob.size,
                    outcome: BlobOutcome::Exists,
                });
            }
            let dir = root.join("blobs/sha256");
            let temp = TempPath::beside(&dir, digest.hex());
            let written = |e| write_error(&dir, e);
            let mut file = tokio::fs::File::create(temp.path())
                .await
                .map_err(written)?;
            let progress = reporter.blob_progress_sink(&digest);
            let size = copy_checked(blob, &mut file, progress.as_ref(), &written).await?;
            file.flush().await.map_err(written)?;
            drop(file);
            temp.persist(&target).map_err(|e| write_error(&target, e))?;
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
            let root = self.root()?;
            self.write_small_blob(&root, &manifest.digest, &manifest.bytes)
                .await
        }
        .boxed()
    }

    fn commit<'a>(&'a self, root: &'a Manifest, _tags: &'a [String]) -> BoxFuture<'a, Result<()>> {
        async move {
            let root_dir = self.root()?;
            self.write_small_blob(&root_dir, &root.digest, &root.bytes)
                .await?;
            if !root_dir.join("oci-layout").is_file() {
                std::fs::write(root_dir.join("oci-layout"), OCI_LAYOUT)
                    .map_err(|e| write_error(&root_dir, e))?;
            }
            self.write_index(&root_dir, root)?;
            let fresh = self
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
                .and_then(|o| o.fresh.take());
            if let Some(fresh) = fresh {
                fresh.persist(&self.dir).map_err(|e| {
                    Error::input(format!(
                        "cannot create the layout {}: {e}",
                        self.dir.display()
                    ))
                    .with_hint("another program created it meanwhile: pull again")
                })?;
            }
            Ok(())
        }
        .boxed()
    }
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
