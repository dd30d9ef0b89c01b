//! Images of the local Docker or Podman engine (`docker-daemon:NAME[:TAG]`, or a bare IMAGE that
//! is not a path) as an [`ImageSource`]: found over the Engine API (`socket`), inspected
//! (`GET /images/{name}/json`: diff IDs and size), then read in one pass from
//! `GET /images/{name}/get` (`stream`). With no engine socket answering and `podman` on
//! `PATH`, `podman image inspect` and `podman save` on standard output stand in for the API.

use std::collections::HashSet;
use std::process::Stdio;

use bollard::Docker;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;

use self::inspect::{Answer, Inspected};
use self::socket::{Address, Endpoint, Endpoints, Environment, Unreachable};
use self::stream::{ByteStream, ExportPlan};
use super::names::tag_of;
use super::{ImageSource, Plan};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::{Manifests, Platform, SourceBlob};
use crate::reference::looks_like_host;

mod inspect;
mod manifests;
pub(crate) mod socket;
mod stream;
mod watch;

const PREFIX: &str = "docker-daemon:";
const HINT_LIST: &str = "docker images (or podman images) lists the engine's images";

/// What the user asked for: an engine image, and whether they said so with `docker-daemon:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// The name as given (`app:1.0`, `localhost/app`, `app@sha256:...`).
    pub(crate) name: String,
    pub(crate) prefixed: bool,
}

/// The engine image an IMAGE argument names, if any: `docker-daemon:NAME`, or a bare argument
/// that is not an existing path, is a valid image reference and does not look like a file name
/// (`.tar`, `.tgz`, `.gz`, a leading `.`, `/` or `~`).
pub(crate) fn requested(argument: &str) -> Option<Request> {
    if let Some(name) = argument.strip_prefix(PREFIX) {
        return Some(Request {
            name: name.to_string(),
            prefixed: true,
        });
    }
    if ["oci:", "oci-archive:", "docker-archive:", "docker://"]
        .iter()
        .any(|p| argument.starts_with(p))
        || std::path::Path::new(argument).exists()
        || looks_like_a_file(argument)
        || !is_reference(argument)
    {
        return None;
    }
    Some(Request {
        name: argument.to_string(),
        prefixed: false,
    })
}

