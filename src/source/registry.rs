//! An image in another registry (a `docker://` IMAGE) as an [`ImageSource`]. The manifests are
//! read when it is opened (the root by tag or digest, then each platform manifest of an index
//! by digest, every one checked against its digest), so they are known before anything is
//! uploaded; each blob is a GET streamed straight into the upload, opened afresh (from an
//! offset, with `Range`) for each attempt. Nothing goes to disk and no blob is held in memory.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use tokio::io::AsyncReadExt;

use super::image_ref::ImageReference;
use super::{ImageSource, MountSource, Plan};
use crate::credentials::Credentials;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::media_type::{is_foreign_layer, is_manifest_family, is_schema1};
use crate::oci::{
    BlobBytes, BlobReader, Descriptor, Document, Manifest, Manifests, Pace, Platform,
    ReadManifests, Reopen, SourceBlob, reading_on, walk,
};
use crate::progress::Reporter;
use crate::registry::{Connection, Registry, Role, Trust};

/// The largest image config read to check `--platform`.
const CONFIG_LIMIT: u64 = 8 << 20;

/// How to reach the source registry: what the `--src-*` flags, the environment, docker's
/// config and the cluster gave.
pub struct RemoteAccess {
    pub credentials: Option<Credentials>,
    pub trust: Trust,
    pub plain_http: bool,
    pub retries: u32,
    /// Retry notices and warnings of the source registry.
    pub reporter: Arc<dyn Reporter>,
    /// [`Role::Source`] for a push's `docker://` IMAGE, [`Role::Pull`] for what a pull reads:
    /// the token scope and how refusals read.
    pub role: Role,
}

/// An image in a registry, its manifests read and checked.
pub struct RegistryImage {
    reference: ImageReference,
    registry: Arc<Registry>,
    plan: Plan,
    /// How fast each blob must come, and how errors name the registry.
    pace: Pace,
}

/// Reads the manifests of `reference` (one platform of an index with `platform`) and lists
/// the blobs they name.
pub(super) async fn open(
    reference: ImageReference,
    platform: Option<Platform>,
    access: RemoteAccess,
) -> Result<RegistryImage> {
    let connection = Connection {
        host: reference.host.clone(),
        repository: reference.repository.clone(),
        plain_http: access.plain_http,
        trust: access.trust,
        retries: access.retries,
        role: access.role,
    };
    let registry = Arc::new(
        Registry::new(connection, access.credentials)?.with_reporter(access.reporter.clone()),
    );
    let pace = Pace {
        grace: registry.idle_timeout(),
        peer: match access.role {
            Role::Source => format!("source registry {}", reference.host),
            Role::Pull | Role::Destination => format!("registry {}", reference.host),
        },
    };
    let name = reference.to_string();
    let root = read_manifest(&registry, &reference.reference(), &name).await?;
    let reader = Reader {
        registry: &registry,
        name: &name,
    };
    let walked = walk(&reader, root, platform.as_ref()).await?;
    let blobs = distributable(&walked.blobs, &name)?;
    let (children, root) = (walked.children, walked.root);
    let plan = Plan {
        tag: reference.tag.clone(),
        name: Some(reference.given.clone()),
        blobs,
        manifests: Some(Manifests { children, root }),
        mount_from: Some(MountSource {
            host: reference.host.clone(),
            repository: reference.repository.clone(),
        }),
        ..Plan::default()
    };
    Ok(RegistryImage {
        reference,
        registry,
        plan,
        pace,
    })
}

/// Reads a manifest or index by tag or digest, with its media type.
async fn read_manifest(
    registry: &Registry,
    reference: &str,
    name: &str,
) -> Result<(Manifest, Document)> {
    let fetched = registry.get_manifest(reference).await?;
    let document: Document = serde_json::from_slice(&fetched.bytes).map_err(|e| {
        Error::input(format!(
            "manifest {} of {name} is not valid JSON ({e})",
            fetched.digest
        ))
    })?;
    let media_type = media_type(fetched.content_type.as_deref(), &document);
    if is_schema1(&media_type) || document.schema_version == Some(1) {
        return Err(Error::input(format!(
            "{name} is a docker schema 1 image, which is not supported"
        ))
        .with_hint("convert it first: skopeo copy --format v2s2 ..."));
    }
    Ok((
        Manifest {
            media_type,
            digest: fetched.digest,
            bytes: fetched.bytes,
        },
        document,
    ))
}

/// Reads the manifest an index entry names, by its digest; its size must be the entry's.
async fn read_child(
    registry: &Registry,
    entry: &Descriptor,
    name: &str,
) -> Result<(Manifest, Document)> {
    let digest = parse_digest(&entry.digest, name)?;
    let (manifest, document) = read_manifest(registry, digest.as_str(), name).await?;
    if manifest.bytes.len() as u64 != entry.size {
        return Err(Error::input(format!(
            "manifest {digest} of {name} is {} bytes, but its index says {}",
            manifest.bytes.len(),
            entry.size
        )));
    }
    Ok((manifest, document))
}

/// The media type to push a manifest with: the `Content-Type` the registry stored it under,
/// else its own `mediaType`, else what its shape says.
fn media_type(content_type: Option<&str>, document: &Document) -> String {
    let content_type = content_type
        .and_then(|c| c.split(';').next())
        .map(str::trim)
        .filter(|c| is_manifest_family(c));
    document.media_type_or(content_type)
}

