//! The read steps of a copy from another registry (a `docker://` IMAGE), one method per
//! request like the write steps in `upload.rs`: `get_manifest` (GET `manifests/REF`, 200) and
//! `get_blob` (GET `blobs/DIGEST`, 200, or 206 from an offset asked with `Range`).
//!
//! Both go through [`Registry::send`], so credentials go only to the registry's own origin: a
//! blob redirected to object storage is fetched from there without them (reqwest drops
//! `Authorization` when a redirect changes the origin; a redirect from HTTPS to HTTP is refused).
//! A blob's body is a stream: a break in the middle of it is an error of kind `Registry` inside
//! the `io::Error`, which the upload retries as a transient failure.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use reqwest::header::{ACCEPT, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use reqwest::{Method, Response, StatusCode};

use super::client::{Attempt, Failure, Registry, Role};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::BlobReader;
use crate::oci::media_type::MANIFEST_ACCEPT;

/// The largest manifest read: distribution's own limit.
const MANIFEST_LIMIT: usize = 4 << 20;

/// A manifest or index as the registry sent it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// `Content-Type`, when the registry named one.
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
    /// What `bytes` hash to: checked against a requested digest and `Docker-Content-Digest`.
    pub digest: Digest,
}

impl Registry {
    /// `GET /v2/<name>/manifests/<reference>` with an `Accept` for OCI and Docker manifests and
    /// indexes: 200. A 404 is an input error naming the image. The bytes must hash to
    /// `reference` when it is a digest, and to `Docker-Content-Digest` when the registry sends
    /// a sha256 one.
    pub async fn get_manifest(&self, reference: &str) -> Result<FetchedManifest> {
        let url = self.url(&format!("manifests/{reference}"))?;
        let name = self.image_name(reference);
        let (content_type, echoed, bytes) = self
            .retrying(&format!("read manifest {name}"), || async {
                let response = self
                    .send(
                        |_| async {
                            Ok(self
                                .request(Method::GET, url.clone())
                                .header(ACCEPT, MANIFEST_ACCEPT))
                        },
                        &[StatusCode::OK],
                    )
                    .await
                    .map_err(|f| {
                        missing(f, || match self.role() {
                            Role::Pull => format!("image {name} does not exist"),
                            _ => format!("source image {name} does not exist"),
                        })
                    })?;
                let header = |key| {
                    response
                        .headers()
                        .get(key)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                let content_type = header(CONTENT_TYPE.as_str());
                let echoed = header("docker-content-digest");
                let bytes = self.read_manifest_body(response, &name).await?;
                Ok((content_type, echoed, bytes))
            })
            .await?;
        let digest = Digest::of(&bytes);
        let claimed = match Digest::parse(reference) {
            Ok(asked) => Some((asked, "the digest asked for")),
            Err(_) => None,
        };
        let echoed = echoed
            .filter(|e| e.starts_with("sha256:"))
            .and_then(|e| Digest::parse(&e).ok())
            .map(|e| (e, "its Docker-Content-Digest"));
        for (expected, what) in claimed.into_iter().chain(echoed) {
            if expected != digest {
                return Err(Error::input(format!(
                    "source manifest {name} does not match its digest: its bytes hash to {digest}, not to {expected} ({what})"
                ))
                .with_hint("the source registry serves a corrupt or altered manifest; ask its operator, or copy from another mirror"));
            }
        }
        Ok(FetchedManifest {
            content_type,
            bytes,
            digest,
        })
    }

    /// The whole body of a manifest, at most [`MANIFEST_LIMIT`] bytes, each piece within the
    /// idle time; a body that breaks off is worth another try.
    async fn read_manifest_body(&self, mut response: Response, name: &str) -> Attempt<Vec<u8>> {
        // Whole within the idle time, not only each piece: a registry trickling a byte at a
        // time would otherwise keep the push waiting for ever.
        let deadline = tokio::time::Instant::now() + self.timeouts().idle;
        let mut bytes = Vec::new();
        loop {
            let chunk = match tokio::time::timeout_at(deadline, response.chunk()).await {
                Err(_) => {
                    return Err(Failure::transient(
                        Error::registry(format!(
                            "{}{} did not send manifest {name} whole within {}s",
                            if self.role() == Role::Source { "source registry " } else { "" },
                            self.host(),
                            self.timeouts().idle.as_secs_f64()
                        ))
                        .with_hint(match self.role() {
                            Role::Source | Role::Pull => "the registry read from is too slow or stalled; check it, or try again",
                            Role::Destination => "check that the registry is running and reachable, or try again",
                        }),
                    ));
                }
                Ok(Err(e)) => return Err(self.transport_failure(e)),
                Ok(Ok(None)) => return Ok(bytes),
                Ok(Ok(Some(chunk))) => chunk,
            };
            if bytes.len() + chunk.len() > MANIFEST_LIMIT {
                return Err(Failure::fatal(Error::input(format!(
                    "source manifest {name} is larger than {} MiB, which registries refuse",
                    MANIFEST_LIMIT >> 20
                ))));
            }
            bytes.extend_from_slice(&chunk);
        }
    }

    /// `GET /v2/<name>/blobs/<digest>`: 200, or with `Range: bytes=OFFSET-` from an offset,
    /// 206 (a registry that ignores the range answers 200, and the bytes before `offset` are
    /// skipped). Redirects (object storage) are followed without our credentials. The reader
    /// gives the `size - offset` bytes from `offset`; a body that breaks, stalls past the idle
    /// time or ends early fails with an error of kind `Registry`, so the upload tries again.
    /// A 404 is an input error naming the blob.
    pub async fn get_blob(&self, digest: &Digest, offset: u64, size: u64) -> Result<BlobReader> {
        if offset >= size {
            return Ok(Box::pin(tokio::io::empty()));
        }
        let url = self.url(&format!("blobs/{digest}"))?;
        let response = self
            .retrying(&format!("read blob {}", digest.short()), || async {
                self.send(
                    |_| async {
                        let request = self.request(Method::GET, url.clone());
                        Ok(if offset > 0 {
                            request.header(RANGE, format!("bytes={offset}-"))
                        } else {
                            request
                        })
                    },
                    &[StatusCode::OK, StatusCode::PARTIAL_CONTENT],
                )
                .await
                .map_err(|f| {
                    missing(f, || {
                        format!(
                            "blob {digest} is missing from the source image at {}/{}",
                            self.host(),
                            self.repository()
                        )
                    })
                })
            })
            .await?;
        let skip = if response.status() == StatusCode::PARTIAL_CONTENT {
            let start = response
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(range_start);
            if start != Some(offset) {
                return Err(Error::registry(format!(
                    "{} answered a read of blob {} from byte {offset} with another range",
                    self.host(),
                    digest.short()
                )));
            }
            0
        } else {
            offset
        };
        // A registry that says how long the blob is, and says less than the manifest: the
        // manifest's size is wrong, and no retry will change that.
        let expected = size - offset + skip;
        if let Some(len) = response.content_length().filter(|len| *len < expected) {
            return Err(Error::input(format!(
                "blob {digest} of the source image at {}/{} is {} bytes, not the {size} its manifest says",
                self.host(),
                self.repository(),
                len + offset - skip
            ))
            .with_hint("the source image's manifest gives a wrong size for it; ask the source's operator, or copy from another mirror"));
        }
        let body = Body {
            chunks: response.bytes_stream().boxed(),
            skip,
            remaining: size - offset,
            idle: self.timeouts().idle,
            host: self.host().to_string(),
            digest: digest.clone(),
        };
        Ok(Box::pin(tokio_util::io::StreamReader::new(
            body.into_stream(),
        )))
    }

    /// `GET /v2/<name>/tags/list?n=<limit>`: 200 with `{"tags": [...]}`. Some of the
    /// repository's tags (at most `limit`, in the registry's order), for a hint when the one
    /// asked for is not there; `None` when the registry will not say (no such repository, no
    /// tag list, a refusal).
    pub async fn list_tags(&self, limit: usize) -> Option<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        let mut url = self.url("tags/list").ok()?;
        url.query_pairs_mut().append_pair("n", &limit.to_string());
        let response = self
            .send(
                |_| async { Ok(self.request(Method::GET, url.clone())) },
                &[StatusCode::OK],
            )
            .await
            .ok()?;
        let body = self.read_manifest_body(response, "tags/list").await.ok()?;
        let list: TagList = serde_json::from_slice(&body).ok()?;
        let mut tags = list.tags.unwrap_or_default();
        tags.truncate(limit);
        Some(tags)
    }

