//! A test-only token server for distribution's `auth: token`, shaped like Gitea's `/v2/token`.
//!
//! `GET /v2/token?service=S&scope=repository:NAME:pull,push` with `Authorization: Basic` of the
//! right user answers `200 {"token", "access_token", "expires_in"}`; wrong or missing credentials
//! answer 401. The JWT is RS256, carries the issuer certificate in its `x5c` header (distribution
//! 2.8 verifies it against `rootcertbundle`) and grants the requested actions on each scope.
//! It runs at 127.0.0.1 on a std thread, so plain `#[test]`s can use it: over plain HTTP for a
//! plain-HTTP registry, over TLS with the registry's own certificate for a TLS one (the tool
//! refuses a plain-HTTP realm for an HTTPS registry, and Gitea's realm is its own origin).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;

use super::certs::{self, IssuerCert, ServerCert};

/// The `service` (JWT audience) the test registries are configured with.
pub const SERVICE: &str = "container_registry";
/// The JWT issuer the test registries trust.
pub const ISSUER: &str = "idpbuilder-push-test-issuer";
/// Lifetime of issued tokens in seconds.
pub const EXPIRES_IN: u64 = 300;

/// Who may get a token and what signs it.
struct Config {
    user: String,
    pass: String,
    /// A request without credentials gets a token for the `pull` actions it asks (Docker Hub's
    /// public images).
    anonymous_pull: bool,
    issuer: IssuerCert,
    x5c: String,
}

#[derive(Default)]
struct Counters {
    requests: AtomicUsize,
    issued: AtomicUsize,
    refused: AtomicUsize,
    /// The `scope` parameters of every token request, in order.
    scopes: std::sync::Mutex<Vec<String>>,
}

/// A running token server; stopped on drop.
pub struct TokenServer {
    addr: SocketAddr,
    /// `http` or `https`.
    scheme: &'static str,
    issuer_cert: PathBuf,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TokenServer {
    /// Starts a plain-HTTP token server on a free port of 127.0.0.1 that gives tokens to
    /// `user`/`pass`, signed with `issuer`'s key.
    pub fn start(issuer: IssuerCert, user: &str, pass: &str) -> TokenServer {
        TokenServer::start_with(issuer, user, pass, None, false)
    }

    /// Plain HTTP or TLS (with `cert`), and with `anonymous_pull` tokens for `pull` to anyone
    /// who asks without credentials, as Docker Hub gives them.
    pub fn start_for(
        issuer: IssuerCert,
        user: &str,
        pass: &str,
        cert: Option<&ServerCert>,
        anonymous_pull: bool,
    ) -> TokenServer {
        TokenServer::start_with(
            issuer,
            user,
            pass,
            cert.map(certs::rustls_server_config),
            anonymous_pull,
        )
    }

    /// The same over TLS, presenting `cert` (the registry's own certificate, which covers
    /// 127.0.0.1).
    pub fn start_tls(issuer: IssuerCert, user: &str, pass: &str, cert: &ServerCert) -> TokenServer {
        TokenServer::start_with(
            issuer,
            user,
            pass,
            Some(certs::rustls_server_config(cert)),
            false,
        )
    }

    fn start_with(
        issuer: IssuerCert,
        user: &str,
        pass: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
        anonymous_pull: bool,
    ) -> TokenServer {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token server socket");
        let addr = listener.local_addr().expect("token server address");
        let issuer_cert = issuer.cert.clone();
        let config = Arc::new(Config {
            user: user.to_owned(),
            pass: pass.to_owned(),
            anonymous_pull,
            x5c: certs::pem_body_base64(&issuer.cert),
            issuer,
        });
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (counters, stop) = (Arc::clone(&counters), Arc::clone(&stop));
            std::thread::spawn(move || accept_loop(listener, config, tls, counters, stop))
        };
        TokenServer {
            addr,
            scheme,
            issuer_cert,
            counters,
            stop,
            thread: Some(thread),
        }
    }

    /// The realm URL to configure in the registry: `http[s]://127.0.0.1:PORT/v2/token`.
    pub fn realm(&self) -> String {
        format!("{}://{}/v2/token", self.scheme, self.addr)
    }

    /// The issuer certificate (PEM): the registry's `rootcertbundle`.
    pub fn issuer_cert(&self) -> &Path {
        &self.issuer_cert
    }

    /// Requests received so far (any path, any outcome).
    pub fn requests(&self) -> usize {
        self.counters.requests.load(Ordering::SeqCst)
    }

    /// Tokens issued so far.
    pub fn tokens_issued(&self) -> usize {
        self.counters.issued.load(Ordering::SeqCst)
    }

    /// Requests refused with 401 so far.
    pub fn refused(&self) -> usize {
        self.counters.refused.load(Ordering::SeqCst)
    }

