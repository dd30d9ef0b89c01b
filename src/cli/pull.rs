//! The flags of `idpbuilder pull`: those of push that make sense for reading a registry into
//! the local engine or files.

use std::path::PathBuf;

use clap::{Args, ValueHint};

use super::{RegistryFlags, ReportFlags, digest_file};
use crate::oci::Platform;

/// The examples of `pull -h`, and the start of `pull --help` and its man page.
macro_rules! pull_examples {
    () => {
        "\
Examples:
  # gitea.cnoe.localtest.me:8443/giteaadmin/app:1.0 into the local engine
  # (credentials and certificate read from the cluster, as for push)
  idpbuilder pull giteaadmin/app:1.0

  # into an OCI layout directory (created, or an existing one gains the image)
  idpbuilder pull giteaadmin/app:1.0 oci:./layout:app

  # into a file docker load -i reads, one platform of a multi-platform image
  idpbuilder pull --platform linux/arm64 giteaadmin/app:1.0 docker-archive:app.tar

  # from a local test registry without TLS, machine-readable result
  idpbuilder pull -o json http://127.0.0.1:5000/team/app:dev oci-archive:app-oci.tar"
    };
}

pub(super) const PULL_EXAMPLES: &str = pull_examples!();

/// `pull --help` and the man page: the examples, then what a script needs besides the flags.
pub(super) const PULL_LONG_HELP: &str = concat!(
    pull_examples!(),
    "

Environment:
  IDPBUILDER_REGISTRY_USERNAME, IDPBUILDER_REGISTRY_PASSWORD
                      credentials for the registry when no flag gives them
  KUBECONFIG          the cluster whose gitea-credential secret and certificate are used
  DOCKER_CONFIG       the directory of docker's config.json (credentials, contexts)
  DOCKER_HOST         the engine the image is loaded into (else the docker context, then
                      the usual sockets of Docker and Podman, then podman load)
  NO_COLOR            no colour on stderr

Exit status:
  0    pulled
  1    the pull failed: a registry or network error, after retries
  2    usage or input error: bad reference, an image or tag the registry does not
       have, an unwritable destination, a full disk, no engine
  3    authentication or authorisation refused
  4    TLS certificate not trusted
  130  interrupted (Ctrl-C or SIGTERM); the destination is left as it was"
);

#[derive(Debug, Args)]
pub struct PullArgs {
    /// [HOST[:PORT]/]OWNER/NAME[:TAG|@DIGEST] in a registry
    /// (default host: gitea.cnoe.localtest.me:8443)
    ///
    /// A leading https:// is dropped; http:// means --plain-http. No host (the first part has
    /// no '.' or ':' and is not localhost): gitea.cnoe.localtest.me:8443. No tag: latest.
    /// docker://[HOST/]REPO[:TAG] names a registry as skopeo does (no host: Docker Hub).
    #[arg(value_name = "IMAGE")]
    pub image: String,

    /// oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG],
    /// docker-daemon:NAME[:TAG] (default: the local engine)
    ///
    /// Without DESTINATION the image is loaded into the local engine (Docker, else Podman) as
    /// HOST/OWNER/NAME:TAG, as docker pull names it. oci: writes an OCI image layout (an
    /// existing one gains the image; REF defaults to the tag); oci-archive: the same as one
    /// tar; docker-archive: what docker load -i reads (default name: IMAGE).
    #[arg(value_name = "DESTINATION")]
    pub destination: Option<String>,

    #[command(flatten)]
    pub registry: RegistryFlags,

    /// Pull only this platform (engine and docker archives: default the machine's own)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_hint = ValueHint::Other)]
    pub platform: Option<Platform>,

    /// Blobs downloaded at once (1 to 64)
    #[arg(long, value_name = "N", value_hint = ValueHint::Other, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,

    /// Attempts per request on transient failure
    #[arg(long, value_name = "N", value_hint = ValueHint::Other, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub retries: u32,

    /// Write the pulled digest (sha256:...) to PATH
    #[arg(long, value_name = "PATH", value_parser = digest_file)]
    pub digestfile: Option<PathBuf>,

    /// Print only what was written, with its digest
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub report: ReportFlags,
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::super::{Cli, Command};
    use super::*;

    fn pull(args: &[&str]) -> Result<PullArgs, clap::Error> {
        let argv = ["idpbuilder", "pull"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Pull(args) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn destination_is_optional_and_defaults_follow_push() {
        let args = pull(&["giteaadmin/app:1.0"]).unwrap();
        assert_eq!(args.image, "giteaadmin/app:1.0");
        assert_eq!(args.destination, None);
        assert_eq!(args.concurrency, 4);
        assert_eq!(args.retries, 5);
        let args = pull(&["giteaadmin/app", "oci:./dir:app"]).unwrap();
        assert_eq!(args.destination.as_deref(), Some("oci:./dir:app"));
    }

    #[test]
    fn push_only_flags_are_refused() {
        for flag in [
            "--dry-run",
            "--chunk-size=1MiB",
            "--tag=x",
            "--src-insecure",
        ] {
            assert!(pull(&[flag, "o/n"]).is_err(), "{flag}");
        }
    }

    #[test]
    fn debug_output_hides_the_password() {
        let args = pull(&["-u", "u", "-p", "hunter2", "o/n"]).unwrap();
        assert!(!format!("{args:?}").contains("hunter2"));
    }

    #[test]
    fn pulls_man_page_and_completions_come_from_the_same_definitions() {
        let dir = tempfile::tempdir().unwrap();
        clap_mangen::generate_to(Cli::command(), dir.path()).unwrap();
        let page = std::fs::read_to_string(dir.path().join("idpbuilder-pull.1")).unwrap();
        for text in ["Examples:", "oci:DIR", "Exit status:", "digestfile"] {
            assert!(page.contains(text), "{text} in the man page");
        }
        let mut script = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "idpbuilder",
            &mut script,
        );
        let script = String::from_utf8(script).unwrap();
        assert!(
            script.contains("idpbuilder__subcmd__pull"),
            "bash completes pull"
        );
        let top = Cli::command().render_help().to_string();
        assert!(top.contains("pull"), "idpbuilder help lists pull:\n{top}");
    }

    #[test]
    fn pull_help_has_examples_environment_and_exit_codes() {
        let mut command = Cli::command();
        let pull = command.find_subcommand_mut("pull").unwrap();
        let long = pull.render_long_help().to_string();
        for text in [
            "Examples:",
            "oci:./layout:app",
            "DOCKER_HOST",
            "Exit status:",
        ] {
            assert!(long.contains(text), "{text} in --help:\n{long}");
        }
        let short = pull.render_help().to_string();
        assert!(!short.contains("Exit status:"), "-h stays short:\n{short}");
    }
}
