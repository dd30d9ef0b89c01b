//! A fake Kubernetes API server for tests: HTTPS on 127.0.0.1 with a test CA, answering with
//! genuine API JSON (Secret, ConfigMap, IngressList, and `Status` bodies for 401/403/404 shaped as
//! the API reference shows them). kube's real client reaches it through a kubeconfig written by
//! [`FakeCluster::kubeconfig`], with token auth or client-certificate auth.
//!
//! Every request is recorded (method, path, `Authorization`, whether a client certificate was
//! presented). Unauthenticated requests get a 401 `Status`; unknown objects a 404 `Status`;
//! [`FakeCluster::forbid`] turns a path into a 403. [`SilentServer`] accepts connections and never
//! answers; [`closed_port`] is a port nobody listens on.
//!
//! Also here, for `tests/cluster.rs` and `tests/docker_config.rs`: [`isolate`], which cuts a child
//! process off from the machine's kubeconfig, docker config and credential variables.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};

use super::certs;

/// The bearer token the token kubeconfig carries.
pub const TOKEN: &str = "fake-cluster-admin-token";

/// How the kubeconfig authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KubeAuth {
    Token,
    ClientCertificate,
}

/// One request the fake API server received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub client_certificate: bool,
}

#[derive(Default)]
struct State {
    /// path -> (status, JSON body)
    objects: Mutex<HashMap<String, (u16, String)>>,
    requests: Mutex<Vec<Recorded>>,
}

/// A running fake API server; stopped on drop.
pub struct FakeCluster {
    addr: SocketAddr,
    state: Arc<State>,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeCluster {
    /// Starts the server with no objects (every GET of an object is a 404, lists are empty).
    pub fn start() -> FakeCluster {
        let dir = tempfile::tempdir().expect("fake cluster temp dir");
        let server = certs::ca_signed(dir.path());
        client_certificate(dir.path());
        let config = server_config(dir.path(), &server);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake cluster");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("fake cluster address");
        let state = Arc::new(State::default());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread = {
            let state = Arc::clone(&state);
            std::thread::spawn(move || serve(listener, config, state, stopped))
        };
        FakeCluster {
            addr,
            state,
            dir,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The CA that signed the server's (and the client's) certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// Writes a kubeconfig for this server into `dir` (context `fake`, current) and returns it.
    pub fn kubeconfig(&self, dir: &Path, auth: KubeAuth) -> PathBuf {
        write_kubeconfig(
            dir,
            "kubeconfig",
            &self.url(),
            &self.ca(),
            auth,
            self.dir.path(),
        )
    }

    /// Writes a kubeconfig into `dir` whose user gets its credentials from the `exec` plugin
    /// `plugin` (context `fake`, current; the plugin is not run here).
    pub fn exec_kubeconfig(&self, dir: &Path, plugin: &Path) -> PathBuf {
        let ca = STANDARD.encode(std::fs::read(self.ca()).expect("read CA"));
        let yaml = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
             clusters:\n- name: fake\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\n\
             users:\n- name: fake-admin\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n\
             \x20     command: {}\n      interactiveMode: IfAvailable\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake-admin\n",
            self.url(),
            plugin.display()
        );
        let path = dir.join("exec-kubeconfig");
        std::fs::write(&path, yaml).expect("write kubeconfig");
        path
    }

    /// The client certificate and key (PEM) the fake cluster accepts.
    pub fn client_identity(&self) -> (String, String) {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).expect(name);
        (read("client.crt"), read("client.key"))
    }

