//! Manifest routes of Gitea 1.24: `UploadManifest` and `processManifest` /
//! `processImageManifest` / `processImageManifestIndex` / `createPackageAndVersion`
//! (`routers/api/packages/container/manifest.go`), `HeadManifest`, `GetManifest`,
//! `DeleteManifest` and `GetTagList` (`container.go`). A manifest is a package version named by
//! its reference, lower-cased: a tag or a digest.

use std::time::Duration;

use serde_json::Value;

use super::Shared;
use super::server::{Req, Resp};
use super::store::{File, UPLOAD_VERSION, Version, key, valid_digest};

/// `maxManifestSize`.
const MAX_MANIFEST_SIZE: usize = 10 * 1024 * 1024;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_INDEX: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";

/// `referencePattern`: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `isValidMediaType`: a prefix test only.
fn valid_media_type(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.docker.")
        || media_type.starts_with("application/vnd.oci.")
}

fn is_image_manifest(media_type: &str) -> bool {
    media_type.eq_ignore_ascii_case(OCI_MANIFEST)
        || media_type.eq_ignore_ascii_case(DOCKER_MANIFEST)
}

fn is_index(media_type: &str) -> bool {
    media_type.eq_ignore_ascii_case(OCI_INDEX) || media_type.eq_ignore_ascii_case(DOCKER_INDEX)
}

/// A descriptor as Go decodes `v1.Descriptor`: a wrong JSON type is a decode error (500).
struct Descriptor {
    media_type: String,
    digest: String,
    size: i64,
}

fn descriptor(value: &Value) -> Result<Descriptor, Resp> {
    let text = |name: &str| match &value[name] {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        _ => Err(Resp::internal("decode descriptor")),
    };
    let size = match &value["size"] {
        Value::Null => 0,
        v => v.as_i64().ok_or_else(|| Resp::internal("decode size"))?,
    };
    Ok(Descriptor {
        media_type: text("mediaType")?,
        digest: text("digest")?,
        size,
    })
}

fn descriptors(value: &Value) -> Result<Vec<Descriptor>, Resp> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(descriptor).collect(),
        _ => Err(Resp::internal("decode descriptors")),
    }
}

/// What a checked manifest will store when its transaction commits.
struct Pending {
    version: Version,
    /// Blobs that leave the `_upload` version.
    claimed: Vec<String>,
}

/// `PUT /v2/OWNER/IMAGE/manifests/REFERENCE`.
pub async fn put(shared: &Shared, req: &Req, owner: &str, image: &str, reference: &str) -> Resp {
    let tagged = !valid_digest(reference);
    if tagged && !valid_tag(reference) {
        return Resp::error(400, "MANIFEST_INVALID", "Tag is invalid");
    }
    if !req.complete {
        return Resp::internal("read body");
    }
    if req.body.len() > MAX_MANIFEST_SIZE {
        return Resp::error(413, "MANIFEST_INVALID", "Manifest exceeds maximum size");
    }
    let version_name = reference.to_lowercase();
    let writing = (
        owner.to_lowercase(),
        image.to_lowercase(),
        version_name.clone(),
    );
    let (pending, digest) = {
        let mut state = shared.lock();
        // The open transaction of an overlapping write holds this version's unique key:
        // `GetOrInsertVersion` fails on it and `UploadManifest` answers 500.
        if state.store.writing.contains(&writing) {
            return Resp::internal("package version already exists");
        }
        let pending = match check(&state.store, req, owner, image, tagged) {
            Ok(pending) => pending,
            Err(resp) => return resp,
        };
        let digest = state.store.save_blob(&req.body);
        state.store.writing.insert(writing.clone());
        (pending, digest)
    };
    tokio::time::sleep(shared.options.write_window.max(Duration::from_millis(1))).await;
    let mut state = shared.lock();
    state.store.writing.remove(&writing);
    let mut version = pending.version;
    let id = state.store.next_file_id();
    version.files.push(File {
        id,
        digest: digest.clone(),
        size: req.body.len() as u64,
        media_type: manifest_media_type(req).unwrap_or_default(),
        is_manifest: true,
    });
    let package = state.store.packages.entry(key(owner, image)).or_default();
    // A reference that names an existing version replaces it, files and all
    // (`DeletePackageVersionAndReferences`).
    package.versions.insert(version_name, version);
    if let Some(upload) = package.versions.get_mut(UPLOAD_VERSION) {
        upload
            .files
            .retain(|f| !pending.claimed.contains(&f.digest));
    }
    Resp::new(201)
        .header(
            "Location",
            &format!("/v2/{owner}/{image}/manifests/{reference}"),
        )
        .header("Docker-Content-Digest", &digest)
        .header("ETag", &format!("\"{digest}\""))
}

