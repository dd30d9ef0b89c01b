//! The model's HTTP side: a hyper server (HTTP/1.1, over rustls or plain) on its own thread
//! and runtime, the request and response shapes the handlers use, and the routing of
//! `ContainerRoutes` (`routers/api/packages/api.go`): which middleware answers first, and which
//! handler a path reaches.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;

use super::auth::{self, Doer};
use super::{Logged, OWNER, Shared, blobs, manifests};

/// A request as the handlers see it: the body read whole (`complete` is false when the client's
/// body broke off part-way).
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
    pub complete: bool,
    pub scheme: &'static str,
    pub host: String,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `ctx.FormTrim(name)`: the first value, trimmed; empty when absent.
    pub fn form(&self, name: &str) -> String {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    }
}

/// A response: status, headers, body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// `setResponseHeaders`: every container answer carries `Docker-Distribution-Api-Version`.
    pub fn new(status: u16) -> Resp {
        Resp {
            status,
            headers: vec![(
                "Docker-Distribution-Api-Version".into(),
                "registry/2.0".into(),
            )],
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Resp {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: Vec<u8>) -> Resp {
        self.body = body;
        self
    }

    /// `apiErrorDefined`: the OCI error envelope, as Go's JSON encoder writes it.
    pub fn error(status: u16, code: &str, message: &str) -> Resp {
        let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
        Resp::new(status)
            .header("Content-Type", "application/json")
            .body(format!("{body}\n").into_bytes())
    }

    /// A plain-text answer (`ctx.HTTPError`, `ctx.NotFound`), without the registry header.
    pub fn plain(status: u16, text: &str) -> Resp {
        Resp {
            status,
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: text.as_bytes().to_vec(),
        }
    }

    /// `apiError` for a Go error that is not a named one: 500, logged, no body.
    pub fn internal(_what: &str) -> Resp {
        Resp::new(500)
    }

    /// What the router answers to a path no route matches.
    pub fn not_found() -> Resp {
        Resp::plain(404, "Not found.\n")
    }
}

/// The server thread; stopped on drop.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts serving on a free port of 127.0.0.1.
pub fn start(shared: Arc<Shared>, tls: Option<Arc<rustls::ServerConfig>>) -> Running {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind model socket");
    listener.set_nonblocking(true).expect("nonblocking socket");
    let addr = listener.local_addr().expect("model address");
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("model runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
            loop {
                let tcp = tokio::select! {
                    _ = &mut stopped => return,
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, _)) => tcp,
                        Err(_) => continue,
                    },
                };
                let (shared, acceptor) = (Arc::clone(&shared), acceptor.clone());
                tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(tcp).await {
                                serve(shared, tls, "https").await;
                            }
                        }
                        None => serve(shared, tcp, "http").await,
                    }
                });
            }
        });
    });
    Running {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    }
}

async fn serve<IO>(shared: Arc<Shared>, io: IO, scheme: &'static str)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let shared = Arc::clone(&shared);
        async move {
            let response = answer(&shared, request, scheme).await;
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .await;
}

async fn answer(
    shared: &Arc<Shared>,
    request: hyper::Request<Incoming>,
    scheme: &'static str,
) -> hyper::Response<Full<Bytes>> {
    let (parts, mut body) = request.into_parts();
    let cap = shared.options.body_cap;
    let mut bytes = Vec::new();
    let mut complete = true;
    let mut over_cap = false;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    if cap.is_some_and(|cap| bytes.len() + data.len() > cap) {
                        over_cap = true;
                        bytes.clear();
                    } else if !over_cap {
                        bytes.extend_from_slice(&data);
                    }
                }
            }
            Err(_) => {
                complete = false;
                break;
            }
        }
    }
    let req = Req {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect(),
        host: parts
            .headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost")
            .to_string(),
        headers: parts.headers,
        body: bytes,
        complete,
        scheme,
    };
    let resp = if over_cap {
        shared.lock().too_large += 1;
        Resp {
            status: 413,
            headers: vec![("Content-Type".into(), "text/html".into())],
            body: b"<html><center><h1>413 Request Entity Too Large</h1></center></html>".to_vec(),
        }
    } else {
        route(shared, &req).await
    };
    shared.lock().log.push(Logged {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        status: resp.status,
        authorization: req.header("authorization").map(str::to_string),
        content_range: req.header("content-range").map(str::to_string),
        content_type: req.header("content-type").map(str::to_string),
        body_len: req.body.len(),
    });
    let mut builder = hyper::Response::builder().status(resp.status);
    for (name, value) in &resp.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body = if req.method == "HEAD" {
        Bytes::new()
    } else {
        Bytes::from(resp.body)
    };
    builder
        .body(Full::new(body))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}

