//! Blob routes of Gitea 1.24's `routers/api/packages/container/container.go`:
//! `InitiateUploadBlob` (a session, a single-POST upload, or a cross-repository mount),
//! `GetUploadBlob`, `UploadBlob` (`PATCH`), `EndUploadBlob` (`PUT ?digest=`),
//! `CancelUploadBlob`, and `HeadBlob`/`GetBlob`/`DeleteBlob`, blobs scoped to owner and image.

use super::server::{Req, Resp};
use super::store::{key, sha256, valid_digest};
use super::{Shared, State};

fn upload_location(owner: &str, image: &str, id: &str) -> String {
    format!("/v2/{owner}/{image}/blobs/uploads/{id}")
}

fn blob_created(owner: &str, image: &str, digest: &str) -> Resp {
    Resp::new(201)
        .header("Location", &format!("/v2/{owner}/{image}/blobs/{digest}"))
        .header("Docker-Content-Digest", digest)
        .header("ETag", &format!("\"{digest}\""))
}

/// `POST /v2/OWNER/IMAGE/blobs/uploads/`: `?mount=&from=` mounts a blob found in the
/// repository `from` (its lower-case `OWNER/IMAGE`) with 201; `?digest=` stores the body as
/// the blob (201, or 400 `DIGEST_INVALID`); otherwise a new session, 202 with its `Location`
/// and `Docker-Upload-Uuid` (no `Range` since Gitea 1.24.1).
pub fn initiate(shared: &Shared, req: &Req, owner: &str, image: &str) -> Resp {
    let mut state = shared.lock();
    let mount = req.form("mount");
    let from = req.form("from");
    if !mount.is_empty() {
        let found = from
            .split_once('/')
            .filter(|(o, i)| from == format!("{}/{}", o.to_lowercase(), i.to_lowercase()))
            .and_then(|(o, i)| state.store.find(o, i, &mount, false));
        if let Some(found) = found {
            state
                .store
                .add_uploaded(owner, image, &mount, found.file.size);
            return blob_created(owner, image, &mount);
        }
    }
    let digest = req.form("digest");
    if !digest.is_empty() {
        if sha256(&req.body) != digest {
            return Resp::error(400, "DIGEST_INVALID", "");
        }
        let digest = state.store.save_blob(&req.body);
        state
            .store
            .add_uploaded(owner, image, &digest, req.body.len() as u64);
        return blob_created(owner, image, &digest);
    }
    let id = state.store.create_upload();
    Resp::new(202)
        .header("Location", &upload_location(owner, image, &id))
        .header("Docker-Upload-Uuid", &id)
}

/// `GET` on a session: 204 with `Range: 0-(received-1)` (absent while empty) and the session's
/// `Location`; 404 `BLOB_UPLOAD_UNKNOWN` for a session that is gone.
pub fn upload_status(shared: &Shared, owner: &str, image: &str, id: &str) -> Resp {
    let state = shared.lock();
    let Some(upload) = state.store.uploads.get(id) else {
        return Resp::error(404, "BLOB_UPLOAD_UNKNOWN", "");
    };
    let mut resp = Resp::new(204)
        .header("Location", &upload_location(owner, image, id))
        .header("Docker-Upload-Uuid", id);
    if upload.received > 0 {
        resp = resp.header("Range", &format!("0-{}", upload.received - 1));
    }
    resp
}

/// Go's `fmt.Sscanf(value, "%d-%d", &start, &end)`: two integers around a `-`; what follows
/// is not read.
fn scan_range(value: &str) -> Option<(i64, i64)> {
    fn int(s: &str) -> Option<(i64, &str)> {
        let signed = s.strip_prefix(['+', '-']).unwrap_or(s);
        let digits = signed.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let len = s.len() - signed.len() + digits;
        Some((s[..len].parse().ok()?, &s[len..]))
    }
    let (start, rest) = int(value)?;
    let (end, _) = int(rest.strip_prefix('-')?)?;
    Some((start, end))
}

/// `PATCH` on a session. With `Content-Range`, its `START-END` must parse (else 400
/// `BLOB_UPLOAD_INVALID`) and START must equal the bytes received (else 416); without it, only
/// the first write may come (else 400 "Stream uploads after first write are not allowed").
/// END is not checked. 202 with `Range: 0-(received-1)`.
pub fn patch(shared: &Shared, req: &Req, owner: &str, image: &str, id: &str) -> Resp {
    let mut state = shared.lock();
    let Some(received) = state.store.uploads.get(id).map(|u| u.received) else {
        return Resp::error(404, "BLOB_UPLOAD_UNKNOWN", "");
    };
    match req.header("content-range").filter(|v| !v.is_empty()) {
        Some(range) => match scan_range(range) {
            None => return Resp::error(400, "BLOB_UPLOAD_INVALID", ""),
            Some((start, _)) if start != received as i64 => {
                return Resp::error(416, "BLOB_UPLOAD_INVALID", "");
            }
            Some(_) => {}
        },
        None if received != 0 => {
            return Resp::error(
                400,
                "BLOB_UPLOAD_INVALID",
                "Stream uploads after first write are not allowed",
            );
        }
        None => {}
    }
    if append(&mut state, req, id).is_err() {
        return Resp::internal("append");
    }
    let received = state.store.uploads.get(id).map_or(0, |u| u.received);
    let mut resp = Resp::new(202)
        .header("Location", &upload_location(owner, image, id))
        .header("Docker-Upload-Uuid", id);
    if received > 0 {
        resp = resp.header("Range", &format!("0-{}", received - 1));
    }
    resp
}

