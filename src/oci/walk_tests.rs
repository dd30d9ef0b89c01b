//! Tests of [`super`]: the walk over manifests held in memory.

use std::collections::HashMap;

use futures_util::FutureExt;
use serde_json::{Value, json};

use super::*;
use crate::digest::Digest;
use crate::error::Kind;
use crate::oci::media_type::{OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST};

/// Manifests and configs by digest, and how many manifests were read.
#[derive(Default)]
struct Memory {
    blobs: HashMap<String, Vec<u8>>,
    reads: std::sync::atomic::AtomicUsize,
}

impl Memory {
    fn put(&mut self, bytes: &[u8]) -> (String, u64) {
        let digest = Digest::of(bytes).to_string();
        self.blobs.insert(digest.clone(), bytes.to_vec());
        (digest, bytes.len() as u64)
    }

    fn put_json(&mut self, value: &Value) -> Value {
        let bytes = value.to_string().into_bytes();
        let media_type = value["mediaType"]
            .as_str()
            .unwrap_or(OCI_MANIFEST)
            .to_string();
        let (digest, size) = self.put(&bytes);
        json!({"mediaType": media_type, "digest": digest, "size": size})
    }

    /// An image for `arch` with one layer named `layer`; returns its index entry.
    fn image(&mut self, arch: &str, layer: &str) -> Value {
        let config = json!({"architecture": arch, "os": "linux"}).to_string();
        let (config_digest, config_size) = self.put(config.as_bytes());
        let layer_digest = Digest::of(layer.as_bytes()).to_string();
        let mut entry = self.put_json(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer_digest, "size": layer.len()}],
        }));
        entry["platform"] = json!({"os": "linux", "architecture": arch});
        entry
    }

    fn index(&mut self, entries: Vec<Value>) -> Value {
        self.put_json(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}))
    }

    fn read(&self, digest: &str) -> Result<(Manifest, Document)> {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let bytes = self
            .blobs
            .get(digest)
            .cloned()
            .ok_or_else(|| Error::input(format!("{digest} is missing")))?;
        let document: Document =
            serde_json::from_slice(&bytes).map_err(|e| Error::input(format!("not JSON: {e}")))?;
        Ok((
            Manifest {
                media_type: document.media_type_or(None),
                digest: Digest::parse(digest)?,
                bytes,
            },
            document,
        ))
    }

    async fn walk(&self, root: &Value, platform: Option<&str>) -> Result<Walked> {
        let root = self.read(root["digest"].as_str().unwrap_or_default())?;
        let platform: Option<Platform> = platform.map(|p| p.parse().unwrap());
        walk(self, root, platform.as_ref()).await
    }
}

impl ReadManifests for Memory {
    fn manifest<'a>(
        &'a self,
        entry: &'a Descriptor,
        _child: bool,
    ) -> BoxFuture<'a, Result<(Manifest, Document)>> {
        futures_util::future::ready(self.read(&entry.digest)).boxed()
    }

    fn config<'a>(&'a self, config: &'a Descriptor) -> BoxFuture<'a, Result<Vec<u8>>> {
        let bytes = self.blobs.get(&config.digest).cloned();
        futures_util::future::ready(bytes.ok_or_else(|| Error::input("no config"))).boxed()
    }

    fn name(&self) -> String {
        "memory".into()
    }
}

fn digests(manifests: &[Manifest]) -> Vec<String> {
    manifests.iter().map(|m| m.digest.to_string()).collect()
}

#[tokio::test]
async fn a_nested_index_is_followed_with_its_children_before_it() {
    let mut memory = Memory::default();
    let amd = memory.image("amd64", "a");
    let arm = memory.image("arm64", "b");
    let inner = memory.index(vec![amd.clone(), arm.clone()]);
    let again = memory.image("amd64", "a");
    let outer = memory.index(vec![inner.clone(), again]);
    let walked = memory.walk(&outer, None).await.unwrap();
    assert_eq!(
        digests(&walked.children),
        [&amd["digest"], &arm["digest"], &inner["digest"]].map(|d| d.as_str().unwrap().to_string()),
        "children first, then the index holding them; a manifest listed twice once"
    );
    assert_eq!(
        walked.root.digest.to_string(),
        outer["digest"].as_str().unwrap()
    );
    assert_eq!(
        walked.blobs.len(),
        4,
        "two configs and two layers, each once"
    );
}

#[tokio::test]
async fn indexes_nested_past_the_limit_are_refused() {
    let mut memory = Memory::default();
    let mut entry = memory.image("amd64", "a");
    for _ in 0..=MAX_DEPTH + 1 {
        entry = memory.index(vec![entry]);
    }
    let error = memory.walk(&entry, None).await.unwrap_err();
    assert_eq!(error.kind(), Kind::Input);
    assert!(error.message().contains("nested too deeply"), "{error}");
}