/// The media type `processManifest` goes by: the `Content-Type` header when it starts with
/// `application/vnd.docker.` or `application/vnd.oci.`, else the body's `mediaType`.
fn manifest_media_type(req: &Req) -> Option<String> {
    let header = req.header("content-type").unwrap_or_default();
    if valid_media_type(header) {
        return Some(header.to_string());
    }
    let document = first_json_value(&req.body)?;
    let body = document["mediaType"].as_str().unwrap_or_default();
    valid_media_type(body).then(|| body.to_string())
}

/// Go's `json.NewDecoder(buf).Decode`: the first JSON value; what follows is not read.
fn first_json_value(body: &[u8]) -> Option<Value> {
    serde_json::Deserializer::from_slice(body)
        .into_iter::<Value>()
        .next()?
        .ok()
}

/// Everything `processManifest` checks before it writes.
fn check(
    store: &super::Store,
    req: &Req,
    owner: &str,
    image: &str,
    tagged: bool,
) -> Result<Pending, Resp> {
    let document = match first_json_value(&req.body) {
        Some(Value::Null) => Value::Object(Default::default()),
        Some(v @ Value::Object(_)) => v,
        _ => return Err(Resp::internal("decode manifest")),
    };
    let schema = match &document["schemaVersion"] {
        Value::Null => 0,
        v => v
            .as_i64()
            .ok_or_else(|| Resp::internal("decode schemaVersion"))?,
    };
    if !matches!(&document["mediaType"], Value::Null | Value::String(_)) {
        return Err(Resp::internal("decode mediaType"));
    }
    if schema != 2 {
        return Err(Resp::error(
            501,
            "UNSUPPORTED",
            "Schema version is not supported",
        ));
    }
    let Some(media_type) = manifest_media_type(req) else {
        return Err(Resp::error(
            400,
            "MANIFEST_INVALID",
            "MediaType not recognized",
        ));
    };
    if is_image_manifest(&media_type) {
        check_image(store, &document, owner, image, tagged)
    } else if is_index(&media_type) {
        check_index(store, &document, owner, image, tagged)
    } else {
        Err(Resp::error(400, "MANIFEST_INVALID", ""))
    }
}

/// `processImageManifest`: the config and every layer must be blobs of this image (404
/// `BLOB_UNKNOWN`), the config must decode as an image config (else 500), and each size must
/// match (400 `SIZE_INVALID`). A layer named twice is stored once.
fn check_image(
    store: &super::Store,
    document: &Value,
    owner: &str,
    image: &str,
    tagged: bool,
) -> Result<Pending, Resp> {
    let config = descriptor(&document["config"])?;
    let layers = descriptors(&document["layers"])?;
    let lookup = |d: &Descriptor| {
        let found = if d.digest.is_empty() {
            store.find_any(owner, image)
        } else {
            store.find(owner, image, &d.digest, false)
        };
        found.ok_or_else(|| Resp::error(404, "BLOB_UNKNOWN", ""))
    };
    let config_found = lookup(&config)?;
    if !config.media_type.eq_ignore_ascii_case(HELM_CONFIG) {
        let bytes = store
            .read_blob(&config_found.file.digest)
            .unwrap_or_default();
        let parsed = serde_json::Deserializer::from_slice(&bytes)
            .into_iter::<Value>()
            .next();
        match parsed {
            None | Some(Ok(Value::Object(_) | Value::Null)) => {}
            _ => return Err(Resp::internal("ParseImageConfig")),
        }
    }
    let mut found = vec![(config_found, &config)];
    for layer in &layers {
        found.push((lookup(layer)?, layer));
    }
    let mut version = Version {
        internal: false,
        tagged,
        ..Version::default()
    };
    let mut claimed = Vec::new();
    for (hit, wanted) in found {
        if hit.file.size as i64 != wanted.size {
            return Err(Resp::error(400, "SIZE_INVALID", ""));
        }
        if version.files.iter().any(|f| f.digest == hit.file.digest) {
            continue;
        }
        if hit.version == UPLOAD_VERSION {
            claimed.push(hit.file.digest.clone());
        }
        version.files.push(File {
            media_type: wanted.media_type.clone(),
            digest: if wanted.digest.is_empty() {
                hit.file.digest.clone()
            } else {
                wanted.digest.clone()
            },
            is_manifest: false,
            ..hit.file
        });
    }
    Ok(Pending { version, claimed })
}

