//! `idpbuilder push` and `pull`: parse the command line, run the push or pull, print the
//! result or the error, and map it to the SPEC's exit code.

use anyhow::Context as _;
use clap::Parser;
use idpbuilder_push::cli::{Cli, Command, LogLevel, PullArgs, PushArgs};
use idpbuilder_push::error::{Error, Kind};
use idpbuilder_push::{completion, registry, report, session, terminal};

fn main() {
    idpbuilder_push::passthrough::hand_over_unless_ours();
    let command = match Cli::parse().command {
        Command::Completion { shell } => std::process::exit(completion::print(shell)),
        Command::Push(args) => Run::Push(args),
        Command::Pull(args) => Run::Pull(args),
    };
    let report = match &command {
        Run::Push(args) => &args.report,
        Run::Pull(args) => &args.report,
    };
    let (color, log_level) = (report.color, report.log_level);
    let color = terminal::use_color(color);
    terminal::init_logging(log_level);
    registry::install_default_provider();
    if let Err(error) = run(&command, color) {
        exit_with(error, log_level, color);
    }
}

/// The command to run.
enum Run {
    Push(PushArgs),
    Pull(PullArgs),
}

/// The push or pull and its result line. Our own errors carry their exit code; anything else
/// that fails at this edge (the runtime, stdout) is exit 1.
fn run(command: &Run, color: bool) -> anyhow::Result<()> {
    // One thread drives every request: a push waits on registries, and one core hashes and
    // encrypts far faster than a registry takes bytes. Measured on 2 cores against the
    // multi-threaded runtime: the same wall time for file pushes, a little less for
    // registry-to-registry copies, and 3 MiB less peak memory (docs/benchmarks.md). Engine
    // exports and file reads still run on tokio's blocking threads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = match command {
        Run::Push(args) => runtime
            .block_on(until_interrupted(session::push(args, color)))
            .map(Done::Pushed),
        Run::Pull(args) => runtime
            .block_on(until_interrupted(session::pull(args, color)))
            .map_err(|error| match error.kind() {
                Kind::Interrupted => error.with_hint(
                    "run the same command again: the destination was left as it was, and blobs an OCI layout already has are not downloaded again",
                ),
                _ => error,
            })
            .map(Done::Pulled),
    };
    // In-flight uploads are dropped, not awaited: Ctrl-C must stop at once.
    runtime.shutdown_background();
    let stdout = &mut std::io::stdout().lock();
    match (result?, command) {
        (Done::Pushed(summary), Run::Push(args)) => {
            report::result(stdout, &summary, args.report.output)
                .context("cannot write the result to standard output")?;
            if let Some(path) = args.digestfile.as_deref().filter(|_| !summary.dry_run) {
                session::write_digestfile(path, &summary.digest)?;
            }
        }
        (Done::Pulled(summary), Run::Pull(args)) => {
            report::pull_result(stdout, &summary, args.report.output)
                .context("cannot write the result to standard output")?;
            if let Some(path) = args.digestfile.as_deref() {
                session::write_pulled_digestfile(path, &summary.digest)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// What a command did.
enum Done {
    Pushed(idpbuilder_push::push::Summary),
    Pulled(idpbuilder_push::pull::PullSummary),
}

/// `work`, or the interrupted error on Ctrl-C or SIGTERM (dropping `work` where it stands).
async fn until_interrupted<T>(
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::select! {
        result = work => result,
        () = interrupted() => Err(Error::interrupted()),
    }
}

fn exit_with(error: anyhow::Error, log_level: LogLevel, color: bool) -> ! {
    // Interrupted while a password was asked on the terminal: give it its echo back.
    idpbuilder_push::credentials::prompt::restore();
    let error = match error.downcast::<Error>() {
        Ok(ours) => ours,
        Err(other) => Error::registry(format!("{other:#}")),
    };
    let verbose = log_level >= LogLevel::Debug;
    let _ = report::error(&mut std::io::stderr().lock(), &error, verbose, color);
    std::process::exit(error.kind().exit_code())
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
