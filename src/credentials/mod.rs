//! Registry credentials and the one place where their sources are tried, in the SPEC's order:
//! flags, environment, (cluster, docker config: later), anonymous.

use std::fmt;

use secrecy::SecretString;

mod flags;

pub use flags::{FlagInput, from_environment, from_flags, read_password};

/// A user name and password (or token used as a password).
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: SecretString,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Which source supplied the credentials, for `-l debug`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Flags,
    Environment,
    Anonymous,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Flags => "command-line flags",
            Origin::Environment => "IDPBUILDER_REGISTRY_USERNAME/PASSWORD",
            Origin::Anonymous => "none (anonymous)",
        })
    }
}

/// Tries each source in order and returns the first that has credentials for `host`.
pub fn resolve(
    flags: FlagInput,
    environment: impl Fn(&str) -> Option<String>,
    host: &str,
) -> crate::error::Result<(Option<Credentials>, Origin)> {
    if let Some(credentials) = from_flags(flags)? {
        return Ok((Some(credentials), Origin::Flags));
    }
    if let Some(credentials) = from_environment(&environment) {
        return Ok((Some(credentials), Origin::Environment));
    }
    tracing::debug!("no credentials for {host}; pushing anonymously");
    Ok((None, Origin::Anonymous))
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

    #[test]
    fn flags_win_over_environment() {
        let flags = FlagInput {
            username: Some("flaguser".into()),
            password: Some("flagpass".into()),
            ..FlagInput::default()
        };
        let (c, origin) = resolve(flags, env(ENV), "h").unwrap();
        assert_eq!(origin, Origin::Flags);
        let c = c.unwrap();
        assert_eq!(c.username, "flaguser");
        assert_eq!(c.password.expose_secret(), "flagpass");
    }

    #[test]
    fn environment_wins_over_anonymous() {
        let (c, origin) = resolve(FlagInput::default(), env(ENV), "h").unwrap();
        assert_eq!(origin, Origin::Environment);
        assert_eq!(c.unwrap().username, "envuser");
    }

    #[test]
    fn nothing_means_anonymous() {
        let (c, origin) = resolve(FlagInput::default(), env(&[]), "h").unwrap();
        assert!(c.is_none());
        assert_eq!(origin, Origin::Anonymous);
    }

    #[test]
    fn debug_output_redacts_the_password() {
        let c = Credentials {
            username: "u".into(),
            password: SecretString::from("hunter2"),
        };
        let text = format!("{c:?}");
        assert!(!text.contains("hunter2"));
        assert!(text.contains("<redacted>"));
    }
}
