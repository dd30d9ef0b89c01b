//! `idpbuilder completion SHELL`: a completion script made from the same clap definitions as the
//! command line itself, so it cannot drift from the flags.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// Writes the completion script for `shell` to `out`.
pub fn write(shell: Shell, out: &mut impl Write) {
    clap_complete::generate(shell, &mut Cli::command(), "idpbuilder", out);
}

/// Prints the script to standard output; returns the exit code (1 when stdout cannot take it,
/// except a closed pipe, which is not an error).
pub fn print(shell: Shell) -> i32 {
    let mut script = Vec::new();
    write(shell, &mut script);
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&script).and_then(|()| stdout.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "error: cannot write the completion script: {e}"
            );
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(shell: Shell) -> String {
        let mut out = Vec::new();
        write(shell, &mut out);
        String::from_utf8(out).expect("UTF-8 script")
    }

    #[test]
    fn every_shell_gets_a_script_that_knows_push_and_its_flags() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::PowerShell,
            Shell::Elvish,
        ] {
            let script = script(shell);
            assert!(script.contains("push"), "{shell}");
            assert!(script.contains("digestfile"), "{shell}");
        }
    }

    /// Flags whose values are not files complete to nothing rather than to file names; paths
    /// (`--ca-file`, `--kubeconfig`, `--digestfile`) still complete as files.
    #[test]
    fn only_path_flags_complete_file_names_in_bash() {
        let script = script(Shell::Bash);
        let completes_files = |flag: &str| {
            let start = script
                .find(&format!("{flag})"))
                .unwrap_or_else(|| panic!("{flag} in the script"));
            let case = &script[start..];
            let case = &case[..case.find(";;").unwrap_or(case.len())];
            case.contains("compgen -f")
        };
        for flag in [
            "--platform",
            "--context",
            "--username",
            "--password",
            "--tag",
            "--src-creds",
            "--concurrency",
            "--retries",
            "--chunk-size",
        ] {
            assert!(!completes_files(flag), "{flag} completes file names");
        }
        for flag in ["--ca-file", "--kubeconfig", "--digestfile"] {
            assert!(completes_files(flag), "{flag} completes file names");
        }
    }
}
