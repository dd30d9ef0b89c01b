//! A registry-shaped server for the security tests, over plain HTTP or TLS: every request is
//! recorded (method, path and query, `Authorization`, body length) and answered by a closure
//! that also learns the server's own address, so it can point a `Location` or a token realm at
//! itself or at another server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

use super::support::certs::{self, ServerCert};

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `http` or `https`: how this server is reached.
    pub scheme: &'static str,
    pub method: String,
    /// Path and query.
    pub target: String,
    pub authorization: Option<String>,
    pub body_len: usize,
}

/// What to answer.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    /// The same reply with a `Location` on this server (`me`) given as a path, as a registry
    /// reached by a name answers when it does not know that name.
    pub fn location_as_path(mut self, me: SocketAddr) -> Reply {
        for (name, value) in &mut self.headers {
            if name.eq_ignore_ascii_case("location") {
                for scheme in ["http", "https"] {
                    if let Some(path) = value.strip_prefix(&format!("{scheme}://{me}")) {
                        *value = path.to_string();
                    }
                }
            }
        }
        self
    }

    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn json(mut self, body: &serde_json::Value) -> Reply {
        self.body = body.to_string().into_bytes();
        self.header("Content-Type", "application/json")
    }
}

type Handler = Arc<dyn Fn(&Seen, SocketAddr) -> Reply + Send + Sync>;

/// A running server; stopped on drop.
pub struct Fake {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    // Dropping the runtime stops the accept loop and every connection.
    _runtime: tokio::runtime::Runtime,
}

impl Fake {
    /// Plain HTTP on a free port of 127.0.0.1.
    pub fn plain(handler: impl Fn(&Seen, SocketAddr) -> Reply + Send + Sync + 'static) -> Fake {
        Fake::start(IpAddr::V4(Ipv4Addr::LOCALHOST), None, Arc::new(handler))
    }

    /// Plain HTTP on a free port of `ip`.
    pub fn plain_on(
        ip: IpAddr,
        handler: impl Fn(&Seen, SocketAddr) -> Reply + Send + Sync + 'static,
    ) -> Fake {
        Fake::start(ip, None, Arc::new(handler))
    }

    /// TLS with `cert` on a free port of 127.0.0.1.
    pub fn tls(
        cert: &ServerCert,
        handler: impl Fn(&Seen, SocketAddr) -> Reply + Send + Sync + 'static,
    ) -> Fake {
        let acceptor = tokio_rustls::TlsAcceptor::from(certs::rustls_server_config(cert));
        Fake::start(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(acceptor),
            Arc::new(handler),
        )
    }

    fn start(ip: IpAddr, tls: Option<tokio_rustls::TlsAcceptor>, handler: Handler) -> Fake {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("fake server runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(SocketAddr::new(ip, 0)))
            .expect("bind fake server");
        let addr = listener.local_addr().expect("fake server address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (handler, log, tls) = (Arc::clone(&handler), Arc::clone(&log), tls.clone());
                tokio::spawn(async move {
                    let scheme = if tls.is_some() { "https" } else { "http" };
                    let service = hyper::service::service_fn(move |request| {
                        answer(
                            request,
                            scheme,
                            addr,
                            Arc::clone(&handler),
                            Arc::clone(&log),
                        )
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let io = hyper_util::rt::TokioIo::new(stream);
                                let _ = http.serve_connection(io, service).await;
                            }
                        }
                        None => {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = http.serve_connection(io, service).await;
                        }
                    }
                });
            }
        });
        Fake {
            addr,
            seen,
            _runtime: runtime,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }

    /// The requests that carried an `Authorization` header.
    pub fn authorized(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.authorization.is_some())
            .collect()
    }
}

async fn answer(
    request: Request<Incoming>,
    scheme: &'static str,
    me: SocketAddr,
    handler: Handler,
    log: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = request.into_parts();
    let body_len = body
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    let seen = Seen {
        scheme,
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        authorization: parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body_len,
    };
    let reply = handler(&seen, me);
    log.lock().expect("seen lock").push(seen);
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    Ok(response
        .body(Full::new(Bytes::from(reply.body)))
        .expect("response"))
}