/// The image config, read whole (it is small) to check `--platform`.
async fn read_config(registry: &Registry, config: &(Digest, u64)) -> Result<Vec<u8>> {
    let (digest, size) = config;
    let mut reader = registry
        .get_blob(digest, 0, *size)
        .await?
        .take(CONFIG_LIMIT);
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).await.map_err(|e| {
        match e.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(ours)) => *ours,
            _ => Error::registry(format!("cannot read the config {digest}")),
        }
    })?;
    if Digest::of(&bytes) != *digest {
        return Err(Error::input(format!(
            "the config {digest} of {} does not match its digest",
            registry.repository()
        )));
    }
    Ok(bytes)
}

fn parse_digest(text: &str, name: &str) -> Result<Digest> {
    Digest::parse(text).map_err(|e| Error::input(format!("{} in {name}", e.message())))
}

/// The blobs a registry holds of those the walk found: foreign (non-distributable) layers are
/// not in the registry and stay where their URLs say.
fn distributable(blobs: &[Descriptor], name: &str) -> Result<Vec<(Digest, u64)>> {
    blobs
        .iter()
        .filter(|entry| !is_foreign_layer(entry.media_type.as_deref().unwrap_or_default()))
        .map(|entry| Ok((parse_digest(&entry.digest, name)?, entry.size)))
        .collect()
}

/// How the walk reads a registry image: manifests by digest, configs by GET.
struct Reader<'a> {
    registry: &'a Registry,
    name: &'a str,
}

impl ReadManifests for Reader<'_> {
    fn manifest<'a>(
        &'a self,
        entry: &'a Descriptor,
        _child: bool,
    ) -> BoxFuture<'a, Result<(Manifest, Document)>> {
        read_child(self.registry, entry, self.name).boxed()
    }

    fn config<'a>(&'a self, config: &'a Descriptor) -> BoxFuture<'a, Result<Vec<u8>>> {
        async move {
            let digest = parse_digest(&config.digest, self.name)?;
            read_config(self.registry, &(digest, config.size)).await
        }
        .boxed()
    }

    fn name(&self) -> String {
        self.name.to_string()
    }
}

impl ImageSource for RegistryImage {
    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn blobs(&mut self, _present: &[Digest]) -> BoxStream<'static, Result<SourceBlob>> {
        let origin: Arc<str> =
            format!("{}/{}", self.reference.host, self.reference.repository).into();
        let blobs: Vec<Result<SourceBlob>> = self
            .plan
            .blobs
            .iter()
            .map(|(digest, size)| {
                Ok(SourceBlob {
                    digest: Some(digest.clone()),
                    size: *size,
                    origin: origin.clone(),
                    // A cut mid-download reads on from the byte reached, so the upload
                    // it feeds goes on instead of starting the blob over.
                    bytes: BlobBytes::Reopenable(reading_on(
                        Arc::new(RemoteBlob {
                            registry: self.registry.clone(),
                            digest: digest.clone(),
                            size: *size,
                        }),
                        *size,
                        format!("blob {} of {origin}", digest.short()),
                        self.pace.clone(),
                    )),
                })
            })
            .collect();
        futures_util::stream::iter(blobs).boxed()
    }

    fn manifests(self: Box<Self>) -> BoxFuture<'static, Result<Manifests>> {
        let manifests = self.plan.manifests.ok_or_else(|| {
            Error::input(format!("the manifests of {} were not read", self.reference))
        });
        futures_util::future::ready(manifests).boxed()
    }
}

/// A blob of the source registry, read by GET from any offset.
struct RemoteBlob {
    registry: Arc<Registry>,
    digest: Digest,
    size: u64,
}

impl Reopen for RemoteBlob {
    fn open_at(&self, offset: u64) -> BoxFuture<'static, std::io::Result<BlobReader>> {
        let registry = self.registry.clone();
        let digest = self.digest.clone();
        let size = self.size;
        async move {
            registry
                .get_blob(&digest, offset, size)
                .await
                .map_err(std::io::Error::other)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::media_type::{DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};

    fn document(json: &str) -> Document {
        serde_json::from_str(json).expect("document")
    }

    #[test]
    fn the_media_type_is_the_registrys_then_the_documents_then_the_shape() {
        let oci = document(r#"{"schemaVersion":2,"config":{"digest":"d","size":1}}"#);
        assert_eq!(
            media_type(Some("application/vnd.oci.image.manifest.v1+json"), &oci),
            OCI_MANIFEST
        );
        assert_eq!(media_type(Some("application/json"), &oci), OCI_MANIFEST);
        assert_eq!(media_type(None, &oci), OCI_MANIFEST);
        let index = document(r#"{"schemaVersion":2,"manifests":[]}"#);
        assert_eq!(
            media_type(Some("text/plain; charset=utf-8"), &index),
            OCI_INDEX
        );
        let named = document(
            r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#,
        );
        assert_eq!(
            media_type(None, &named),
            "application/vnd.docker.distribution.manifest.list.v2+json"
        );
        assert_eq!(
            media_type(
                Some("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"),
                &oci
            ),
            DOCKER_MANIFEST
        );
    }

    #[test]
    fn foreign_layers_are_left_out() {
        let name = "docker://r.example/app:1";
        let d = |b: &[u8]| Digest::of(b).to_string();
        let json = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{}","size":2}},"layers":[
                {{"digest":"{}","size":3}},
                {{"digest":"{}","size":3}},
                {{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{}","size":9}}
            ]}}"#,
            d(b"c"),
            d(b"l"),
            d(b"l"),
            d(b"f")
        );
        let doc = document(&json);
        let mut listed = doc.config.iter().cloned().collect::<Vec<_>>();
        listed.extend(doc.layers.iter().flatten().cloned());
        listed.dedup_by(|a, b| a.digest == b.digest);
        let digests: Vec<String> = distributable(&listed, name)
            .expect("blobs")
            .iter()
            .map(|(d, _)| d.to_string())
            .collect();
        assert_eq!(digests, vec![d(b"c"), d(b"l")]);
    }
}
