//! Source 3: the idpbuilder cluster's Secret `gitea-credential` in namespace `gitea`, keys
//! `username`, `password` and `token` (the token stands in for an empty password). Reading it is
//! `crate::cluster`'s job, and so is keeping it to the cluster's own Gitea host; this file only
//! turns the Secret into [`Credentials`] without a value ever reaching a message.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use secrecy::SecretString;

use super::{Credentials, Origin};

/// Namespace of the credential secret.
pub const NAMESPACE: &str = "gitea";
/// Name of the credential secret.
pub const NAME: &str = "gitea-credential";

/// The Secret's credentials, or why it holds none (a reason naming keys, never values).
pub fn from_secret(secret: Secret) -> Result<Credentials, String> {
    let mut data = secret.data.unwrap_or_default();
    let mut take = |key: &str| -> Result<Option<String>, String> {
        match data.remove(key) {
            None => Ok(None),
            Some(ByteString(bytes)) => String::from_utf8(bytes)
                .map(|text| Some(text).filter(|t| !t.is_empty()))
                .map_err(|_| format!("its key {key:?} is not UTF-8 text")),
        }
    };
    let username = take("username")?;
    let password = take("password")?;
    let token = take("token")?;
    let Some(username) = username else {
        return Err("it has no username key (or it is empty)".into());
    };
    let password = match (password, token) {
        (Some(password), _) => password,
        (None, Some(token)) => {
            tracing::debug!("{NAMESPACE}/{NAME}: the password is empty; using the token");
            token
        }
        (None, None) => return Err("it has neither a password nor a token key".into()),
    };
    Ok(Credentials::new(
        username,
        SecretString::from(password),
        Origin::Cluster,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        let data = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect();
        Secret {
            data: Some(data),
            ..Secret::default()
        }
    }

    #[test]
    fn username_and_password() {
        let c = from_secret(secret(&[("username", "giteaadmin"), ("password", "pw")])).unwrap();
        assert_eq!(c.username, "giteaadmin");
        assert_eq!(c.password.expose_secret(), "pw");
    }

    #[test]
    fn token_stands_in_for_an_empty_password_only() {
        let with_token = secret(&[("username", "u"), ("password", ""), ("token", "tok")]);
        assert_eq!(
            from_secret(with_token).unwrap().password.expose_secret(),
            "tok"
        );
        let both = secret(&[("username", "u"), ("password", "pw"), ("token", "tok")]);
        assert_eq!(from_secret(both).unwrap().password.expose_secret(), "pw");
        let only_token = secret(&[("username", "u"), ("token", "tok")]);
        assert_eq!(
            from_secret(only_token).unwrap().password.expose_secret(),
            "tok"
        );
    }

    #[test]
    fn missing_keys_give_a_reason_without_values() {
        let no_user = from_secret(secret(&[("password", "hunter2")])).unwrap_err();
        assert!(no_user.contains("username"));
        assert!(!no_user.contains("hunter2"));
        assert!(from_secret(secret(&[("username", "u")])).is_err());
        assert!(from_secret(Secret::default()).is_err());
        let binary = Secret {
            data: Some([("username".to_string(), ByteString(vec![0xff, 0xfe]))].into()),
            ..Secret::default()
        };
        assert!(from_secret(binary).unwrap_err().contains("UTF-8"));
    }
}
