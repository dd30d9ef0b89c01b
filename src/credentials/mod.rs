//! Registry credentials and the one place where their sources are tried, in the SPEC's order:
//! flags, environment, the idpbuilder cluster (for its own Gitea only), docker's config.json,
//! anonymous.

use std::fmt;

use secrecy::SecretString;

pub mod docker_config;
mod flags;
pub mod gitea_secret;
pub mod program;
pub mod prompt;
pub mod source;

pub use flags::{FlagInput, from_environment, from_flags, read_password, source_from_environment};

/// A user name and password (or token used as a password), with the source it came from: the
/// cluster's admin credentials are held to stricter rules on the wire than the ones a user gave.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: SecretString,
    origin: Origin,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: SecretString, origin: Origin) -> Self {
        Credentials {
            username: username.into(),
            password,
            origin,
        }
    }

    pub fn origin(&self) -> Origin {
        self.origin
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("origin", &self.origin)
            .finish()
    }
}

/// Which source supplied the credentials, for `-l debug`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Flags,
    Environment,
    Cluster,
    DockerConfig,
    Anonymous,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Flags => "command-line flags",
            Origin::Environment => "IDPBUILDER_REGISTRY_USERNAME/PASSWORD",
            Origin::Cluster => "the cluster's secret gitea/gitea-credential",
            Origin::DockerConfig => "docker's config.json",
            Origin::Anonymous => "none (anonymous)",
        })
    }
}

/// Sources 1 and 2, what the user gave directly: flags, then the environment.
pub fn direct(
    flags: FlagInput,
    environment: impl Fn(&str) -> Option<String>,
) -> crate::error::Result<Option<(Credentials, Origin)>> {
    if let Some(credentials) = from_flags(flags)? {
        return Ok(Some((credentials, Origin::Flags)));
    }
    Ok(from_environment(&environment).map(|c| (c, Origin::Environment)))
}

/// Tries each source in order and returns the first that has credentials for `host`: what
/// [`direct`] found, then `cluster` (already kept to the cluster's own Gitea host), then
/// `docker` (only awaited when nothing before it answered), else anonymous.
pub async fn resolve(
    direct: Option<(Credentials, Origin)>,
    cluster: Option<Credentials>,
    docker: impl Future<Output = Option<Credentials>>,
    host: &str,
) -> (Option<Credentials>, Origin) {
    if let Some((credentials, origin)) = direct {
        return (Some(credentials), origin);
    }
    if let Some(credentials) = cluster {
        return (Some(credentials), Origin::Cluster);
    }
    if let Some(credentials) = docker.await {
        return (Some(credentials), Origin::DockerConfig);
    }
    tracing::debug!("no credentials for {host}; going on anonymously");
    (None, Origin::Anonymous)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        }
    }

    const ENV: &[(&str, &str)] = &[
        ("IDPBUILDER_REGISTRY_USERNAME", "envuser"),
        ("IDPBUILDER_REGISTRY_PASSWORD", "envpass"),
    ];

    fn flags() -> FlagInput {
        FlagInput {
            username: Some("flaguser".into()),
            password: Some(SecretString::from("flagpass")),
            ..FlagInput::default()
        }
    }

    fn named(user: &str) -> Option<Credentials> {
        Some(Credentials::new(
            user,
            SecretString::from(format!("{user}-pass")),
            Origin::Flags,
        ))
    }

    /// Resolves with each source present or not; returns the user that won and its origin.
    async fn winner(
        flags_given: bool,
        env_given: bool,
        cluster: bool,
        docker: bool,
    ) -> (Option<String>, Origin) {
        let input = if flags_given {
            flags()
        } else {
            FlagInput::default()
        };
        let environment: &'static [(&'static str, &'static str)] =
            if env_given { ENV } else { &[] };
        let direct = direct(input, env(environment)).unwrap();
        let cluster = if cluster { named("clusteruser") } else { None };
        let docker = async move { if docker { named("dockeruser") } else { None } };
        let (c, origin) = resolve(direct, cluster, docker, "h").await;
        (c.map(|c| c.username), origin)
    }

    #[tokio::test]
    async fn each_source_beats_every_later_one() {
        let user = |u: &str| Some(u.to_string());
        assert_eq!(
            winner(true, true, true, true).await,
            (user("flaguser"), Origin::Flags)
        );
        assert_eq!(
            winner(true, false, true, false).await,
            (user("flaguser"), Origin::Flags)
        );
        assert_eq!(
            winner(true, false, false, true).await,
            (user("flaguser"), Origin::Flags)
        );
        assert_eq!(
            winner(false, true, true, true).await,
            (user("envuser"), Origin::Environment)
        );
        assert_eq!(
            winner(false, true, false, true).await,
            (user("envuser"), Origin::Environment)
        );
        assert_eq!(
            winner(false, false, true, true).await,
            (user("clusteruser"), Origin::Cluster)
        );
        assert_eq!(
            winner(false, false, false, true).await,
            (user("dockeruser"), Origin::DockerConfig)
        );
        assert_eq!(
            winner(false, false, false, false).await,
            (None, Origin::Anonymous)
        );
    }

    #[tokio::test]
    async fn docker_config_is_not_consulted_when_an_earlier_source_answers() {
        let docker = async { panic!("docker config must not be read") };
        let (c, origin) = resolve(None, named("clusteruser"), docker, "h").await;
        assert_eq!(origin, Origin::Cluster);
        assert_eq!(c.unwrap().password.expose_secret(), "clusteruser-pass");
    }

    #[test]
    fn flags_password_is_kept_as_given() {
        let (c, origin) = direct(flags(), env(ENV)).unwrap().unwrap();
        assert_eq!(origin, Origin::Flags);
        assert_eq!(c.password.expose_secret(), "flagpass");
    }

    #[test]
    fn debug_output_redacts_the_password() {
        let c = Credentials::new("u", SecretString::from("hunter2"), Origin::Cluster);
        let text = format!("{c:?}");
        assert!(!text.contains("hunter2"));
        assert!(text.contains("<redacted>"));
    }
}
