//! One push from start to end, as a library call: what the flags mean for credentials, trust and
//! the cluster read; the image source and the registry set up from them; the push run through
//! the reporter. `main.rs` keeps only the runtime, signals, the report and the exit code.

use std::sync::Arc;
use std::time::Instant;

use crate::cli::PushArgs;
use crate::cluster::{self, ToRead};
use crate::credentials::{self, FlagInput};
use crate::error::{Error, Result};
use crate::progress::{self, Reporter};
use crate::push::{Push, Summary};
use crate::reference::DestinationArg;
use crate::registry::{ChunkPolicy, Connection, Registry, Trust};
use crate::source;

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
    let plain_http = args.plain_http || target.plain_http();
    if args.password.is_some() {
        reporter.warn(
            "a password given with --password is visible to other users of this machine; use --password-stdin",
        );
    }
    let password_from_stdin = if args.password_stdin {
        // Off the runtime's thread: Ctrl-C must still work while we wait for a pipe.
        let read =
            tokio::task::spawn_blocking(|| credentials::read_password(std::io::stdin().lock()));
        Some(read.await.map_err(|e| {
            Error::input("cannot read the password from standard input").with_cause(e)
        })??)
    } else {
        None
    };
    let mut trust = trust(args, reporter.as_ref())?;
    let flags = FlagInput {
        username: args.username.clone(),
        password: args.password.as_ref().map(|p| p.0.clone()),
        password_from_stdin,
    };
    let direct = credentials::direct(flags, |key| std::env::var(key).ok())?;
    let to_read = ToRead {
        credentials: direct.is_none(),
        certificate: !(args.insecure || plain_http || args.ca_file.is_some()),
    };
    let kubeconfig =
        cluster::KubeconfigChoice::from_process(args.kubeconfig.clone(), args.context.clone());

    let (image, from_cluster) = tokio::join!(
        source::open_source(&args.image, args.platform.clone()),
        cluster::read_for_host(&kubeconfig, &host, to_read),
    );
    let image = image?;
    let from_cluster = from_cluster?;

    match from_cluster.certificate {
        Some(certificate) => {
            tracing::debug!(
                "TLS for {host}: also trusting idpbuilder's certificate from the cluster ({})",
                certificate.place
            );
            trust.pin_for_host(&host, certificate.certificates);
        }
        None => tracing::debug!("TLS for {host}: no certificate from the cluster"),
    }
    let (credentials, origin) = credentials::resolve(
        direct,
        from_cluster.credentials,
        credentials::docker_config::lookup(host.clone()),
        &host,
    )
    .await;
    tracing::debug!("credentials for {host}: {origin}");
    let destination = target.complete(
        credentials.as_ref().map(|c| c.username.as_str()),
        image.source_name().as_deref(),
    )?;

    let registry = Registry::new(
        Connection {
            host: destination.host.clone(),
            repository: destination.repository.clone(),
            plain_http,
            trust,
            retries: args.retries,
        },
        credentials,
    )?
    .with_reporter(reporter.clone());
    let chunks = ChunkPolicy::new(args.chunk_size);
    let push = Push {
        registry: &registry,
        destination: &destination,
        concurrency: usize::from(args.concurrency),
        chunks: &chunks,
        reporter: reporter.as_ref(),
        extra_tags: &args.tags,
        dry_run: args.dry_run,
    };
    let summary = push.run(image, started).await?;
    if let Some(path) = &args.digestfile {
        write_digestfile(path, &summary.digest)?;
    }
    Ok(summary)
}

/// `--digestfile`: the digest alone, no newline, as skopeo and podman write it.
fn write_digestfile(path: &std::path::Path, digest: &str) -> Result<()> {
    std::fs::write(path, digest).map_err(|e| {
        Error::input(format!(
            "the image was pushed, but --digestfile {} cannot be written",
            path.display()
        ))
        .with_cause(e)
        .with_hint("pass a path in a writable directory")
    })
}

/// The TLS trust the flags ask for: `--insecure`, or the system roots plus `--ca-file`.
fn trust(args: &PushArgs, reporter: &dyn Reporter) -> Result<Trust> {
    let mut trust = Trust {
        insecure: args.insecure,
        ..Trust::default()
    };
    if args.insecure {
        reporter.warn(
            "--insecure: the registry's TLS certificate is not verified; anyone on the network path can read the credentials",
        );
    }
    if let Some(path) = &args.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            Error::input(format!("cannot read --ca-file {}", path.display()))
                .with_cause(e)
                .with_hint("pass the path of a PEM certificate file")
        })?;
        trust.add_pem(&pem, &format!("--ca-file {}", path.display()))?;
    }
    Ok(trust)
}
