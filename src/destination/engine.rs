//! The local engine as a destination: the image as a docker archive, built on the fly and
//! streamed into the engine's `POST /images/load` (Docker, or Podman's compatible service,
//! found as a push finds its engine), or into `podman load` on standard input when no socket
//! answers and `podman` is on PATH. Small blobs that wait for their turn in the tar are
//! downloaded meanwhile into unlinked spool files (`spool.rs`); nothing else touches the disk.
//! The tar's `manifest.json` comes last, and a pull that fails aborts the request before its
//! end, so the engine never loads a partial image.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bollard::Docker;
use bollard::query_parameters::ImportImageOptions;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use super::ImageDestination;
use super::spool;
use super::tar::{ImageTar, Shape};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::{Manifest, Manifests, SourceBlob};
use crate::progress::{BlobOutcome, Reporter, Uploaded};
use crate::source::engine::socket::{self as engine_socket, Environment, Unreachable};

/// Bytes of tar in flight between the pull and the engine's request.
const PIPE: usize = 256 << 10;

type Writer = Pin<Box<dyn AsyncWrite + Send>>;

pub struct EngineDestination {
    repo_tags: Vec<String>,
    shape: Shape,
    loading: Mutex<Option<Loading>>,
}

/// A load under way: the tar going in, and what the engine will answer.
struct Loading {
    /// Taken when the tar is finished.
    tar: Option<ImageTar<Writer>>,
    /// Set once the tar is whole: only then does the request body end cleanly.
    whole: Arc<AtomicBool>,
    answer: JoinHandle<Result<String>>,
    /// How messages name the engine.
    label: String,
}

impl Drop for Loading {
    fn drop(&mut self) {
        // A pull that stops drops the request (or kills podman load) before the tar is whole.
        self.answer.abort();
    }
}

impl EngineDestination {
    /// Loads the image under `repo_tags` (none: untagged, as `docker load` leaves it).
    pub fn new(repo_tags: Vec<String>) -> EngineDestination {
        let shape = Shape::Docker {
            repo_tags: repo_tags.clone(),
        };
        EngineDestination {
            repo_tags,
            shape,
            loading: Mutex::new(None),
        }
    }

    /// Where the image went, for the result: the engine's socket, or `podman load`.
    pub async fn label(&self) -> String {
        self.loading
            .lock()
            .await
            .as_ref()
            .map(|l| l.label.clone())
            .unwrap_or_default()
    }

    async fn start(&self) -> Result<Loading> {
        let endpoints = engine_socket::endpoints(&Environment::from_process())?;
        let mut failures = Vec::new();
        for endpoint in &endpoints.list {
            match engine_socket::connect(endpoint).await {
                Ok(docker) => {
                    tracing::debug!("loading into the engine at {}", endpoint.label());
                    return self.through_api(docker, endpoint.label()).await;
                }
                Err(why) => {
                    tracing::debug!("engine {}: {why:?}", endpoint.label());
                    failures.push((endpoint.label(), why));
                }
            }
        }
        if !endpoints.chosen && podman_on_path() {
            tracing::debug!("no engine socket answered; loading with podman load");
            return self.through_podman().await;
        }
        let denied = failures
            .iter()
            .find(|(_, why)| matches!(why, Unreachable::Denied));
        if let Some((label, _)) = denied {
            return Err(Error::input(format!(
                "cannot load the image into the engine: permission denied on its socket {label}"
            ))
            .with_hint("add your user to the docker group (sudo usermod -aG docker $USER, then log in again), set DOCKER_HOST to a socket you may use, or pull into files (oci:DIR)"));
        }
        let why = match failures.as_slice() {
            [(_, Unreachable::Failed(reason))] => format!(" ({reason})"),
            _ => String::new(),
        };
        Err(Error::input(format!(
            "cannot load the image into the engine: no engine answered at {}{why}",
            endpoints.label()
        ))
        .with_hint("start the engine (sudo systemctl start docker, or systemctl --user start podman.socket), set DOCKER_HOST to its socket, or pull into files: oci:DIR or docker-archive:FILE"))
    }

