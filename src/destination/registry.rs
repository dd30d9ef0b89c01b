//! A registry as a destination: blobs by `HEAD`, mount or upload, manifests by digest, the root
//! under its tags; and the shapes Gitea is known to refuse, said before any upload.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::ImageDestination;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::media_type::{OCI_ARTIFACT_MANIFEST, is_foreign_layer};
use crate::oci::{Document, Manifest, Manifests, SourceBlob};
use crate::progress::{Reporter, Uploaded};
use crate::registry::{Answered, ChunkPolicy, Registry};

/// The token service Gitea names in its challenge (`routers/api/packages/container`).
const GITEA_TOKEN_SERVICE: &str = "container_registry";

pub struct RegistryDestination {
    registry: Registry,
    chunks: ChunkPolicy,
    /// The cluster says this host is its Gitea.
    known_gitea: bool,
    /// The registry's token challenge is Gitea's, learnt at `open`.
    gitea_challenge: OnceLock<bool>,
    /// Blobs a `HEAD` found missing: their upload does not ask again.
    absent: Mutex<HashSet<Digest>>,
}

impl RegistryDestination {
    /// `chunk_size`: `--chunk-size`. `known_gitea`: the host is the cluster's Gitea, known
    /// before any request; a registry whose token challenge is Gitea's is found at `open`.
    pub fn new(registry: Registry, chunk_size: u64, known_gitea: bool) -> RegistryDestination {
        RegistryDestination {
            registry,
            chunks: ChunkPolicy::new(chunk_size),
            known_gitea,
            gitea_challenge: OnceLock::new(),
            absent: Mutex::default(),
        }
    }

    /// Gitea: the cluster's Gitea host, or a registry whose token challenge names Gitea's
    /// service (known once `open` has logged in).
    fn is_gitea(&self) -> bool {
        self.known_gitea || self.gitea_challenge.get().copied().unwrap_or(false)
    }
}

impl ImageDestination for RegistryDestination {
    fn open(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            self.registry.login().await?;
            let service = self.registry.token_service().await;
            let gitea = service.as_deref() == Some(GITEA_TOKEN_SERVICE);
            if gitea {
                tracing::debug!("{}: its token challenge is Gitea's", self.registry.host());
            }
            self.gitea_challenge.get_or_init(|| gitea);
            Ok(())
        }
        .boxed()
    }

    fn check(&self, manifests: &Manifests) -> Result<()> {
        if !self.is_gitea() {
            return Ok(());
        }
        let host = self.registry.host();
        if let Some(nested) = manifests.nested_index() {
            return Err(Error::input(format!(
                "{host} is a Gitea registry, which refuses an index inside an index: the image's index {} holds another index ({})",
                manifests.root.digest, nested.digest
            ))
            .with_hint("push one platform with --platform os/arch, or flatten the index first"));
        }
        let all = manifests.children.iter().chain([&manifests.root]);
        if let Some(artifact) = all
            .into_iter()
            .find(|m| m.media_type == OCI_ARTIFACT_MANIFEST)
        {
            return Err(Error::input(format!(
                "{host} is a Gitea registry, which refuses {OCI_ARTIFACT_MANIFEST} (manifest {})",
                artifact.digest
            ))
            .with_hint(
                "push it as an image manifest with artifactType (oras push --image-spec v1.1)",
            ));
        }
        if let Some((manifest, layer)) = foreign_layer(manifests) {
            return Err(Error::input(format!(
                "{host} is a Gitea registry, which takes a manifest only when it holds every blob the manifest names: manifest {manifest} names the foreign (non-distributable) layer {layer}, which is never uploaded"
            ))
            .with_hint(
                "push a platform without foreign layers (--platform), or to a registry that allows them",
            ));
        }
        Ok(())
    }

    fn has_blob<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<bool>> {
        async move {
            let there = self.registry.blob_exists(digest).await?;
            if !there {
                self.absent
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .insert(digest.clone());
            }
            Ok(there)
        }
        .boxed()
    }

    fn put_blob<'a>(
        &'a self,
        blob: SourceBlob,
        reporter: &'a dyn Reporter,
    ) -> BoxFuture<'a, Result<Uploaded>> {
        let known_absent = blob.digest.as_ref().is_some_and(|digest| {
            self.absent
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .contains(digest)
        });
        self.registry
            .upload_blob(blob, &self.chunks, known_absent, reporter)
            .boxed()
    }

    fn put_manifest<'a>(&'a self, manifest: &'a Manifest) -> BoxFuture<'a, Result<()>> {
        async move {
            self.registry
                .put_manifest(manifest.digest.as_str(), manifest)
                .await
                .map_err(|error| self.refused(error, manifest))
        }
        .boxed()
    }

    fn commit<'a>(&'a self, root: &'a Manifest, tags: &'a [String]) -> BoxFuture<'a, Result<()>> {
        async move {
            if tags.is_empty() {
                return self
                    .registry
                    .put_manifest(root.digest.as_str(), root)
                    .await
                    .map_err(|error| self.refused(error, root));
            }
            for tag in tags {
                self.registry
                    .put_manifest(tag, root)
                    .await
                    .map_err(|error| self.refused(error, root))?;
            }
            Ok(())
        }
        .boxed()
    }
}

