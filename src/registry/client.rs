//! The HTTP side of the registry: one reqwest client with our TLS trust, the auth handshake
//! (`Basic`, or `Bearer` tokens renewed on expiry or 401) and retries of transient failures.
//! Responses are judged in `status.rs`; where credentials may go is decided in `origin.rs` and
//! applied here, in [`Registry::send`] and [`Registry::fetch_token`], the only places a request
//! gets an `Authorization` header. A refusal whose next step is a flag or an environment
//! variable carries a typed [`Cause`] instead of a hint: the report words it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::Mutex;
use url::Url;

use super::Cause;
use super::auth::{
    Challenge, TOKEN_LIMIT, Token, TokenResponse, basic_header, parse_challenge, pull_scope,
    push_scope,
};
use super::origin::{Realm, Resolver, judge_realm, origin_text, redirect_policy, same_origin};
use super::small::Shortcuts;
use super::timeouts::{Timeouts, Watch};
use super::tls::{Trust, client_config};
use crate::credentials::{Credentials, Origin};
use crate::error::{Error, Result};
use crate::progress::{Reporter, Silent};

/// How to reach the registry.
#[derive(Debug, Clone)]
pub struct Connection {
    pub host: String,
    pub repository: String,
    pub plain_http: bool,
    pub trust: Trust,
    pub retries: u32,
    pub role: Role,
}

/// Which end of a copy the registry is: it decides the token scope asked for and how a
/// refusal reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Pushed to: `repository:NAME:pull,push`.
    #[default]
    Destination,
    /// Read from (a `docker://` IMAGE): `repository:NAME:pull`.
    Source,
    /// Pulled from (`idpbuilder pull`): `repository:NAME:pull`, with the flags, credentials
    /// and trust a destination has (`--username`, `--ca-file`, the cluster's).
    Pull,
}

/// A failure inside one attempt; transient ones are retried.
pub struct Failure {
    pub error: Error,
    pub transient: bool,
    pub retry_after: Option<Duration>,
    /// HTTP status, when the registry answered.
    pub status: Option<StatusCode>,
    /// The connection failed before it took the whole request body.
    pub body_cut: bool,
}

impl Failure {
    pub(super) fn fatal(error: Error) -> Self {
        Failure {
            error,
            transient: false,
            retry_after: None,
            status: None,
            body_cut: false,
        }
    }