    async fn through_api(&self, docker: Docker, label: String) -> Result<Loading> {
        let (writer, reader) = tokio::io::duplex(PIPE);
        let whole = Arc::new(AtomicBool::new(false));
        let ended = whole.clone();
        let end = futures_util::stream::once(async move {
            if ended.load(Ordering::SeqCst) {
                None
            } else {
                Some(Err(io::Error::other(
                    "the pull stopped before the image was whole",
                )))
            }
        })
        .filter_map(futures_util::future::ready);
        let body = tokio_util::io::ReaderStream::new(reader).chain(end);
        let engine = label.clone();
        let answer = tokio::spawn(async move {
            let options = ImportImageOptions {
                quiet: true,
                ..Default::default()
            };
            let mut answers = docker.import_image_stream(options, body, None);
            let mut said = String::new();
            while let Some(answer) = answers.next().await {
                let info = answer.map_err(|e| refused(&engine, &engine_socket::error_chain(&e)))?;
                if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                    return Err(refused(&engine, &detail));
                }
                if let Some(line) = info.stream {
                    said.push_str(&line);
                }
            }
            Ok(said.trim().to_string())
        });
        let tar = ImageTar::start(Box::pin(writer) as Writer, self.shape.clone())
            .await
            .map_err(|e| refused(&label, &e.to_string()))?;
        Ok(Loading {
            tar: Some(tar),
            whole,
            answer,
            label: format!("the engine at {label}"),
        })
    }

    async fn through_podman(&self) -> Result<Loading> {
        let mut child = tokio::process::Command::new("podman")
            .arg("load")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                Error::input("cannot run podman load")
                    .with_cause(e)
                    .with_hint("check that podman runs (podman info), or pull into files: oci:DIR")
            })?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| Error::input("cannot write to podman load"))?;
        let answer = tokio::spawn(async move {
            let output = child
                .wait_with_output()
                .await
                .map_err(|e| refused("podman load", &e.to_string()))?;
            let said = String::from_utf8_lossy(&output.stdout).trim().to_string();
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
                return Err(refused("podman load", last.unwrap_or("it failed")));
            }
            Ok(said)
        });
        let tar = ImageTar::start(Box::pin(stdin) as Writer, self.shape.clone())
            .await
            .map_err(|e| refused("podman load", &e.to_string()))?;
        Ok(Loading {
            tar: Some(tar),
            whole: Arc::new(AtomicBool::new(false)),
            answer,
            label: "podman load".to_string(),
        })
    }

    /// The engine stopped reading: its own answer says why, when it has one.
    async fn failed_write(&self, error: io::Error) -> Error {
        let mut loading = self.loading.lock().await;
        let Some(loading) = loading.as_mut() else {
            return Error::input("the engine stopped reading the image").with_cause(error);
        };
        let label = loading.label.clone();
        match (&mut loading.answer).await {
            Ok(Err(answered)) => answered,
            _ => refused(&label, &error.to_string()),
        }
    }
}

/// The engine refused the image or broke off the load.
fn refused(engine: &str, why: &str) -> Error {
    Error::input(format!("{engine} did not load the image: {why}")).with_hint(
        "check the engine (docker info); or pull into files: oci:DIR or docker-archive:FILE",
    )
}

fn podman_on_path() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("podman").is_file()))
}

impl ImageDestination for EngineDestination {
    fn open(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            let loading = self.start().await?;
            *self.loading.lock().await = Some(loading);
            Ok(())
        }
        .boxed()
    }

    fn check(&self, manifests: &Manifests) -> Result<()> {
        self.shape.check(manifests, "the engine")
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
            let broken: std::sync::Mutex<Option<io::Error>> = std::sync::Mutex::new(None);
            let result = {
                let (mut loading, turn) =
                    spool::wait_turn(&self.loading, blob, progress.as_ref()).await?;
                let loading = loading
                    .as_mut()
                    .ok_or_else(|| Error::input("the engine load was not started"))?;
                let keep = |e: io::Error| {
                    let error = Error::input(format!("the engine stopped reading the image ({e})"));
                    *broken.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    error
                };
                let tar = loading
                    .tar
                    .as_mut()
                    .ok_or_else(|| Error::input("the engine load was already finished"))?;
                tar.put(turn, progress.as_ref(), &keep).await
            };
            let taken = broken.lock().unwrap_or_else(|p| p.into_inner()).take();
            let size = match (result, taken) {
                (Ok(size), _) => size,
                (Err(_), Some(io)) => return Err(self.failed_write(io).await),
                (Err(error), None) => return Err(error),
            };
            Ok(Uploaded {
                digest,
                size,
                outcome: BlobOutcome::Pulled,
            })
        }
        .boxed()
    }

    fn put_manifest<'a>(&'a self, _manifest: &'a Manifest) -> BoxFuture<'a, Result<()>> {
        futures_util::future::ready(Ok(())).boxed()
    }

    fn commit<'a>(&'a self, root: &'a Manifest, _tags: &'a [String]) -> BoxFuture<'a, Result<()>> {
        async move {
            let mut guard = self.loading.lock().await;
            let loading = guard
                .as_mut()
                .ok_or_else(|| Error::input("the engine load was not started"))?;
            let label = loading.label.clone();
            let tar = loading
                .tar
                .take()
                .ok_or_else(|| Error::input("the engine load was already finished"))?;
            let finished = tar.finish(root).await;
            let mut writer = match finished {
                Ok(writer) => writer,
                Err(error) => {
                    return match (&mut loading.answer).await {
                        Ok(Err(answered)) => Err(answered),
                        _ => Err(error),
                    };
                }
            };
            loading.whole.store(true, Ordering::SeqCst);
            // The end of the body (or podman's standard input) tells the engine to load.
            writer
                .shutdown()
                .await
                .map_err(|e| refused(&label, &e.to_string()))?;
            drop(writer);
            let said = match (&mut loading.answer).await {
                Ok(answer) => answer?,
                Err(e) => return Err(refused(&label, &e.to_string())),
            };
            tracing::debug!("{label}: {said}");
            if self.repo_tags.is_empty() {
                tracing::debug!("loaded untagged (pulled by digest)");
            }
            Ok(())
        }
        .boxed()
    }
}
