//! The flags that reach one registry (`RegistryFlags`: user, password, TLS, plain HTTP,
//! kubeconfig) turned into credentials and TLS trust in the SPEC's order, for a push's
//! destination and a pull's image alike; and the TLS flags of a `docker://` source.

use crate::cli::RegistryFlags;
use crate::cluster::{self, ToRead};
use crate::credentials::{self, Credentials, FlagInput};
use crate::error::{Error, Result};
use crate::progress::Reporter;
use crate::registry::Trust;

/// What `RegistryFlags` give before the cluster is read.
pub(super) struct Login {
    direct: Option<(Credentials, credentials::Origin)>,
    trust: Trust,
    /// idpbuilder's certificate from the cluster is wanted: no `--ca-file`, `--insecure` or
    /// plain HTTP.
    wants_certificate: bool,
    pub kubeconfig: cluster::KubeconfigChoice,
}

impl Login {
    /// Warns about `--password`, reads `--password-stdin` and `--ca-file`; `plain_http` also
    /// counts `http://` in the reference.
    pub async fn from_flags(
        flags: &RegistryFlags,
        plain_http: bool,
        reporter: &dyn Reporter,
    ) -> Result<Login> {
        if flags.password.is_some() {
            reporter.warn(
                "a password given with --password is visible to other users of this machine; use --password-stdin",
            );
        }
        let direct = direct_credentials(
            flags.username.as_ref(),
            flags.password.as_ref(),
            flags.password_stdin,
        )
        .await?;
        let trust = trust(
            flags.insecure,
            flags.ca_file.as_deref(),
            Side::Destination,
            reporter,
        )?;
        Ok(Login {
            direct,
            trust,
            wants_certificate: !(flags.insecure || plain_http || flags.ca_file.is_some()),
            kubeconfig: cluster::KubeconfigChoice::from_process(
                flags.kubeconfig.clone(),
                flags.context.clone(),
            ),
        })
    }

    /// What to read from the cluster for a run that reaches `hosts`; `certificate_elsewhere`:
    /// another registry of the run (a `docker://` source) wants idpbuilder's certificate.
    /// A kubeconfig `exec` plugin is not run for hosts that cannot be the cluster's Gitea,
    /// unless the user named the kubeconfig or context.
    pub fn to_read(&self, certificate_elsewhere: bool, hosts: &[Option<&str>]) -> ToRead {
        ToRead {
            credentials: self.direct.is_none(),
            certificate: self.wants_certificate || certificate_elsewhere,
        }
        .for_hosts(hosts, self.kubeconfig.explicit())
    }

    /// The credentials and trust for the registry at `host`, given what the cluster offered.
    pub async fn for_host(
        mut self,
        host: &str,
        found: Option<&cluster::ClusterReading>,
    ) -> (Option<Credentials>, Trust) {
        let credentials = registry_credentials(
            host,
            found,
            &mut self.trust,
            self.wants_certificate,
            self.direct,
        )
        .await;
        (credentials, self.trust)
    }
}

/// `--username` with `--password` or `--password-stdin` (read here, off the runtime's thread),
/// else `IDPBUILDER_REGISTRY_USERNAME`/`PASSWORD`: the credentials given before any other
/// source is asked.
async fn direct_credentials(
    username: Option<&String>,
    password: Option<&crate::cli::Password>,
    password_stdin: bool,
) -> Result<Option<(Credentials, credentials::Origin)>> {
    let password_from_stdin = if password_stdin {
        // Off the runtime's thread: Ctrl-C must still work while we wait for a pipe.
        let read =
            tokio::task::spawn_blocking(|| credentials::read_password(std::io::stdin().lock()));
        Some(read.await.map_err(|e| {
            Error::input("cannot read the password from standard input").with_cause(e)
        })??)
    } else {
        None
    };
    let flags = FlagInput {
        username: username.cloned(),
        password: password.map(|p| p.0.clone()),
        password_from_stdin,
    };
    credentials::direct(flags, |key| std::env::var(key).ok())
}

/// The credentials for the registry at `host` (pushed to or pulled from), in the SPEC's order:
/// `direct`, the cluster's (only when `host` is the cluster's Gitea), docker's config.json,
/// none. idpbuilder's certificate from the cluster is pinned for `host` in `trust` when
/// `wants_certificate` (no `--ca-file`, `--insecure` or plain HTTP).
async fn registry_credentials(
    host: &str,
    found: Option<&cluster::ClusterReading>,
    trust: &mut Trust,
    wants_certificate: bool,
    direct: Option<(Credentials, credentials::Origin)>,
) -> Option<Credentials> {
    let from_cluster = found.map(|found| found.for_host(host)).unwrap_or_default();
    match from_cluster.certificate {
        Some(certificate) if wants_certificate => {
            tracing::debug!(
                "TLS for {host}: also trusting idpbuilder's certificate from the cluster ({})",
                certificate.place
            );
            trust.pin_for_host(host, certificate.certificates);
        }
        _ => tracing::debug!("TLS for {host}: no certificate from the cluster"),
    }
    let (credentials, origin) = credentials::resolve(
        direct,
        from_cluster.credentials,
        credentials::docker_config::lookup(host.to_string()),
        host,
    )
    .await;
    tracing::debug!("credentials for {host}: {origin}");
    credentials
}

/// Which registry a set of TLS flags is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Destination,
    Source,
}

/// The TLS trust the flags ask for: `--insecure` (`--src-insecure`), or the system roots plus
/// `--ca-file` (`--src-ca-file`).
pub(super) fn trust(
    insecure: bool,
    ca_file: Option<&std::path::Path>,
    side: Side,
    reporter: &dyn Reporter,
) -> Result<Trust> {
    let (insecure_flag, ca_flag, whose) = match side {
        Side::Destination => ("--insecure", "--ca-file", "the registry's"),
        Side::Source => ("--src-insecure", "--src-ca-file", "the source registry's"),
    };
    let mut trust = Trust {
        insecure,
        ..Trust::default()
    };
    if insecure {
        reporter.warn(&format!(
            "{insecure_flag}: {whose} TLS certificate is not verified; anyone on the network path can read the credentials"
        ));
    }
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            Error::input(format!("cannot read {ca_flag} {}: {e}", path.display()))
                .with_cause(e)
                .with_hint("pass the path of a PEM certificate file")
        })?;
        trust.add_pem(&pem, &format!("{ca_flag} {}", path.display()))?;
    }
    Ok(trust)
}