fn looks_like_a_file(argument: &str) -> bool {
    let name = argument.split([':', '@']).next().unwrap_or_default();
    argument.starts_with(['.', '/', '~'])
        || [".tar", ".tgz", ".gz", ".zst", ".json"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

/// Whether `text` is a docker image reference: `[HOST[:PORT]/]PATH[:TAG][@sha256:HEX]`, path
/// components in lower case.
pub(crate) fn is_reference(text: &str) -> bool {
    let (name, digest) = match text.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (text, None),
    };
    if digest.is_some_and(|d| Digest::parse(d).is_err()) {
        return false;
    }
    let (path, tag) = match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => (&name[..colon], Some(&name[colon + 1..])),
        _ => (name, None),
    };
    if tag.is_some_and(|t| !crate::reference::is_valid_tag(t)) {
        return false;
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    if parts.len() > 1 {
        let host = parts[0];
        if host.contains('.') || host.contains(':') || host == "localhost" {
            let ok = host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
            if !ok {
                return false;
            }
            parts.remove(0);
        }
    }
    !parts.is_empty() && parts.iter().all(|p| is_component(p))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_component(part: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !part.starts_with(alnum) || !part.ends_with(alnum) {
        return false;
    }
    part.split(alnum)
        .filter(|run| !run.is_empty())
        .all(|run| run == "." || run == "_" || run == "__" || run.chars().all(|c| c == '-'))
}

/// Where the export comes from.
enum Exporter {
    Api { docker: Docker, endpoint: Endpoint },
    Podman,
}

/// An engine image, ready to be read.
pub(crate) struct EngineImage {
    request: Request,
    /// The name the engine is asked for (`app:latest` for `app`).
    api_name: String,
    exporter: Option<Exporter>,
    plan: ExportPlan,
    /// What is known before the export is read: names and the size the engine reports.
    known: Plan,
    manifests: Option<oneshot::Receiver<Result<Manifests>>>,
}

/// Finds the engine and the image; nothing of the image is read yet.
pub(crate) async fn open(request: Request, platform: Option<Platform>) -> Result<EngineImage> {
    let endpoints = socket::endpoints(&Environment::from_process())?;
    let mut failures = Vec::new();
    for endpoint in &endpoints.list {
        match socket::connect(endpoint).await {
            Ok(docker) => {
                let (api_name, inspected) = inspect_api(&request, endpoint).await?;
                let origin = format!(
                    "image {} of the engine at {}",
                    request.name,
                    endpoint.label()
                );
                let exporter = Exporter::Api {
                    docker,
                    endpoint: endpoint.clone(),
                };
                return Ok(EngineImage::new(
                    request, api_name, exporter, inspected, origin, platform,
                ));
            }
            Err(why) => {
                tracing::debug!("engine {}: {why:?}", endpoint.label());
                failures.push((endpoint.clone(), why));
            }
        }
    }
    if !endpoints.chosen && podman_on_path() {
        tracing::debug!("no engine socket answered; reading podman save");
        let (api_name, inspected) = inspect_podman(&request).await?;
        let origin = format!("image {} of podman", request.name);
        return Ok(EngineImage::new(
            request,
            api_name,
            Exporter::Podman,
            inspected,
            origin,
            platform,
        ));
    }
    Err(unreachable(&request, &endpoints, &failures))
}

/// The error for no engine answering: permission denied where that was the reason, else the
/// sockets tried.
fn unreachable(
    request: &Request,
    endpoints: &Endpoints,
    failures: &[(Endpoint, Unreachable)],
) -> Error {
    let what = if request.prefixed {
        format!("cannot read engine image {}", request.name)
    } else {
        format!(
            "{} is neither a file nor an image of a running engine",
            request.name
        )
    };
    if let Some((endpoint, _)) = failures
        .iter()
        .find(|(_, why)| matches!(why, Unreachable::Denied))
    {
        return Error::input(format!(
            "{what}: permission denied on the engine socket {}",
            endpoint.label()
        ))
        .with_hint("add your user to the docker group (sudo usermod -aG docker $USER, then log in again), or set DOCKER_HOST to a socket you may use");
    }
    let why = match failures {
        [(_, Unreachable::Failed(reason))] => format!(" ({reason})"),
        _ => String::new(),
    };
    // With DOCKER_HOST or a context naming the engine, setting DOCKER_HOST is no advice.
    let start = if endpoints.chosen {
        format!(
            "start the engine at {}, or point DOCKER_HOST (or the docker context) at one that runs",
            endpoints.label()
        )
    } else {
        "start the engine (sudo systemctl start docker, or systemctl --user start podman.socket), or set DOCKER_HOST to its socket".to_string()
    };
    let hint = if request.prefixed {
        start
    } else {
        format!(
            "{}; for an engine image, {start}",
            not_found_hint(&request.name)
        )
    };
    Error::input(format!(
        "{what}: no engine answered at {}{why}",
        endpoints.label()
    ))
    .with_hint(hint)
}

/// `GET /images/{name}/json`; a name without tag or digest is `NAME:latest` unless only an ID
/// prefix matches.
async fn inspect_api(request: &Request, endpoint: &Endpoint) -> Result<(String, Inspected)> {
    let mut names = vec![with_latest(&request.name)];
    if names[0] != request.name {
        names.push(request.name.clone());
    }
    for name in names {
        // Read by hand to a limit and a deadline (see `inspect`): bollard would collect the
        // answer whole, however long.
        let answer = match &endpoint.address {
            Address::Unix(socket) => inspect::inspect(socket, &name).await,
            Address::Tcp { host, tls } => inspect::inspect_tcp(host, tls.as_deref(), &name).await,
        };
        match answer {
            Answer::Found(inspected) => return Ok((name, inspected)),
            Answer::NotFound => continue,
            Answer::Failed(why) => {
                return Err(Error::input(format!(
                    "the engine at {} could not look up image {}: {why}",
                    endpoint.label(),
                    request.name
                ))
                .with_hint("check the engine with docker info (or podman info); DOCKER_HOST names the socket used"));
            }
        }
    }
    let label = endpoint.label();
    Err(if request.prefixed {
        Error::input(format!(
            "the engine at {label} has no image {}",
            with_latest(&request.name)
        ))
        .with_hint(HINT_LIST)
    } else {
        Error::input(format!(
            "{} is neither a file nor an image of the engine at {label}{}",
            request.name,
            looked_for(&request.name)
        ))
        .with_hint(format!("{HINT_LIST}; {}", not_found_hint(&request.name)))
    })
}

/// For a bare IMAGE that is neither a file nor an engine's image: a mistyped path, or a
/// registry image written without `docker://` (`example.com/team/app:1.0`).
fn not_found_hint(name: &str) -> String {
    let registry = name
        .split_once('/')
        .is_some_and(|(first, _)| looks_like_host(first));
    if registry {
        format!("to copy it from its registry, write docker://{name}; for a file, check the path")
    } else {
        "for a file, check the path".to_string()
    }
}

/// `NAME:latest` for a name with neither tag nor digest, as docker resolves it.
fn with_latest(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// For a name the engine was asked for as `NAME:latest`, says so: users who typed `app` may
/// have built `app:1.0`.
fn looked_for(name: &str) -> String {
    let asked = with_latest(name);
    if asked == name {
        String::new()
    } else {
        format!(" (it has no {asked})")
    }
}

fn podman_on_path() -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.is_absolute() && dir.join("podman").is_file())
    })
}

