//! One push from start to end, as a library call: what the flags mean for credentials, trust and
//! the cluster read; the image source and the registry set up from them; the push run through
//! the reporter (a pull likewise, in `session/pull.rs`). `main.rs` keeps only the runtime, signals, the report and the exit code.

use std::sync::Arc;
use std::time::Instant;

use crate::cli::PushArgs;
use crate::cluster;
use crate::credentials::source as source_credentials;
use crate::credentials::{self, Credentials};
use crate::destination::RegistryDestination;
use crate::error::{Error, Result};
use crate::progress::{self, Reporter};
use crate::push::{Push, Summary};
use crate::reference::DestinationArg;
use crate::registry::{Connection, Registry, Role};
use crate::source::{self, ImageReference, ImageSource, RemoteAccess};

mod login;
mod pull;

use login::{Login, Side, trust};

pub use pull::{pull, write_digestfile as write_pulled_digestfile};

/// Runs the push `args` describe, printing progress and warnings on stderr (`color` for
/// colour), and returns what it did.
pub async fn push(args: &PushArgs, color: bool) -> Result<Summary> {
    let reporter = progress::reporter(progress::Mode::choose(args.quiet, color), color);
    let result = push_with(args, reporter.clone()).await;
    reporter.finish();
    result
}

async fn push_with(args: &PushArgs, reporter: Arc<dyn Reporter>) -> Result<Summary> {
    let started = Instant::now();
    let target = DestinationArg::parse(args.destination.as_deref())?;
    let host = target.host().to_string();
    let plain_http = args.registry.plain_http || target.plain_http();
    let remote = source::ImageReference::parse(&args.image)?;
    check_source_flags(args, remote.is_some())?;
    if args
        .src_creds
        .as_ref()
        .is_some_and(|c| c.password.is_some())
    {
        reporter.warn(
            "a password given with --src-creds is visible to other users of this machine; give only the user name to be asked for it, or set IDPBUILDER_SRC_PASSWORD",
        );
    }
    let login = Login::from_flags(&args.registry, plain_http, reporter.as_ref()).await?;
    let to_read = login.to_read(
        remote.is_some() && source_wants_certificate(args),
        &[
            Some(host.as_str()),
            remote.as_ref().map(|r| r.host.as_str()),
        ],
    );

    // Files are opened while the cluster is read; a registry source needs the cluster's
    // certificate and the destination's credentials first.
    let (opening, found) = match remote {
        None => {
            let (image, found) = tokio::join!(
                source::open_source(&args.image, args.platform.clone(), None),
                cluster::read_in_time(&login.kubeconfig, to_read),
            );
            (Opening::Opened(image?), found?)
        }
        Some(reference) => (
            Opening::Remote(reference),
            cluster::read_in_time(&login.kubeconfig, to_read).await?,
        ),
    };
    let (credentials, trust) = login.for_host(&host, found.as_ref()).await;
    let image = match opening {
        Opening::Opened(image) => image,
        Opening::Remote(reference) => {
            let access = source_access(
                args,
                &reference,
                found.as_ref(),
                &host,
                credentials.as_ref(),
                reporter.clone(),
            )
            .await?;
            source::open_source(&args.image, args.platform.clone(), Some(access)).await?
        }
    };
    let destination = target.complete(
        credentials.as_ref().map(|c| c.username.as_str()),
        image.plan().name.as_deref(),
    )?;

    let mut registry = Registry::new(
        Connection {
            host: destination.host.clone(),
            repository: destination.repository.clone(),
            plain_http,
            trust,
            retries: args.retries,
            role: Role::Destination,
        },
        credentials,
    )?
    .with_reporter(reporter.clone());
    if let Some(mount) = image
        .plan()
        .mount_from
        .clone()
        .filter(|m| source_credentials::same_registry(&m.host, &destination.host))
    {
        tracing::debug!(
            "source and destination are one registry: blobs are mounted from {}",
            mount.repository
        );
        registry = registry.with_mount_from(mount.repository);
    }
    // Without a cluster reading, idpbuilder's default host names are its Gitea.
    let is_clusters_gitea = found.as_ref().map_or_else(
        || cluster::GiteaHosts::Fallback.matches(&destination.host),
        |found| found.hosts.matches(&destination.host),
    );
    let writer = RegistryDestination::new(registry, args.chunk_size, is_clusters_gitea);
    let push = Push {
        destination: &writer,
        target: &destination,
        concurrency: usize::from(args.concurrency),
        reporter: reporter.as_ref(),
        extra_tags: &args.tags,
        dry_run: args.dry_run,
    };
    push.run(image, started).await
}

