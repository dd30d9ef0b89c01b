//! What the idpbuilder cluster knows about its own Gitea: the admin credentials (Secret
//! `gitea/gitea-credential`), idpbuilder's TLS certificate, and which hosts are Gitea's (the
//! Ingresses of namespace `gitea`).
//!
//! The cluster is read once, with one client and a few concurrent GETs, and given
//! [`BUDGET`] in all; a missing kubeconfig, an unreachable or slow cluster, or an object that
//! cannot be read is passed over with a debug line. Whatever was read is handed out only for the
//! cluster's own Gitea host ([`ClusterReading::for_host`]): other registries get neither the credentials
//! nor the trust.

mod certificate;
mod exec;
mod gitea;
mod kubeconfig;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::ListParams;
use tracing::instrument::{WithDispatch, WithSubscriber as _};
use tracing::subscriber::NoSubscriber;

pub use certificate::{ClusterCertificate, Place};
pub use gitea::GiteaHosts;
pub use kubeconfig::KubeconfigChoice;

use crate::credentials::{self, Credentials};
use crate::error::{Error, Result};

/// All cluster calls together get at most this long.
pub const BUDGET: Duration = Duration::from_secs(5);
/// For tests only: the budget in milliseconds.
pub const BUDGET_ENV: &str = "IDPBUILDER_TEST_CLUSTER_BUDGET_MS";

fn budget(ms: Option<&str>) -> Duration {
    ms.and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(BUDGET, |ms| Duration::from_millis(ms.max(1)))
}

/// Whether `host` (`name[:port]`) could be the cluster's Gitea: an Ingress names its hosts by
/// DNS name, never by IP address, so a registry reached by address is not read for.
pub fn may_be_gitea(host: &str) -> bool {
    crate::reference::host_name(host)
        .parse::<std::net::IpAddr>()
        .is_err()
}

/// What is worth reading; nothing at all when the user already gave both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToRead {
    /// No credentials from flags or the environment.
    pub credentials: bool,
    /// No `--ca-file`, `--insecure` or `--plain-http`.
    pub certificate: bool,
}

/// What the cluster offers one destination host.
#[derive(Debug, Default)]
pub struct GiteaDefaults {
    pub credentials: Option<Credentials>,
    pub certificate: Option<ClusterCertificate>,
}

/// Everything read from the cluster, not yet tied to a host.
#[derive(Debug)]
pub struct ClusterReading {
    pub hosts: GiteaHosts,
    pub credentials: Option<Credentials>,
    pub certificate: Option<ClusterCertificate>,
}

impl ToRead {
    /// Nothing, when none of `hosts` (the destination, and a `docker://` source) could be the
    /// cluster's Gitea: a kubeconfig `exec` plugin (an SSO prompt, a cloud CLI) is never run for
    /// a push that cannot use what it gives. A kubeconfig or context the user named
    /// (`explicit`) is read all the same, so that a mistake in it is reported.
    pub fn for_hosts(self, hosts: &[Option<&str>], explicit: bool) -> ToRead {
        let hosts: Vec<&str> = hosts.iter().flatten().copied().collect();
        if explicit || hosts.iter().any(|host| may_be_gitea(host)) {
            return self;
        }
        tracing::debug!(
            "cluster: not read; {} cannot be the cluster's Gitea (an IP address)",
            hosts.join(" and ")
        );
        ToRead {
            credentials: false,
            certificate: false,
        }
    }
}

impl ClusterReading {
    /// The credentials and certificate, only if `host` is the cluster's Gitea.
    pub fn for_host(&self, host: &str) -> GiteaDefaults {
        if !self.hosts.matches(host) {
            tracing::debug!(
                "cluster: {host} is not the cluster's Gitea ({}); its credentials and certificate are not used",
                self.hosts
            );
            return GiteaDefaults::default();
        }
        tracing::debug!("cluster: {host} is the cluster's Gitea ({})", self.hosts);
        match &self.certificate {
            Some(c) => tracing::debug!(
                "cluster: trusting idpbuilder's certificate from {} for {host}",
                c.place
            ),
            None => tracing::debug!("cluster: no idpbuilder certificate used for {host}"),
        }
        GiteaDefaults {
            credentials: self.credentials.clone(),
            certificate: self.certificate.clone(),
        }
    }
}

