//! Source 4: docker's `config.json` (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`), as `docker login` leaves it: `credHelpers` / `credsStore` helpers,
//! then `auths` entries with base64 `auth`, `username`/`password` or `identitytoken`.
//!
//! Keys are matched as docker matches them: the exact server address first (for Docker Hub
//! `https://index.docker.io/v1/`), else any key whose host name (scheme and path dropped) is the
//! registry's. A missing, unreadable or malformed file, or a failing helper, is passed over
//! with a debug line; values never reach a message.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use secrecy::SecretString;
use serde::Deserialize;

use super::program::{self, Limits};
use super::{Credentials, Origin};

/// Docker Hub's key in `config.json` and what its helpers are asked for.
pub const DOCKER_HUB: &str = "https://index.docker.io/v1/";
/// A credential helper is given this long to answer.
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);
/// For tests only: the helper's time in milliseconds.
pub const HELPER_TIMEOUT_ENV: &str = "IDPBUILDER_TEST_HELPER_TIMEOUT_MS";
/// The most of a helper's answer that is read: a JSON object with a user name and a secret.
const HELPER_OUTPUT_LIMIT: usize = 1 << 20;

fn helper_timeout(ms: Option<&str>) -> Duration {
    ms.and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(HELPER_TIMEOUT, |ms| Duration::from_millis(ms.max(1)))
}

/// The parts of `config.json` we read. No `Debug`: it holds secrets as plain strings until they
/// are turned into [`Credentials`].
#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// Where `config.json` is: `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
pub fn config_path(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    match env("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => env("HOME").map(|home| PathBuf::from(home).join(".docker").join("config.json")),
    }
}

/// The credentials docker would use for `host` (`host[:port]`), from this process's config.
/// Runs on a blocking thread: a credential helper may take a while.
pub async fn lookup(host: String) -> Option<Credentials> {
    match tokio::task::spawn_blocking(move || lookup_blocking(&host)).await {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!("docker config: lookup failed: {e}");
            None
        }
    }
}

fn lookup_blocking(host: &str) -> Option<Credentials> {
    let Some(path) = config_path(|key| std::env::var_os(key)) else {
        tracing::debug!("docker config: neither DOCKER_CONFIG nor HOME is set");
        return None;
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            tracing::debug!("docker config: cannot read {}: {e}", path.display());
            return None;
        }
    };
    let config: ConfigFile = match serde_json::from_str(&text) {
        Ok(config) => config,
        Err(e) => {
            tracing::debug!("docker config: {} is not valid: {e}", path.display());
            return None;
        }
    };
    drop(text);
    tracing::debug!("docker config: looking up {host} in {}", path.display());
    from_config(&config, host, run_helper)
}

/// The server address docker looks up for a registry host.
pub fn server_address(host: &str) -> String {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        other => other.to_string(),
    }
}

