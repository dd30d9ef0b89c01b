//! Writes the man pages (`idpbuilder.1`, `idpbuilder-push.1`, `idpbuilder-completion.1`) from
//! the same clap definitions as the command line: `cargo run --example man -- DIR` (default
//! `target/man`), as `make man` does. An example rather than a second binary, so that
//! `cargo install` installs `idpbuilder` alone.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;
use idpbuilder_push::cli::Cli;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("target/man"), PathBuf::from);
    let written =
        std::fs::create_dir_all(&dir).and_then(|()| clap_mangen::generate_to(Cli::command(), &dir));
    match written {
        Ok(()) => {
            println!("man pages written to {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "error: cannot write the man pages to {}: {e}",
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}
