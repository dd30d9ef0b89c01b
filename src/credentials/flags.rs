//! Credentials given by the user directly: `--username` with `--password` or `--password-stdin`,
//! or the `IDPBUILDER_REGISTRY_USERNAME` / `IDPBUILDER_REGISTRY_PASSWORD` variables.

use secrecy::SecretString;

use super::{Credentials, Origin};
use crate::error::{Error, Result};

/// The raw flag values; the password read from stdin is already here as a secret.
#[derive(Default)]
pub struct FlagInput {
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub password_from_stdin: Option<SecretString>,
}

/// Credentials from flags, or an error when they are given half.
pub fn from_flags(input: FlagInput) -> Result<Option<Credentials>> {
    let password = match (input.password, input.password_from_stdin) {
        (Some(p), _) => Some(p),
        (None, Some(p)) => Some(p),
        (None, None) => None,
    };
    match (input.username, password) {
        (Some(username), Some(password)) => {
            Ok(Some(Credentials::new(username, password, Origin::Flags)))
        }
        (None, None) => Ok(None),
        (Some(_), None) => Err(Error::input("--username was given without a password")
            .with_hint("add --password-stdin and pipe the password in")),
        (None, Some(_)) => Err(Error::input("a password was given without --username")
            .with_hint("add --username USER")),
    }
}

/// Credentials from the environment, when both variables are set and non-empty.
pub fn from_environment(get: impl Fn(&str) -> Option<String>) -> Option<Credentials> {
    pair_from_environment(
        get,
        "IDPBUILDER_REGISTRY_USERNAME",
        "IDPBUILDER_REGISTRY_PASSWORD",
    )
}

/// The source registry's credentials from the environment (`IDPBUILDER_SRC_USERNAME` and
/// `IDPBUILDER_SRC_PASSWORD`), when both are set and non-empty.
pub fn source_from_environment(get: impl Fn(&str) -> Option<String>) -> Option<Credentials> {
    pair_from_environment(get, "IDPBUILDER_SRC_USERNAME", "IDPBUILDER_SRC_PASSWORD")
}

fn pair_from_environment(
    get: impl Fn(&str) -> Option<String>,
    user_key: &str,
    password_key: &str,
) -> Option<Credentials> {
    let username = get(user_key).filter(|u| !u.is_empty());
    let password = get(password_key).filter(|p| !p.is_empty());
    match (username, password) {
        (Some(username), Some(password)) => Some(Credentials::new(
            username,
            SecretString::from(password),
            Origin::Environment,
        )),
        (Some(_), None) | (None, Some(_)) => {
            tracing::warn!("only one of {user_key} and {password_key} is set; ignoring both");
            None
        }
        (None, None) => None,
    }
}

/// The longest password (or token) read from standard input; registry tokens are a few KiB.
pub const PASSWORD_LIMIT: usize = 64 << 10;

/// Reads a password from standard input as `docker login --password-stdin` does: all of it
/// (at most [`PASSWORD_LIMIT`] bytes), without the trailing newline.
pub fn read_password(input: impl std::io::Read) -> Result<SecretString> {
    use std::io::Read as _;
    let mut text = String::new();
    input
        .take(PASSWORD_LIMIT as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| Error::input("cannot read the password from standard input").with_cause(e))?;
    if text.len() > PASSWORD_LIMIT {
        return Err(Error::input(format!(
            "--password-stdin read more than {} KiB, which is no password",
            PASSWORD_LIMIT >> 10
        ))
        .with_hint("pipe in only the password or token, e.g. echo \"$PASSWORD\" | idpbuilder push --password-stdin ..."));
    }
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() {
        return Err(Error::input("--password-stdin read an empty password")
            .with_hint("pipe the password in, e.g. echo \"$PASSWORD\" | idpbuilder push --password-stdin ..."));
    }
    Ok(SecretString::from(trimmed.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn half_given_flags_are_errors() {
        let only_user = FlagInput {
            username: Some("u".into()),
            ..FlagInput::default()
        };
        assert!(from_flags(only_user).is_err());
        let only_password = FlagInput {
            password: Some(SecretString::from("p")),
            ..FlagInput::default()
        };
        assert!(from_flags(only_password).is_err());
    }

    #[test]
    fn a_password_over_64_kib_is_refused_without_reading_on() {
        let endless = std::io::repeat(b'a');
        let error = read_password(endless)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("more than 64 KiB"), "{error}");
        let longest = vec![b'a'; PASSWORD_LIMIT];
        assert!(read_password(&longest[..]).is_ok());
    }

    #[test]
    fn stdin_password_is_used_with_username() {
        let input = FlagInput {
            username: Some("u".into()),
            password_from_stdin: Some(SecretString::from("s3cret")),
            ..FlagInput::default()
        };
        let c = from_flags(input).unwrap().unwrap();
        assert_eq!(c.password.expose_secret(), "s3cret");
    }

    #[test]
    fn read_password_strips_only_the_line_end() {
        let p = read_password(&b" pass word \r\n"[..]).unwrap();
        assert_eq!(p.expose_secret(), " pass word ");
        assert!(read_password(&b"\n"[..]).is_err());
    }

    #[test]
    fn environment_needs_both_variables() {
        let only_user = |k: &str| (k == "IDPBUILDER_REGISTRY_USERNAME").then(|| "u".to_string());
        assert!(from_environment(only_user).is_none());
    }

    #[test]
    fn the_source_has_its_own_variables() {
        let env = |k: &str| match k {
            "IDPBUILDER_SRC_USERNAME" => Some("src".to_string()),
            "IDPBUILDER_SRC_PASSWORD" => Some("srcpass".to_string()),
            _ => None,
        };
        assert!(from_environment(env).is_none());
        let c = source_from_environment(env).expect("source credentials");
        assert_eq!(
            (c.username.as_str(), c.password.expose_secret()),
            ("src", "srcpass")
        );
    }
}
