//! `idpbuilder push`: parse the command line, run the push, print the result or the error, and
//! map it to the SPEC's exit code.

use anyhow::Context as _;
use clap::Parser;
use idpbuilder_push::cli::{Cli, Command, LogLevel, PushArgs};
use idpbuilder_push::error::Error;
use idpbuilder_push::{completion, registry, report, session, terminal};

fn main() {
    idpbuilder_push::passthrough::hand_over_unless_ours();
    let args = match Cli::parse().command {
        Command::Push(args) => args,
        Command::Completion { shell } => std::process::exit(completion::print(shell)),
    };
    let color = terminal::use_color(args.color);
    terminal::init_logging(args.log_level);
    registry::install_default_provider();
    if let Err(error) = run(&args, color) {
        exit_with(error, &args, color);
    }
}

/// The push and its result line. Our own errors carry their exit code; anything else that
/// fails at this edge (the runtime, stdout) is exit 1.
fn run(args: &PushArgs, color: bool) -> anyhow::Result<()> {
    // One thread drives every request: a push waits on registries, and one core hashes and
    // encrypts far faster than a registry takes bytes. Measured on 2 cores against the
    // multi-threaded runtime: the same wall time for file pushes, a little less for
    // registry-to-registry copies, and 3 MiB less peak memory (docs/benchmarks.md). Engine
    // exports and file reads still run on tokio's blocking threads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        tokio::select! {
            result = session::push(args, color) => result,
            () = interrupted() => Err(Error::interrupted()),
        }
    });
    // In-flight uploads are dropped, not awaited: Ctrl-C must stop at once.
    runtime.shutdown_background();
    let summary = result?;
    report::result(&mut std::io::stdout().lock(), &summary, args.output)
        .context("cannot write the result to standard output")?;
    if let Some(path) = args.digestfile.as_deref().filter(|_| !summary.dry_run) {
        session::write_digestfile(path, &summary.digest)?;
    }
    Ok(())
}

fn exit_with(error: anyhow::Error, args: &PushArgs, color: bool) -> ! {
    // Interrupted while a password was asked on the terminal: give it its echo back.
    idpbuilder_push::credentials::prompt::restore();
    let error = match error.downcast::<Error>() {
        Ok(ours) => ours,
        Err(other) => Error::registry(format!("{other:#}")),
    };
    let verbose = args.log_level >= LogLevel::Debug;
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