    pub(super) fn transient(error: Error) -> Self {
        Failure {
            transient: true,
            ..Failure::fatal(error)
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::fatal(error)
    }
}

pub type Attempt<T> = std::result::Result<T, Failure>;

enum AuthState {
    /// The registry asked for nothing.
    Anonymous,
    Basic(String),
    Bearer {
        realm: String,
        service: Option<String>,
        token: Option<Token>,
    },
}

/// A client bound to one repository of one registry.
pub struct Registry {
    http: reqwest::Client,
    base: Url,
    connection: Connection,
    credentials: Option<Credentials>,
    auth: Mutex<AuthState>,
    timeouts: Timeouts,
    /// Where retry notices go: the push's reporter.
    notices: std::sync::Arc<dyn Reporter>,
    /// Resolves every name the client connects to, so the loopback check sees the addresses
    /// the connection uses.
    resolver: Resolver,
    /// The plain-HTTP warning was printed.
    warned_clear_text: AtomicBool,
    /// A repository of this registry that blobs are mounted from (a `docker://` source on the
    /// same host): tokens also ask for pull on it.
    mount_from: Option<String>,
    /// The shorter ways small blobs may take here, learnt during the push (`small.rs`).
    shortcuts: Shortcuts,
}

impl Registry {
    pub fn new(connection: Connection, credentials: Option<Credentials>) -> Result<Registry> {
        let scheme = if connection.plain_http {
            "http"
        } else {
            "https"
        };
        let base = Url::parse(&format!("{scheme}://{}/", connection.host)).map_err(|e| {
            Error::input(format!("invalid registry host {:?}", connection.host)).with_cause(e)
        })?;
        let timeouts = Timeouts::from_env();
        let resolver = Resolver::default();
        // No reqwest read_timeout: it runs from the start of a request to the response head
        // and would cut off a large upload that is still moving; `send` watches for idleness.
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("idpbuilder-push/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeouts.connect)
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(redirect_policy())
            // A redirect need not tell the next host where it came from (upload session URLs).
            .referer(false)
            .dns_resolver(resolver.clone());
        // Also with --plain-http: reqwest's own TLS default would read the system's roots at
        // start-up; ours reads them only when a certificate chain is first checked.
        builder = builder.tls_backend_preconfigured(client_config(&connection.trust)?);
        let http = builder
            .build()
            .map_err(|e| Error::registry("cannot set up the HTTP client").with_cause(e))?;
        Ok(Registry {
            http,
            base,
            connection,
            credentials,
            auth: Mutex::new(AuthState::Anonymous),
            timeouts,
            notices: std::sync::Arc::new(Silent::default()),
            resolver,
            warned_clear_text: AtomicBool::new(false),
            mount_from: None,
            shortcuts: Shortcuts::default(),
        })
    }

    /// Blobs missing here are first mounted from `repository` of the same registry
    /// (`POST ...?mount=DIGEST&from=REPOSITORY`); tokens ask for pull on it too.
    pub fn with_mount_from(mut self, repository: String) -> Registry {
        self.mount_from = Some(repository);
        self
    }

    pub(super) fn mount_from(&self) -> Option<&str> {
        self.mount_from.as_deref()
    }

    pub(super) fn shortcuts(&self) -> &Shortcuts {
        &self.shortcuts
    }

    pub(super) fn role(&self) -> Role {
        self.connection.role
    }

    /// The token scopes: pull (a source), or pull and push plus pull on the repository blobs
    /// are mounted from (a destination).
    fn scopes(&self) -> Vec<String> {
        let repository = self.repository();
        match self.connection.role {
            Role::Source | Role::Pull => vec![pull_scope(repository)],
            Role::Destination => std::iter::once(push_scope(repository))
                .chain(self.mount_from.as_deref().map(pull_scope))
                .collect(),
        }
    }

    /// Retry notices and other warnings go to `reporter`, so they print cleanly between the
    /// progress bars.
    pub fn with_reporter(mut self, reporter: std::sync::Arc<dyn Reporter>) -> Registry {
        self.notices = reporter;
        self
    }

    pub(super) fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// How long a request may go without progress: also the grace a blob read from this
    /// registry gets before its minimum rate applies (`oci::Pace`).
    pub fn idle_timeout(&self) -> std::time::Duration {
        self.timeouts.idle
    }

    pub fn host(&self) -> &str {
        &self.connection.host
    }

    pub fn repository(&self) -> &str {
        &self.connection.repository
    }

    /// `https://HOST/v2/REPOSITORY/<suffix>`.
    pub(super) fn url(&self, suffix: &str) -> Result<Url> {
        self.base
            .join(&format!("v2/{}/{suffix}", self.connection.repository))
            .map_err(|e| Error::input("cannot build a registry URL").with_cause(e))
    }

    /// Resolves a `Location` header, which may be relative (Gitea) or absolute (distribution).
    pub(super) fn resolve_location(&self, location: &str) -> Result<Url> {
        self.base.join(location).map_err(|e| {
            Error::registry(format!(
                "{} returned an invalid upload location",
                self.host()
            ))
            .with_cause(e)
        })
    }

    pub(super) fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http.request(method, url)
    }

    /// `GET /v2/`: checks TLS and reachability and learns the auth scheme before any upload,
    /// so a wrong password fails before a byte is sent.
    pub async fn login(&self) -> Result<()> {
        let url = self
            .base
            .join("v2/")
            .map_err(|e| Error::input("cannot build a registry URL").with_cause(e))?;
        self.retrying("check the registry", || async {
            self.send(
                |_| async { Ok(self.http.get(url.clone())) },
                &[StatusCode::OK],
            )
            .await
            .map(drop)
        })
        .await
    }

