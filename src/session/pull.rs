//! One pull from start to end: the IMAGE's registry reached with the credentials and trust a
//! push to it would use (flags, environment, the cluster's secret and certificate for the
//! cluster's Gitea host only, docker's config), the image's manifests read, the destination
//! made from DESTINATION, and the pull run through the reporter.

use std::sync::Arc;
use std::time::Instant;

use super::Login;
use crate::cli::PullArgs;
use crate::cluster;
use crate::destination::{
    ArchiveDestination, EngineDestination, ImageDestination, LayoutDestination, PullTarget,
};
use crate::error::{Error, Kind, Result};
use crate::oci::{Platform, media_type::is_index};
use crate::progress::{self, Reporter};
use crate::pull::{self as policy, Pull, PullSummary};
use crate::registry::{Connection, Registry, Role};
use crate::source::{self, ImageReference, ImageSource, RemoteAccess};

/// Tags named in the hint for an image the registry does not have.
const TAGS_IN_HINT: usize = 10;

/// Runs the pull `args` describe, printing progress and warnings on stderr (`color` for
/// colour), and returns what it did.
pub async fn pull(args: &PullArgs, color: bool) -> Result<PullSummary> {
    let reporter = progress::reporter(progress::Mode::choose(args.quiet, color), color);
    let result = pull_with(args, reporter.clone()).await;
    reporter.finish();
    result
}

async fn pull_with(args: &PullArgs, reporter: Arc<dyn Reporter>) -> Result<PullSummary> {
    let started = Instant::now();
    let (image, plain_from_scheme) = policy::registry_image(&args.image)?;
    let target = PullTarget::parse(args.destination.as_deref())?;
    let host = image.host.clone();
    let plain_http = args.registry.plain_http || plain_from_scheme;
    let login = Login::from_flags(&args.registry, plain_http, reporter.as_ref()).await?;
    let to_read = login.to_read(false, &[Some(host.as_str())]);
    let found = cluster::read_in_time(&login.kubeconfig, to_read).await?;
    let (credentials, trust) = login.for_host(&host, found.as_ref()).await;
    let access = || RemoteAccess {
        credentials: credentials.clone(),
        trust: trust.clone(),
        plain_http,
        retries: args.retries,
        reporter: reporter.clone(),
        role: Role::Pull,
    };

    let argument = format!("{}{}", source::PREFIX, image.given);
    let opened = source::open_source(&argument, args.platform.clone(), Some(access())).await;
    let mut opened = match opened {
        Ok(opened) => opened,
        Err(error) if is_missing(&error) => {
            let registry = Registry::new(
                connection(&image, plain_http, &access()),
                credentials.clone(),
            )?;
            let tags = registry.list_tags(TAGS_IN_HINT).await;
            return Err(error.with_hint(policy::tags_hint(&image, tags.as_deref())));
        }
        Err(error) => return Err(error),
    };
    if target.single_platform() && args.platform.is_none() && root_is_index(opened.as_ref()) {
        let own = machine_platform()?;
        tracing::debug!(
            "{} is an index: pulling {own}, this machine's platform",
            image.given
        );
        opened = source::open_source(&argument, Some(own), Some(access())).await?;
    }

    let tag = image.tag.clone().filter(|_| image.digest.is_none());
    let name = engine_name(&image);
    match &target {
        PullTarget::Layout { dir, reference } => {
            let reference = reference.clone().or(tag);
            let destination = LayoutDestination::new(dir.clone(), reference.clone());
            let shown = with_reference(&target.to_string(), reference.as_deref());
            run(
                args,
                &destination,
                opened,
                &reporter,
                shown,
                target.to_string(),
                started,
            )
            .await
        }
        PullTarget::OciArchive { file, reference } => {
            let reference = reference.clone().or(tag);
            let destination = ArchiveDestination::oci(file.clone(), reference.clone());
            let shown = with_reference(&target.to_string(), reference.as_deref());
            run(
                args,
                &destination,
                opened,
                &reporter,
                shown,
                target.to_string(),
                started,
            )
            .await
        }
        PullTarget::DockerArchive { file, name: given } => {
            let name = given.clone().or(name);
            let destination =
                ArchiveDestination::docker(file.clone(), name.clone().into_iter().collect());
            let shown = with_reference(&target.to_string(), name.as_deref());
            run(
                args,
                &destination,
                opened,
                &reporter,
                shown,
                target.to_string(),
                started,
            )
            .await
        }
        PullTarget::Engine { name: given } => {
            let name = given.clone().map(|n| with_latest(&n)).or(name);
            let destination = EngineDestination::new(name.clone().into_iter().collect());
            let shown = name.unwrap_or_else(|| format!("{}/{}", image.host, image.repository));
            let summary = run(
                args,
                &destination,
                opened,
                &reporter,
                shown,
                String::new(),
                started,
            )
            .await?;
            Ok(PullSummary {
                destination: destination.label().await,
                ..summary
            })
        }
    }
}