fn append(state: &mut State, req: &Req, id: &str) -> Result<(), &'static str> {
    if !req.body.is_empty() {
        state.upload_bodies.push(req.body.len());
    }
    state.store.append(id, &req.body, req.complete)
}

/// `PUT ?digest=` on a session: appends its body (no `Content-Range` check), then compares the
/// digest of everything received (400 `DIGEST_INVALID`, the session stays); 201 stores the
/// blob in the image's `_upload` version and ends the session.
pub fn finish(shared: &Shared, req: &Req, owner: &str, image: &str, id: &str) -> Resp {
    let mut state = shared.lock();
    let digest = req.form("digest");
    if digest.is_empty() {
        return Resp::error(400, "DIGEST_INVALID", "");
    }
    if !state.store.uploads.contains_key(id) {
        return Resp::error(404, "BLOB_UPLOAD_UNKNOWN", "");
    }
    if append(&mut state, req, id).is_err() {
        return Resp::internal("append");
    }
    let bytes = state.store.upload_bytes(id);
    if sha256(&bytes) != digest {
        return Resp::error(400, "DIGEST_INVALID", "");
    }
    let digest = state.store.save_blob(&bytes);
    state
        .store
        .add_uploaded(owner, image, &digest, bytes.len() as u64);
    state.store.remove_upload(id);
    blob_created(owner, image, &digest)
}

/// `DELETE` on a session: 204, or 404 `BLOB_UPLOAD_UNKNOWN`.
pub fn cancel(shared: &Shared, id: &str) -> Resp {
    let mut state = shared.lock();
    if !state.store.uploads.contains_key(id) {
        return Resp::error(404, "BLOB_UPLOAD_UNKNOWN", "");
    }
    state.store.remove_upload(id);
    Resp::new(204)
}

/// `HEAD`/`GET` a blob of this owner and image (any file with that digest in any of the
/// image's versions, `manifest.json` files included): 200 with `Docker-Content-Digest` and
/// `Content-Length` (and the body and its stored media type on `GET`); else 404 `BLOB_UNKNOWN`.
pub fn read(shared: &Shared, req: &Req, owner: &str, image: &str, digest: &str) -> Resp {
    let state = shared.lock();
    let found = valid_digest(digest)
        .then(|| state.store.find(owner, image, digest, false))
        .flatten();
    let Some(found) = found else {
        return Resp::error(404, "BLOB_UNKNOWN", "");
    };
    let mut resp = Resp::new(200)
        .header("Docker-Content-Digest", &found.file.digest)
        .header("ETag", &format!("\"{}\"", found.file.digest))
        .header("Content-Length", &found.file.size.to_string());
    if !found.file.media_type.is_empty() {
        resp = resp.header("Content-Type", &found.file.media_type);
    }
    if req.method == "GET" {
        let Some(bytes) = state.store.read_blob(digest) else {
            return Resp::internal("content store");
        };
        resp = resp.body(bytes);
    }
    resp
}

/// `DeleteBlob`: removes every file with that digest from the image's versions; 202.
pub fn delete(shared: &Shared, owner: &str, image: &str, digest: &str) -> Resp {
    if !valid_digest(digest) {
        return Resp::error(404, "BLOB_UNKNOWN", "");
    }
    let mut state = shared.lock();
    if let Some(package) = state.store.packages.get_mut(&key(owner, image)) {
        for version in package.versions.values_mut() {
            version.files.retain(|f| f.digest != digest);
        }
    }
    Resp::new(202)
}

#[cfg(test)]
mod tests {
    use super::scan_range;

    #[test]
    fn content_range_is_scanned_as_go_sscanf_does() {
        assert_eq!(scan_range("0-99"), Some((0, 99)));
        assert_eq!(scan_range("100-199/300"), Some((100, 199)));
        assert_eq!(scan_range("bytes=0-99"), None);
        assert_eq!(scan_range("bytes 0-99/100"), None);
        assert_eq!(scan_range("5"), None);
    }
}
