//! The HTTP side of the registry: one reqwest client with our TLS trust, the auth handshake
//! (`Basic`, or `Bearer` tokens renewed on expiry or 401) and retries of transient failures.
//! Responses are judged in `status.rs`.

use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::Mutex;
use url::Url;

use super::auth::{Challenge, Token, TokenResponse, basic_header, parse_challenge, push_scope};
use super::timeouts::{Timeouts, Watch};
use super::tls::{Trust, client_config};
use crate::credentials::Credentials;
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
    pub fn fatal(error: Error) -> Self {
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
        // No reqwest read_timeout: it runs from the start of a request to the response head
        // and would cut off a large upload that is still moving; `send` watches for idleness.
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("idpbuilder-push/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeouts.connect)
            .pool_idle_timeout(Duration::from_secs(30));
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
        })
    }

    /// Retry notices and other warnings go to `reporter`, so they print cleanly between the
    /// progress bars.
    pub fn with_reporter(mut self, reporter: std::sync::Arc<dyn Reporter>) -> Registry {
        self.notices = reporter;
        self
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    pub fn host(&self) -> &str {
        &self.connection.host
    }

    pub fn repository(&self) -> &str {
        &self.connection.repository
    }

    /// `https://HOST/v2/REPOSITORY/<suffix>`.
    pub fn url(&self, suffix: &str) -> Result<Url> {
        self.base
            .join(&format!("v2/{}/{suffix}", self.connection.repository))
            .map_err(|e| Error::input("cannot build a registry URL").with_cause(e))
    }

    /// Resolves a `Location` header, which may be relative (Gitea) or absolute (distribution).
    pub fn resolve_location(&self, location: &str) -> Result<Url> {
        self.base.join(location).map_err(|e| {
            Error::registry(format!(
                "{} returned an invalid upload location",
                self.host()
            ))
            .with_cause(e)
        })
    }

    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
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

    /// Runs `attempt` until it succeeds, fails for good, or the retry budget is spent.
    pub async fn retrying<T, F, Fut>(&self, what: &str, attempt: F) -> Result<T>
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
    pub fn backoff(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        backon::BackoffBuilder::build(self.backoff_policy())
    }

    /// One `warning:` line through the reporter: what failed, and when we try again.
    pub fn notify_retry(&self, what: &str, failure: &Failure, delay: Duration) {
        self.notices.warn(&format!(
            "{what}: {}; retrying in {:.1}s",
            failure.error,
            delay.as_secs_f64()
        ));
    }

    /// Warnings about this registry, through the push's reporter.
    pub fn warn(&self, message: &str) {
        self.notices.warn(message);
    }

    /// Sends one request with the current authorization. On 401, answers the challenge and
    /// sends it once more; a second 401 is an authentication error. `make` builds the request
    /// afresh each time (a streamed body cannot be sent twice), reporting the body's progress
    /// to the [`Watch`] it is given; the request fails when nothing moves for the idle time.
    pub async fn send<M, Fut>(&self, make: M, expected: &[StatusCode]) -> Attempt<Response>
    where
        M: Fn(Watch) -> Fut,
        Fut: Future<Output = Result<RequestBuilder>>,
    {
        let mut answered_challenge = false;
        loop {
            let watch = Watch::new();
            let mut request = make(watch.clone()).await?;
            let sent = self.authorization().await?;
            if let Some(value) = &sent {
                request = request.header(AUTHORIZATION, sensitive(value.clone()));
            }
            let response = self.watched(&watch, request).await?;
            if response.status() == StatusCode::UNAUTHORIZED && !answered_challenge {
                answered_challenge = true;
                self.answer_challenge(&response, sent.as_deref()).await?;
                continue;
            }
            return self.check_status(response, expected).await;
        }
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
            None => return Err(self.refused(StatusCode::UNAUTHORIZED).into()),
        }
        Ok(())
    }

    /// `GET realm?service=..&scope=repository:NAME:pull,push` with Basic credentials, as Gitea
    /// and distribution's token servers expect.
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
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            query.append_pair("scope", &push_scope(self.repository()));
        }
        let credentials = self
            .credentials
            .as_ref()
            .filter(|_| self.may_send_credentials_to(&url));
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
        let body: TokenResponse = match watch.within(self.timeouts.idle, response.json()).await {
            None => return Err(self.timed_out()),
            // The body broke off: worth another try.
            Some(Err(e)) if !e.is_decode() => return Err(self.transport_failure(e)),
            Some(Err(e)) => {
                return Err(Failure::fatal(
                    Error::registry(format!("{} sent an unreadable token", self.host()))
                        .with_cause(e),
                ));
            }
            Some(Ok(body)) => body,
        };
        Token::from_response(body, fetched).ok_or_else(|| {
            Failure::fatal(Error::registry(format!(
                "{}'s token endpoint sent no token",
                self.host()
            )))
        })
    }

    /// Credentials go to a token realm on the registry's own host (any port), or over HTTPS;
    /// never in clear text to another host when the registry itself is reached over TLS.
    fn may_send_credentials_to(&self, realm: &Url) -> bool {
        let same_host = realm.host_str() == self.base.host_str();
        let allowed = same_host || realm.scheme() == "https" || self.base.scheme() == "http";
        if !allowed {
            tracing::warn!(
                "not sending credentials to the token realm {} (plain HTTP on another host)",
                realm.host_str().unwrap_or_default()
            );
        }
        allowed
    }

    pub(super) fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    pub(super) fn needs_credentials(&self) -> Error {
        Error::auth(format!("{} requires credentials to push to {}", self.host(), self.repository()))
            .with_hint("pass --username and --password-stdin, or set IDPBUILDER_REGISTRY_USERNAME and IDPBUILDER_REGISTRY_PASSWORD")
    }

    pub(super) fn refused(&self, status: StatusCode) -> Error {
        let target = format!("{}/{}", self.host(), self.repository());
        if status == StatusCode::FORBIDDEN {
            Error::auth(format!("registry denied the push to {target} (403 Forbidden)"))
                .with_hint("check that the user may push to this owner; in Gitea the owner must be the user or one of its organisations")
        } else {
            Error::auth(format!(
                "registry refused the credentials for {target} ({status})"
            ))
            .with_hint(
                "check --username and the password, or the cluster's gitea-credential secret",
            )
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
        };
        Registry::new(connection, None).expect("client")
    }

    #[test]
    fn credentials_never_go_in_clear_text_to_another_host_of_a_tls_registry() {
        crate::registry::install_default_provider();
        let tls = Registry::new(
            Connection {
                host: "gitea.cnoe.localtest.me:8443".into(),
                plain_http: false,
                ..registry(1).connection
            },
            None,
        )
        .expect("client");
        let realm = |u: &str| Url::parse(u).expect("url");
        assert!(
            tls.may_send_credentials_to(&realm("https://gitea.cnoe.localtest.me:8443/v2/token"))
        );
        assert!(tls.may_send_credentials_to(&realm("https://auth.example.com/token")));
        assert!(tls.may_send_credentials_to(&realm("http://gitea.cnoe.localtest.me:5001/token")));
        assert!(!tls.may_send_credentials_to(&realm("http://evil.example.com/token")));
        assert!(registry(1).may_send_credentials_to(&realm("http://elsewhere.example/token")));
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
