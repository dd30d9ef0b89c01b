//! Registry authentication: parsing `WWW-Authenticate` challenges and answering them with
//! `Basic` credentials or a `Bearer` token fetched from the challenge's realm.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use crate::credentials::Credentials;

/// One challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value such as
/// `Bearer realm="https://h/v2/token",service="container_registry",scope="*"`.
/// Returns `None` for schemes this tool does not speak.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, params) = match header.split_once(char::is_whitespace) {
        Some((scheme, params)) => (scheme, params),
        None => (header, ""),
    };
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(params);
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    Some(Challenge::Bearer {
        realm: get("realm").filter(|r| !r.is_empty())?,
        service: get("service"),
        scope: get("scope"),
    })
}

/// `key=value` or `key="quoted, value"` pairs separated by commas.
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() && chars.peek().is_none() {
            break;
        }
        if chars.next_if_eq(&'=').is_none() {
            if chars.peek().is_none() {
                break;
            }
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| *c != ',')));
            value = value.trim().to_string();
        }
        pairs.push((key.trim().to_string(), value));
    }
    pairs
}

/// The most of a token endpoint's answer that is read: real tokens are a few KiB (a JWT with
/// a certificate chain in its header stays under 8 KiB).
pub const TOKEN_LIMIT: usize = 64 << 10;

/// The token endpoint's answer (`token` per the docker spec, `access_token` per OAuth2).
#[derive(serde::Deserialize)]
pub struct TokenResponse {
    token: Option<SecretString>,
    access_token: Option<SecretString>,
    expires_in: Option<u64>,
}

impl TokenResponse {
    /// Reads an answer of at most [`TOKEN_LIMIT`] bytes. The error names no byte of the body,
    /// which may hold a token.
    pub fn parse(bytes: &[u8]) -> std::result::Result<TokenResponse, TokenUnreadable> {
        serde_json::from_slice(bytes).map_err(|e| TokenUnreadable(e.classify()))
    }
}

/// Why a token answer could not be read, without the text serde would quote from it.
#[derive(Debug, thiserror::Error)]
#[error("the answer is not a JSON token object ({0:?})")]
pub struct TokenUnreadable(serde_json::error::Category);

/// A bearer token with the time it stops being good.
pub struct Token {
    value: SecretString,
    renew_at: Instant,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Tokens without `expires_in` last 60 s, as the docker token spec says.
    pub fn from_response(response: TokenResponse, fetched: Instant) -> Option<Token> {
        let value = response.token.or(response.access_token)?;
        if value.expose_secret().is_empty() {
            return None;
        }
        // Capped: a token server's number must not overflow the clock.
        let lifetime = response.expires_in.unwrap_or(60).clamp(10, 86_400);
        // Renew a little early so a request never goes out with a token about to expire.
        let renew_at =
            fetched + Duration::from_secs(lifetime) - Duration::from_secs(lifetime / 10 + 1);
        Some(Token { value, renew_at })
    }

    pub fn is_fresh(&self) -> bool {
        Instant::now() < self.renew_at
    }

    pub fn header_value(&self) -> String {
        format!("Bearer {}", self.value.expose_secret())
    }
}

/// The `Authorization` value for Basic auth.
pub fn basic_header(credentials: &Credentials) -> String {
    use base64::Engine as _;
    let raw = format!(
        "{}:{}",
        credentials.username,
        credentials.password.expose_secret()
    );
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// The scope to ask for: pushing needs pull and push on the repository.
pub fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// The scope to read a repository (a `docker://` source, or one blobs are mounted from).
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_giteas_bearer_challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://gitea.cnoe.localtest.me:8443/v2/token",service="container_registry",scope="*""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://gitea.cnoe.localtest.me:8443/v2/token".into(),
                service: Some("container_registry".into()),
                scope: Some("*".into()),
            })
        );
    }

    #[test]
    fn parses_distributions_challenge_with_commas_in_scope() {
        let c = parse_challenge(
            r#"bearer realm="http://127.0.0.1:1/v2/token", service="reg", scope="repository:a/b:pull,push""#,
        );
        let Some(Challenge::Bearer { scope, service, .. }) = c else {
            panic!("not bearer: {c:?}");
        };
        assert_eq!(scope.as_deref(), Some("repository:a/b:pull,push"));
        assert_eq!(service.as_deref(), Some("reg"));
    }

    #[test]
    fn parses_basic_and_rejects_unknown_or_incomplete() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("basic"), Some(Challenge::Basic));
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge(r#"Bearer realm="""#), None);
        assert_eq!(parse_challenge(""), None);
    }

    #[test]
    fn unquoted_and_escaped_values() {
        let c = parse_challenge(r#"Bearer realm=https://h/t,service="a\"b",junk,x="#);
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://h/t".into(),
                service: Some("a\"b".into()),
                scope: None,
            })
        );
    }

    #[test]
    fn token_prefers_token_then_access_token() {
        let json = r#"{"access_token":"at","expires_in":300}"#;
        let response: TokenResponse = serde_json::from_str(json).unwrap();
        let token = Token::from_response(response, Instant::now()).unwrap();
        assert_eq!(token.header_value(), "Bearer at");
        assert!(token.is_fresh());
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        let empty: TokenResponse = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert!(Token::from_response(empty, Instant::now()).is_none());
    }

    #[test]
    fn an_unreadable_token_answer_never_quotes_it() {
        let error = TokenResponse::parse(br#"{"token":1,"expires_in":"secret-looking"}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("not a JSON token object"), "{error}");
        assert!(!error.contains("secret-looking"), "{error}");
        assert!(TokenResponse::parse(b"{\"token\":\"t\"}").is_ok());
    }

    #[test]
    fn a_huge_expires_in_does_not_overflow_the_clock() {
        let response: TokenResponse =
            serde_json::from_str(r#"{"token":"t","expires_in":18446744073709551615}"#).unwrap();
        let token = Token::from_response(response, Instant::now()).unwrap();
        assert!(token.is_fresh());
    }

    #[test]
    fn scope_asks_for_pull_and_push() {
        assert_eq!(
            push_scope("giteaadmin/app"),
            "repository:giteaadmin/app:pull,push"
        );
        assert_eq!(
            pull_scope("library/ubuntu"),
            "repository:library/ubuntu:pull"
        );
    }
}