/// `podman image inspect NAME`: the JSON array of one image.
async fn inspect_podman(request: &Request) -> Result<(String, Inspected)> {
    let name = with_latest(&request.name);
    let output = tokio::process::Command::new("podman")
        .args(["image", "inspect", &name])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| {
            Error::input(format!("cannot run podman image inspect {name}: {e}")).with_cause(e)
        })?;
    if !output.status.success() {
        let said = last_line(&output.stderr);
        let message = if request.prefixed {
            format!("podman has no image {name} ({said})")
        } else {
            format!(
                "{} is neither a file nor an image of podman{} (no engine socket answered; {said})",
                request.name,
                looked_for(&request.name)
            )
        };
        let podman = "podman images lists its images; for Docker, start it or set DOCKER_HOST";
        let hint = if request.prefixed {
            podman.to_string()
        } else {
            format!("{}; {podman}", not_found_hint(&request.name))
        };
        return Err(Error::input(message).with_hint(hint));
    }
    #[derive(serde::Deserialize)]
    struct Image {
        #[serde(rename = "RootFS", default)]
        root_fs: Option<RootFs>,
        #[serde(rename = "Size", default)]
        size: Option<u64>,
    }
    #[derive(serde::Deserialize)]
    struct RootFs {
        #[serde(rename = "Layers", default)]
        layers: Vec<String>,
    }
    let images: Vec<Image> = serde_json::from_slice(&output.stdout)
        .map_err(|e| Error::input(format!("podman image inspect {name} gave no image ({e})")))?;
    let image = images.into_iter().next();
    let size = image.as_ref().and_then(|i| i.size);
    let diff_ids = image
        .and_then(|i| i.root_fs)
        .map(|r| r.layers)
        .unwrap_or_default()
        .iter()
        .filter_map(|d| Digest::parse(d).ok())
        .collect();
    Ok((name, Inspected { diff_ids, size }))
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message")
        .trim()
        .to_string()
}

impl EngineImage {
    fn new(
        request: Request,
        api_name: String,
        exporter: Exporter,
        inspected: Inspected,
        origin: String,
        platform: Option<Platform>,
    ) -> EngineImage {
        tracing::debug!(
            "{origin}: {} layers, {} bytes",
            inspected.diff_ids.len(),
            inspected.size.unwrap_or_default()
        );
        let known = Plan {
            tag: (!request.name.contains('@'))
                .then(|| tag_of(&with_latest(&request.name)))
                .flatten(),
            name: Some(with_latest(&request.name)).filter(|n| !n.starts_with("sha256:")),
            total: inspected.size,
            ask_first: inspected.diff_ids.clone(),
            ..Plan::default()
        };
        let plan = ExportPlan {
            image: request.name.clone(),
            origin: origin.into(),
            diff_ids: inspected.diff_ids,
            platform,
            read_through: false,
        };
        EngineImage {
            request,
            api_name,
            exporter: Some(exporter),
            plan,
            known,
            manifests: None,
        }
    }

    /// The export as a byte stream, watched for stalls and for running past the image's size.
    fn export(&mut self) -> ByteStream {
        let engine = match &self.exporter {
            Some(Exporter::Api { endpoint, .. }) => format!("the engine at {}", endpoint.label()),
            _ => "podman save".to_string(),
        };
        let bytes = self.export_unwatched();
        watch::watched(
            bytes,
            watch::idle_time(),
            watch::cap_for(self.known.total),
            engine,
        )
    }

