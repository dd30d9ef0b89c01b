//! `GET /images/{name}/json`, read by hand: bollard collects an answer whole, so an engine (or
//! anything listening on its socket or port) that answers without end would fill memory. Here
//! the answer is read to [`LIMIT`] bytes within a deadline: over a Unix socket as HTTP/1.0, so
//! that the body simply runs to the end of the connection; over `tcp://` (plain, or TLS with
//! the `DOCKER_CERT_PATH` files) with reqwest, a piece at a time.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use serde::Deserialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::digest::Digest;

/// The most of an inspect answer read: a real one is a few KiB, tens with many tags.
pub(super) const LIMIT: usize = 4 << 20;
/// The inspect answer must be whole within this long.
const DEADLINE: Duration = Duration::from_secs(60);
/// For tests only: the deadline in milliseconds.
pub(super) const DEADLINE_ENV: &str = "IDPBUILDER_TEST_ENGINE_DEADLINE_MS";

/// The parts of the answer we use.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Inspected {
    pub(super) diff_ids: Vec<Digest>,
    pub(super) size: Option<u64>,
}

/// What the engine said.
#[derive(Debug)]
pub(super) enum Answer {
    Found(Inspected),
    NotFound,
    /// Anything else, in words for an `error:` line.
    Failed(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Body {
    #[serde(rename = "RootFS")]
    root_fs: Option<RootFs>,
    size: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RootFs {
    layers: Option<Vec<String>>,
}

pub(super) fn deadline(ms: Option<&str>) -> Duration {
    ms.and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEADLINE, |ms| Duration::from_millis(ms.max(1)))
}

/// Asks the engine at `socket` about `name`.
pub(super) async fn inspect(socket: &Path, name: &str) -> Answer {
    within_deadline(async {
        exchange(socket, name)
            .await
            .map(|bytes| read_answer(&bytes))
    })
    .await
}

/// `asking` held to the inspection's deadline: its answer, or why there is none.
async fn within_deadline(
    asking: impl std::future::Future<Output = Result<Answer, String>>,
) -> Answer {
    let limit = deadline(std::env::var(DEADLINE_ENV).ok().as_deref());
    match tokio::time::timeout(limit, asking).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(why)) => Answer::Failed(why),
        Err(_) => Answer::Failed(format!(
            "its answer to the image's inspection did not come whole within {}s",
            limit.as_secs_f64()
        )),
    }
}

/// Asks the engine at `tcp://host` about `name`: plain HTTP, or TLS with `ca.pem`, `cert.pem`
/// and `key.pem` from `tls`, held to the same limit and deadline as over a socket.
pub(super) async fn inspect_tcp(host: &str, tls: Option<&Path>, name: &str) -> Answer {
    within_deadline(async {
        let (status, body) = exchange_tcp(host, tls, name).await?;
        Ok(answer(Some(status), &body))
    })
    .await
}

