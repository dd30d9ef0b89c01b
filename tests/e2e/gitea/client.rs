//! A bare registry client for the model's self-tests: one request at a time, exactly as
//! written, so a test can replay another client's order (docker's) and read each status.

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::support::gitea_model::{GiteaModel, OWNER, PASSWORD, sha256};

pub struct Client {
    pub base: String,
    http: reqwest::Client,
    pub token: String,
}

impl Client {
    /// Logs in as `giteaadmin` through the Bearer flow of a plain-HTTP model.
    pub async fn login(model: &GiteaModel) -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().build().expect("http client");
        let base = model.base_url();
        let token: Value = http
            .get(format!("{base}/v2/token?service=container_registry"))
            .basic_auth(OWNER, Some(PASSWORD))
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("token JSON");
        Client {
            base,
            http,
            token: token["token"].as_str().expect("token").to_string(),
        }
    }

    /// `METHOD /v2/PATH` with the token, extra headers and a body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Response {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let url = if path.starts_with('/') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/v2/{path}", self.base)
        };
        let mut request = self.http.request(method, url).bearer_auth(&self.token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(body).send().await.expect("request")
    }

    /// `POST` a session, one `PATCH`, an empty `PUT ?digest=`: the blob's digest.
    pub async fn upload(&self, repository: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let started = self
            .send("POST", &format!("{repository}/blobs/uploads/"), &[], vec![])
            .await;
        assert_eq!(started.status(), 202);
        let location = header(&started, "location").expect("Location");
        let patched = self.send("PATCH", &location, &[], bytes.to_vec()).await;
        assert_eq!(patched.status(), 202);
        let done = self
            .send("PUT", &format!("{location}?digest={digest}"), &[], vec![])
            .await;
        assert_eq!(done.status(), 201);
        digest
    }

    /// `PUT` a manifest with this `Content-Type`: the status and the error code, if any.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        content_type: &str,
        body: &[u8],
    ) -> (u16, String) {
        let response = self
            .send(
                "PUT",
                &format!("{repository}/manifests/{reference}"),
                &[("content-type", content_type)],
                body.to_vec(),
            )
            .await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let code = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["errors"][0]["code"].as_str().map(str::to_string))
            .unwrap_or_default();
        (status, code)
    }
}

pub fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// One platform's image, uploaded: its manifest's bytes and digest.
pub struct Platform {
    pub manifest: Vec<u8>,
    pub digest: String,
    pub layer: String,
}

/// Uploads a config and one layer for `architecture` to `repository` and builds the image
/// manifest naming them (not pushed).
pub async fn platform(client: &Client, repository: &str, architecture: &str) -> Platform {
    let config = json!({"architecture": architecture, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
        .to_string()
        .into_bytes();
    let layer = format!("layer of {architecture}").into_bytes();
    let config_digest = client.upload(repository, &config).await;
    let layer_digest = client.upload(repository, &layer).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    })
    .to_string()
    .into_bytes();
    Platform {
        digest: sha256(&manifest),
        manifest,
        layer: layer_digest,
    }
}

/// An index of these platforms' manifests.
pub fn index(platforms: &[&Platform]) -> Vec<u8> {
    let manifests: Vec<Value> = platforms
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({"mediaType": OCI_MANIFEST, "digest": p.digest, "size": p.manifest.len(),
                   "platform": {"os": "linux", "architecture": format!("arch{i}")}})
        })
        .collect();
    json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
        .to_string()
        .into_bytes()
}