/// docker's `ConvertToHostname`: `https://host:port/path` and `host/path` become `host:port`.
pub fn key_host(key: &str) -> &str {
    let rest = key.split_once("://").map_or(key, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

type Helper = fn(&str, &str) -> Result<Option<Credentials>, String>;

fn from_config(config: &ConfigFile, host: &str, helper: Helper) -> Option<Credentials> {
    let server = server_address(host);
    let helper_name = config
        .cred_helpers
        .get(host)
        .or(config.creds_store.as_ref())
        .filter(|name| !name.is_empty());
    if let Some(name) = helper_name {
        match helper(name, &server) {
            Ok(Some(credentials)) => {
                tracing::debug!("docker config: helper docker-credential-{name} has {server}");
                return Some(credentials);
            }
            Ok(None) => tracing::debug!(
                "docker config: helper docker-credential-{name} has nothing for {server}"
            ),
            Err(why) => {
                tracing::debug!("docker config: helper docker-credential-{name} failed: {why}")
            }
        }
    }
    let (key, entry) = config
        .auths
        .get_key_value(&server)
        .or_else(|| config.auths.iter().find(|(key, _)| key_host(key) == server))?;
    match from_entry(entry) {
        Ok(credentials) => {
            tracing::debug!("docker config: using the auths entry {key:?}");
            Some(credentials)
        }
        Err(why) => {
            tracing::debug!("docker config: passing over the auths entry {key:?}: {why}");
            None
        }
    }
}

/// An `auths` entry: base64 `auth` wins over `username`/`password`; an `identitytoken` is used as
/// the password when there is nothing else.
fn from_entry(entry: &AuthEntry) -> Result<Credentials, String> {
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bytes = STANDARD
            .decode(auth.trim())
            .or_else(|_| STANDARD_NO_PAD.decode(auth.trim().trim_end_matches('=')))
            .map_err(|_| "its auth is not base64".to_string())?;
        let text = String::from_utf8(bytes).map_err(|_| "its auth is not UTF-8".to_string())?;
        let (username, password) = text
            .split_once(':')
            .ok_or_else(|| "its auth is not user:password".to_string())?;
        return Ok(Credentials::new(
            username.to_string(),
            SecretString::from(password.to_string()),
            Origin::DockerConfig,
        ));
    }
    let username = entry.username.clone().filter(|u| !u.is_empty());
    if let (Some(username), Some(password)) = (&username, &entry.password) {
        return Ok(Credentials::new(
            username.clone(),
            SecretString::from(password.clone()),
            Origin::DockerConfig,
        ));
    }
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Credentials::new(
            username.unwrap_or_else(|| "<token>".to_string()),
            SecretString::from(token.to_string()),
            Origin::DockerConfig,
        ));
    }
    Err("it has no auth, username/password or identitytoken".into())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// `docker-credential-NAME get` with the server address on stdin; `Ok(None)` when it has
