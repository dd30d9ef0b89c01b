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
    match tokio::time::timeout(BUDGET, read(choice, to_read)).await {
        Ok(result) => result,
        Err(_) => {
            tracing::debug!(
                "cluster: no answer within {}s; passing it over",
                BUDGET.as_secs()
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
    config.connect_timeout = Some(BUDGET);
    config.read_timeout = Some(BUDGET);
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