    /// `HOST/REPO:TAG` or `HOST/REPO@DIGEST`, for messages.
    fn image_name(&self, reference: &str) -> String {
        let separator = if reference.starts_with("sha256:") {
            '@'
        } else {
            ':'
        };
        format!(
            "{}/{}{separator}{reference}",
            self.host(),
            self.repository()
        )
    }
}

/// A 404 is the image's fault (a tag, digest or blob that is not there): an input error, final.
fn missing(failure: Failure, message: impl FnOnce() -> String) -> Failure {
    if failure.status != Some(StatusCode::NOT_FOUND) {
        return failure;
    }
    Failure::fatal(
        Error::input(format!("{} (404 Not Found)", message()))
            .with_hint(
                "check the repository and the tag or digest in IMAGE (docker://HOST/REPO:TAG)",
            )
            .with_cause(failure.error),
    )
}

/// The first byte of `Content-Range: bytes START-END/TOTAL`.
fn range_start(header: &str) -> Option<u64> {
    let range = header.trim().strip_prefix("bytes")?.trim_start();
    range.split('-').next()?.trim().parse().ok()
}

/// A blob's body as it arrives: `skip` bytes dropped first, then `remaining` bytes handed on.
struct Body {
    chunks: BoxStream<'static, reqwest::Result<Bytes>>,
    skip: u64,
    remaining: u64,
    idle: Duration,
    host: String,
    digest: Digest,
}