/// `--digestfile` of a pull: the digest alone, no newline, written after the result is
/// printed, as for a push.
pub fn write_digestfile(path: &std::path::Path, digest: &str) -> Result<()> {
    std::fs::write(path, digest).map_err(|e| {
        Error::input(format!(
            "the image was pulled, but --digestfile {} cannot be written",
            path.display()
        ))
        .with_cause(e)
        .with_hint("pass a path in a writable directory")
    })
}

/// Runs the pull into `destination`; the result line is `shown@DIGEST`.
async fn run(
    args: &PullArgs,
    destination: &dyn ImageDestination,
    image: Box<dyn ImageSource>,
    reporter: &Arc<dyn Reporter>,
    shown: String,
    place: String,
    started: Instant,
) -> Result<PullSummary> {
    let pull = Pull {
        destination,
        concurrency: usize::from(args.concurrency),
        reporter: reporter.as_ref(),
    };
    let pulled = pull.run(image).await?;
    let line = format!("{shown}@{}", pulled.digest);
    Ok(pulled.summary(line, place, started))
}

/// `oci:DIR:REF`, or `oci:DIR` without a REF.
fn with_reference(place: &str, reference: Option<&str>) -> String {
    match reference {
        Some(reference) => format!("{place}:{reference}"),
        None => place.to_string(),
    }
}

/// The name `docker pull` gives the image: `HOST/REPO:TAG` (Docker Hub's as `docker.io/...`);
/// none for an image pulled by digest alone.
fn engine_name(image: &ImageReference) -> Option<String> {
    let tag = image.tag.as_deref()?;
    let host = if image.host == source::DOCKER_HUB {
        "docker.io"
    } else {
        image.host.as_str()
    };
    Some(format!("{host}/{}:{tag}", image.repository))
}

/// `NAME` as docker reads it: `NAME:latest` without a tag.
fn with_latest(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// The registry connection a tag list is read with, as the image was.
fn connection(image: &ImageReference, plain_http: bool, access: &RemoteAccess) -> Connection {
    Connection {
        host: image.host.clone(),
        repository: image.repository.clone(),
        plain_http,
        trust: access.trust.clone(),
        retries: access.retries,
        role: Role::Pull,
    }
}

/// The registry does not have the tag or digest asked for (404 on the manifest).
fn is_missing(error: &Error) -> bool {
    error.kind() == Kind::Input && error.message().ends_with("does not exist (404 Not Found)")
}

fn root_is_index(image: &dyn ImageSource) -> bool {
    image
        .plan()
        .manifests
        .as_ref()
        .is_some_and(|m| is_index(&m.root.media_type))
}

/// This machine's `linux/ARCH`, the platform an engine runs.
fn machine_platform() -> Result<Platform> {
    format!("linux/{}", std::env::consts::ARCH).parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_names_the_image_as_docker_pull_does() {
        let (image, _) = policy::registry_image("giteaadmin/app:1.0").unwrap();
        assert_eq!(
            engine_name(&image).as_deref(),
            Some("gitea.cnoe.localtest.me:8443/giteaadmin/app:1.0")
        );
        let (hub, _) = policy::registry_image("docker://ubuntu:24.04").unwrap();
        assert_eq!(
            engine_name(&hub).as_deref(),
            Some("docker.io/library/ubuntu:24.04")
        );
        let (by_digest, _) = policy::registry_image(&format!(
            "r.example/a/b@{}",
            crate::digest::Digest::of(b"x")
        ))
        .unwrap();
        assert_eq!(engine_name(&by_digest), None);
        assert_eq!(with_latest("app"), "app:latest");
        assert_eq!(
            with_latest("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(with_latest("app:1"), "app:1");
    }

    #[test]
    fn the_machine_platform_is_linux_and_its_architecture() {
        let own = machine_platform().unwrap();
        assert_eq!(own.os, "linux");
        assert!(!own.architecture.is_empty());
    }
}