async fn exchange_tcp(
    host: &str,
    tls: Option<&Path>,
    name: &str,
) -> Result<(u16, Vec<u8>), String> {
    crate::registry::install_default_provider();
    let mut builder = reqwest::Client::builder().no_proxy();
    if let Some(dir) = tls {
        builder = builder.tls_backend_preconfigured(tls_config(dir)?);
    }
    let client = builder
        .build()
        .map_err(|e| format!("cannot set up a connection: {e}"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{host}/images/{}/json", encode(name));
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("cannot ask: {e}"))?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("its answer broke off: {e}"))?
    {
        if body.len() + chunk.len() > LIMIT {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// Docker's TLS: the engine's certificate checked against `ca.pem`, ours from `cert.pem` and
/// `key.pem`, as bollard's `connect_with_ssl` sets it up.
fn tls_config(dir: &Path) -> Result<rustls::ClientConfig, String> {
    let read = |file: &str| {
        std::fs::read(dir.join(file))
            .map_err(|e| format!("cannot read {}: {e}", dir.join(file).display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&read("ca.pem")?) {
        let ca = ca.map_err(|e| format!("ca.pem is not PEM: {e}"))?;
        roots
            .add(ca)
            .map_err(|e| format!("ca.pem holds an unusable certificate: {e}"))?;
    }
    let chain = CertificateDer::pem_slice_iter(&read("cert.pem")?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cert.pem is not PEM: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(&read("key.pem")?)
        .map_err(|e| format!("key.pem holds no private key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_root_certificates(roots)
                .with_client_auth_cert(chain, key)
        })
        .map_err(|e| format!("cannot set up TLS: {e}"))
}

fn too_large() -> String {
    format!(
        "its answer to the image's inspection is larger than {} MiB",
        LIMIT >> 20
    )
}

async fn exchange(socket: &Path, name: &str) -> Result<Vec<u8>, String> {
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let request = format!(
        "GET /images/{}/json HTTP/1.0\r\nHost: docker\r\n\r\n",
        encode(name)
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot ask: {e}"))?;
    // The body runs to the end of the connection, or to its Content-Length when one is sent
    // (an engine may keep the connection open all the same).
    let mut bytes = Vec::new();
    let mut buffer = vec![0; 64 << 10];
    loop {
        if let Some(whole) = expected_len(&bytes)
            && bytes.len() >= whole
        {
            bytes.truncate(whole);
            return Ok(bytes);
        }
        let n = stream
            .read(&mut buffer)
            .await
            .map_err(|e| format!("its answer broke off: {e}"))?;
        if n == 0 {
            return Ok(bytes);
        }
        if bytes.len() + n > LIMIT {
            return Err(too_large());
        }
        bytes.extend_from_slice(&buffer[..n]);
    }
}

/// The length of the whole answer, once its head is in and names a Content-Length.
fn expected_len(bytes: &[u8]) -> Option<usize> {
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..split]);
    let len = head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
    })?;
    Some(split + 4 + len)
}

/// A status line, headers and a body that runs to the end.
fn read_answer(bytes: &[u8]) -> Answer {
    let Some(split) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Answer::Failed("its answer is not HTTP".to_string());
    };
    let head = String::from_utf8_lossy(&bytes[..split]);
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok());
    answer(status, &bytes[split + 4..])
}

/// What an answer with `status` and `body` says.
fn answer(status: Option<u16>, body: &[u8]) -> Answer {
    match status {
        Some(200) => match serde_json::from_slice::<Body>(body) {
            Ok(body) => Answer::Found(Inspected {
                diff_ids: body
                    .root_fs
                    .and_then(|r| r.layers)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|d| Digest::parse(d).ok())
                    .collect(),
                size: body.size.and_then(|s| u64::try_from(s).ok()),
            }),
            Err(e) => Answer::Failed(format!("its description of the image is not JSON ({e})")),
        },
        Some(404) => Answer::NotFound,
        Some(code) => {
            let message = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| {
                    v.get("message")
                        .and_then(|m| m.as_str())
                        .map(str::to_string)
                })
                .unwrap_or_default();
            let message = crate::text::escape_controls(&message).into_owned();
            Answer::Failed(
                format!("it answered {code} {message}")
                    .trim_end()
                    .to_string(),
            )
        }
        None => Answer::Failed("its answer is not HTTP".to_string()),
    }
}

/// A name as a path segment: `/`, `:` and `@` stay (the engine's route takes them), anything
/// outside the unreserved set is percent-encoded.
fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/:@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_by_status() {
        let found = read_answer(
            b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"Size\":7,\"RootFS\":{\"Layers\":[\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"]}}",
        );
        let Answer::Found(inspected) = found else {
            panic!("{found:?}");
        };
        assert_eq!(inspected.size, Some(7));
        assert_eq!(inspected.diff_ids.len(), 1);
        assert!(matches!(
            read_answer(b"HTTP/1.0 404 Not Found\r\n\r\n{}"),
            Answer::NotFound
        ));
        let Answer::Failed(why) = read_answer(b"HTTP/1.0 500 Oops\r\n\r\n{\"message\":\"broken\"}")
        else {
            panic!("not failed");
        };
        assert_eq!(why, "it answered 500 broken");
        assert!(matches!(read_answer(b"garbage"), Answer::Failed(_)));
    }

    #[test]
    fn names_keep_their_path_characters() {
        assert_eq!(encode("reg:5000/team/app:1.0"), "reg:5000/team/app:1.0");
        assert_eq!(encode("a b?"), "a%20b%3F");
        assert_eq!(deadline(Some("300")), Duration::from_millis(300));
    }
}
