//! Where the local engine listens, found as the `docker` CLI finds it, and the connection to it.
//!
//! Order: `$DOCKER_HOST` (`unix://`, `tcp://` plain, or TLS with `DOCKER_TLS_VERIFY` and the
//! certificates in `DOCKER_CERT_PATH`); else the current Docker context (`$DOCKER_CONTEXT`, else
//! `currentContext` of `config.json`, its host in `contexts/meta/<sha256 of name>/meta.json`);
//! else `/var/run/docker.sock`, then Podman's sockets (`$XDG_RUNTIME_DIR/podman/podman.sock`,
//! `/run/podman/podman.sock`). An engine named by `DOCKER_HOST` or a context is the only one
//! tried; the default sockets are tried in turn.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, Docker};
use serde::Deserialize;
use sha2::Digest as _;

use crate::error::{Error, Result};

/// Seconds bollard waits for the headers of an answer (the body of an export may take longer).
const HEADERS_TIMEOUT: u64 = 120;
/// How long an engine may take to answer `/_ping` before the next one is tried.
const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// The sockets tried when nothing names an engine.
const DOCKER_SOCKET: &str = "/var/run/docker.sock";
const PODMAN_SYSTEM_SOCKET: &str = "/run/podman/podman.sock";

/// The environment that says where the engine is, read once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Environment {
    pub(crate) docker_host: Option<String>,
    pub(crate) docker_context: Option<String>,
    pub(crate) tls_verify: bool,
    pub(crate) cert_path: Option<PathBuf>,
    /// `$DOCKER_CONFIG`, else `~/.docker`.
    pub(crate) config_dir: Option<PathBuf>,
    pub(crate) runtime_dir: Option<PathBuf>,
}

impl Environment {
    pub(crate) fn from_process() -> Environment {
        let var = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
        let config_dir = var("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|home| Path::new(&home).join(".docker")));
        Environment {
            docker_host: var("DOCKER_HOST"),
            docker_context: var("DOCKER_CONTEXT"),
            tls_verify: var("DOCKER_TLS_VERIFY").is_some(),
            cert_path: var("DOCKER_CERT_PATH").map(PathBuf::from),
            config_dir,
            runtime_dir: var("XDG_RUNTIME_DIR").map(PathBuf::from),
        }
    }
}

/// How to reach one engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Address {
    Unix(PathBuf),
    /// `host:port` over plain HTTP, or TLS with the certificates (`ca.pem`, `cert.pem`,
    /// `key.pem`) in `tls`.
    Tcp {
        host: String,
        tls: Option<PathBuf>,
    },
}

/// One engine to try, and how messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) address: Address,
}

impl Endpoint {
    /// `unix:///var/run/docker.sock`, `tcp://host:2376`.
    pub(crate) fn label(&self) -> String {
        match &self.address {
            Address::Unix(path) => format!("unix://{}", path.display()),
            Address::Tcp { host, .. } => format!("tcp://{host}"),
        }
    }

    fn unix(path: impl Into<PathBuf>) -> Endpoint {
        Endpoint {
            address: Address::Unix(path.into()),
        }
    }
}

/// The engines to try, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoints {
    pub(crate) list: Vec<Endpoint>,
    /// Named by `DOCKER_HOST` or a context: the only engine the user wants, no fallback.
    pub(crate) chosen: bool,
}

impl Endpoints {
    /// How messages name what was tried.
    pub(crate) fn label(&self) -> String {
        self.list
            .iter()
            .map(Endpoint::label)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The engines to try for this environment.
pub(crate) fn endpoints(env: &Environment) -> Result<Endpoints> {
    if let Some(host) = &env.docker_host {
        let tls = env.tls_verify.then(|| cert_dir(env));
        return Ok(Endpoints {
            list: vec![parse_host(host, tls, "DOCKER_HOST")?],
            chosen: true,
        });
    }
    if let Some(endpoint) = context(env)? {
        return Ok(Endpoints {
            list: vec![endpoint],
            chosen: true,
        });
    }
    let mut list = vec![Endpoint::unix(DOCKER_SOCKET)];
    if let Some(runtime) = &env.runtime_dir {
        list.push(Endpoint::unix(runtime.join("podman/podman.sock")));
    }
    list.push(Endpoint::unix(PODMAN_SYSTEM_SOCKET));
    Ok(Endpoints {
        list,
        chosen: false,
    })
}

/// `DOCKER_CERT_PATH`, else the docker config directory.
fn cert_dir(env: &Environment) -> PathBuf {
    env.cert_path
        .clone()
        .or_else(|| env.config_dir.clone())
        .unwrap_or_else(|| PathBuf::from(".docker"))
}

/// `unix:///path` or `tcp://host:port` (`http://` too); anything else is an input error.
fn parse_host(host: &str, tls: Option<PathBuf>, from: &str) -> Result<Endpoint> {
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(bad_host(host, from));
        }
        return Ok(Endpoint::unix(path));
    }
    let rest = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"));
    match rest.map(|r| r.trim_end_matches('/')) {
        Some(address) if !address.is_empty() && !address.contains('/') => Ok(Endpoint {
            address: Address::Tcp {
                host: address.to_string(),
                tls,
            },
        }),
        _ => Err(bad_host(host, from)),
    }
}