/// nothing. Its output is never shown: it may hold the secret.
fn run_helper(name: &str, server: &str) -> Result<Option<Credentials>, String> {
    // docker runs `docker-credential-NAME` from PATH; a `/` would make it a path of its own
    // (relative to wherever the push was started).
    if name.is_empty() || name.contains('/') {
        return Err(format!(
            "helper name {name:?} is not a name (it may not be empty or hold a /)"
        ));
    }
    let program = format!("docker-credential-{name}");
    let limits = Limits {
        output: HELPER_OUTPUT_LIMIT,
        time: helper_timeout(std::env::var(HELPER_TIMEOUT_ENV).ok().as_deref()),
    };
    let run = program::run(&program, &["get"], server.as_bytes(), &limits);
    // Called on a blocking thread of the push's runtime; unit tests call it without one.
    let (status, output) = match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.block_on(run)?,
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot wait for {program}: {e}"))?
            .block_on(run)?,
    };
    if !status.success() {
        // docker's helpers say "credentials not found in native keychain" and exit 1.
        if String::from_utf8_lossy(&output).contains("credentials not found") {
            return Ok(None);
        }
        return Err(format!("{program} exited with {status}"));
    }
    let answer: HelperAnswer = serde_json::from_slice(&output)
        .map_err(|_| format!("{program} gave an answer that is not its JSON"))?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials::new(
        answer.username,
        SecretString::from(answer.secret),
        Origin::DockerConfig,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn config(json: &str) -> ConfigFile {
        serde_json::from_str(json).unwrap()
    }

    fn no_helper(_: &str, _: &str) -> Result<Option<Credentials>, String> {
        panic!("no helper should run")
    }

    fn user_and_password(c: Option<Credentials>) -> Option<(String, String)> {
        c.map(|c| (c.username, c.password.expose_secret().to_string()))
    }

    fn pair(u: &str, p: &str) -> Option<(String, String)> {
        Some((u.to_string(), p.to_string()))
    }

    #[test]
    fn keys_match_with_or_without_scheme_and_path() {
        // base64("u:p:with:colons")
        let c =
            config(r#"{"auths":{"https://localhost:5000/v2/":{"auth":"dTpwOndpdGg6Y29sb25z"}}}"#);
        let found = from_config(&c, "localhost:5000", no_helper);
        assert_eq!(user_and_password(found), pair("u", "p:with:colons"));
        assert!(from_config(&c, "localhost", no_helper).is_none());
        assert!(from_config(&c, "localhost:5001", no_helper).is_none());
    }

    #[test]
    fn docker_hub_uses_its_v1_url() {
        let c = config(
            r#"{"auths":{"https://index.docker.io/v1/":{"username":"hub","password":"pw"}}}"#,
        );
        assert_eq!(server_address("docker.io"), DOCKER_HUB);
        assert_eq!(
            user_and_password(from_config(&c, "docker.io", no_helper)),
            pair("hub", "pw")
        );
        assert_eq!(
            user_and_password(from_config(&c, "registry-1.docker.io", no_helper)),
            pair("hub", "pw")
        );
        assert!(from_config(&c, "index.docker.io.evil", no_helper).is_none());
    }

    #[test]
    fn exact_key_wins_over_a_host_match() {
        let c = config(
            r#"{"auths":{"http://h:1":{"username":"loose","password":"x"},"h:1":{"username":"exact","password":"y"}}}"#,
        );
        assert_eq!(
            user_and_password(from_config(&c, "h:1", no_helper)),
            pair("exact", "y")
        );
    }

    #[test]
    fn auth_wins_then_username_password_then_identitytoken() {
        let entry = |json: &str| from_entry(&serde_json::from_str(json).unwrap());
        let both = entry(r#"{"auth":"YTpi","username":"c","password":"d"}"#).unwrap();
        assert_eq!(
            (both.username.as_str(), both.password.expose_secret()),
            ("a", "b")
        );
        let token = entry(r#"{"identitytoken":"tok"}"#).unwrap();
        assert_eq!(
            (token.username.as_str(), token.password.expose_secret()),
            ("<token>", "tok")
        );
        let unpadded = entry(r#"{"auth":"YTpiYw"}"#).unwrap();
        assert_eq!(unpadded.password.expose_secret(), "bc");
        assert!(entry(r#"{"auth":"!!!"}"#).is_err());
        assert!(entry(r#"{"auth":"bm9jb2xvbg=="}"#).is_err());
        assert!(entry(r#"{}"#).is_err());
    }

    #[test]
    fn helpers_are_asked_first_and_fall_back_to_auths() {
        fn helper(name: &str, server: &str) -> Result<Option<Credentials>, String> {
            match (name, server) {
                ("test", "h:1") => Ok(Some(Credentials::new(
                    "helped",
                    SecretString::from("s".to_string()),
                    Origin::DockerConfig,
                ))),
                ("store", _) => Ok(None),
                _ => Err("unexpected".into()),
            }
        }
        let c = config(
            r#"{"credHelpers":{"h:1":"test"},"credsStore":"store","auths":{"h:2":{"auth":"YTpi"}}}"#,
        );
        assert_eq!(
            user_and_password(from_config(&c, "h:1", helper)),
            pair("helped", "s")
        );
        assert_eq!(
            user_and_password(from_config(&c, "h:2", helper)),
            pair("a", "b")
        );
        assert!(from_config(&c, "h:3", helper).is_none());
    }

    #[test]
    fn a_helper_name_with_a_slash_is_never_run() {
        for name in ["x/evil", "../x", "/bin/sh", ""] {
            let error = run_helper(name, "h:1").err().unwrap_or_default();
            assert!(error.contains("is not a name"), "{name}: {error}");
        }
    }

    #[test]
    fn the_helper_timeout_reads_the_test_variable() {
        assert_eq!(helper_timeout(None), HELPER_TIMEOUT);
        assert_eq!(helper_timeout(Some("250")), Duration::from_millis(250));
        assert_eq!(helper_timeout(Some("soon")), HELPER_TIMEOUT);
    }

    #[test]
    fn config_path_prefers_docker_config() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            config_path(env(&[("DOCKER_CONFIG", "/d"), ("HOME", "/h")])),
            Some(PathBuf::from("/d/config.json"))
        );
        assert_eq!(
            config_path(env(&[("DOCKER_CONFIG", ""), ("HOME", "/h")])),
            Some(PathBuf::from("/h/.docker/config.json"))
        );
        assert_eq!(config_path(env(&[])), None);
    }

    #[test]
    fn key_host_is_docker_convert_to_hostname() {
        assert_eq!(key_host("https://h:5000/v1/"), "h:5000");
        assert_eq!(key_host("h:5000/v2"), "h:5000");
        assert_eq!(key_host("h"), "h");
    }
}
