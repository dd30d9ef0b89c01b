//! The terminal this process writes to: whether stderr gets colour, and the log subscriber
//! (our logs at the chosen level, other crates' kept quieter).

use std::io::IsTerminal;

use crate::cli::{ColorChoice, LogLevel};

/// Colour on stderr: `--color`, else `NO_COLOR`, else whether stderr is a terminal.
pub fn use_color(choice: ColorChoice) -> bool {
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
pub fn init_logging(level: LogLevel) {
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
