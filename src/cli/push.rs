//! The flags of `idpbuilder push`, its examples and the long help a script reads.

use std::path::PathBuf;

use clap::{Args, ValueHint};

use super::{
    RegistryFlags, ReportFlags, SourceCredentials, SourceCredentialsParser, digest_file,
    parse_size, tag,
};
use crate::oci::Platform;

/// The examples of `push -h`, and the start of `push --help` and its man page.
macro_rules! push_examples {
    () => {
        "\
Examples:
  # the local engine's image app:1.0 to idpbuilder's Gitea, as
  # gitea.cnoe.localtest.me:8443/giteaadmin/app:1.0 (owner: the user name;
  # credentials and certificate read from the cluster)
  idpbuilder push app:1.0

  # a docker save archive, named after its RepoTag
  idpbuilder push app.tar

  # an OCI archive (docker buildx --output type=oci), destination in full
  idpbuilder push ./app-oci.tar gitea.cnoe.localtest.me:8443/giteaadmin/app:1.0

  # mirror an upstream image (the host defaults to idpbuilder's Gitea)
  idpbuilder push docker://ubuntu:24.04 giteaadmin/ubuntu:24.04

  # password from a pipe (CI), two more tags, the digest into a file
  echo \"$PASS\" | idpbuilder push -u giteaadmin --password-stdin \\
      -t latest -t stable --digestfile app.digest app.tar giteaadmin/app:1.0

  # one image of an OCI layout directory, one platform of it
  idpbuilder push --platform linux/arm64 oci:./layout:app giteaadmin/app

  # a local test registry without TLS, machine-readable result
  idpbuilder push -o json app.tar http://127.0.0.1:5000/team/app:dev"
    };
}

pub(super) const PUSH_EXAMPLES: &str = push_examples!();

/// `push --help` and the man page: the examples, then what a script needs besides the flags.
pub(super) const PUSH_LONG_HELP: &str = concat!(
    push_examples!(),
    "

Environment:
  IDPBUILDER_REGISTRY_USERNAME, IDPBUILDER_REGISTRY_PASSWORD
                      credentials for the destination when no flag gives them
  IDPBUILDER_SRC_USERNAME, IDPBUILDER_SRC_PASSWORD
                      credentials for a docker:// source without --src-creds
  KUBECONFIG          the cluster whose gitea-credential secret and certificate are used
  DOCKER_CONFIG       the directory of docker's config.json (credentials, contexts)
  DOCKER_HOST         the engine for engine images (else the docker context, then the
                      usual sockets of Docker and Podman)
  NO_COLOR            no colour on stderr

Exit status:
  0    pushed (or, with --dry-run, checked)
  1    the push failed: a registry or network error, after retries
  2    usage or input error: bad flags, bad reference, unreadable or invalid image
  3    authentication or authorisation refused
  4    TLS certificate not trusted
  130  interrupted (Ctrl-C or SIGTERM); no tag is written"
);

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Layout dir, OCI or docker archive (.tar/.tar.gz), engine image
    /// (app:1.0) or docker://HOST/REPO[:TAG]
    ///
    /// An existing path always wins over an engine name. Prefixes force the kind: oci:PATH[:REF],
    /// oci-archive:PATH[:REF], docker-archive:PATH[:REF], docker-daemon:NAME[:TAG],
    /// docker://HOST/REPO[:TAG|@DIGEST] (no host: Docker Hub).
    #[arg(value_name = "IMAGE")]
    pub image: String,

    /// [HOST[:PORT]/]OWNER/NAME[:TAG|@DIGEST], or only HOST[:PORT]
    /// (default: gitea.cnoe.localtest.me:8443)
    ///
    /// A leading https:// or oci:// is dropped; http:// means --plain-http. No host (the first
    /// part has no '.' or ':' and is not localhost): gitea.cnoe.localtest.me:8443. Only a host
    /// (HOST[:PORT] or HOST[:PORT]/), or no DESTINATION at all: the repository is OWNER/NAME:TAG
    /// with OWNER the lower-cased user name of the credentials in use and NAME:TAG the last path
    /// part and tag of the image's own name (app:1.0, docker://library/ubuntu:24.04 ->
    /// ubuntu:24.04, a RepoTag, a ref name).
    #[arg(value_name = "DESTINATION")]
    pub destination: Option<String>,

    #[command(flatten)]
    pub registry: RegistryFlags,

    /// Push only this platform of a multi-platform image
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_hint = ValueHint::Other)]
    pub platform: Option<Platform>,

    /// Blobs over 1 MiB uploaded at once (1 to 64); up to 16 smaller ones go beside them
    #[arg(long, value_name = "N", value_hint = ValueHint::Other, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,

    /// Attempts per request on transient failure
    #[arg(long, value_name = "N", value_hint = ValueHint::Other, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub retries: u32,

    /// Upload blobs larger than SIZE in PATCH chunks of SIZE (e.g. 64MiB)
    #[arg(long, value_name = "SIZE", value_hint = ValueHint::Other, default_value = "512MiB", value_parser = parse_size)]
    pub chunk_size: u64,

    /// Also point TAG at the pushed image (repeatable)
    #[arg(short = 't', long = "tag", value_name = "TAG", value_hint = ValueHint::Other, value_parser = tag)]
    pub tags: Vec<String>,

    /// Write the pushed digest (sha256:...) to PATH
    #[arg(long, value_name = "PATH", value_parser = digest_file)]
    pub digestfile: Option<PathBuf>,

    /// Read, log in and check which blobs the registry has; write nothing
    ///
    /// Prints what a push would send. No write request (POST, PATCH, PUT) is made.
    #[arg(long)]
    pub dry_run: bool,

    /// Source registry credentials of a docker:// image (USER[:PASSWORD])
    ///
    /// Without :PASSWORD the password is asked on the terminal. Also read from
    /// IDPBUILDER_SRC_USERNAME and IDPBUILDER_SRC_PASSWORD.
    #[arg(long, value_name = "USER[:PASSWORD]", value_hint = ValueHint::Other, value_parser = SourceCredentialsParser)]
    pub src_creds: Option<SourceCredentials>,

    /// Also trust the certificates in this PEM file for the source registry
    #[arg(long, value_name = "PATH")]
    pub src_ca_file: Option<PathBuf>,

    /// Do not verify the source registry's TLS certificate (prints a warning)
    #[arg(long, conflicts_with = "src_plain_http")]
    pub src_insecure: bool,

    /// Talk HTTP, not HTTPS, to the source registry
    #[arg(long)]
    pub src_plain_http: bool,

    /// Print only the pushed reference with its digest
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub report: ReportFlags,
}
