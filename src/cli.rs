//! Command-line definitions (clap derive) only: flags, defaults and help text.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum, ValueHint};

use crate::reference;

mod pull;
mod push;

pub use pull::PullArgs;
pub use push::PushArgs;

const COMPLETION_HELP: &str = "\
Install (restart the shell afterwards):
  bash:        idpbuilder completion bash > ~/.local/share/bash-completion/completions/idpbuilder
  zsh:         idpbuilder completion zsh > \"${fpath[1]}/_idpbuilder\"
  fish:        idpbuilder completion fish > ~/.config/fish/completions/idpbuilder.fish
  powershell:  idpbuilder completion powershell >> $PROFILE
  elvish:      idpbuilder completion elvish >> ~/.config/elvish/rc.elv";

const PASSTHROUGH_HELP: &str = "\
This idpbuilder only pushes and pulls images. Other commands (create, get,
delete, ...) are handed to cnoe-io's idpbuilder, the next idpbuilder on PATH,
with the same arguments: https://cnoe.io/docs/idpbuilder/installation";

#[derive(Debug, Parser)]
#[command(
    name = "idpbuilder",
    version,
    about = "Push OCI images into idpbuilder's Gitea registry (or any OCI registry), and pull them back",
    after_help = PASSTHROUGH_HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "made once per process; boxing PushArgs would only add a deref for its users"
)]
pub enum Command {
    /// Push an image (file, engine or registry image) to a registry
    #[command(after_help = push::PUSH_EXAMPLES, after_long_help = push::PUSH_LONG_HELP)]
    Push(PushArgs),
    /// Pull an image from a registry into the local engine or files
    #[command(after_help = pull::PULL_EXAMPLES, after_long_help = pull::PULL_LONG_HELP)]
    Pull(PullArgs),
    /// Print a shell completion script to standard output
    #[command(after_help = COMPLETION_HELP)]
    Completion {
        /// The shell to complete for
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
}

/// The flags that reach the registry pushed to or pulled from: who we are, how it is trusted,
/// where the cluster is. Push and pull share them, in this order.
#[derive(Debug, Args)]
pub struct RegistryFlags {
    /// Registry user name
    #[arg(short, long, value_name = "USER", value_hint = ValueHint::Other)]
    pub username: Option<String>,

    /// Registry password (visible to other users; prefer --password-stdin)
    #[arg(
        short,
        long,
        value_name = "PASSWORD",
        value_hint = ValueHint::Other,
        conflicts_with = "password_stdin"
    )]
    pub password: Option<Password>,

    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,

    /// Do not verify the TLS certificate of the registry pushed to or pulled from (prints a
    /// warning)
    #[arg(long, conflicts_with = "plain_http")]
    pub insecure: bool,

    /// Also trust the certificates in this PEM file (CA or self-signed) for the registry pushed
    /// to or pulled from (--src-ca-file for a docker:// source)
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,

    /// Talk HTTP, not HTTPS, to the registry pushed to or pulled from (local test registries)
    #[arg(long)]
    pub plain_http: bool,

    /// Kubeconfig to read cluster defaults from
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context (default: the current one)
    #[arg(long, value_name = "NAME", value_hint = ValueHint::Other)]
    pub context: Option<String>,
}

/// How push and pull report: the result on stdout, logs and colour on stderr.
#[derive(Debug, Args)]
pub struct ReportFlags {
    /// Result format on stdout
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// Log detail on stderr (trace: one line per HTTP request)
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

/// `--src-creds USER[:PASSWORD]`, the password kept secret from `Debug` output from the start.
#[derive(Clone)]
pub struct SourceCredentials {
    pub username: String,
    /// `None` when the argument had no `:PASSWORD` (then it is asked on the terminal).
    pub password: Option<secrecy::SecretString>,
}

impl std::str::FromStr for SourceCredentials {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (username, password) = match text.split_once(':') {
            Some((username, password)) => (username, Some(password)),
            None => (text, None),
        };
        if username.is_empty() {
            return Err("the user name is empty; write USER[:PASSWORD]".to_string());
        }
        Ok(SourceCredentials {
            username: username.to_string(),
            password: password.map(|p| secrecy::SecretString::from(p.to_string())),
        })
    }
}