impl RegistryDestination {
    /// A manifest the registry answered with an error of its own (after its blobs went up):
    /// the hint says it is the registry's rule, not the image's fault, and what to try.
    fn refused(&self, error: Error, manifest: &Manifest) -> Error {
        if error.reason::<Answered>().is_none() || error.hint().is_some() {
            return error;
        }
        let host = self.registry.host();
        let hint = match foreign_layer_of(manifest) {
            Some(layer) => format!(
                "{host} refused a manifest naming the foreign layer {layer} (distribution takes layers with urls only when its configuration sets validation.manifests.urls.allow); no tag was written: push a platform without foreign layers (--platform), or allow them in the registry"
            ),
            None => format!(
                "{host} refused the manifest itself (not every registry takes a {}); no tag was written: push it to a registry that takes it",
                manifest.media_type
            ),
        };
        error.with_hint(hint)
    }
}

/// The first foreign layer `manifest` names, if it is an image manifest that names one.
fn foreign_layer_of(manifest: &Manifest) -> Option<String> {
    let document: Document = serde_json::from_slice(&manifest.bytes).ok()?;
    document
        .layers?
        .into_iter()
        .find(|layer| layer.media_type.as_deref().is_some_and(is_foreign_layer))
        .map(|layer| layer.digest)
}

/// The first image manifest naming a foreign layer, and that layer: Gitea answers 404
/// `BLOB_UNKNOWN` to such a manifest, since the layer is referenced but never uploaded.
fn foreign_layer(manifests: &Manifests) -> Option<(&Digest, String)> {
    manifests
        .children
        .iter()
        .chain([&manifests.root])
        .find_map(|manifest| Some((&manifest.digest, foreign_layer_of(manifest)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::media_type::{DOCKER_LIST, OCI_INDEX, OCI_MANIFEST};
    use crate::registry::{Connection, Role, Trust};

    fn destination(known_gitea: bool) -> RegistryDestination {
        crate::registry::install_default_provider();
        let connection = Connection {
            host: "gitea.example:8443".into(),
            repository: "giteaadmin/app".into(),
            plain_http: false,
            trust: Trust::default(),
            retries: 0,
            role: Role::Destination,
        };
        let registry = Registry::new(connection, None).expect("client");
        RegistryDestination::new(registry, 1 << 20, known_gitea)
    }

    fn manifest(media_type: &str, bytes: &[u8]) -> Manifest {
        Manifest {
            media_type: media_type.into(),
            digest: Digest::of(bytes),
            bytes: bytes.to_vec(),
        }
    }

    fn nested() -> Manifests {
        Manifests {
            children: vec![manifest(OCI_MANIFEST, b"a"), manifest(DOCKER_LIST, b"n")],
            root: manifest(OCI_INDEX, b"i"),
        }
    }

    #[test]
    fn gitea_refuses_an_index_inside_an_index_before_anything_is_sent() {
        let error = destination(true).check(&nested()).expect_err("nested");
        assert_eq!(error.kind(), crate::error::Kind::Input);
        assert!(error.message().contains("index inside an index"), "{error}");
        assert!(error.hint().is_some_and(|h| h.contains("--platform")));
        let flat = Manifests {
            children: vec![manifest(OCI_MANIFEST, b"a")],
            root: manifest(OCI_INDEX, b"i"),
        };
        assert!(destination(true).check(&flat).is_ok());
    }

    #[test]
    fn gitea_refuses_the_artifact_manifest() {
        let artifact = Manifests {
            children: vec![],
            root: manifest(OCI_ARTIFACT_MANIFEST, b"x"),
        };
        let error = destination(true).check(&artifact).expect_err("artifact");
        assert!(error.message().contains(OCI_ARTIFACT_MANIFEST), "{error}");
    }

    #[test]
    fn gitea_refuses_a_foreign_layer_before_anything_is_sent() {
        let foreign = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:c","size":1},"layers":[{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip","digest":"sha256:f","size":9,"urls":["https://example.com/f"]}]}"#;
        let image = Manifests {
            children: vec![],
            root: manifest(OCI_MANIFEST, foreign),
        };
        let error = destination(true).check(&image).expect_err("foreign");
        assert!(error.message().contains("sha256:f"), "{error}");
        assert!(error.hint().is_some());
        assert!(destination(false).check(&image).is_ok());
    }

    #[test]
    fn a_manifest_the_registry_refuses_gets_a_hint_naming_its_kind() {
        let refused = || {
            Error::registry("h answered 400 Bad Request to /v2/a/manifests/1")
                .with_reason(Answered { status: 400 })
        };
        let artifact = manifest(OCI_ARTIFACT_MANIFEST, b"x");
        let error = destination(false).refused(refused(), &artifact);
        assert!(
            error
                .hint()
                .is_some_and(|h| h.contains(OCI_ARTIFACT_MANIFEST))
        );
        let foreign = manifest(
            OCI_MANIFEST,
            br#"{"layers":[{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar","digest":"sha256:ab","size":1}]}"#,
        );
        let error = destination(false).refused(refused(), &foreign);
        assert!(
            error
                .hint()
                .is_some_and(|h| h.contains("sha256:ab") && h.contains("urls"))
        );
        let timed_out = Error::registry("h did not answer in time").with_hint("check it");
        let error = destination(false).refused(timed_out, &artifact);
        assert_eq!(error.hint(), Some("check it"));
    }

    #[test]
    fn other_registries_get_every_shape_as_it_is() {
        assert!(destination(false).check(&nested()).is_ok());
        let artifact = Manifests {
            children: vec![],
            root: manifest(OCI_ARTIFACT_MANIFEST, b"x"),
        };
        assert!(destination(false).check(&artifact).is_ok());
    }
}