#[tokio::test]
async fn a_platform_picks_one_image_and_never_an_index() {
    let mut memory = Memory::default();
    let amd = memory.image("amd64", "a");
    let arm = memory.image("arm64", "b");
    let root = memory.index(vec![amd, arm.clone()]);
    let walked = memory.walk(&root, Some("linux/arm64")).await.unwrap();
    assert!(walked.children.is_empty());
    assert_eq!(
        walked.root.digest.to_string(),
        arm["digest"].as_str().unwrap()
    );
    assert_eq!(walked.blobs.len(), 2);

    let s390x = memory.image("s390x", "c");
    let mut inner = memory.index(vec![s390x]);
    inner["platform"] = json!({"os": "linux", "architecture": "s390x"});
    let root = memory.index(vec![inner]);
    let error = memory.walk(&root, Some("linux/s390x")).await.unwrap_err();
    assert!(error.message().contains("is itself an index"), "{error}");
}

#[tokio::test]
async fn a_single_image_for_another_platform_is_refused() {
    let mut memory = Memory::default();
    let amd = memory.image("amd64", "a");
    let error = memory.walk(&amd, Some("linux/arm64")).await.unwrap_err();
    assert!(error.message().contains("not linux/arm64"), "{error}");
    assert!(memory.walk(&amd, Some("linux/amd64")).await.is_ok());
}

#[tokio::test]
async fn a_manifest_without_config_is_not_an_image() {
    let mut memory = Memory::default();
    let entry =
        memory.put_json(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}));
    let error = memory.walk(&entry, None).await.unwrap_err();
    assert!(error.message().contains("has no config"), "{error}");
}

#[test]
fn an_artifact_manifest_has_its_blobs_and_no_config() {
    let mut memory = Memory::default();
    let blob = Digest::of(b"signature").to_string();
    let artifact = memory.put_json(&json!({
        "mediaType": crate::oci::media_type::OCI_ARTIFACT_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "blobs": [{"mediaType": "text/plain", "digest": blob, "size": 9}],
    }));
    let walked = memory
        .walk(&artifact, None)
        .now_or_never()
        .unwrap()
        .unwrap();
    let digests: Vec<&str> = walked.blobs.iter().map(|b| b.digest.as_str()).collect();
    assert_eq!(digests, [blob.as_str()]);
    let picked = memory
        .walk(&artifact, Some("linux/amd64"))
        .now_or_never()
        .unwrap();
    assert!(picked.is_ok(), "no config, so no platform to refuse");
}

/// An image manifest of about `len` bytes (an annotation pads it), distinct for each `n`.
fn padded_image(memory: &mut Memory, n: usize, len: usize) -> Value {
    let config = json!({"architecture": "amd64", "os": "linux"}).to_string();
    let (config_digest, config_size) = memory.put(config.as_bytes());
    memory.put_json(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [],
        "annotations": {"n": n.to_string(), "pad": "x".repeat(len)},
    }))
}

fn reads(memory: &Memory) -> usize {
    memory.reads.load(std::sync::atomic::Ordering::Relaxed)
}

#[tokio::test]
async fn an_index_naming_more_manifests_than_the_limit_is_refused_having_read_only_itself() {
    let mut memory = Memory::default();
    let entries: Vec<Value> = (0..5000)
        .map(|n| {
            let digest = Digest::of(n.to_string().as_bytes()).to_string();
            json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": 4_000_000})
        })
        .collect();
    let root = memory.index(entries);
    let error = memory.walk(&root, None).await.unwrap_err();
    assert_eq!(error.kind(), Kind::Input);
    assert!(
        error
            .message()
            .starts_with("the manifests of memory add up to more than 16 MiB (5001 manifests"),
        "{error}"
    );
    assert_eq!(reads(&memory), 1, "only the index was read");
}

#[tokio::test]
async fn one_manifest_listed_thousands_of_times_is_read_once() {
    let mut memory = Memory::default();
    let image = padded_image(&mut memory, 0, 1 << 20);
    let root = memory.index(vec![image; 10_000]);
    let walked = memory.walk(&root, None).await.unwrap();
    assert_eq!(walked.children.len(), 1);
    assert_eq!(reads(&memory), 2);
}

#[tokio::test]
async fn manifests_larger_than_their_index_says_are_held_to_the_limit_as_they_come() {
    let mut memory = Memory::default();
    let entries: Vec<Value> = (0..8)
        .map(|n| {
            let mut entry = padded_image(&mut memory, n, 3 << 20);
            entry["size"] = json!(10);
            entry
        })
        .collect();
    let root = memory.index(entries);
    let error = memory.walk(&root, None).await.unwrap_err();
    assert!(error.message().contains("more than 16 MiB"), "{error}");
    assert!(
        reads(&memory) <= 1 + 6 + READS_AT_ONCE,
        "read {}",
        reads(&memory)
    );
}