/// The image, opened already (files), or a registry image still to open.
enum Opening {
    Opened(Box<dyn ImageSource>),
    Remote(ImageReference),
}

/// `--src-*` flags name the source registry: with an IMAGE that is not `docker://`, they are a
/// mistake worth saying rather than ignoring.
fn check_source_flags(args: &PushArgs, remote: bool) -> Result<()> {
    let given: Vec<&str> = [
        (args.src_creds.is_some(), "--src-creds"),
        (args.src_ca_file.is_some(), "--src-ca-file"),
        (args.src_insecure, "--src-insecure"),
        (args.src_plain_http, "--src-plain-http"),
    ]
    .into_iter()
    .filter_map(|(set, flag)| set.then_some(flag))
    .collect();
    if remote || given.is_empty() {
        return Ok(());
    }
    Err(Error::input(format!(
        "{} {} for a docker:// IMAGE, and {} is not one",
        given.join(", "),
        if given.len() == 1 { "is" } else { "are" },
        args.image
    ))
    .with_hint("drop them, or name a registry image as docker://HOST/REPO:TAG"))
}

/// Whether idpbuilder's certificate could matter for the source registry: no `--src-ca-file`,
/// `--src-insecure` or `--src-plain-http`.
fn source_wants_certificate(args: &PushArgs) -> bool {
    !(args.src_insecure || args.src_plain_http || args.src_ca_file.is_some())
}

/// How to reach a `docker://` IMAGE's registry: the `--src-*` TLS flags, idpbuilder's
/// certificate when it is the cluster's Gitea, and credentials in the source order (the
/// destination's own only when it is the same registry).
async fn source_access(
    args: &PushArgs,
    reference: &ImageReference,
    found: Option<&cluster::ClusterReading>,
    destination_host: &str,
    destination_credentials: Option<&Credentials>,
    reporter: Arc<dyn Reporter>,
) -> Result<RemoteAccess> {
    let host = &reference.host;
    let mut trust = trust(
        args.src_insecure,
        args.src_ca_file.as_deref(),
        Side::Source,
        reporter.as_ref(),
    )?;
    let certificate = found
        .filter(|_| source_wants_certificate(args))
        .and_then(|found| found.for_host(host).certificate);
    if let Some(certificate) = certificate {
        tracing::debug!(
            "TLS for the source {host}: also trusting idpbuilder's certificate from the cluster ({})",
            certificate.place
        );
        trust.pin_for_host(host, certificate.certificates);
    }
    let flag = match &args.src_creds {
        Some(given) => Some(
            source_credentials::from_flag(given.username.clone(), given.password.clone(), host)
                .await?,
        ),
        None => None,
    };
    let same_registry = source_credentials::same_registry(host, destination_host);
    let (credentials, origin) = source_credentials::resolve(
        flag,
        |key| std::env::var(key).ok(),
        credentials::docker_config::lookup(host.clone()),
        destination_credentials.filter(|_| same_registry).cloned(),
        host,
    )
    .await;
    tracing::debug!("credentials for the source {host}: {origin}");
    Ok(RemoteAccess {
        credentials,
        trust,
        plain_http: args.src_plain_http,
        retries: args.retries,
        reporter,
        role: Role::Source,
    })
}

/// `--digestfile`: the digest alone, no newline, as skopeo and podman write it. Written after
/// the result is printed, so a path that turns out unwritable does not hide what was pushed;
/// a dry run writes none, since nothing was pushed.
pub fn write_digestfile(path: &std::path::Path, digest: &str) -> Result<()> {
    std::fs::write(path, digest).map_err(|e| {
        Error::input(format!(
            "the image was pushed, but --digestfile {} cannot be written",
            path.display()
        ))
        .with_cause(e)
        .with_hint("pass a path in a writable directory")
    })
}