impl Body {
    fn failed(&self, message: String) -> io::Error {
        io::Error::other(Error::registry(message))
    }

    fn into_stream(self) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        futures_util::stream::try_unfold(self, |mut body| async move {
            loop {
                if body.remaining == 0 {
                    return Ok(None);
                }
                let short = body.digest.short().to_string();
                let mut chunk = match tokio::time::timeout(body.idle, body.chunks.next()).await {
                    Err(_) => {
                        return Err(body.failed(format!(
                            "{} stopped sending blob {short} (nothing for {}s)",
                            body.host,
                            body.idle.as_secs_f64()
                        )));
                    }
                    Ok(Some(Err(e))) => {
                        let message = format!(
                            "the connection to {} broke while reading blob {short}",
                            body.host
                        );
                        return Err(io::Error::other(Error::registry(message).with_cause(e)));
                    }
                    Ok(None) => {
                        return Err(body.failed(format!(
                            "{} ended blob {short} {} bytes early",
                            body.host, body.remaining
                        )));
                    }
                    Ok(Some(Ok(chunk))) => chunk,
                };
                if body.skip > 0 {
                    let dropped = body.skip.min(chunk.len() as u64);
                    body.skip -= dropped;
                    let _ = chunk.split_to(dropped as usize);
                }
                if chunk.is_empty() {
                    continue;
                }
                if chunk.len() as u64 > body.remaining {
                    chunk.truncate(body.remaining as usize);
                }
                body.remaining -= chunk.len() as u64;
                return Ok(Some((chunk, body)));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[test]
    fn content_range_gives_its_first_byte() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes 0-0/1"), Some(0));
        assert_eq!(range_start("bytes */200"), None);
        assert_eq!(range_start("items 1-2"), None);
    }

    fn body(pieces: Vec<reqwest::Result<Bytes>>, skip: u64, remaining: u64) -> Body {
        Body {
            chunks: futures_util::stream::iter(pieces).boxed(),
            skip,
            remaining,
            idle: Duration::from_secs(5),
            host: "registry.example".into(),
            digest: Digest::of(b"blob"),
        }
    }

    async fn read(body: Body) -> io::Result<Vec<u8>> {
        let mut reader = Box::pin(tokio_util::io::StreamReader::new(body.into_stream()));
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.map(|_| out)
    }

    #[tokio::test]
    async fn a_body_skips_what_a_registry_ignoring_range_resent_and_stops_at_the_size() {
        let pieces = vec![
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"defgh")),
        ];
        assert_eq!(read(body(pieces, 4, 3)).await.expect("read"), b"efg");
    }