fn bad_host(host: &str, from: &str) -> Error {
    Error::input(format!(
        "{from} {host:?} is not an engine address this tool can use"
    ))
    .with_hint("set DOCKER_HOST to unix:///path/to/docker.sock or tcp://HOST:PORT")
}

/// The host of the current Docker context, unless that is the default one.
fn context(env: &Environment) -> Result<Option<Endpoint>> {
    let Some(config_dir) = &env.config_dir else {
        return Ok(None);
    };
    let name = match &env.docker_context {
        Some(name) => name.clone(),
        None => match current_context(config_dir) {
            Some(name) => name,
            None => return Ok(None),
        },
    };
    if name == "default" {
        return Ok(None);
    }
    let id = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    let meta_path = config_dir.join("contexts/meta").join(&id).join("meta.json");
    let missing = || {
        Error::input(format!(
            "docker context {name:?} has no engine address ({} is missing or unreadable)",
            meta_path.display()
        ))
        .with_hint("docker context ls; switch with docker context use NAME, or set DOCKER_HOST")
    };
    let bytes = std::fs::read(&meta_path).map_err(|e| missing().with_cause(e))?;
    let meta: ContextMeta = serde_json::from_slice(&bytes).map_err(|e| missing().with_cause(e))?;
    let Some(host) = meta.endpoints.docker.and_then(|d| d.host) else {
        return Err(missing());
    };
    let tls_dir = config_dir.join("contexts/tls").join(&id).join("docker");
    let tls = tls_dir.join("ca.pem").exists().then_some(tls_dir);
    parse_host(&host, tls, &format!("docker context {name:?} host")).map(Some)
}

/// `currentContext` of `config.json`, when set.
fn current_context(config_dir: &Path) -> Option<String> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(rename = "currentContext", default)]
        current_context: Option<String>,
    }
    let bytes = std::fs::read(config_dir.join("config.json")).ok()?;
    let config: Config = serde_json::from_slice(&bytes).ok()?;
    config.current_context.filter(|c| !c.is_empty())
}

#[derive(Deserialize)]
struct ContextMeta {
    #[serde(rename = "Endpoints", default)]
    endpoints: ContextEndpoints,
}

#[derive(Deserialize, Default)]
struct ContextEndpoints {
    #[serde(default)]
    docker: Option<ContextDocker>,
}

#[derive(Deserialize)]
struct ContextDocker {
    #[serde(rename = "Host", default)]
    host: Option<String>,
}

/// Why an engine did not answer.
#[derive(Debug)]
pub(crate) enum Unreachable {
    /// The socket file is not there.
    Absent,
    /// The socket is there but we may not open it.
    Denied,
    /// Anything else: refused, timed out, not an engine, a TLS failure.
    Failed(String),
}

/// A connection to an engine that answered `/_ping`, at the API version both speak.
pub(crate) async fn connect(endpoint: &Endpoint) -> std::result::Result<Docker, Unreachable> {
    let docker = match &endpoint.address {
        Address::Unix(path) => {
            if std::fs::symlink_metadata(path).is_err() {
                return Err(Unreachable::Absent);
            }
            Docker::connect_with_unix(
                &path.to_string_lossy(),
                HEADERS_TIMEOUT,
                API_DEFAULT_VERSION,
            )
        }
        Address::Tcp { host, tls: None } => {
            Docker::connect_with_http(host, HEADERS_TIMEOUT, API_DEFAULT_VERSION)
        }
        Address::Tcp {
            host,
            tls: Some(dir),
        } => Docker::connect_with_ssl(
            &format!("https://{host}"),
            &dir.join("key.pem"),
            &dir.join("cert.pem"),
            &dir.join("ca.pem"),
            HEADERS_TIMEOUT,
            API_DEFAULT_VERSION,
        ),
    }
    .map_err(|e| classify(&e))?;
    match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
        Err(_) => return Err(Unreachable::Failed("no answer to /_ping".into())),
        Ok(Err(e)) => return Err(classify(&e)),
        Ok(Ok(_)) => {}
    }
    // An older engine refuses a newer API version than its own; speak its version.
    match tokio::time::timeout(PING_TIMEOUT, docker.clone().negotiate_version()).await {
        Ok(Ok(docker)) => Ok(docker),
        Ok(Err(e)) => {
            tracing::debug!(
                "engine {}: no API version ({e}); using ours",
                endpoint.label()
            );
            Ok(docker)
        }
        Err(_) => Ok(docker),
    }
}

