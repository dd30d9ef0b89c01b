//! A wiremock responder that behaves as Gitea's container registry does
//! (go-gitea/gitea `routers/api/packages/container/`), strict where Gitea is strict:
//!
//! - every `/v2/` request needs a Bearer token; without one: 401 with
//!   `WWW-Authenticate: Bearer realm="http://HOST/v2/token",service="container_registry",scope="*"`
//! - `GET /v2/token` with Basic credentials answers `{"token": ...}` (no `expires_in`);
//!   `POST /v2/token` is 404
//! - names are `OWNER/IMAGE`: a known owner, then Gitea's lower-case image pattern
//! - uploads: `POST` answers a relative `Location` and `Range: 0-0`; a `PATCH` without
//!   `Content-Range` after the first write is refused ("Stream uploads after first write are not
//!   allowed"); a `Content-Range` whose start is not the current size gets 416; the final `PUT`
//!   appends its body and checks the digest
//! - a manifest needs its config and layers, sizes matching; an index needs every child manifest
//!
//! Knobs for the tests: a body cap (413 over N bytes, as a proxy would), and a first token that
//! stops working after N requests, optionally with every later token refused too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use wiremock::{Request, Respond, ResponseTemplate};

pub const OWNER: &str = "giteaadmin";
pub const PASSWORD: &str = "gitea-Pa55";
const IMAGE_PATTERN_HELP: &str = "[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*";

/// What the fake has seen and stored; read by the tests after a push.
#[derive(Debug, Default)]
pub struct State {
    /// Tokens issued, in order, and how many requests each authorised.
    pub tokens: Vec<(String, usize)>,
    pub token_gets: usize,
    pub token_posts: usize,
    /// Requests answered 401 after a token had been issued (expired or refused).
    pub refusals: usize,
    uploads: HashMap<String, Vec<u8>>,
    /// `(repository, digest)` -> bytes.
    pub blobs: HashMap<(String, String), Vec<u8>>,
    /// `(repository, reference)` -> (digest, media type); references are tags and digests.
    pub manifests: HashMap<(String, String), String>,
    /// Bodies refused with 413.
    pub too_large: usize,
    /// Sizes of the request bodies accepted on upload paths.
    pub upload_bodies: Vec<usize>,
    next_upload: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Knobs {
    /// Answer 413 to any request body larger than this.
    pub body_cap: Option<usize>,
    /// The first token stops working after this many requests.
    pub expire_first_token_after: Option<usize>,
    /// Tokens after the first are refused too (a second refusal).
    pub refuse_renewed_tokens: bool,
}

/// The responder; clone it to keep a handle on its [`State`].
#[derive(Clone)]
pub struct GiteaFake {
    host: String,
    knobs: Knobs,
    pub state: Arc<Mutex<State>>,
}

impl GiteaFake {
    /// A fake answering as `host` (`127.0.0.1:PORT` of the mock server).
    pub fn new(host: &str, knobs: Knobs) -> GiteaFake {
        GiteaFake {
            host: host.to_string(),
            knobs,
            state: Arc::default(),
        }
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn unauthorized(&self) -> ResponseTemplate {
        let challenge = format!(
            r#"Bearer realm="http://{}/v2/token",service="container_registry",scope="*""#,
            self.host
        );
        error(401, "UNAUTHORIZED", "").insert_header("WWW-Authenticate", challenge.as_str())
    }

    fn token(&self, request: &Request, state: &mut State) -> ResponseTemplate {
        state.token_gets += 1;
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{OWNER}:{PASSWORD}"))
        );
        if header(request, "authorization") != Some(expected.as_str()) {
            return self.unauthorized();
        }
        let token = format!("gitea-token-{}", state.tokens.len() + 1);
        state.tokens.push((token.clone(), 0));
        ResponseTemplate::new(200).set_body_json(json!({ "token": token }))
    }