    fn export_unwatched(&mut self) -> ByteStream {
        let name = self.api_name.clone();
        let image = self.request.name.clone();
        match self.exporter.take() {
            Some(Exporter::Api { docker, endpoint }) => {
                let label = endpoint.label();
                docker
                    .export_image(&name)
                    .map(move |item| {
                        item.map_err(|e| {
                            let error = Error::input(format!(
                                "the engine at {label} stopped sending image {image}: {}",
                                socket::error_chain(&e)
                            ))
                            .with_hint("check the engine (docker info) and its log, then try again")
                            .with_cause(e);
                            std::io::Error::other(error)
                        })
                    })
                    .boxed()
            }
            Some(Exporter::Podman) => podman_save(name, image),
            None => futures_util::stream::once(async {
                Err(std::io::Error::other(Error::input(
                    "the image was read already",
                )))
            })
            .boxed(),
        }
    }
}

/// `podman save --format docker-archive -o /dev/stdout NAME`, read as it is written; a failed
/// `podman` ends the stream with its last line of stderr.
fn podman_save(name: String, image: String) -> ByteStream {
    let child = tokio::process::Command::new("podman")
        .args([
            "save",
            "--format",
            "docker-archive",
            "-o",
            "/dev/stdout",
            &name,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            let error = Error::input(format!("cannot run podman save {name}: {e}")).with_cause(e);
            return futures_util::stream::once(async { Err(std::io::Error::other(error)) }).boxed();
        }
    };
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return futures_util::stream::once(async {
            Err(std::io::Error::other(Error::input(
                "podman save gave no output",
            )))
        })
        .boxed();
    };
    let said = tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = (&mut stderr).take(64 << 10).read_to_end(&mut text).await;
        text
    });
    let body = tokio_util::io::ReaderStream::with_capacity(stdout, 256 << 10);
    let end = async move {
        let status = child.wait().await;
        let said = said.await.unwrap_or_default();
        match status {
            Ok(status) if status.success() => None,
            _ => Some(Err(std::io::Error::other(
                Error::input(format!("podman save {image} failed: {}", last_line(&said)))
                    .with_hint("podman images lists its images"),
            ))),
        }
    };
    body.chain(futures_util::stream::once(end).filter_map(futures_util::future::ready))
        .boxed()
}

impl ImageSource for EngineImage {
    fn plan(&self) -> &Plan {
        &self.known
    }

    fn blobs(&mut self, present: &[Digest]) -> BoxStream<'static, Result<SourceBlob>> {
        // Every layer there already: the export is read through, nothing is sent.
        let present: HashSet<&Digest> = present.iter().collect();
        self.plan.read_through = !self.plan.diff_ids.is_empty()
            && self.plan.diff_ids.iter().all(|d| present.contains(d));
        let bytes = self.export();
        let export = stream::read(bytes, self.plan.clone());
        self.manifests = Some(export.manifests);
        export.blobs
    }

    fn manifests(self: Box<Self>) -> BoxFuture<'static, Result<Manifests>> {
        let origin = self.plan.origin.clone();
        async move {
            match self.manifests {
                Some(manifests) => manifests.await.unwrap_or_else(|_| {
                    Err(Error::input(format!("reading {origin} stopped early")))
                }),
                None => Err(Error::input(format!("{origin} was not read"))),
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_docker_references() {
        for good in [
            "app",
            "app:1.0",
            "localhost/app",
            "localhost:5000/team/app:v2",
            "registry.example.com/a/b-c__d.e:latest",
            "app@sha256:0123456789012345678901234567890123456789012345678901234567890123",
        ] {
            assert!(is_reference(good), "{good}");
        }
        for bad in [
            "App",
            "app:",
            "/x",
            "a//b",
            "app:-x",
            "app@sha256:12",
            "a..b",
            "",
        ] {
            assert!(!is_reference(bad), "{bad}");
        }
    }

    #[test]
    fn a_bare_argument_is_an_engine_name_unless_it_is_or_looks_like_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("app");
        std::fs::write(&file, b"").unwrap();
        assert_eq!(
            requested("app:1.0"),
            Some(Request {
                name: "app:1.0".into(),
                prefixed: false
            })
        );
        assert_eq!(
            requested("docker-daemon:App"),
            Some(Request {
                name: "App".into(),
                prefixed: true
            })
        );
        for file_like in [
            "app.tar",
            "app.tar:1.0",
            "./app",
            "/no/such.tar",
            "oci:x",
            "docker://app",
            "Upper",
        ] {
            assert_eq!(requested(file_like), None, "{file_like}");
        }
        assert_eq!(requested(&file.display().to_string()), None);
    }

    #[test]
    fn a_name_without_tag_is_latest() {
        assert_eq!(with_latest("app"), "app:latest");
        assert_eq!(
            with_latest("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(with_latest("app:1.0"), "app:1.0");
        assert_eq!(with_latest("app@sha256:00"), "app@sha256:00");
    }
}