/// What kind of failure an engine error is, from the I/O error at its root.
fn classify(error: &bollard::errors::Error) -> Unreachable {
    match io_kind(error) {
        Some(io::ErrorKind::PermissionDenied) => Unreachable::Denied,
        Some(io::ErrorKind::NotFound) => Unreachable::Absent,
        _ => Unreachable::Failed(error_chain(error)),
    }
}

/// The kind of the first `io::Error` in an error's chain of causes.
pub(crate) fn io_kind(error: &(dyn std::error::Error + 'static)) -> Option<io::ErrorKind> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        current = e.source();
    }
    None
}

/// An error and its causes on one line.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(e) = current {
        let cause = e.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        current = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        Environment::default()
    }

    #[test]
    fn docker_host_is_the_only_engine_tried() {
        let e = Environment {
            docker_host: Some("unix:///tmp/d.sock".into()),
            ..env()
        };
        let found = endpoints(&e).unwrap();
        assert!(found.chosen);
        assert_eq!(found.label(), "unix:///tmp/d.sock");

        let e = Environment {
            docker_host: Some("tcp://127.0.0.1:2375".into()),
            ..env()
        };
        assert_eq!(
            endpoints(&e).unwrap().list[0].address,
            Address::Tcp {
                host: "127.0.0.1:2375".into(),
                tls: None
            }
        );
    }

    #[test]
    fn tls_verify_takes_the_certificates_from_docker_cert_path() {
        let e = Environment {
            docker_host: Some("tcp://engine:2376".into()),
            tls_verify: true,
            cert_path: Some("/certs".into()),
            ..env()
        };
        assert_eq!(
            endpoints(&e).unwrap().list[0].address,
            Address::Tcp {
                host: "engine:2376".into(),
                tls: Some("/certs".into())
            }
        );
    }

    #[test]
    fn unusable_hosts_are_input_errors_naming_docker_host() {
        for host in ["ssh://me@box", "unix://", "tcp://", "npipe:////./pipe/x"] {
            let e = Environment {
                docker_host: Some(host.into()),
                ..env()
            };
            let error = endpoints(&e).unwrap_err();
            assert!(error.message().contains("DOCKER_HOST"), "{error}");
            assert!(error.hint().is_some_and(|h| h.contains("unix://")));
        }
    }

    #[test]
    fn without_docker_host_the_default_sockets_are_tried_in_order() {
        let e = Environment {
            runtime_dir: Some("/run/user/1000".into()),
            ..env()
        };
        let found = endpoints(&e).unwrap();
        assert!(!found.chosen);
        assert_eq!(
            found.label(),
            "unix:///var/run/docker.sock, unix:///run/user/1000/podman/podman.sock, \
             unix:///run/podman/podman.sock"
        );
    }

    #[test]
    fn the_current_context_names_the_engine() {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path();
        std::fs::write(config.join("config.json"), r#"{"currentContext":"colima"}"#).unwrap();
        let id = hex::encode(sha2::Sha256::digest(b"colima"));
        let meta = config.join("contexts/meta").join(id);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"colima","Metadata":{},"Endpoints":{"docker":{"Host":"unix:///home/me/.colima/docker.sock","SkipTLSVerify":false}}}"#,
        )
        .unwrap();
        let e = Environment {
            config_dir: Some(config.to_path_buf()),
            ..env()
        };
        let found = endpoints(&e).unwrap();
        assert!(found.chosen);
        assert_eq!(found.label(), "unix:///home/me/.colima/docker.sock");

        let named = Environment {
            docker_context: Some("default".into()),
            ..e.clone()
        };
        assert!(
            !endpoints(&named).unwrap().chosen,
            "default is the default socket"
        );

        let missing = Environment {
            docker_context: Some("gone".into()),
            ..e
        };
        let error = endpoints(&missing).unwrap_err();
        assert!(error.message().contains("\"gone\""), "{error}");
        assert!(error.hint().is_some_and(|h| h.contains("docker context")));
    }
}