/// `processImageManifestIndex`: every child must have an image manifest media type (400
/// `MANIFEST_INVALID`: no index in an index, no artifact manifest) and be a manifest already
/// stored for this image (404 `MANIFEST_BLOB_UNKNOWN`).
fn check_index(
    store: &super::Store,
    document: &Value,
    owner: &str,
    image: &str,
    tagged: bool,
) -> Result<Pending, Resp> {
    let mut version = Version {
        internal: false,
        tagged,
        ..Version::default()
    };
    for child in descriptors(&document["manifests"])? {
        if !is_image_manifest(&child.media_type) {
            return Err(Resp::error(400, "MANIFEST_INVALID", ""));
        }
        let known = if child.digest.is_empty() {
            store.find_any_manifest(owner, image)
        } else {
            store.find(owner, image, &child.digest, true)
        };
        if known.is_none() {
            return Err(Resp::error(404, "MANIFEST_BLOB_UNKNOWN", ""));
        }
        version.children.push(child.digest);
    }
    Ok(Pending {
        version,
        claimed: Vec::new(),
    })
}

/// The manifest a reference names: a digest, or a tag (lower-cased), else nothing.
fn lookup(store: &super::Store, owner: &str, image: &str, reference: &str) -> Option<File> {
    if valid_digest(reference) {
        store.find(owner, image, reference, true).map(|f| f.file)
    } else if valid_tag(reference) {
        store.find_tag(owner, image, reference)
    } else {
        None
    }
}

/// `HEAD`/`GET` a manifest: 200 with `Docker-Content-Digest`, the stored media type and
/// `Content-Length`; else 404 `MANIFEST_UNKNOWN`.
pub fn read(shared: &Shared, req: &Req, owner: &str, image: &str, reference: &str) -> Resp {
    let state = shared.lock();
    let Some(file) = lookup(&state.store, owner, image, reference) else {
        return Resp::error(404, "MANIFEST_UNKNOWN", "");
    };
    let mut resp = Resp::new(200)
        .header("Docker-Content-Digest", &file.digest)
        .header("ETag", &format!("\"{}\"", file.digest))
        .header("Content-Type", &file.media_type)
        .header("Content-Length", &file.size.to_string());
    if req.method == "GET" {
        let Some(bytes) = state.store.read_blob(&file.digest) else {
            return Resp::internal("content store");
        };
        resp = resp.body(bytes);
    }
    resp
}

/// `DeleteManifest`: removes every version the reference names; 202, or 404
/// `MANIFEST_UNKNOWN`.
pub fn delete(shared: &Shared, owner: &str, image: &str, reference: &str) -> Resp {
    let mut state = shared.lock();
    let by_digest = valid_digest(reference);
    if !by_digest && !valid_tag(reference) {
        return Resp::error(404, "MANIFEST_UNKNOWN", "");
    }
    let Some(package) = state.store.packages.get_mut(&key(owner, image)) else {
        return Resp::error(404, "MANIFEST_UNKNOWN", "");
    };
    let doomed: Vec<String> = package
        .versions
        .iter()
        .filter(|(name, v)| {
            !v.internal
                && match by_digest {
                    true => v
                        .files
                        .iter()
                        .any(|f| f.is_manifest && f.digest == reference),
                    false => **name == reference.to_lowercase(),
                }
        })
        .map(|(name, _)| name.clone())
        .collect();
    if doomed.is_empty() {
        return Resp::error(404, "MANIFEST_UNKNOWN", "");
    }
    for name in doomed {
        package.versions.remove(&name);
    }
    Resp::new(202)
}

/// `GetTagList`: 404 `NAME_UNKNOWN` for an image with no package; else the tagged versions,
/// sorted, after `last`, at most `n`, with a `Link` to the next page whenever the page is not
/// empty.
pub fn tag_list(shared: &Shared, req: &Req, owner: &str, image: &str) -> Resp {
    let state = shared.lock();
    let Some(package) = state.store.packages.get(&key(owner, image)) else {
        return Resp::error(404, "NAME_UNKNOWN", "");
    };
    let n: i64 = match req.form("n") {
        n if n.is_empty() => -1,
        n => n.parse().unwrap_or(0),
    };
    let last = req.form("last").to_lowercase();
    let tags: Vec<String> = package
        .versions
        .iter()
        .filter(|(name, v)| v.tagged && !v.internal && (last.is_empty() || **name > last))
        .map(|(name, _)| name.clone())
        .take(if n < 0 { usize::MAX } else { n as usize })
        .collect();
    let mut resp = Resp::new(200).header("Content-Type", "application/json");
    if let Some(last) = tags.last() {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if n > 0 {
            query.append_pair("n", &n.to_string());
        }
        query.append_pair("last", last);
        resp = resp.header(
            "Link",
            &format!(
                "</v2/{owner}/{image}/tags/list?{}>; rel=\"next\"",
                query.finish()
            ),
        );
    }
    let name = format!("{owner}/{image}").to_lowercase();
    let body = serde_json::json!({ "name": name, "tags": tags });
    resp.body(format!("{body}\n").into_bytes())
}