    /// Serves Secret `namespace/name` with `data` (values base64'd as the API does).
    pub fn secret(&self, namespace: &str, name: &str, data: &[(&str, &[u8])]) {
        let data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(STANDARD.encode(v))))
            .collect();
        let body = json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": metadata(namespace, name), "data": data,
        });
        self.put(
            &format!("/api/v1/namespaces/{namespace}/secrets/{name}"),
            200,
            body,
        );
    }

    /// Serves ConfigMap `namespace/name` with `data`.
    pub fn config_map(&self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        let data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        let body = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": metadata(namespace, name), "data": data,
        });
        self.put(
            &format!("/api/v1/namespaces/{namespace}/configmaps/{name}"),
            200,
            body,
        );
    }

    /// Serves the IngressList of `namespace`: one Ingress per host, as idpbuilder's Gitea has.
    pub fn ingresses(&self, namespace: &str, hosts: &[&str]) {
        let items: Vec<Value> = hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                json!({
                    "metadata": metadata(namespace, &format!("my-gitea-{i}")),
                    "spec": {
                        "ingressClassName": "nginx",
                        "rules": [{"host": host, "http": {"paths": [{
                            "path": "/", "pathType": "Prefix",
                            "backend": {"service": {"name": "my-gitea-http", "port": {"number": 3000}}},
                        }]}}],
                    },
                    "status": {"loadBalancer": {}},
                })
            })
            .collect();
        let body = json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "IngressList",
            "metadata": {"resourceVersion": "1234"}, "items": items,
        });
        self.put(&ingress_path(namespace), 200, body);
    }

    /// Answers `path` with 403 Forbidden, as RBAC does.
    pub fn forbid(&self, path: &str) {
        let (kind, name, namespace) = parts(path);
        let message = format!(
            "{kind} {name:?} is forbidden: User \"system:serviceaccount:default:reader\" cannot get \
             resource {kind:?} in API group \"\" in the namespace {namespace:?}"
        );
        let body = status(403, "Forbidden", &message, Some((&kind, &name)));
        self.put(path, 403, body);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    fn put(&self, path: &str, code: u16, body: Value) {
        self.state
            .objects
            .lock()
            .expect("fake cluster state")
            .insert(path.to_string(), (code, body.to_string()));
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The path of the IngressList of `namespace`.
pub fn ingress_path(namespace: &str) -> String {
    format!("/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses")
}

/// Writes a kubeconfig named `name` in `dir` for a server at `url` trusting `ca`, with the fake
/// cluster's credentials from `creds_dir` (token, or `client.crt`/`client.key`).
pub fn write_kubeconfig(
    dir: &Path,
    name: &str,
    url: &str,
    ca: &Path,
    auth: KubeAuth,
    creds_dir: &Path,
) -> PathBuf {
    let ca = STANDARD.encode(std::fs::read(ca).expect("read CA"));
    let user = match auth {
        KubeAuth::Token => format!("    token: {TOKEN}\n"),
        KubeAuth::ClientCertificate => format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            STANDARD.encode(std::fs::read(creds_dir.join("client.crt")).expect("client cert")),
            STANDARD.encode(std::fs::read(creds_dir.join("client.key")).expect("client key")),
        ),
    };
    let yaml = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\npreferences: {{}}\n\
         clusters:\n- name: fake\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\n\
         users:\n- name: fake-admin\n  user:\n{user}\
         contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake-admin\n"
    );
    let path = dir.join(name);
    std::fs::write(&path, yaml).expect("write kubeconfig");
    path
}

/// A TCP server that accepts connections and never says a word; stopped on drop.
pub struct SilentServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentServer {
    pub fn start() -> SilentServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind silent server");
        let addr = listener.local_addr().expect("silent server address");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut held = Vec::new();
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    held.extend(stream.ok());
                }
            })
        };
        SilentServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the thread sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A port of 127.0.0.1 that was just free: connecting to it is refused.
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port()
}

fn metadata(namespace: &str, name: &str) -> Value {
    json!({
        "name": name, "namespace": namespace,
        "uid": format!("00000000-0000-4000-8000-{:012x}", name.len() * 7919 + namespace.len()),
        "resourceVersion": "1234", "creationTimestamp": "2026-01-01T00:00:00Z",
    })
}

