//! `idpbuilder push`: parse the command line, run the push, print the result or the error, and
//! map it to the SPEC's exit code.

use std::io::IsTerminal;

use clap::Parser;
use idpbuilder_push::cli::{Cli, ColorChoice, Command, LogLevel, PushArgs};
use idpbuilder_push::error::Error;
use idpbuilder_push::{completion, registry, report, session};

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
            result = session::push(&args, color) => result,
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
    // Interrupted while a password was asked on the terminal: give it its echo back.
    idpbuilder_push::credentials::terminal::restore();
    let verbose = args.log_level >= LogLevel::Debug;
    let _ = report::error(&mut std::io::stderr().lock(), &error, verbose, color);
    std::process::exit(error.kind().exit_code())
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