/// Reads what `to_read` asks for and returns what applies to `host`. `Err` only when a
/// kubeconfig or context the user named explicitly is missing or broken.
pub async fn read_for_host(
    choice: &KubeconfigChoice,
    host: &str,
    to_read: ToRead,
) -> Result<GiteaDefaults> {
    Ok(read_in_time(choice, to_read)
        .await?
        .map(|found| found.for_host(host))
        .unwrap_or_default())
}

/// Reads what `to_read` asks for within [`BUDGET`], to hand out per host with
/// [`ClusterReading::for_host`] (a copy between two registries asks for both); `None` when
/// nothing was wanted, there is no cluster, or it did not answer in time. `Err` only when a
/// kubeconfig or context the user named explicitly is missing or broken.
pub async fn read_in_time(
    choice: &KubeconfigChoice,
    to_read: ToRead,
) -> Result<Option<ClusterReading>> {
    if !to_read.credentials && !to_read.certificate {
        tracing::debug!("cluster: not read; credentials and TLS trust are already given");
        return Ok(None);
    }
    let budget = budget(std::env::var(BUDGET_ENV).ok().as_deref());
    // On a thread of its own, so that nothing the reading does (a kubeconfig `exec` plugin, a
    // blocking call inside kube) can hold the budget's timer back. A reading past the budget is
    // abandoned with its thread.
    let (sender, answer) = tokio::sync::oneshot::channel();
    // Dropped when the budget is spent: the reading is then dropped too, which kills an `exec`
    // plugin still running (and whatever it started).
    let (abandon, abandoned) = tokio::sync::oneshot::channel::<()>();
    let choice = choice.clone();
    let started = std::thread::Builder::new()
        .name("cluster".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let outcome = match runtime {
                Ok(runtime) => runtime.block_on(async move {
                    tokio::select! {
                        outcome = read(&choice, to_read) => outcome,
                        _ = abandoned => Ok(None),
                    }
                }),
                Err(e) => {
                    tracing::debug!("cluster: cannot start a runtime to read it: {e}");
                    Ok(None)
                }
            };
            let _ = sender.send(outcome);
        });
    if let Err(e) = started {
        tracing::debug!("cluster: cannot start a thread to read it: {e}");
        return Ok(None);
    }
    match tokio::time::timeout(budget, answer).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Ok(None),
        Err(_) => {
            drop(abandon);
            tracing::debug!(
                "cluster: no answer within {}s; passing it over",
                budget.as_secs_f64()
            );
            Ok(None)
        }
    }
}

/// Loads the kubeconfig and reads the cluster; `None` when there is no cluster to read.
pub async fn read(choice: &KubeconfigChoice, to_read: ToRead) -> Result<Option<ClusterReading>> {
    let Some(loaded) = kubeconfig::load(choice).await? else {
        return Ok(None);
    };
    let mut config = loaded.config;
    let budget = budget(std::env::var(BUDGET_ENV).ok().as_deref());
    // An `exec` plugin runs here, once; kube's client would run it three times to build the
    // client and again before requests when its token is about to expire.
    // Its own limit is a backstop: at the budget the reading is abandoned, which kills it.
    let backstop = budget + Duration::from_secs(1);
    if let Err(why) = exec::run_once(&mut config.auth_info, backstop).await {
        tracing::debug!("cluster: passing over context {:?}: {why}", loaded.context);
        return Ok(None);
    }
    config.connect_timeout = Some(budget);
    config.read_timeout = Some(budget);
    config.default_retry = false;
    let client = match kube::Client::try_from(config) {
        Ok(client) => client,
        Err(e) if choice.explicit() => {
            return Err(Error::input(format!(
                "cannot connect to the cluster of context {:?} ({})",
                loaded.context, loaded.described
            ))
            .with_cause(e)
            .with_hint("check it with: kubectl config view --minify"));
        }
        Err(e) => {
            tracing::debug!("cluster: passing over context {:?}: {e}", loaded.context);
            return Ok(None);
        }
    };
    tracing::debug!(
        "cluster: reading context {:?} of {}",
        loaded.context,
        loaded.described
    );
    let (hosts, credentials, certificate) = tokio::join!(
        gitea_hosts(client.clone()),
        async {
            if to_read.credentials {
                gitea_credential(client.clone()).await
            } else {
                None
            }
        },
        async {
            if to_read.certificate {
                idpbuilder_certificate(client.clone()).await
            } else {
                None
            }
        },
    );
    Ok(Some(ClusterReading {
        hosts,
        credentials,
        certificate,
    }))
}