    /// The `service` of the registry's Bearer challenge, once a request has met it.
    pub async fn token_service(&self) -> Option<String> {
        match &*self.auth.lock().await {
            AuthState::Bearer { service, .. } => service.clone(),
            _ => None,
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retry budget is spent.
    pub(super) async fn retrying<T, F, Fut>(&self, what: &str, attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        attempt
            .retry(self.backoff_policy())
            .when(|f: &Failure| f.transient)
            // `delay` is None once the budget is spent: Retry-After may lengthen a wait that
            // is due, never grant one more attempt.
            .adjust(|f: &Failure, delay| delay.map(|d| f.retry_after.map_or(d, |r| r.max(d))))
            .notify(|f: &Failure, delay| self.notify_retry(what, f, delay))
            .await
            .map_err(|f| f.error)
    }

    /// `--retries` attempts in all: exponential backoff from 200 ms to 10 s, with jitter.
    fn backoff_policy(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(10))
            .with_max_times(self.connection.retries.saturating_sub(1) as usize)
            .with_jitter()
    }

    /// The delays between attempts, for a caller that runs its own attempts; `None` once the
    /// budget is spent.
    pub(super) fn backoff(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        backon::BackoffBuilder::build(self.backoff_policy())
    }

    /// One `warning:` line through the reporter: what failed, and when we try again.
    pub(super) fn notify_retry(&self, what: &str, failure: &Failure, delay: Duration) {
        self.notices.warn(&format!(
            "{what}: {}; retrying in {:.1}s",
            failure.error,
            delay.as_secs_f64()
        ));
    }

    /// Warnings about this registry, through the push's reporter.
    pub(super) fn warn(&self, message: &str) {
        self.notices.warn(message);
    }

    /// Sends one request with the current authorization. On 401, answers the challenge and
    /// sends it once more; a second 401 is an authentication error. `make` builds the request
    /// afresh each time (a streamed body cannot be sent twice), reporting the body's progress
    /// to the [`Watch`] it is given; the request fails when nothing moves for the idle time.
    ///
    /// Every request of a push passes here, whatever its method, so this is where credentials
    /// are kept to the registry's own origin: a request to another scheme, host or port (an
    /// upload `Location` elsewhere) goes without `Authorization`, and a plain-HTTP URL for a
    /// TLS registry is refused before anything is sent.
    pub(super) async fn send<M, Fut>(&self, make: M, expected: &[StatusCode]) -> Attempt<Response>
    where
        M: Fn(Watch) -> Fut,
        Fut: Future<Output = Result<RequestBuilder>>,
    {
        let mut answered_challenge = false;
        loop {
            let watch = Watch::new();
            let (client, request) = make(watch.clone()).await?.build_split();
            let mut request = request.map_err(|e| {
                Error::registry(format!("cannot build a request to {}", self.host())).with_cause(e)
            })?;
            let own = self.is_own_origin(request.url())?;
            // Only this function sets the header, and only for the registry's own origin.
            request.headers_mut().remove(AUTHORIZATION);
            let sent = if own {
                self.authorization().await?
            } else {
                tracing::debug!(
                    "sending {} {} without credentials: not {}'s own origin",
                    request.method(),
                    origin_text(request.url()),
                    self.host()
                );
                None
            };
            if let Some(value) = &sent {
                request
                    .headers_mut()
                    .insert(AUTHORIZATION, sensitive(value.clone()));
            }
            let response = self
                .watched(&watch, RequestBuilder::from_parts(client, request))
                .await?;
            if response.status() == StatusCode::UNAUTHORIZED && !answered_challenge {
                // A challenge from elsewhere (an upload location, a redirect) must not choose
                // where our credentials go.
                if !same_origin(response.url(), &self.base) {
                    return Err(self.foreign_challenge(response.url()).into());
                }
                answered_challenge = true;
                self.answer_challenge(&response, sent.as_deref()).await?;
                continue;
            }
            return self.check_status(response, expected).await;
        }
    }

    /// Whether `url` is the registry's own scheme, host and port. A URL that would take a TLS
    /// registry's request to plain HTTP (or to a scheme that is not HTTP) is refused.
    fn is_own_origin(&self, url: &Url) -> Attempt<bool> {
        let scheme = url.scheme();
        if !matches!(scheme, "http" | "https") {
            return Err(Failure::fatal(Error::registry(format!(
                "{} sent a location that is not HTTP ({scheme}:)",
                self.host()
            ))));
        }
        if self.base.scheme() == "https" && scheme != "https" {
            return Err(Failure::fatal(
                Error::registry(format!(
                    "{} sent a plain HTTP location ({}); a TLS registry is never followed to plain HTTP",
                    self.host(),
                    origin_text(url)
                ))
                .with_hint("the registry (or a proxy in front of it) must name https:// URLs: check its external URL setting"),
            ));
        }
        Ok(same_origin(url, &self.base))
    }

    fn foreign_challenge(&self, url: &Url) -> Error {
        Error::auth(format!(
            "{} asks for credentials, which are sent only to {} itself",
            origin_text(url),
            self.host()
        ))
        .with_hint("the registry sends uploads to another host or port; configure it to take them on its own address")
    }

    /// Over plain HTTP, credentials go freely only to a loopback host. The cluster's admin
    /// credentials go nowhere else; credentials the user gave do, after one warning.
    async fn check_clear_text(&self, credentials: &Credentials, url: &Url) -> Attempt<()> {
        if url.scheme() != "http" || self.resolver.is_loopback(url).await {
            return Ok(());
        }
        let host = origin_text(url);
        if credentials.origin() == Origin::Cluster {
            return Err(Failure::fatal(
                Error::auth(format!(
                    "not sending the cluster's Gitea admin credentials to {host} over plain HTTP: it is not a loopback address"
                ))
                .with_reason(Cause::ClusterCredentialsInClearText),
            ));
        }
        if !self.warned_clear_text.swap(true, Ordering::Relaxed) {
            self.warn(&format!(
                "sending credentials to {host} over plain HTTP (--plain-http): anyone on the network path can read them"
            ));
        }
        Ok(())
    }

    async fn authorization(&self) -> Attempt<Option<String>> {
        let mut auth = self.auth.lock().await;
        match &mut *auth {
            AuthState::Anonymous => Ok(None),
            AuthState::Basic(header) => Ok(Some(header.clone())),
            AuthState::Bearer {
                realm,
                service,
                token,
            } => {
                if let Some(token) = token.as_ref().filter(|t| t.is_fresh()) {
                    return Ok(Some(token.header_value()));
                }
                tracing::debug!("fetching a bearer token from {realm}");
                let fresh = self.fetch_token(realm, service.as_deref()).await?;
                let header = fresh.header_value();
                *token = Some(fresh);
                Ok(Some(header))
            }
        }
    }

    /// Learns the auth scheme from a 401, or drops the refused token (`sent`) so the next
    /// request fetches a new one; a token renewed meanwhile by a concurrent request is kept.
    async fn answer_challenge(&self, response: &Response, sent: Option<&str>) -> Attempt<()> {
        let challenge = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(parse_challenge);
        let mut auth = self.auth.lock().await;
        match challenge {
            Some(Challenge::Basic) => {
                let Some(credentials) = &self.credentials else {
                    return Err(self.needs_credentials().into());
                };
                self.check_clear_text(credentials, &self.base).await?;
                if let AuthState::Basic(current) = &*auth {
                    // Another request may have set Basic after this one left without it.
                    if sent == Some(current.as_str()) {
                        return Err(self.refused(StatusCode::UNAUTHORIZED).into());
                    }
                    return Ok(());
                }
                tracing::debug!("{} asks for basic auth", self.host());
                *auth = AuthState::Basic(basic_header(credentials));
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                if let AuthState::Bearer {
                    realm: current,
                    token: Some(token),
                    ..
                } = &*auth
                    && *current == realm
                    && Some(token.header_value().as_str()) != sent
                {
                    return Ok(());
                }
                tracing::debug!("{} asks for a bearer token", self.host());
                *auth = AuthState::Bearer {
                    realm,
                    service,
                    token: None,
                };
            }
            None => {
                // Gitea answers an expired or unknown token with a bare 401 (no challenge):
                // a refused bearer token is dropped, and the next attempt fetches a new one
                // from the realm named before. A second refusal is final (`send`).
                let sent_token = sent.filter(|s| s.starts_with("Bearer "));
                let AuthState::Bearer { token, .. } = &mut *auth else {
                    return Err(self.refused(StatusCode::UNAUTHORIZED).into());
                };
                if sent_token.is_none() {
                    return Err(self.refused(StatusCode::UNAUTHORIZED).into());
                }
                if token.as_ref().map(Token::header_value).as_deref() == sent_token {
                    tracing::debug!(
                        "{} refused its token without a challenge; fetching a new one",
                        self.host()
                    );
                    *token = None;
                }
            }
        }
        Ok(())
    }

    /// `GET realm?service=..&scope=repository:NAME:pull,push` (a source: `:pull`; one more
    /// `scope=` for a repository blobs are mounted from) with Basic credentials, or none for an
    /// anonymous token (Docker Hub's public images), as Gitea and distribution's token servers
    /// expect.
    async fn fetch_token(&self, realm: &str, service: Option<&str>) -> Attempt<Token> {
        let mut url = Url::parse(realm).map_err(|e| {
            Failure::fatal(
                Error::registry(format!(
                    "{} sent an invalid token realm {realm:?}",
                    self.host()
                ))
                .with_cause(e),
            )
        })?;
        if judge_realm(&self.base, &url) == Realm::Refused {
            return Err(Failure::fatal(
                Error::auth(format!(
                    "{} asks for a token from {url}, which is not HTTPS; a registry reached over HTTPS must use an HTTPS token service",
                    self.host()
                ))
                .with_hint("fix the token realm in the registry's auth configuration to an https:// URL"),
            ));
        }
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            for scope in self.scopes() {
                query.append_pair("scope", &scope);
            }
        }
        let credentials = self.realm_credentials(&url).await?;
        let realm_text = origin_text(&url);
        let mut request = self.http.get(url);
        if let Some(credentials) = credentials {
            request = request.header(AUTHORIZATION, sensitive(basic_header(credentials)));
        }
        let fetched = Instant::now();
        let watch = Watch::new();
        let response = self.watched(&watch, request).await?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(match &self.credentials {
                Some(_) => self.refused(status),
                None => self.needs_credentials(),
            }
            .into());
        }
        let response = self.check_status(response, &[StatusCode::OK]).await?;
        let bytes = self.read_token_body(response, &realm_text).await?;
        let body = TokenResponse::parse(&bytes).map_err(|e| {
            Failure::fatal(
                Error::registry(format!(
                    "{} sent an unreadable token (token service {realm_text})",
                    self.host()
                ))
                .with_cause(e),
            )
        })?;
        Token::from_response(body, fetched).ok_or_else(|| {
            Failure::fatal(Error::registry(format!(
                "{}'s token endpoint sent no token",
                self.host()
            )))
        })
    }