/// Parses `--src-creds` like [`SourceCredentials::from_str`], but its errors never repeat the
/// value, which holds a password (clap's own errors quote the value they refuse).
#[derive(Clone)]
struct SourceCredentialsParser;

impl clap::builder::TypedValueParser for SourceCredentialsParser {
    type Value = SourceCredentials;

    fn parse_ref(
        &self,
        _command: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<SourceCredentials, clap::Error> {
        let invalid = |why: &str| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for '--src-creds <USER[:PASSWORD]>': {why}\n"),
            )
        };
        let text = value
            .to_str()
            .ok_or_else(|| invalid("it is not valid UTF-8"))?;
        text.parse().map_err(|why: String| invalid(&why))
    }
}

impl std::fmt::Debug for SourceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceCredentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `--tag`: the tag rule of DESTINATION's `:TAG`.
fn tag(text: &str) -> Result<String, String> {
    reference::validate_tag(text).map(|()| text.to_string())
}

/// `--digestfile`: refused at once when it is a directory or its directory does not exist,
/// rather than after the whole image is pushed. Whether the file can be written is only known
/// when it is.
fn digest_file(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    if text.is_empty() {
        return Err("the path is empty".to_string());
    }
    if path.is_dir() {
        return Err(format!("{text} is a directory; name a file"));
    }
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if directory.exists() && !directory.is_dir() {
        return Err(format!("{} is not a directory", directory.display()));
    }
    if !directory.is_dir() {
        return Err(format!("directory {} does not exist", directory.display()));
    }
    Ok(path)
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
        let Command::Push(args) = cli.command else {
            panic!("not push")
        };
        assert_eq!(args.concurrency, 4);
        assert_eq!(args.retries, 5);
        assert_eq!(args.chunk_size, 512 << 20);
        assert_eq!(args.report.output, OutputFormat::Text);
        assert_eq!(args.report.log_level, LogLevel::Warn);
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

    fn push(args: &[&str]) -> Result<PushArgs, clap::Error> {
        let argv = ["idpbuilder", "push"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Push(args) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn destination_is_optional() {
        let args = push(&["app:1.0"]).unwrap();
        assert_eq!(args.image, "app:1.0");
        assert_eq!(args.destination, None);
        let args = push(&["app.tar", "giteaadmin/app:1.0"]).unwrap();
        assert_eq!(args.destination.as_deref(), Some("giteaadmin/app:1.0"));
    }

    #[test]
    fn tags_repeat_and_are_checked_when_parsed() {
        let args = push(&["-t", "latest", "--tag", "v1.2", "a.tar"]).unwrap();
        assert_eq!(args.tags, ["latest", "v1.2"]);
        assert!(push(&["a.tar"]).unwrap().tags.is_empty());
        for bad in ["v1/beta", "--tag=-x", ".hidden", "a b"] {
            let argv: Vec<&str> = if bad.starts_with("--") {
                vec![bad, "a.tar"]
            } else {
                vec!["--tag", bad, "a.tar"]
            };
            let err = push(&argv).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
            assert!(err.to_string().contains("must be 1-128"), "{err}");
        }
    }

    #[test]
    fn dry_run_and_source_registry_flags_parse() {
        let args = push(&[
            "--dry-run",
            "--src-creds",
            "me:s3cr:et",
            "--src-ca-file",
            "ca.pem",
            "--src-insecure",
            "docker://ubuntu:24.04",
        ])
        .unwrap();
        assert!(args.dry_run);
        assert!(args.src_insecure && !args.src_plain_http);
        assert_eq!(args.src_ca_file.as_deref(), Some(Path::new("ca.pem")));
        let creds = args.src_creds.expect("--src-creds");
        assert_eq!(creds.username, "me");
        let password = creds
            .password
            .map(|p| secrecy::ExposeSecret::expose_secret(&p).to_string());
        assert_eq!(
            password.as_deref(),
            Some("s3cr:et"),
            "split at the first ':'"
        );
        let creds = push(&["--src-creds", "me", "x"]).unwrap().src_creds;
        assert!(creds.is_some_and(|c| c.password.is_none()));
    }

    #[test]
    fn source_flags_are_checked() {
        assert!(push(&["--src-creds", ":pw", "x"]).is_err());
        assert!(push(&["--src-insecure", "--src-plain-http", "x"]).is_err());
    }

    #[test]
    fn a_refused_src_creds_is_not_repeated_in_the_error() {
        let err = push(&["--src-creds", ":hunter2", "x"]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("the user name is empty"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn debug_output_of_the_arguments_hides_the_source_password() {
        let args = push(&["--src-creds", "me:hunter2", "x"]).unwrap();
        let text = format!("{args:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("me"), "{text}");
    }

    #[test]
    fn a_digest_file_must_be_a_file_in_an_existing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("digest");
        let file_text = file.display().to_string();
        let args = push(&["--digestfile", &file_text, "x"]).unwrap();
        assert_eq!(args.digestfile.as_deref(), Some(file.as_path()));
        assert!(
            push(&["--digestfile", "digest", "x"]).is_ok(),
            "relative, here"
        );
        let dir_text = dir.path().display().to_string();
        let err = push(&["--digestfile", &dir_text, "x"]).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
        let missing = dir.path().join("no/such/digest").display().to_string();
        let err = push(&["--digestfile", &missing, "x"]).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let under_a_file = format!("{file_text}/digest");
        std::fs::write(&file, "").unwrap();
        let err = push(&["--digestfile", &under_a_file, "x"]).unwrap_err();
        assert!(err.to_string().contains("is not a directory"), "{err}");
    }

    #[test]
    fn completion_takes_a_known_shell() {
        for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
            let cli = Cli::try_parse_from(["idpbuilder", "completion", shell]).unwrap();
            assert!(matches!(cli.command, Command::Completion { .. }), "{shell}");
        }
        assert!(Cli::try_parse_from(["idpbuilder", "completion", "tcsh"]).is_err());
    }

    #[test]
    fn push_help_names_the_environment_and_exit_codes_only_in_its_long_form() {
        let mut command = Cli::command();
        let push = command.find_subcommand_mut("push").unwrap();
        let long = push.render_long_help().to_string();
        for text in [
            "Examples:",
            "IDPBUILDER_REGISTRY_USERNAME",
            "KUBECONFIG",
            "Exit status:",
        ] {
            assert!(long.contains(text), "{text} in --help:\n{long}");
        }
        let short = push.render_help().to_string();
        assert!(short.contains("Examples:"), "{short}");
        assert!(!short.contains("Exit status:"), "-h stays short:\n{short}");
    }

    #[test]
    fn man_pages_come_from_the_same_definitions() {
        // What `make man` (examples/man.rs) writes, rendered here.
        let dir = tempfile::tempdir().unwrap();
        clap_mangen::generate_to(Cli::command(), dir.path()).unwrap();
        let push = std::fs::read_to_string(dir.path().join("idpbuilder-push.1")).unwrap();
        assert!(push.contains("digestfile"), "{push}");
        assert!(push.contains("Examples:"), "{push}");
        for section in [
            "Environment:",
            "IDPBUILDER_REGISTRY_PASSWORD",
            "DOCKER_HOST",
            "Exit status:",
            "130",
        ] {
            assert!(push.contains(section), "{section} in the man page");
        }
        let top = std::fs::read_to_string(dir.path().join("idpbuilder.1")).unwrap();
        assert!(
            top.contains("cnoe.io/docs/idpbuilder/installation"),
            "{top}"
        );
        assert!(dir.path().join("idpbuilder-completion.1").is_file());
    }
}