async fn gitea_hosts(client: kube::Client) -> GiteaHosts {
    let api: Api<Ingress> = Api::namespaced(client, "gitea");
    match quietly(api.list(&ListParams::default())).await {
        Ok(list) => GiteaHosts::from_ingresses(&list.items),
        Err(e) => {
            tracing::debug!(
                "cluster: cannot list the Ingresses of namespace gitea ({}); using {}",
                describe(&e),
                GiteaHosts::Fallback
            );
            GiteaHosts::Fallback
        }
    }
}

async fn gitea_credential(client: kube::Client) -> Option<Credentials> {
    let (namespace, name) = (
        credentials::gitea_secret::NAMESPACE,
        credentials::gitea_secret::NAME,
    );
    let api: Api<Secret> = Api::namespaced(client, namespace);
    let secret = match quietly(api.get(name)).await {
        Ok(secret) => secret,
        Err(e) => {
            tracing::debug!(
                "cluster: cannot read Secret {namespace}/{name} ({}); no credentials from the cluster",
                describe(&e)
            );
            return None;
        }
    };
    match credentials::gitea_secret::from_secret(secret) {
        Ok(credentials) => Some(credentials),
        Err(why) => {
            tracing::debug!("cluster: passing over Secret {namespace}/{name}: {why}");
            None
        }
    }
}

async fn idpbuilder_certificate(client: kube::Client) -> Option<ClusterCertificate> {
    let secret = |place: Place| {
        let api: Api<Secret> = Api::namespaced(client.clone(), place.namespace());
        async move {
            let secret = quietly(api.get(certificate::NAME))
                .await
                .map_err(|e| describe(&e))?;
            secret
                .data
                .and_then(|mut data| data.remove(place.key()))
                .map(|bytes| bytes.0)
                .ok_or_else(|| format!("it has no key {}", place.key()))
        }
    };
    let config_map = {
        let place = Place::DefaultConfigMap;
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), place.namespace());
        async move {
            let map = quietly(api.get(certificate::NAME))
                .await
                .map_err(|e| describe(&e))?;
            let text = map.data.and_then(|mut data| data.remove(place.key()));
            let binary = map
                .binary_data
                .and_then(|mut data| data.remove(place.key()));
            text.map(String::into_bytes)
                .or(binary.map(|b| b.0))
                .ok_or_else(|| format!("it has no key {}", place.key()))
        }
    };
    let (default_secret, default_map, ingress_secret) = tokio::join!(
        secret(Place::DefaultSecret),
        config_map,
        secret(Place::IngressNginxSecret)
    );
    certificate::pick([
        (Place::DefaultSecret, default_secret),
        (Place::DefaultConfigMap, default_map),
        (Place::IngressNginxSecret, ingress_secret),
    ])
}

/// Runs a kube call with its own logging silenced: kube logs every transport failure at ERROR,
/// which would reach the terminal at the default level; we say it once, in a debug line.
fn quietly<F: Future>(call: F) -> WithDispatch<F> {
    call.with_subscriber(NoSubscriber::default())
}

/// A kube error in a few words: the API's status and message, or the transport error.
fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            let reason = if status.reason.is_empty() {
                "error"
            } else {
                status.reason.as_str()
            };
            let text = format!("{} {reason}: {}", status.code, status.message);
            crate::text::escape_controls(&text).into_owned()
        }
        other => {
            let mut text = other.to_string();
            let mut cause = std::error::Error::source(other);
            while let Some(c) = cause {
                let more = c.to_string();
                if !text.contains(&more) {
                    text.push_str(": ");
                    text.push_str(&more);
                }
                cause = c.source();
            }
            crate::text::escape_controls(&text).into_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_host_name_may_be_the_clusters_gitea() {
        for host in ["127.0.0.1:5000", "10.0.0.1", "[::1]:5000", "::1"] {
            assert!(!may_be_gitea(host), "{host}");
        }
        for host in ["gitea.cnoe.localtest.me:8443", "localhost:5000", "registry"] {
            assert!(may_be_gitea(host), "{host}");
        }
        let all = ToRead {
            credentials: true,
            certificate: true,
        };
        assert!(
            !all.for_hosts(&[Some("127.0.0.1:5000"), None], false)
                .credentials
        );
        assert_eq!(all.for_hosts(&[Some("127.0.0.1:5000"), None], true), all);
        assert_eq!(
            all.for_hosts(&[Some("127.0.0.1:5000"), Some("h:1")], false),
            all
        );
        assert_eq!(budget(Some("250")), Duration::from_millis(250));
        assert_eq!(budget(None), BUDGET);
    }
}