    /// Whether the request carries a token that still works; counts its use.
    fn authorised(&self, request: &Request, state: &mut State) -> bool {
        let Some(token) = header(request, "authorization").and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let Some(index) = state.tokens.iter().position(|(t, _)| t == token) else {
            return false;
        };
        let expired = match self.knobs.expire_first_token_after {
            Some(limit) => {
                (index == 0 && state.tokens[0].1 >= limit)
                    || (index > 0 && self.knobs.refuse_renewed_tokens)
            }
            None => false,
        };
        if expired {
            state.refusals += 1;
            return false;
        }
        state.tokens[index].1 += 1;
        true
    }
}

impl Respond for GiteaFake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.state();
        if self
            .knobs
            .body_cap
            .is_some_and(|cap| request.body.len() > cap)
        {
            state.too_large += 1;
            return ResponseTemplate::new(413).set_body_string(
                "<html><center><h1>413 Request Entity Too Large</h1></center></html>",
            );
        }
        let method = request.method.as_str();
        let path = request.url.path();
        if path == "/v2/token" {
            return match method {
                "GET" => self.token(request, &mut state),
                _ => {
                    state.token_posts += 1;
                    ResponseTemplate::new(404)
                }
            };
        }
        if !path.starts_with("/v2/") {
            return ResponseTemplate::new(404);
        }
        if !self.authorised(request, &mut state) {
            return self.unauthorized();
        }
        if path == "/v2/" {
            return ResponseTemplate::new(200);
        }
        let Some((repository, route)) = split_route(&path["/v2/".len()..]) else {
            return error(404, "NAME_UNKNOWN", "no such route");
        };
        let Some((owner, image)) = repository.split_once('/') else {
            return error(404, "NAME_UNKNOWN", "the name must be OWNER/IMAGE");
        };
        if owner != OWNER {
            return error(404, "NAME_UNKNOWN", "no such owner");
        }
        if !valid_image(image) {
            return error(400, "NAME_INVALID", IMAGE_PATTERN_HELP);
        }
        let repository = repository.to_string();
        match (method, route) {
            ("HEAD", Route::Blob(digest)) => {
                match state.blobs.contains_key(&(repository, digest.to_string())) {
                    true => ResponseTemplate::new(200),
                    false => ResponseTemplate::new(404),
                }
            }
            ("POST", Route::Uploads) => {
                state.next_upload += 1;
                let id = format!("upload-{}", state.next_upload);
                state.uploads.insert(id.clone(), Vec::new());
                ResponseTemplate::new(202)
                    .insert_header(
                        "Location",
                        format!("/v2/{repository}/blobs/uploads/{id}").as_str(),
                    )
                    .insert_header("Range", "0-0")
                    .insert_header("Docker-Upload-Uuid", id.as_str())
            }
            ("PATCH", Route::Upload(id)) => patch(&mut state, request, &repository, id),
            ("PUT", Route::Upload(id)) => finish(&mut state, request, &repository, id),
            ("DELETE", Route::Upload(id)) => match state.uploads.remove(id) {
                Some(_) => ResponseTemplate::new(204),
                None => error(404, "BLOB_UPLOAD_UNKNOWN", ""),
            },
            ("PUT", Route::Manifest(reference)) => {
                put_manifest(&mut state, request, &repository, reference)
            }
            _ => ResponseTemplate::new(405),
        }
    }
}

enum Route<'a> {
    Blob(&'a str),
    Uploads,
    Upload(&'a str),
    Manifest(&'a str),
}

/// `OWNER/IMAGE/blobs/...` or `OWNER/IMAGE/manifests/REF` -> (`OWNER/IMAGE`, route).
fn split_route(rest: &str) -> Option<(&str, Route<'_>)> {
    if let Some(i) = rest.rfind("/blobs/uploads/") {
        let id = &rest[i + "/blobs/uploads/".len()..];
        let route = if id.is_empty() {
            Route::Uploads
        } else {
            Route::Upload(id)
        };
        return Some((&rest[..i], route));
    }
    if let Some(i) = rest.rfind("/blobs/") {
        return Some((&rest[..i], Route::Blob(&rest[i + "/blobs/".len()..])));
    }
    let i = rest.rfind("/manifests/")?;
    Some((
        &rest[..i],
        Route::Manifest(&rest[i + "/manifests/".len()..]),
    ))
}

/// Gitea's `imageNamePattern`.
fn valid_image(image: &str) -> bool {
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

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"errors": [{"code": code, "message": message}]}))
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Gitea's `UploadBlob`.
fn patch(state: &mut State, request: &Request, repository: &str, id: &str) -> ResponseTemplate {
    let Some(size) = state.uploads.get(id).map(Vec::len) else {
        return error(404, "BLOB_UPLOAD_UNKNOWN", "");
    };
    match header(request, "content-range") {
        Some(range) => {
            let start = range
                .split('-')
                .next()
                .and_then(|s| s.parse::<usize>().ok());
            if start != Some(size) {
                return error(
                    416,
                    "BLOB_UPLOAD_INVALID",
                    "range does not continue the upload",
                );
            }
        }
        None if size != 0 => {
            return error(
                400,
                "BLOB_UPLOAD_INVALID",
                "Stream uploads after first write are not allowed",
            );
        }
        None => {}
    }
    state.upload_bodies.push(request.body.len());
    let upload = state.uploads.entry(id.to_string()).or_default();
    upload.extend_from_slice(&request.body);
    let end = upload.len().saturating_sub(1);
    ResponseTemplate::new(202)
        .insert_header(
            "Location",
            format!("/v2/{repository}/blobs/uploads/{id}").as_str(),
        )
        .insert_header("Range", format!("0-{end}").as_str())
}

