//! Which registry hosts are the cluster's own Gitea: the hosts of the Ingresses in namespace
//! `gitea`, or, when those cannot be read, idpbuilder's default names on any port. The cluster's
//! credentials and certificate go to these hosts and to no other.

use std::fmt;

use k8s_openapi::api::networking::v1::Ingress;

use crate::reference::{host_name, normalise_host_name};

/// idpbuilder's Gitea host names, used when the Ingresses cannot be read: the host of the default
/// set-up and the one of `--use-path-routing`.
pub const FALLBACK_HOSTS: [&str; 2] = ["gitea.cnoe.localtest.me", "cnoe.localtest.me"];

/// The host names (without ports) that count as the cluster's Gitea.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiteaHosts {
    /// Read from the Ingresses of namespace `gitea` (lower case, maybe `*.` wildcards).
    Ingresses(Vec<String>),
    /// The Ingresses could not be read: [`FALLBACK_HOSTS`].
    Fallback,
}

impl GiteaHosts {
    /// The rule hosts of `ingresses`; rules without a host match nothing.
    pub fn from_ingresses(ingresses: &[Ingress]) -> GiteaHosts {
        let mut hosts: Vec<String> = ingresses
            .iter()
            .filter_map(|ingress| ingress.spec.as_ref())
            .flat_map(|spec| spec.rules.iter().flatten())
            .filter_map(|rule| rule.host.as_deref())
            .map(normalise_host_name)
            .filter(|host| !host.is_empty())
            .collect();
        hosts.sort();
        hosts.dedup();
        GiteaHosts::Ingresses(hosts)
    }

    /// Whether `destination` (`host[:port]`, as in a DESTINATION) is one of these hosts, on
    /// any port.
    pub fn matches(&self, destination: &str) -> bool {
        let name = host_name(destination);
        match self {
            GiteaHosts::Ingresses(hosts) => hosts.iter().any(|h| host_matches(h, &name)),
            GiteaHosts::Fallback => FALLBACK_HOSTS.iter().any(|h| *h == name),
        }
    }
}

impl fmt::Display for GiteaHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GiteaHosts::Ingresses(hosts) if hosts.is_empty() => {
                f.write_str("no host in the Ingresses of namespace gitea")
            }
            GiteaHosts::Ingresses(hosts) => {
                write!(f, "Ingress hosts of namespace gitea: {}", hosts.join(", "))
            }
            GiteaHosts::Fallback => {
                write!(f, "idpbuilder's defaults {}", FALLBACK_HOSTS.join(", "))
            }
        }
    }
}

/// Ingress host matching: exact, or `*.example.com` for exactly one more label.
fn host_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => name
            .strip_suffix(suffix)
            .and_then(|head| head.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingresses(hosts: &[Option<&str>]) -> Vec<Ingress> {
        let rules: Vec<serde_json::Value> = hosts
            .iter()
            .map(|h| match h {
                Some(h) => serde_json::json!({"host": h}),
                None => serde_json::json!({}),
            })
            .collect();
        let ingress = serde_json::json!({
            "metadata": {"name": "my-gitea", "namespace": "gitea"},
            "spec": {"rules": rules},
        });
        vec![serde_json::from_value(ingress).unwrap()]
    }

    #[test]
    fn ingress_hosts_match_on_any_port_and_case() {
        let hosts = GiteaHosts::from_ingresses(&ingresses(&[Some("Gitea.cnoe.localtest.me")]));
        assert!(hosts.matches("gitea.cnoe.localtest.me:8443"));
        assert!(hosts.matches("GITEA.cnoe.localtest.me"));
        assert!(hosts.matches("gitea.cnoe.localtest.me.:443"));
        assert!(!hosts.matches("cnoe.localtest.me:8443"));
        assert!(!hosts.matches("gitea.cnoe.localtest.me.evil.example"));
        assert!(!hosts.matches("evilgitea.cnoe.localtest.me"));
    }

    #[test]
    fn path_routing_host_is_the_gitea_host_when_its_ingress_says_so() {
        let hosts = GiteaHosts::from_ingresses(&ingresses(&[Some("cnoe.localtest.me")]));
        assert!(hosts.matches("cnoe.localtest.me:8443"));
        assert!(!hosts.matches("gitea.cnoe.localtest.me:8443"));
    }

    #[test]
    fn fallback_knows_both_idpbuilder_hosts_and_nothing_else() {
        let hosts = GiteaHosts::Fallback;
        assert!(hosts.matches("gitea.cnoe.localtest.me:8443"));
        assert!(hosts.matches("cnoe.localtest.me:8443"));
        assert!(hosts.matches("cnoe.localtest.me"));
        assert!(!hosts.matches("localhost:5000"));
        assert!(!hosts.matches("ghcr.io"));
        assert!(!hosts.matches("x.cnoe.localtest.me"));
    }

    #[test]
    fn rules_without_host_match_nothing() {
        let hosts = GiteaHosts::from_ingresses(&ingresses(&[None]));
        assert_eq!(hosts, GiteaHosts::Ingresses(vec![]));
        assert!(!hosts.matches("gitea.cnoe.localtest.me"));
        assert!(!hosts.matches("localhost"));
    }

    #[test]
    fn wildcards_cover_one_label() {
        let hosts = GiteaHosts::from_ingresses(&ingresses(&[Some("*.example.com")]));
        assert!(hosts.matches("gitea.example.com:443"));
        assert!(!hosts.matches("example.com"));
        assert!(!hosts.matches("a.b.example.com"));
    }
}
