//! The HTTP side of the registry: one reqwest client with our TLS trust, the auth handshake
//! (`Basic`, or `Bearer` tokens renewed on expiry or 401), retries of transient failures, and
//! `check_status`, the only place a response status is judged.

use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::Mutex;
use url::Url;

use super::auth::{Challenge, Token, TokenResponse, basic_header, parse_challenge, push_scope};
use super::tls::{Trust, client_config};
use crate::credentials::Credentials;
use crate::error::{Error, Result};

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
}

impl Failure {
    pub fn fatal(error: Error) -> Self {
        Failure {
            error,
            transient: false,
            retry_after: None,
            status: None,
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
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("idpbuilder-push/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(120))
            .pool_idle_timeout(Duration::from_secs(30));
        if !connection.plain_http {
            builder = builder.tls_backend_preconfigured(client_config(&connection.trust)?);
        }
        let http = builder
            .build()
            .map_err(|e| Error::registry("cannot set up the HTTP client").with_cause(e))?;
        Ok(Registry {
            http,
            base,
            connection,
            credentials,
            auth: Mutex::new(AuthState::Anonymous),
        })
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
                || async { Ok(self.http.get(url.clone())) },
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
        let policy = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(10))
            .with_max_times(self.connection.retries.saturating_sub(1) as usize)
            .with_jitter();
        attempt
            .retry(policy)
            .when(|f: &Failure| f.transient)
            .adjust(|f: &Failure, delay| f.retry_after.or(delay))
            .notify(|f: &Failure, delay| {
                tracing::warn!(
                    "{what}: {} (retrying in {:.1}s)",
                    f.error,
                    delay.as_secs_f64()
                );
            })
            .await
            .map_err(|f| f.error)
    }

    /// Sends one request with the current authorization. On 401, answers the challenge and
    /// sends it once more; a second 401 is an authentication error. `make` builds the request
    /// afresh each time (a streamed body cannot be sent twice).
    pub async fn send<M, Fut>(&self, make: M, expected: &[StatusCode]) -> Attempt<Response>
    where
        M: Fn() -> Fut,
        Fut: Future<Output = Result<RequestBuilder>>,
    {
        let mut answered_challenge = false;
        loop {
            let mut request = make().await?;
            if let Some(value) = self.authorization().await? {
                request = request.header(AUTHORIZATION, value);
            }
            let response = request
                .send()
                .await
                .map_err(|e| self.transport_failure(e))?;
            if response.status() == StatusCode::UNAUTHORIZED && !answered_challenge {
                answered_challenge = true;
                self.answer_challenge(&response).await?;
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

    async fn answer_challenge(&self, response: &Response) -> Attempt<()> {
        let challenge = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(parse_challenge);
        let mut auth = self.auth.lock().await;
        let refused_before = !matches!(*auth, AuthState::Anonymous);
        match challenge {
            Some(Challenge::Basic) => {
                let Some(credentials) = &self.credentials else {
                    return Err(self.needs_credentials().into());
                };
                if refused_before && matches!(*auth, AuthState::Basic(_)) {
                    return Err(self.refused(StatusCode::UNAUTHORIZED).into());
                }
                tracing::debug!("{} asks for basic auth", self.host());
                *auth = AuthState::Basic(basic_header(credentials));
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
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
        let mut request = self.http.get(url);
        if let Some(credentials) = &self.credentials {
            request = request.header(AUTHORIZATION, basic_header(credentials));
        }
        let fetched = Instant::now();
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_failure(e))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(match &self.credentials {
                Some(_) => self.refused(status),
                None => self.needs_credentials(),
            }
            .into());
        }
        let response = self.check_status(response, &[StatusCode::OK]).await?;
        let body: TokenResponse = response.json().await.map_err(|e| {
            Failure::fatal(
                Error::registry(format!("{} sent an unreadable token", self.host())).with_cause(e),
            )
        })?;
        Token::from_response(body, fetched).ok_or_else(|| {
            Failure::fatal(Error::registry(format!(
                "{}'s token endpoint sent no token",
                self.host()
            )))
        })
    }

    fn needs_credentials(&self) -> Error {
        Error::auth(format!("{} requires credentials to push to {}", self.host(), self.repository()))
            .with_hint("pass --username and --password-stdin, or set IDPBUILDER_REGISTRY_USERNAME and IDPBUILDER_REGISTRY_PASSWORD")
    }

    fn refused(&self, status: StatusCode) -> Error {
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

    /// Judges a response: the expected statuses pass; anything else becomes a `Failure` that
    /// says whether retrying could help, with the registry's own error message when it sent one.
    pub async fn check_status(
        &self,
        response: Response,
        expected: &[StatusCode],
    ) -> Attempt<Response> {
        let status = response.status();
        if expected.contains(&status) {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(60)));
        let method_path = response.url().path().to_string();
        let detail = registry_message(response).await;
        let transient = matches!(status.as_u16(), 408 | 429) || status.is_server_error();
        let error = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => self.refused(status),
            _ => Error::registry(format!(
                "{} answered {status} to {method_path}{}",
                self.host(),
                detail.map(|d| format!(": {d}")).unwrap_or_default()
            )),
        };
        Err(Failure {
            error,
            transient,
            retry_after,
            status: Some(status),
        })
    }

    /// Maps a transport error: TLS trust problems are exit 4 and final; connection trouble and
    /// timeouts are worth retrying.
    pub fn transport_failure(&self, error: reqwest::Error) -> Failure {
        if let Some(tls) = find_tls_error(&error) {
            let err = Error::tls(format!("the TLS certificate of {} is not trusted: {}", self.host(), describe_tls(tls)))
                .with_hint("pass --ca-file with the registry's CA or certificate (idpbuilder: kubectl get secret -n default idpbuilder-cert -o jsonpath='{.data.ca\\.crt}' | base64 -d > ca.crt), or --insecure")
                .with_cause(error);
            return Failure::fatal(err);
        }
        let what = if error.is_connect() {
            format!("cannot connect to {}", self.host())
        } else if error.is_timeout() {
            format!("{} did not answer in time", self.host())
        } else {
            format!("the connection to {} failed", self.host())
        };
        Failure {
            error: Error::registry(what)
                .with_hint("check that the registry is running and reachable, or try again")
                .with_cause(error),
            transient: true,
            retry_after: None,
            status: None,
        }
    }
}

/// The first message of an OCI error envelope `{"errors":[{"code","message"}]}`, read from at
/// most 64 KiB of body.
async fn registry_message(mut response: Response) -> Option<String> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > 64 * 1024 {
            return None;
        }
    }
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: Option<String>,
        message: Option<String>,
    }
    let envelope: Envelope = serde_json::from_slice(&body).ok()?;
    let first = envelope.errors.into_iter().next()?;
    match (first.code, first.message) {
        (Some(code), Some(message)) => Some(format!("{code}: {message}")),
        (code, message) => code.or(message),
    }
}

fn describe_tls(error: &rustls::Error) -> String {
    use rustls::{CertificateError, OtherError};
    match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => "it is signed by an unknown authority".into(),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "it has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "it is not valid yet".into()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "it is not valid for this host name".into()
            }
            CertificateError::Other(OtherError(inner))
                if inner.to_string().contains("CaUsedAsEndEntity") =>
            {
                "it is a self-signed CA certificate that is not in the trusted set".into()
            }
            other => format!("{other:?}"),
        },
        other => other.to_string(),
    }
}

fn find_tls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // io::Error's source() skips the error it wraps; step into it instead.
        current = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}