/// A `Status` body as the API server sends it with an error.
fn status(code: u16, reason: &str, message: &str, details: Option<(&str, &str)>) -> Value {
    let mut body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    });
    if let Some((kind, name)) = details {
        body["details"] = json!({"name": name, "kind": kind});
    }
    body
}

/// `(resource, name, namespace)` of `/api/v1/namespaces/NS/RESOURCE/NAME`.
fn parts(path: &str) -> (String, String, String) {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let at = |i: usize| segments.get(i).copied().unwrap_or_default().to_string();
    let ns = segments
        .iter()
        .position(|s| *s == "namespaces")
        .map_or(0, |i| i + 1);
    (at(ns + 1), at(ns + 2), at(ns))
}

/// The answer to one request: 401 without credentials, then the object, an empty list, or 404.
fn answer(state: &State, path: &str, authorized: bool) -> (u16, String) {
    if !authorized {
        return (
            401,
            status(401, "Unauthorized", "Unauthorized", None).to_string(),
        );
    }
    if let Some(found) = state.objects.lock().ok().and_then(|o| o.get(path).cloned()) {
        return found;
    }
    if path.ends_with("/ingresses") {
        let list = json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressList",
            "metadata": {"resourceVersion": "1234"}, "items": []});
        return (200, list.to_string());
    }
    let (kind, name, _) = parts(path);
    let message = format!("{kind} {name:?} not found");
    (
        404,
        status(404, "NotFound", &message, Some((&kind, &name))).to_string(),
    )
}

fn serve(
    listener: TcpListener,
    config: rustls::ServerConfig,
    state: Arc<State>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("fake cluster runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        loop {
            let tcp = tokio::select! {
                _ = &mut stopped => return,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(_) => continue,
                },
            };
            let (acceptor, state) = (acceptor.clone(), Arc::clone(&state));
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let client_certificate = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .is_some_and(|c| !c.is_empty());
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let state = Arc::clone(&state);
                    async move {
                        Ok::<_, std::convert::Infallible>(respond(
                            &state,
                            &request,
                            client_certificate,
                        ))
                    }
                });
                let io = hyper_util::rt::TokioIo::new(tls);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
}

fn respond(
    state: &State,
    request: &Request<Incoming>,
    client_certificate: bool,
) -> Response<Full<Bytes>> {
    let authorization = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let path = request.uri().path().to_string();
    if let Ok(mut requests) = state.requests.lock() {
        requests.push(Recorded {
            method: request.method().to_string(),
            path: request.uri().to_string(),
            authorization: authorization.clone(),
            client_certificate,
        });
    }
    let authorized =
        client_certificate || authorization.as_deref() == Some(&format!("Bearer {TOKEN}"));
    let (code, body) = answer(state, &path, authorized);
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("response")
}

fn server_config(dir: &Path, server: &certs::ServerCert) -> rustls::ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (chain, key) = certs::rustls_identity(server);
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(dir.join("ca.crt")).expect("CA") {
        roots.add(ca.expect("CA PEM")).expect("add CA");
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .expect("client verifier");
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .expect("server TLS config")
}

/// A client certificate (`client.crt`, `client.key`) signed by the CA `certs::ca_signed` left in
/// `dir` (`ca.crt`, `ca.key`), for client-certificate auth.
fn client_certificate(dir: &Path) {
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n\
         extendedKeyUsage = clientAuth\n",
    )
    .expect("write client.ext");
    certs::p256_request(
        &dir.join("client.key"),
        &dir.join("client.csr"),
        &["-subj", "/O=system:masters/CN=kubernetes-admin"],
    );
    certs::sign_request(
        &dir.join("client.csr"),
        certs::Signer {
            cert: &dir.join("ca.crt"),
            key: &dir.join("ca.key"),
        },
        "7",
        &dir.join("client.ext"),
        &dir.join("client.crt"),
    );
}