/// `ContainerRoutes`, middleware in Gitea's order: `verifyAuth`, then per route
/// `ReqContainerAccess`, `UserAssignmentWeb`, the route match, `VerifyImageName` and
/// `reqPackageAccess`.
async fn route(shared: &Arc<Shared>, req: &Req) -> Resp {
    let doer = match auth::verify(shared, req) {
        Ok(doer) => doer,
        Err(refused) => return refused,
    };
    // Gitea's router strips a trailing slash.
    let path = req.path.trim_end_matches('/');
    let Some(rest) = path.strip_prefix("/v2") else {
        return Resp::not_found();
    };
    match rest {
        "" => {
            return match (req.method.as_str(), doer) {
                ("GET" | "HEAD", None) => auth::challenge(req),
                ("GET" | "HEAD", Some(_)) => Resp::new(200),
                _ => Resp::plain(405, "Method Not Allowed\n"),
            };
        }
        "/token" => {
            return match req.method.as_str() {
                "GET" => auth::token(shared, doer),
                "POST" => {
                    shared.lock().token_posts += 1;
                    Resp {
                        status: 404,
                        headers: Vec::new(),
                        body: Vec::new(),
                    }
                }
                _ => Resp::plain(405, "Method Not Allowed\n"),
            };
        }
        _ => {}
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Resp::not_found();
    };
    let Some(doer) = doer else {
        return auth::challenge(req);
    };
    let (username, rest) = rest.split_once('/').unwrap_or((rest, ""));
    if !username.eq_ignore_ascii_case(OWNER) {
        return Resp::not_found();
    }
    let owner = OWNER;
    let Some((image, target)) = match_path(&req.method, rest) else {
        return Resp::not_found();
    };
    let writes = !matches!(req.method.as_str(), "GET" | "HEAD");
    let valid_name = valid_image(image);
    // `InitiateUploadBlob` and the upload-session routes check write access before the name.
    if matches!(target, Target::Uploads | Target::Upload(_)) && doer == Doer::Ghost {
        return auth::no_write_access();
    }
    if !valid_name {
        return Resp::error(400, "NAME_INVALID", "");
    }
    if writes && doer == Doer::Ghost {
        return auth::no_write_access();
    }
    match target {
        Target::Uploads => blobs::initiate(shared, req, owner, image),
        Target::TagList => manifests::tag_list(shared, req, owner, image),
        Target::Upload(id) => match req.method.as_str() {
            "GET" => blobs::upload_status(shared, owner, image, id),
            "PATCH" => blobs::patch(shared, req, owner, image, id),
            "PUT" => blobs::finish(shared, req, owner, image, id),
            _ => blobs::cancel(shared, id),
        },
        Target::Blob(digest) => match req.method.as_str() {
            "DELETE" => blobs::delete(shared, owner, image, digest),
            _ => blobs::read(shared, req, owner, image, digest),
        },
        Target::Manifest(reference) => match req.method.as_str() {
            "PUT" => manifests::put(shared, req, owner, image, reference).await,
            "DELETE" => manifests::delete(shared, owner, image, reference),
            _ => manifests::read(shared, req, owner, image, reference),
        },
    }
}

/// What a path under `/v2/OWNER/` names.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    Uploads,
    TagList,
    Upload(&'a str),
    Blob(&'a str),
    Manifest(&'a str),
}

/// The `g.MatchPath` patterns in their order; `<image:*>` is greedy and non-empty.
fn match_path<'a>(method: &str, rest: &'a str) -> Option<(&'a str, Target<'a>)> {
    let non_empty = |image: &'a str| (!image.is_empty()).then_some(image);
    let segment_ok = |s: &str| !s.is_empty() && !s.contains('/');
    if method == "POST" {
        let image = rest.strip_suffix("/blobs/uploads")?;
        return Some((non_empty(image)?, Target::Uploads));
    }
    if method == "GET"
        && let Some(image) = rest.strip_suffix("/tags/list")
    {
        return Some((non_empty(image)?, Target::TagList));
    }
    if let Some(i) = rest.rfind("/blobs/uploads/") {
        let id = &rest[i + "/blobs/uploads/".len()..];
        let id_ok = segment_ok(id)
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'=' | b'_'));
        if id_ok && matches!(method, "GET" | "PATCH" | "PUT" | "DELETE") {
            return Some((non_empty(&rest[..i])?, Target::Upload(id)));
        }
    }
    if let Some(i) = rest.rfind("/blobs/") {
        let digest = &rest[i + "/blobs/".len()..];
        if segment_ok(digest) && matches!(method, "HEAD" | "GET" | "DELETE") {
            return Some((non_empty(&rest[..i])?, Target::Blob(digest)));
        }
    }
    let i = rest.rfind("/manifests/")?;
    let reference = &rest[i + "/manifests/".len()..];
    (segment_ok(reference) && matches!(method, "HEAD" | "GET" | "PUT" | "DELETE")).then_some(())?;
    Some((non_empty(&rest[..i])?, Target::Manifest(reference)))
}

/// `imageNamePattern`: `[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*`.
pub fn valid_image(image: &str) -> bool {
    image.split('/').all(|component| {
        let mut previous_separator = true;
        !component.is_empty()
            && component.bytes().all(|b| {
                let alnum = b.is_ascii_lowercase() || b.is_ascii_digit();
                let ok = alnum || (!previous_separator && matches!(b, b'.' | b'_' | b'-'));
                previous_separator = !alnum;
                ok
            })
            && !previous_separator
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_giteas_patterns() {
        assert_eq!(
            match_path("POST", "a/b/blobs/uploads"),
            Some(("a/b", Target::Uploads))
        );
        assert_eq!(
            match_path("PATCH", "app/blobs/uploads/abc"),
            Some(("app", Target::Upload("abc")))
        );
        assert_eq!(
            match_path("HEAD", "app/blobs/sha256:00"),
            Some(("app", Target::Blob("sha256:00")))
        );
        assert_eq!(
            match_path("PUT", "app/manifests/1.0"),
            Some(("app", Target::Manifest("1.0")))
        );
        assert_eq!(match_path("POST", "blobs/uploads"), None);
        assert!(valid_image("my-app/sub_x.y"));
        assert!(!valid_image("MyApp"));
        assert!(!valid_image("a--b") || valid_image("a-b"));
    }
}
