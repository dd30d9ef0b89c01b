//! Where credentials may go, decided from URLs alone: the registry's own origin, a token realm,
//! a redirect. `client.rs` applies these rules where every request is sent.
//!
//! - Credentials (Basic, a Bearer token) go only to the registry's own scheme, host and port. An
//!   upload `Location` or a redirect elsewhere is followed without them (reqwest drops
//!   `Authorization` on a redirect to another origin; [`redirect_policy`] keeps that default and
//!   adds the refusal to go from HTTPS down to HTTP).
//! - A token realm gets the Basic credentials when it is HTTPS, or when the registry itself is
//!   plain HTTP and the realm is on the same host ([`judge_realm`]).
//! - Over plain HTTP, whether a host is loopback is decided on the addresses the connection will
//!   really use: the client resolves names through [`Resolver`], which keeps the first answer for
//!   the whole push, so a check and the connection after it see the same addresses.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::{Arc, Mutex};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Same scheme, host and port (a missing port is the scheme's default).
pub(super) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// `scheme://host[:port]` of `url`, for messages: never a path, query or user info.
pub(super) fn origin_text(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// What a token realm may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Realm {
    /// HTTPS, or plain HTTP on the host of a registry that is itself plain HTTP: the Basic
    /// credentials may go there.
    Trusted,
    /// Plain HTTP on another host than a plain-HTTP registry's: only an anonymous token request.
    ClearTextElsewhere,
    /// Not HTTPS while the registry is: refused outright, a TLS registry is never downgraded.
    Refused,
}

/// Judges the token realm `realm` of the registry at `base`.
pub(super) fn judge_realm(base: &Url, realm: &Url) -> Realm {
    match (base.scheme(), realm.scheme()) {
        (_, "https") => Realm::Trusted,
        ("http", "http") if base.host() == realm.host() => Realm::Trusted,
        ("http", "http") => Realm::ClearTextElsewhere,
        _ => Realm::Refused,
    }
}

/// A redirect from HTTPS to plain HTTP, refused by [`redirect_policy`].
#[derive(Debug)]
pub(super) struct Downgrade {
    pub to: String,
}

impl std::fmt::Display for Downgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "refused a redirect from HTTPS to plain HTTP ({})",
            self.to
        )
    }
}

impl std::error::Error for Downgrade {}

/// Follows up to 10 redirects as reqwest does by default (which drops `Authorization`, cookies
/// and `Proxy-Authorization` when the origin changes), but never from HTTPS to anything else.
pub(super) fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let was_tls = attempt.previous().iter().any(|u| u.scheme() == "https");
        if was_tls && attempt.url().scheme() != "https" {
            let to = origin_text(attempt.url());
            attempt.error(Downgrade { to })
        } else if attempt.previous().len() >= 10 {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}

/// The client's name resolver: the system's (`getaddrinfo`, off the async threads, as reqwest's
/// own), remembering the first answer for each name.
#[derive(Debug, Clone, Default)]
pub(super) struct Resolver {
    found: Arc<Mutex<HashMap<String, Vec<SocketAddr>>>>,
}

