//! Judging what came back: `check_status`, the only place a response status is judged (with
//! the registry's own error message), the mapping of transport errors (TLS trust, connection,
//! a body cut short) to failures, and the idle timeout around every request. Where the next
//! step is a flag, the failure carries a typed [`Cause`] and the report words it.

use std::time::{Duration, Instant};

use reqwest::header::RETRY_AFTER;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use url::Url;

use super::client::{Attempt, Failure, Registry, Role};
use super::origin::{Downgrade, Unresolved, origin_text};
use super::timeouts::Watch;
use super::{Answered, Cause};
use crate::error::Error;
use crate::text::escape_controls;

impl Registry {
    /// Judges a response: the expected statuses pass; anything else becomes a `Failure` that
    /// says whether retrying could help, with the registry's own error message when it sent one.
    pub(super) async fn check_status(
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
        let request_path = response.url().path().to_string();
        let plain_http = response.url().scheme() == "http";
        let (detail, https_server) = registry_message(response, self.timeouts().idle).await;
        let transient = matches!(status.as_u16(), 408 | 429) || status.is_server_error();
        let answered = || {
            Error::registry(format!(
                "{} answered {status} to {request_path}{}",
                self.host(),
                detail.clone().map(|d| format!(": {d}")).unwrap_or_default()
            ))
        };
        let error = match status {
            StatusCode::UNAUTHORIZED if !self.has_credentials() => self.needs_credentials(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => self.refused(status),
            // Gitea has no repositories outside an owner.
            StatusCode::NOT_FOUND
                if self.role() == Role::Destination && !self.repository().contains('/') =>
            {
                answered().with_hint(format!(
                    "registries such as Gitea want OWNER/NAME: push to giteaadmin/{} or another owner",
                    self.repository()
                ))
            }
            // What an HTTPS server answers to plain HTTP (Go's: "Client sent an HTTP request to
            // an HTTPS server"; nginx's: "The plain HTTP request was sent to HTTPS port"). Any
            // other 400 is the registry's own refusal (a manifest it does not take), not a
            // wrong scheme.
            StatusCode::BAD_REQUEST if plain_http && https_server => {
                answered().with_reason(Cause::PlainHttpToHttps { role: self.role() })
            }
            _ => answered().with_reason(Answered {
                status: status.as_u16(),
            }),
        };
        Err(Failure {
            error,
            transient,
            retry_after,
            status: Some(status),
            body_cut: false,
        })
    }

    /// Sends `request`, failing when nothing moves for the idle time; a transport failure
    /// says whether the connection dropped part-way through the body.
    pub(super) async fn watched(
        &self,
        watch: &Watch,
        request: RequestBuilder,
    ) -> Attempt<Response> {
        let (client, request) = request.build_split();
        let request = request.map_err(|e| self.transport_failure(e))?;
        // Only formatted when it will be printed: this runs for every request of a push.
        let line = tracing::enabled!(tracing::Level::TRACE)
            .then(|| request_line(request.method(), request.url()));
        let started = Instant::now();
        watch.touch();
        let outcome = match watch
            .within(self.timeouts().idle, client.execute(request))
            .await
        {
            Some(Ok(response)) => Ok(response),
            Some(Err(e)) => Err(Failure {
                body_cut: watch.body_cut(),
                ..self.transport_failure(e)
            }),
            None => Err(self.timed_out()),
        };
        if let Some(line) = line {
            let elapsed = started.elapsed().as_millis();
            match &outcome {
                Ok(response) => tracing::trace!("{line} -> {} ({elapsed} ms)", response.status()),
                Err(failure) => {
                    tracing::trace!("{line} failed after {elapsed} ms: {}", failure.error)
                }
            }
        }
        outcome
    }

    pub(super) fn timed_out(&self) -> Failure {
        Failure::transient(
            Error::registry(format!(
                "{} did not answer in time (nothing moved for {}s)",
                self.host(),
                self.timeouts().idle.as_secs_f64()
            ))
            .with_hint("check that the registry is running and reachable, or try again"),
        )
    }

    /// Maps a transport error: TLS trust problems are exit 4 and final, and so is a redirect
    /// from HTTPS to plain HTTP; connection trouble and timeouts are worth retrying.
    pub(super) fn transport_failure(&self, error: reqwest::Error) -> Failure {
        if let Some(downgrade) = find_source::<Downgrade>(&error) {
            let err = Error::registry(format!(
                "{} redirected a request to plain HTTP ({}); a TLS registry is never followed to plain HTTP",
                self.host(),
                downgrade.to
            ))
            .with_hint("the registry (or a proxy in front of it) must redirect to https:// URLs: check its external URL setting");
            return Failure::fatal(err);
        }
        if let Some(unresolved) = find_source::<Unresolved>(&error) {
            if self.role() == Role::Source && !unresolved.temporary() {
                // The fix is in IMAGE, as for a malformed reference.
                let err = Error::input(format!(
                    "the source registry {} is unknown: {} does not resolve",
                    self.host(),
                    unresolved.name
                ))
                .with_hint("check the host in IMAGE (docker://HOST/REPO:TAG); without a host, IMAGE names a Docker Hub image")
                .with_cause(error);
                return Failure::fatal(err);
            }
            let err = Error::registry(format!(
                "cannot reach {}: the host name {} does not resolve",
                self.host(),
                unresolved.name
            ))
            .with_cause(error);
            return Failure::fatal(self.unreachable(err, "check the registry's host name"));
        }
        if let Some(tls) = find_tls_error(&error) {
            // The role decides whose flags the hint names: the source registry has its own.
            let whose = match self.role() {
                Role::Source => "the source registry ",
                Role::Destination | Role::Pull => "",
            };
            let err = Error::tls(format!(
                "the TLS certificate of {whose}{} is not trusted: {}",
                self.host(),
                describe_tls(tls)
            ))
            .with_reason(Cause::UntrustedCertificate { role: self.role() })
            .with_cause(error);
            return Failure::fatal(err);
        }
        let what = if error.is_connect() {
            let refused = find_source::<std::io::Error>(&error)
                .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
            let why = if refused { " (connection refused)" } else { "" };
            format!("cannot connect to {}{why}", self.host())
        } else if error.is_timeout() {
            format!("{} did not answer in time", self.host())
        } else {
            format!("the connection to {} failed", self.host())
        };
        Failure::transient(self.unreachable(
            Error::registry(what).with_cause(error),
            "check that the registry is running and reachable, or try again",
        ))
    }

    /// For idpbuilder's own hosts, the likely cause is that idpbuilder is not running here,
    /// which the report words; for any other host, `otherwise` is the hint.
    fn unreachable(&self, error: Error, otherwise: &str) -> Error {
        let name = self
            .host()
            .rsplit_once(':')
            .map_or(self.host(), |(name, _)| name);
        if name == "cnoe.localtest.me" || name.ends_with(".cnoe.localtest.me") {
            error.with_reason(Cause::IdpbuilderUnreachable)
        } else {
            error.with_hint(otherwise)
        }
    }
}

/// The first message of an OCI error envelope `{"errors":[{"code","message"}]}`, read from at
/// most 64 KiB of body, each piece within the idle time.
async fn registry_message(mut response: Response, idle: Duration) -> (Option<String>, bool) {
    let mut body = Vec::new();
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout(idle, response.chunk()).await {
        body.extend_from_slice(&chunk);
        if body.len() > 64 * 1024 {
            return (None, false);
        }
    }
    (error_message(&body), says_https(&body))
}

/// Whether an error body is an HTTPS server's answer to a plain-HTTP request.
fn says_https(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    text.contains("HTTP request to an HTTPS server") || text.contains("sent to HTTPS port")
}

/// The first entry of a registry's JSON error envelope, as `CODE: message`.
fn error_message(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: Option<String>,
        message: Option<String>,
    }
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    let first = envelope.errors.into_iter().next()?;
    let text = match (first.code, first.message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (code, message) => code.or(message)?,
    };
    // The registry's own words go into messages and retry log lines: escaped here, before they
    // can play a terminal escape sequence or start a line of their own.
    Some(escape_controls(&text).into_owned())
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
    find_source::<rustls::Error>(error)
}

/// The first error of type `T` in `error`'s chain of causes.
fn find_source<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
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

/// `METHOD scheme://host[:port]/path` of a request, for the trace log: never the query, which
/// may carry an upload's state or an object store's signature, nor user info.
fn request_line(method: &Method, url: &Url) -> String {
    format!("{method} {}{}", origin_text(url), url.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_https_servers_own_words_mean_the_wrong_scheme() {
        assert!(says_https(
            b"Client sent an HTTP request to an HTTPS server.\n"
        ));
        assert!(says_https(
            b"<html><center>The plain HTTP request was sent to HTTPS port</center></html>"
        ));
        assert!(!says_https(b""));
        assert!(!says_https(br#"{"errors":[{"code":"MANIFEST_INVALID"}]}"#));
        assert_eq!(
            error_message(
                br#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}"#
            ),
            Some("MANIFEST_INVALID: manifest invalid".to_string())
        );
    }
}