    /// The `scope` parameters of every token request so far.
    pub fn scopes(&self) -> Vec<String> {
        self.counters
            .scopes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    config: Arc<Config>,
    tls: Option<Arc<rustls::ServerConfig>>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let (config, counters, tls) = (Arc::clone(&config), Arc::clone(&counters), tls.clone());
        std::thread::spawn(move || {
            if stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .is_err()
            {
                return;
            }
            match tls {
                Some(tls) => {
                    let Ok(connection) = rustls::ServerConnection::new(tls) else {
                        return;
                    };
                    let mut stream = rustls::StreamOwned::new(connection, stream);
                    let _ = serve(&mut stream, &config, &counters);
                    stream.conn.send_close_notify();
                    let _ = stream.flush();
                }
                None => {
                    let mut stream = stream;
                    let _ = serve(&mut stream, &config, &counters);
                }
            }
        });
    }
}

/// Answers one request, then closes the connection.
fn serve<S: Read + Write>(
    stream: &mut S,
    config: &Config,
    counters: &Counters,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = None;
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim().to_owned();
            match name.trim().to_ascii_lowercase().as_str() {
                "authorization" => authorization = Some(value),
                "content-length" => content_length = value.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    // Drain a body if there is one, so the client sees a clean response.
    let mut body = vec![0u8; content_length.min(1 << 20)];
    reader.read_exact(&mut body)?;
    counters.requests.fetch_add(1, Ordering::SeqCst);

    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let url = url::Url::parse(&format!("http://token.invalid{target}"));
    let (status, body) = match url {
        Ok(url) if method == "GET" && url.path() == "/v2/token" => {
            counters
                .scopes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(
                    url.query_pairs()
                        .filter(|(k, _)| k == "scope")
                        .map(|(_, v)| v.into_owned()),
                );
            let anonymous = authorization.is_none() && config.anonymous_pull;
            if anonymous || authorized(authorization.as_deref(), config) {
                counters.issued.fetch_add(1, Ordering::SeqCst);
                let token = sign_token(config, &url, anonymous);
                let body = json!({"token": token, "access_token": token,
                    "expires_in": EXPIRES_IN});
                ("200 OK", body.to_string())
            } else {
                counters.refused.fetch_add(1, Ordering::SeqCst);
                let body = json!({"errors": [{"code": "UNAUTHORIZED",
                    "message": "invalid username or password"}]});
                ("401 Unauthorized", body.to_string())
            }
        }
        Ok(_) => (
            "404 Not Found",
            r#"{"errors":[{"code":"NOT_FOUND"}]}"#.to_owned(),
        ),
        Err(_) => (
            "400 Bad Request",
            r#"{"errors":[{"code":"BAD_REQUEST"}]}"#.to_owned(),
        ),
    };
    let challenge = if status.starts_with("401") {
        "WWW-Authenticate: Basic realm=\"token\"\r\n"
    } else {
        ""
    };
    let stream = reader.get_mut();
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         {challenge}Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

fn authorized(header: Option<&str>, config: &Config) -> bool {
    let Some(encoded) = header.and_then(|h| h.strip_prefix("Basic ")) else {
        return false;
    };
    let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{}:{}", config.user, config.pass);
    decoded == expected.as_bytes()
}

/// The access claim for each `scope=TYPE:NAME:ACTIONS` parameter: all actions granted, or only
/// `pull` for an anonymous token.
fn access(url: &url::Url, pull_only: bool) -> Vec<serde_json::Value> {
    url.query_pairs()
        .filter(|(key, _)| key == "scope")
        .flat_map(|(_, value)| {
            value
                .split(' ')
                .filter_map(|scope| {
                    let (kind, rest) = scope.split_once(':')?;
                    let (name, actions) = rest.rsplit_once(':')?;
                    let actions: Vec<&str> = actions
                        .split(',')
                        .filter(|a| !pull_only || *a == "pull")
                        .collect();
                    Some(json!({"type": kind, "name": name, "actions": actions}))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn sign_token(config: &Config, url: &url::Url, anonymous: bool) -> String {
    static JTI: AtomicUsize = AtomicUsize::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let service = url
        .query_pairs()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| SERVICE.to_owned());
    let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [config.x5c]});
    let claims = json!({
        "iss": ISSUER, "sub": if anonymous { "" } else { config.user.as_str() }, "aud": service,
        "exp": now + EXPIRES_IN, "nbf": now.saturating_sub(10), "iat": now,
        "jti": format!("test-{}-{}", now, JTI.fetch_add(1, Ordering::SeqCst)),
        "access": access(url, anonymous),
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = rs256(&config.issuer, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// RSASSA-PKCS1-v1_5 with SHA-256 over `data`, by `openssl dgst -sha256 -sign KEY`.
fn rs256(issuer: &IssuerCert, data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(&issuer.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run `openssl dgst` to sign a token");
    child
        .stdin
        .take()
        .expect("openssl stdin")
        .write_all(data)
        .expect("write token to openssl");
    let out = child.wait_with_output().expect("wait for openssl dgst");
    assert!(
        out.status.success(),
        "openssl dgst -sign failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