/// Gitea's `EndUploadBlob`.
fn finish(state: &mut State, request: &Request, repository: &str, id: &str) -> ResponseTemplate {
    let digest = request
        .url
        .query_pairs()
        .find(|(k, _)| k == "digest")
        .map(|(_, v)| v.into_owned());
    let Some(digest) = digest else {
        return error(400, "DIGEST_INVALID", "");
    };
    let Some(mut bytes) = state.uploads.remove(id) else {
        return error(404, "BLOB_UPLOAD_UNKNOWN", "");
    };
    if !request.body.is_empty() {
        state.upload_bodies.push(request.body.len());
    }
    bytes.extend_from_slice(&request.body);
    if sha256(&bytes) != digest {
        return error(400, "DIGEST_INVALID", "");
    }
    state
        .blobs
        .insert((repository.to_string(), digest.clone()), bytes);
    ResponseTemplate::new(201)
        .insert_header(
            "Location",
            format!("/v2/{repository}/blobs/{digest}").as_str(),
        )
        .insert_header("Docker-Content-Digest", digest.as_str())
}

/// Gitea's `UploadManifest`: `processImageManifest` / `processImageManifestIndex`.
fn put_manifest(
    state: &mut State,
    request: &Request,
    repository: &str,
    reference: &str,
) -> ResponseTemplate {
    let Ok(document) = serde_json::from_slice::<Value>(&request.body) else {
        return error(400, "MANIFEST_INVALID", "");
    };
    let media_type = header(request, "content-type")
        .map(str::to_string)
        .or_else(|| document["mediaType"].as_str().map(str::to_string))
        .unwrap_or_default();
    let has_blob = |d: &Value| {
        let key = (
            repository.to_string(),
            d["digest"].as_str().unwrap_or_default().to_string(),
        );
        state
            .blobs
            .get(&key)
            .map(|b| Some(b.len() as u64) == d["size"].as_u64())
    };
    if media_type.contains("index") || media_type.contains("manifest.list") {
        for child in document["manifests"].as_array().into_iter().flatten() {
            let key = (
                repository.to_string(),
                child["digest"].as_str().unwrap_or_default().to_string(),
            );
            if !state.manifests.contains_key(&key) {
                return error(404, "MANIFEST_BLOB_UNKNOWN", "");
            }
        }
    } else {
        let layers = document["layers"].as_array().cloned().unwrap_or_default();
        for blob in std::iter::once(&document["config"]).chain(&layers) {
            match has_blob(blob) {
                None => return error(404, "BLOB_UNKNOWN", ""),
                Some(false) => return error(400, "SIZE_INVALID", ""),
                Some(true) => {}
            }
        }
    }
    let digest = sha256(&request.body);
    for key in [reference, digest.as_str()] {
        state
            .manifests
            .insert((repository.to_string(), key.to_string()), digest.clone());
    }
    ResponseTemplate::new(201)
        .insert_header(
            "Location",
            format!("/v2/{repository}/manifests/{reference}").as_str(),
        )
        .insert_header("Docker-Content-Digest", digest.as_str())
}