    /// The token service's answer, at most [`TOKEN_LIMIT`] bytes, whole within the idle time
    /// from the response head: a token is small, so a realm that sends more, or trickles it, is
    /// refused rather than waited for or held.
    async fn read_token_body(&self, mut response: Response, realm: &str) -> Attempt<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + self.timeouts.idle;
        let mut bytes = Vec::new();
        loop {
            let chunk = match tokio::time::timeout_at(deadline, response.chunk()).await {
                Err(_) => {
                    return Err(Failure::transient(
                        Error::registry(format!(
                            "the token service {realm} of {} did not send its token within {}s",
                            self.host(),
                            self.timeouts.idle.as_secs_f64()
                        ))
                        .with_hint("check the token service named by the registry's auth configuration, or try again"),
                    ));
                }
                // The body broke off: worth another try.
                Ok(Err(e)) => return Err(self.transport_failure(e)),
                Ok(Ok(None)) => return Ok(bytes),
                Ok(Ok(Some(chunk))) => chunk,
            };
            if bytes.len() + chunk.len() > TOKEN_LIMIT {
                return Err(Failure::fatal(
                    Error::registry(format!(
                        "the token service {realm} of {} sent an answer larger than {} KiB; a token is much smaller",
                        self.host(),
                        TOKEN_LIMIT >> 10
                    ))
                    .with_hint("check the token service named by the registry's auth configuration"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
    }

    /// The credentials a token realm (already judged not [`Realm::Refused`]) may be given: over
    /// HTTPS, or in clear text on a plain-HTTP registry's own host. Credentials that may not go
    /// to a plain-HTTP realm on another host are an error rather than an anonymous request
    /// whose refusal would blame the password.
    async fn realm_credentials(&self, realm: &Url) -> Attempt<Option<&Credentials>> {
        let Some(credentials) = &self.credentials else {
            return Ok(None);
        };
        if judge_realm(&self.base, realm) == Realm::ClearTextElsewhere {
            return Err(Failure::fatal(
                Error::auth(format!(
                    "not sending the credentials for {} to the token service at {} over plain HTTP: it is another host",
                    self.host(),
                    origin_text(realm)
                ))
                .with_hint("the registry's token realm must be HTTPS, or on the registry's own host"),
            ));
        }
        self.check_clear_text(credentials, realm).await?;
        if realm.host() != self.base.host() {
            // As docker does (Docker Hub's realm is auth.docker.io); said so it can be audited.
            tracing::debug!(
                "sending the credentials for {} to its token service at {}, another host",
                self.host(),
                origin_text(realm)
            );
        }
        Ok(Some(credentials))
    }

    pub(super) fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    pub(super) fn needs_credentials(&self) -> Error {
        let role = self.connection.role;
        let message = match role {
            Role::Destination => format!(
                "{} requires credentials to push to {}",
                self.host(),
                self.repository()
            ),
            Role::Pull => format!(
                "{} refused anonymous access to {}: the repository does not exist or needs credentials",
                self.host(),
                self.repository()
            ),
            Role::Source => format!(
                "source registry {} refused anonymous access to {}: the repository does not exist or needs credentials",
                self.host(),
                self.repository()
            ),
        };
        Error::auth(message).with_reason(Cause::CredentialsNeeded { role })
    }

    pub(super) fn refused(&self, status: StatusCode) -> Error {
        let target = format!("{}/{}", self.host(), self.repository());
        let role = self.connection.role;
        // Where the refused credentials came from is what the hint points at.
        let refused = Cause::CredentialsRefused {
            role,
            origin: self.credentials.as_ref().map(Credentials::origin),
        };
        if role == Role::Source {
            return Error::auth(format!(
                "source registry refused the credentials for {target} ({status})"
            ))
            .with_reason(refused);
        }
        if status == StatusCode::FORBIDDEN && self.connection.role == Role::Pull {
            Error::auth(format!(
                "registry denied the pull of {target} (403 Forbidden)"
            ))
            .with_hint("check that the user may read this repository")
        } else if status == StatusCode::FORBIDDEN {
            Error::auth(format!("registry denied the push to {target} (403 Forbidden)"))
                .with_hint("check that the user may push to this owner; in Gitea the owner must be the user or one of its organisations")
        } else {
            Error::auth(format!(
                "registry refused the credentials for {target} ({status})"
            ))
            .with_reason(refused)
        }
    }
}

/// An `Authorization` value marked sensitive, so the HTTP stack never shows it in `Debug` output
/// or compresses it into HTTP/2 header tables.
fn sensitive(value: String) -> reqwest::header::HeaderValue {
    match reqwest::header::HeaderValue::try_from(value) {
        Ok(mut header) => {
            header.set_sensitive(true);
            header
        }
        // Only a credential with control characters gets here; send nothing rather than panic.
        Err(_) => reqwest::header::HeaderValue::from_static(""),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn registry(retries: u32) -> Registry {
        crate::registry::install_default_provider();
        let connection = Connection {
            host: "127.0.0.1:9".into(),
            repository: "team/app".into(),
            plain_http: true,
            trust: Trust::default(),
            retries,
            role: Role::Destination,
        };
        Registry::new(connection, None).expect("client")
    }

    #[tokio::test]
    async fn retry_after_never_extends_the_retry_budget() {
        let registry = registry(3);
        let attempts = AtomicU32::new(0);
        let result: Result<()> = registry
            .retrying("test", || async {
                attempts.fetch_add(1, Ordering::SeqCst);
                Err(Failure {
                    retry_after: Some(Duration::from_millis(10)),
                    status: Some(StatusCode::TOO_MANY_REQUESTS),
                    ..Failure::transient(Error::registry("busy"))
                })
            })
            .await;
        assert_eq!(result.map_err(|e| e.to_string()), Err("busy".into()));
        assert_eq!(
            attempts.load(Ordering::SeqCst),
            3,
            "--retries 3 is 3 attempts"
        );
    }

    #[tokio::test]
    async fn fatal_failures_are_not_retried() {
        let registry = registry(5);
        let attempts = AtomicU32::new(0);
        let result: Result<()> = registry
            .retrying("test", || async {
                attempts.fetch_add(1, Ordering::SeqCst);
                Err(Failure::fatal(Error::input("bad")))
            })
            .await;
        assert!(result.is_err());
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }
}