    /// A source registry client for a plain-HTTP test server.
    fn source(address: &std::net::SocketAddr) -> Registry {
        crate::registry::install_default_provider();
        let connection = super::super::Connection {
            host: address.to_string(),
            repository: "team/app".into(),
            plain_http: true,
            trust: super::super::Trust::default(),
            retries: 2,
            role: super::super::Role::Source,
        };
        Registry::new(connection, None).expect("client")
    }

    async fn read_blob(registry: &Registry, digest: &Digest, offset: u64) -> Vec<u8> {
        let mut reader = registry.get_blob(digest, offset, 10).await.expect("opened");
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn a_blob_is_read_from_an_offset_with_range_or_past_what_a_registry_resends() {
        use wiremock::matchers::{header, method, path};
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let blob = b"0123456789";
        let digest = Digest::of(blob);
        let blob_path = format!("/v2/team/app/blobs/{digest}");

        let ranged = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(blob_path.as_str()))
            .and(header("range", "bytes=4-"))
            .respond_with(
                ResponseTemplate::new(206)
                    .insert_header("Content-Range", "bytes 4-9/10")
                    .set_body_bytes(&blob[4..]),
            )
            .mount(&ranged)
            .await;
        assert_eq!(
            read_blob(&source(ranged.address()), &digest, 4).await,
            b"456789"
        );

        let whole = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(blob_path.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(&blob[..]))
            .mount(&whole)
            .await;
        let registry = source(whole.address());
        assert_eq!(read_blob(&registry, &digest, 4).await, b"456789");
        assert_eq!(read_blob(&registry, &digest, 0).await, blob);
        assert!(read_blob(&registry, &digest, 10).await.is_empty());
    }

    #[tokio::test]
    async fn a_missing_manifest_is_an_input_error_naming_the_image() {
        use wiremock::matchers::method;
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(404).set_body_string(
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
            ))
            .mount(&server)
            .await;
        let error = source(server.address())
            .get_manifest("nope")
            .await
            .expect_err("404");
        assert_eq!(error.kind(), crate::error::Kind::Input);
        assert_eq!(
            error.message(),
            format!(
                "source image {}/team/app:nope does not exist (404 Not Found)",
                server.address()
            )
        );
        assert_eq!(
            server.received_requests().await.map(|r| r.len()),
            Some(1),
            "not retried"
        );
    }

    #[tokio::test]
    async fn a_body_that_ends_early_is_a_registry_error_worth_retrying() {
        let error = read(body(vec![Ok(Bytes::from_static(b"abc"))], 0, 10))
            .await
            .expect_err("short");
        let ours = error
            .into_inner()
            .and_then(|e| e.downcast::<Error>().ok())
            .expect("our error inside");
        assert_eq!(ours.kind(), crate::error::Kind::Registry);
        assert!(ours.message().contains("7 bytes early"), "{ours}");
    }
}
