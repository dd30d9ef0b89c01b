//! Command-line definitions (clap derive) only: flags, defaults and help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::source::Platform;

const PUSH_EXAMPLES: &str = "\
Examples:
  # an OCI archive (docker buildx --output type=oci) to idpbuilder's Gitea,
  # credentials and certificate read from the cluster
  idpbuilder push ./app-oci.tar giteaadmin/app:1.0

  # a docker save archive, password from a pipe (CI)
  echo \"$PASS\" | idpbuilder push -u giteaadmin --password-stdin app.tar \\
      gitea.cnoe.localtest.me:8443/giteaadmin/app:1.0

  # one image of an OCI layout directory, one platform of it
  idpbuilder push --platform linux/arm64 oci:./layout:app giteaadmin/app

  # a local test registry without TLS, machine-readable result
  idpbuilder push --plain-http -o json app.tar 127.0.0.1:5000/team/app:dev";

#[derive(Debug, Parser)]
#[command(
    name = "idpbuilder",
    version,
    about = "Push OCI images from local files into idpbuilder's Gitea registry",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Push an image from a local file or directory to a registry
    #[command(after_help = PUSH_EXAMPLES)]
    Push(PushArgs),
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// OCI layout dir, OCI archive or docker archive (.tar/.tar.gz);
    /// prefixes oci:, oci-archive:, docker-archive: with optional :REF
    #[arg(value_name = "IMAGE")]
    pub image: String,

    /// [HOST[:PORT]/]OWNER/NAME[:TAG|@DIGEST]; host defaults to
    /// gitea.cnoe.localtest.me:8443
    #[arg(value_name = "DESTINATION")]
    pub destination: String,

    /// Registry user name
    #[arg(short, long, value_name = "USER")]
    pub username: Option<String>,

    /// Registry password (visible to other users; prefer --password-stdin)
    #[arg(
        short,
        long,
        value_name = "PASSWORD",
        conflicts_with = "password_stdin"
    )]
    pub password: Option<Password>,

    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,

    /// Do not verify the registry's TLS certificate (prints a warning)
    #[arg(long, conflicts_with = "plain_http")]
    pub insecure: bool,

    /// Also trust the certificates in this PEM file (CA or self-signed)
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,

    /// Talk HTTP, not HTTPS (local test registries)
    #[arg(long)]
    pub plain_http: bool,

    /// Kubeconfig to read cluster defaults from
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context (default: the current one)
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Push only this platform of a multi-platform image
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<Platform>,

    /// Blobs uploaded at once
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,

    /// Attempts per request on transient failure
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub retries: u32,

    /// Upload blobs larger than SIZE in PATCH chunks of SIZE (e.g. 64MiB)
    #[arg(long, value_name = "SIZE", default_value = "512MiB", value_parser = parse_size)]
    pub chunk_size: u64,

    /// Print only the pushed reference with its digest
    #[arg(short, long)]
    pub quiet: bool,

    /// Result format on stdout
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// Log detail on stderr
    #[arg(short, long, value_enum, default_value_t = LogLevel::Warn)]
    pub log_level: LogLevel,

    /// Colour on stderr
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// A password given on the command line, kept secret from `Debug` output from the start.
#[derive(Clone)]
pub struct Password(pub secrecy::SecretString);

impl std::str::FromStr for Password {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Password(secrecy::SecretString::from(text.to_string())))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Parses `512MiB`, `64MB`, `1G`, `1048576`: binary units for `KiB`/`MiB`/`GiB` and for
/// the bare `K`/`M`/`G` docker uses, decimal for `KB`/`MB`/`GB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 512MiB"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => return Err(format!("unknown size unit {other:?}; use KiB, MiB or GiB")),
    };
    let size = number
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if size < 1024 {
        return Err(format!("{text:?} is too small; use at least 1KiB"));
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_follow_the_spec() {
        let cli = Cli::try_parse_from(["idpbuilder", "push", "a.tar", "o/n"]).unwrap();
        let Command::Push(args) = cli.command;
        assert_eq!(args.concurrency, 4);
        assert_eq!(args.retries, 5);
        assert_eq!(args.chunk_size, 512 << 20);
        assert_eq!(args.output, OutputFormat::Text);
        assert_eq!(args.log_level, LogLevel::Warn);
    }

    #[test]
    fn password_and_password_stdin_conflict() {
        let r = Cli::try_parse_from([
            "idpbuilder",
            "push",
            "-u",
            "x",
            "-p",
            "y",
            "--password-stdin",
            "a",
            "o/n",
        ]);
        assert!(r.is_err());
    }

    #[test]
    fn insecure_and_plain_http_conflict() {
        let r = Cli::try_parse_from([
            "idpbuilder",
            "push",
            "--insecure",
            "--plain-http",
            "a",
            "o/n",
        ]);
        assert!(r.is_err());
    }

    #[test]
    fn debug_output_of_the_arguments_hides_the_password() {
        let cli =
            Cli::try_parse_from(["idpbuilder", "push", "-u", "u", "-p", "hunter2", "a", "o/n"])
                .unwrap();
        let text = format!("{cli:?}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("2048"), Ok(2048));
        assert!(parse_size("12").is_err());
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5XB").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }

    #[test]
    fn concurrency_must_be_positive() {
        let r = Cli::try_parse_from(["idpbuilder", "push", "--concurrency", "0", "a", "o/n"]);
        assert!(r.is_err());
    }
}