impl Resolver {
    async fn lookup(&self, name: &str) -> std::io::Result<Vec<SocketAddr>> {
        if let Some(found) = self.cache().get(name) {
            return Ok(found.clone());
        }
        let query = name.to_string();
        let addrs: Vec<SocketAddr> =
            tokio::task::spawn_blocking(move || (query.as_str(), 0).to_socket_addrs())
                .await
                .map_err(std::io::Error::other)??
                .collect();
        // The first answer stands: a later lookup must not change the addresses under a check
        // that was already made.
        Ok(self
            .cache()
            .entry(name.to_string())
            .or_insert(addrs)
            .clone())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<SocketAddr>>> {
        self.found
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the host of `url` is loopback: an address literal as it is; a name when every
    /// address it resolves to is loopback (these are the addresses requests then use). A name
    /// that does not resolve is not loopback.
    pub(super) async fn is_loopback(&self, url: &Url) -> bool {
        match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.to_canonical().is_loopback(),
            Some(Host::Domain(name)) => match self.lookup(name).await {
                Ok(addrs) => {
                    !addrs.is_empty() && addrs.iter().all(|a| a.ip().to_canonical().is_loopback())
                }
                Err(e) => {
                    tracing::debug!("cannot resolve {name}: {e}");
                    false
                }
            },
            None => false,
        }
    }
}

/// A host name that does not resolve: no retry can help, so the request fails for good.
#[derive(Debug, thiserror::Error)]
#[error("the host name {name} does not resolve ({cause})")]
pub struct Unresolved {
    pub name: String,
    cause: std::io::Error,
}

impl Unresolved {
    /// The resolver could not answer now (`EAI_AGAIN`, no DNS server reachable), as opposed to
    /// answering that the name does not exist.
    pub fn temporary(&self) -> bool {
        !says_no_such_name(&self.cause.to_string())
    }
}

/// Whether a `getaddrinfo` error text is `EAI_NONAME` or `EAI_NODATA` (glibc, musl, macOS
/// wordings), or a name with no address at all: the name does not exist, rather than the
/// lookup failing for now.
fn says_no_such_name(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "name or service not known",
        "no address associated with hostname",
        "nodename nor servname provided",
        "name does not resolve",
        "no such host",
        "no addresses",
    ]
    .iter()
    .any(|text| message.contains(text))
}

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.clone();
        let name = name.as_str().to_string();
        Box::pin(async move {
            let addrs = match resolver.lookup(&name).await {
                Ok(addrs) if !addrs.is_empty() => addrs,
                Ok(_) => {
                    let cause = std::io::Error::other("no addresses");
                    return Err(Box::new(Unresolved { name, cause }) as _);
                }
                Err(cause) => return Err(Box::new(Unresolved { name, cause }) as _),
            };
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect("url")
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        let base = url("https://gitea.cnoe.localtest.me:8443/");
        assert!(same_origin(
            &base,
            &url("https://GITEA.cnoe.localtest.me:8443/v2/a/blobs/uploads/x?_state=1")
        ));
        assert!(!same_origin(
            &base,
            &url("https://gitea.cnoe.localtest.me:9443/x")
        ));
        assert!(!same_origin(
            &base,
            &url("http://gitea.cnoe.localtest.me:8443/x")
        ));
        assert!(!same_origin(
            &base,
            &url("https://cnoe.localtest.me:8443/x")
        ));
        assert!(same_origin(
            &url("https://ghcr.io/"),
            &url("https://ghcr.io:443/x")
        ));
        assert_eq!(
            origin_text(&url("http://u:p@h:1/path?q")),
            "http://h:1",
            "no user info, path or query in messages"
        );
    }

    #[test]
    fn an_https_registrys_realm_must_be_https_and_clear_text_stays_on_the_registrys_host() {
        let tls = url("https://gitea.cnoe.localtest.me:8443/");
        let plain = url("http://localhost:5000/");
        let cases = [
            (
                &tls,
                "https://gitea.cnoe.localtest.me:8443/v2/token",
                Realm::Trusted,
            ),
            (&tls, "https://auth.example.com/token", Realm::Trusted),
            (
                &tls,
                "http://gitea.cnoe.localtest.me:5001/token",
                Realm::Refused,
            ),
            (&tls, "http://evil.example.com/token", Realm::Refused),
            (&tls, "ftp://gitea.cnoe.localtest.me/t", Realm::Refused),
            (&plain, "http://localhost:5001/token", Realm::Trusted),
            (&plain, "https://auth.example.com/t", Realm::Trusted),
            (
                &plain,
                "http://127.0.0.1:5001/token",
                Realm::ClearTextElsewhere,
            ),
            (
                &plain,
                "http://elsewhere.example/token",
                Realm::ClearTextElsewhere,
            ),
        ];
        for (base, realm, expected) in cases {
            assert_eq!(
                judge_realm(base, &url(realm)),
                expected,
                "{base} -> {realm}"
            );
        }
    }

    #[tokio::test]
    async fn loopback_is_judged_on_the_addresses() {
        let resolver = Resolver::default();
        for loopback in [
            "http://127.0.0.1:5000/",
            "http://127.1.2.3/",
            "http://[::1]:5000/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:5000/",
        ] {
            assert!(resolver.is_loopback(&url(loopback)).await, "{loopback}");
        }
        for elsewhere in [
            "http://192.0.2.1:5000/",
            "http://10.0.0.1/",
            "http://[2001:db8::1]/",
            "http://0.0.0.0/",
            "http://does-not-resolve.invalid/",
        ] {
            assert!(!resolver.is_loopback(&url(elsewhere)).await, "{elsewhere}");
        }
    }

    #[test]
    fn a_name_that_does_not_exist_is_told_from_a_lookup_that_failed_for_now() {
        let unresolved = |text: &str| Unresolved {
            name: "h".into(),
            cause: std::io::Error::other(text.to_string()),
        };
        for gone in [
            "failed to lookup address information: Name or service not known",
            "failed to lookup address information: No address associated with hostname",
            "failed to lookup address information: nodename nor servname provided, or not known",
            "failed to lookup address information: Name does not resolve",
        ] {
            assert!(!unresolved(gone).temporary(), "{gone}");
        }
        let again = "failed to lookup address information: Temporary failure in name resolution";
        assert!(unresolved(again).temporary());
    }

    #[tokio::test]
    async fn an_unknown_name_fails_to_resolve_with_the_name_in_the_error() {
        let resolver = Resolver::default();
        let name: Name = "no-such-host.invalid".parse().expect("name");
        let error = match resolver.resolve(name).await {
            Ok(_) => panic!("an .invalid name resolved"),
            Err(error) => error,
        };
        let unresolved = error.downcast_ref::<Unresolved>().expect("Unresolved");
        assert_eq!(unresolved.name, "no-such-host.invalid");
    }

    #[tokio::test]
    async fn the_first_answer_for_a_name_stands() {
        let resolver = Resolver::default();
        let pinned: SocketAddr = "127.0.0.1:0".parse().expect("address");
        resolver
            .cache()
            .insert("registry.example".into(), vec![pinned]);
        assert!(resolver.is_loopback(&url("http://registry.example/")).await);
        let name: Name = "registry.example".parse().expect("name");
        let addrs: Vec<SocketAddr> = resolver.resolve(name).await.expect("resolved").collect();
        assert_eq!(addrs, vec![pinned]);
    }
}
