//! The credentials for the source registry of a `docker://` IMAGE, in the SPEC's order:
//! `--src-creds USER[:PASSWORD]` (the password asked on the terminal when left out),
//! `IDPBUILDER_SRC_USERNAME` / `IDPBUILDER_SRC_PASSWORD`, docker's `config.json` for the source
//! host, the destination's own credentials when source and destination are the same registry,
//! anonymous. The cluster's admin credentials reach a source only that last way, as the
//! destination's own, on the cluster's Gitea host itself.

use std::fmt;

use secrecy::SecretString;

use super::docker_config::server_address;
use super::{Credentials, Origin, prompt, source_from_environment};
use crate::error::{Error, Result};

/// Which source supplied the source registry's credentials, for `-l debug`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceOrigin {
    Flag,
    Environment,
    DockerConfig,
    Destination,
    Anonymous,
}

impl fmt::Display for SourceOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceOrigin::Flag => "--src-creds",
            SourceOrigin::Environment => "IDPBUILDER_SRC_USERNAME/PASSWORD",
            SourceOrigin::DockerConfig => "docker's config.json",
            SourceOrigin::Destination => "the destination's credentials (same registry)",
            SourceOrigin::Anonymous => "none (anonymous)",
        })
    }
}

/// Whether two `host[:port]`s are one registry: the same text but for case, or two names of
/// Docker Hub (`docker.io`, `index.docker.io`, `registry-1.docker.io`).
pub fn same_registry(a: &str, b: &str) -> bool {
    server_address(&a.to_ascii_lowercase()) == server_address(&b.to_ascii_lowercase())
}

/// `--src-creds USER[:PASSWORD]` as credentials; without a password it is asked on the
/// terminal (off the async threads: the wait may be long).
pub async fn from_flag(
    username: String,
    password: Option<SecretString>,
    host: &str,
) -> Result<Credentials> {
    let password = match password {
        Some(password) => password,
        None => {
            let prompt = format!("Password for {username} at {host}: ");
            tokio::task::spawn_blocking(move || prompt::ask_password(&prompt))
                .await
                .map_err(|e| Error::input("cannot ask for the password").with_cause(e))??
        }
    };
    Ok(Credentials::new(username, password, Origin::Flags))
}

/// Tries each source in order: `flag` (already read), the environment, `docker` (only awaited
/// when nothing before it answered), `destination` (the destination's credentials, given only
/// when it is the same registry), else anonymous.
pub async fn resolve(
    flag: Option<Credentials>,
    environment: impl Fn(&str) -> Option<String>,
    docker: impl Future<Output = Option<Credentials>>,
    destination: Option<Credentials>,
    host: &str,
) -> (Option<Credentials>, SourceOrigin) {
    if let Some(credentials) = flag {
        return (Some(credentials), SourceOrigin::Flag);
    }
    if let Some(credentials) = source_from_environment(environment) {
        return (Some(credentials), SourceOrigin::Environment);
    }
    if let Some(credentials) = docker.await {
        return (Some(credentials), SourceOrigin::DockerConfig);
    }
    if let Some(credentials) = destination {
        return (Some(credentials), SourceOrigin::Destination);
    }
    tracing::debug!("no credentials for the source registry {host}; reading anonymously");
    (None, SourceOrigin::Anonymous)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(user: &str, origin: Origin) -> Option<Credentials> {
        Some(Credentials::new(
            user,
            SecretString::from(format!("{user}-pass")),
            origin,
        ))
    }

    async fn winner(flag: bool, env: bool, docker: bool, destination: bool) -> SourceOrigin {
        let environment = move |key: &str| {
            env.then(|| match key {
                "IDPBUILDER_SRC_USERNAME" => "envuser".to_string(),
                _ => "envpass".to_string(),
            })
        };
        let docker = async move {
            if docker {
                named("dockeruser", Origin::DockerConfig)
            } else {
                None
            }
        };
        let flag = if flag {
            named("flaguser", Origin::Flags)
        } else {
            None
        };
        let destination = if destination {
            named("destuser", Origin::Cluster)
        } else {
            None
        };
        resolve(flag, environment, docker, destination, "h").await.1
    }

    #[tokio::test]
    async fn each_source_beats_every_later_one() {
        assert_eq!(winner(true, true, true, true).await, SourceOrigin::Flag);
        assert_eq!(
            winner(false, true, true, true).await,
            SourceOrigin::Environment
        );
        assert_eq!(
            winner(false, false, true, true).await,
            SourceOrigin::DockerConfig
        );
        assert_eq!(
            winner(false, false, false, true).await,
            SourceOrigin::Destination
        );
        assert_eq!(
            winner(false, false, false, false).await,
            SourceOrigin::Anonymous
        );
    }

    #[tokio::test]
    async fn the_destinations_credentials_keep_their_origin() {
        let destination = named("giteaadmin", Origin::Cluster);
        let (c, origin) = resolve(None, |_| None, async { None }, destination, "h").await;
        assert_eq!(origin, SourceOrigin::Destination);
        assert_eq!(c.map(|c| c.origin()), Some(Origin::Cluster));
    }

    #[tokio::test]
    async fn docker_config_is_not_read_when_the_environment_answers() {
        let env = |key: &str| Some(key.to_lowercase());
        let docker = async { panic!("docker config must not be read") };
        let (_, origin) = resolve(None, env, docker, None, "h").await;
        assert_eq!(origin, SourceOrigin::Environment);
    }

    #[test]
    fn one_registry_under_two_spellings() {
        assert!(same_registry(
            "Gitea.cnoe.localtest.me:8443",
            "gitea.cnoe.localtest.me:8443"
        ));
        assert!(same_registry("docker.io", "registry-1.docker.io"));
        assert!(!same_registry("127.0.0.1:5000", "127.0.0.1:5001"));
        assert!(!same_registry("localhost:5000", "127.0.0.1:5000"));
    }
}
