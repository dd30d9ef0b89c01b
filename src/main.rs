//! `idpbuilder push`: parse the command line, run the push, print the result or the error, and
//! map it to the SPEC's exit code.

use std::io::IsTerminal;
use std::time::Instant;

use clap::Parser;
use idpbuilder_push::{cluster, completion, credentials, progress, registry, report, source};

use idpbuilder_push::cli::{Cli, ColorChoice, Command, LogLevel, PushArgs};
use idpbuilder_push::credentials::FlagInput;
use idpbuilder_push::error::{Error, Result};
use idpbuilder_push::push::{Push, Summary};
use idpbuilder_push::reference::DestinationArg;
use idpbuilder_push::registry::{ChunkPolicy, Connection, Registry, Trust};

fn main() {
    idpbuilder_push::passthrough::hand_over_unless_ours();
    let args = match Cli::parse().command {
        Command::Push(args) => args,
        Command::Completion { shell } => std::process::exit(completion::print(shell)),
    };
    let color = use_color(args.color);
    init_logging(args.log_level);
    registry::install_default_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => exit_with(
            Error::registry("cannot start the async runtime").with_cause(e),
            &args,
            color,
        ),
    };
    let result = runtime.block_on(async {
        tokio::select! {
            result = run(&args, color) => result,
            () = interrupted() => Err(Error::interrupted()),
        }
    });
    // In-flight uploads are dropped, not awaited: Ctrl-C must stop at once.
    runtime.shutdown_background();
    match result {
        Ok(summary) => {
            if report::result(&mut std::io::stdout().lock(), &summary, args.output).is_err() {
                std::process::exit(1);
            }
        }
        Err(error) => exit_with(error, &args, color),
    }
}

fn exit_with(error: Error, args: &PushArgs, color: bool) -> ! {
    let verbose = args.log_level >= LogLevel::Debug;
    let _ = report::error(&mut std::io::stderr().lock(), &error, verbose, color);
    std::process::exit(error.kind().exit_code())
}

async fn run(args: &PushArgs, color: bool) -> Result<Summary> {
    let started = Instant::now();
    let destination = DestinationArg::parse(args.destination.as_deref())?
        .complete(args.username.as_deref(), None)?;
    if args.password.is_some() {
        report::warning(
            "a password given with --password is visible to other users of this machine; use --password-stdin",
            color,
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
    let mut trust = trust(args, color)?;
    let flags = FlagInput {
        username: args.username.clone(),
        password: args.password.as_ref().map(|p| p.0.clone()),
        password_from_stdin,
    };
    let direct = credentials::direct(flags, |key| std::env::var(key).ok())?;
    let wanted = cluster::Wanted {
        credentials: direct.is_none(),
        certificate: !(args.insecure || args.plain_http || args.ca_file.is_some()),
    };
    let request = cluster::Request::from_process(args.kubeconfig.clone(), args.context.clone());

    let image_argument = args.image.clone();
    let platform = args.platform.clone();
    let (image, from_cluster) = tokio::join!(
        tokio::task::spawn_blocking(move || source::open(&image_argument, platform)),
        cluster::read_for_host(&request, &destination.host, wanted),
    );
    let image = image.map_err(|e| Error::input("reading the image failed").with_cause(e))??;
    let from_cluster = from_cluster?;
    tracing::debug!(
        "image {} has {} blobs, {} platform manifests, root {}",
        args.image,
        image.blobs.len(),
        image.children.len(),
        image.root.digest
    );

    match from_cluster.certificate {
        Some(certificate) => {
            tracing::debug!(
                "TLS for {}: also trusting idpbuilder's certificate from the cluster ({})",
                destination.host,
                certificate.place
            );
            trust.extra.extend(certificate.certificates);
        }
        None => tracing::debug!(
            "TLS for {}: no certificate from the cluster",
            destination.host
        ),
    }
    let (credentials, origin) = credentials::resolve(
        direct,
        from_cluster.credentials,
        credentials::docker_config::lookup(destination.host.clone()),
        &destination.host,
    )
    .await;
    tracing::debug!("credentials for {}: {origin}", destination.host);

    let registry = Registry::new(
        Connection {
            host: destination.host.clone(),
            repository: destination.repository.clone(),
            plain_http: args.plain_http,
            trust,
            retries: args.retries,
        },
        credentials,
    )?;
    let reporter = progress::reporter(progress::Mode::choose(args.quiet, color));
    let chunks = ChunkPolicy::new(args.chunk_size);
    let push = Push {
        registry: &registry,
        destination: &destination,
        concurrency: usize::from(args.concurrency),
        chunks: &chunks,
        reporter: reporter.as_ref(),
    };
    let result = push.run(&image, started).await;
    reporter.finish();
    result
}

fn trust(args: &PushArgs, color: bool) -> Result<Trust> {
    let mut trust = Trust {
        insecure: args.insecure,
        ..Trust::default()
    };
    if args.insecure {
        report::warning(
            "--insecure: the registry's TLS certificate is not verified; anyone on the network path can read the credentials",
            color,
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

fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stderr().is_terminal()
        }
    }
}

/// Our own logs at the chosen level; other crates' at most one level more detailed than warn,
/// so nothing they log at trace (headers, bodies) can reach the terminal.
fn init_logging(level: LogLevel) {
    let (ours, theirs) = match level {
        LogLevel::Error => ("error", "error"),
        LogLevel::Warn => ("warn", "warn"),
        LogLevel::Info => ("info", "warn"),
        LogLevel::Debug => ("debug", "info"),
        LogLevel::Trace => ("trace", "info"),
    };
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "{theirs},idpbuilder_push={ours},idpbuilder={ours}"
    ));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .init();
}

/// Resolves on Ctrl-C or SIGTERM.
async fn interrupted() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
