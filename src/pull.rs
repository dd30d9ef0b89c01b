//! The copy policy of a pull: which registry image the IMAGE argument names, then every blob
//! the destination lacks (up to `--concurrency` at once, each checked against its digest as it
//! arrives), then the platform manifests, then the root under its name. Nothing names the
//! image at the destination until everything it points at is there.

use std::time::Instant;

use futures_util::{StreamExt, TryStreamExt};

use crate::destination::ImageDestination;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::Manifests;
use crate::progress::{BlobOutcome, Reporter, Uploaded};
use crate::reference::{DestinationArg, Target};
use crate::source::{ImageReference, ImageSource};

/// What a pull did, for the result line and `-o json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PullSummary {
    /// What was written, with its digest: `oci:DIR:REF@sha256:...`, `HOST/OWNER/NAME:TAG@...`.
    pub reference: String,
    /// The digest of the manifest or index pulled.
    pub digest: String,
    /// Where it went: `oci:DIR`, `docker-archive:FILE`, the engine's socket.
    pub destination: String,
    pub blobs_downloaded: usize,
    /// Blobs the destination had already: not downloaded.
    pub blobs_skipped: usize,
    pub bytes_downloaded: u64,
    pub seconds: f64,
}

/// The registry image a pull's IMAGE names, and whether it said `http://`. Every form push's
/// DESTINATION takes (`[HOST[:PORT]/]OWNER/NAME[:TAG|@sha256:DIGEST]`, the default host,
/// `https://`, `http://`), and `docker://` as skopeo reads it (no host: Docker Hub).
pub fn registry_image(argument: &str) -> Result<(ImageReference, bool)> {
    if let Some(reference) = ImageReference::parse(argument)? {
        return Ok((reference, false));
    }
    let parsed = DestinationArg::parse(Some(argument))?;
    let DestinationArg::Full(named) = parsed else {
        return Err(Error::input(format!(
            "invalid image {argument:?}: it names the registry {} but no repository",
            parsed.host()
        ))
        .with_hint(format!(
            "write it as {}/OWNER/NAME[:TAG], e.g. {}/giteaadmin/app:1.0",
            parsed.host(),
            parsed.host()
        )));
    };
    let (tag, digest) = match named.target {
        Target::Tag(tag) => (Some(tag), None),
        Target::Digest(digest) => (None, Some(digest)),
        Target::TagAndDigest(tag, digest) => (Some(tag), Some(digest)),
        Target::Default => (Some("latest".to_string()), None),
    };
    let given = match (&tag, &digest) {
        (_, Some(digest)) => format!("{}/{}@{digest}", named.host, named.repository),
        (Some(tag), None) => format!("{}/{}:{tag}", named.host, named.repository),
        (None, None) => format!("{}/{}", named.host, named.repository),
    };
    Ok((
        ImageReference {
            host: named.host,
            repository: named.repository,
            tag,
            digest,
            given,
        },
        named.plain_http,
    ))
}

/// The hint for an image the registry does not have: some of the repository's tags.
pub fn tags_hint(reference: &ImageReference, tags: Option<&[String]>) -> String {
    let repository = format!("{}/{}", reference.host, reference.repository);
    match tags {
        Some([]) => format!(
            "{repository} has no tags: push the image first (idpbuilder push IMAGE {repository}:TAG)"
        ),
        Some(tags) => {
            let mut tags = tags.to_vec();
            tags.sort();
            format!(
                "{repository} has the tags {}; pull one of them, e.g. {repository}:{}",
                tags.join(", "),
                tags[0]
            )
        }
        None => "check the repository and the tag or digest in IMAGE".to_string(),
    }
}

pub struct Pull<'a> {
    pub destination: &'a dyn ImageDestination,
    pub concurrency: usize,
    pub reporter: &'a dyn Reporter,
}

/// What [`Pull::run`] learnt: the root's digest and what happened to each blob.
pub struct Pulled {
    pub digest: Digest,
    pub blobs: Vec<Uploaded>,
}

impl Pulled {
    /// The summary, with the result line `shown` and the destination named `destination`.
    pub fn summary(&self, shown: String, destination: String, started: Instant) -> PullSummary {
        let with = |outcome| self.blobs.iter().filter(move |u| u.outcome == outcome);
        PullSummary {
            reference: shown,
            digest: self.digest.to_string(),
            destination,
            blobs_downloaded: with(BlobOutcome::Pulled).count(),
            blobs_skipped: with(BlobOutcome::Exists).count(),
            bytes_downloaded: with(BlobOutcome::Pulled).map(|u| u.size).sum(),
            seconds: started.elapsed().as_secs_f64(),
        }
    }
}

impl Pull<'_> {
    /// Copies `source` to the destination: blobs it lacks, then the platform manifests, then
    /// the root (named as the destination was told when it was made).
    pub async fn run(&self, mut source: Box<dyn ImageSource>) -> Result<Pulled> {
        let plan = source.plan().clone();
        self.destination.open().await?;
        if let Some(manifests) = &plan.manifests {
            self.destination.check(manifests)?;
        }
        let digests: Vec<Digest> = plan.blobs.iter().map(|(d, _)| d.clone()).collect();
        let present = self.present_among(digests).await?;
        self.reporter.plan(&plan.blobs);
        let present = &present;
        let blobs: Vec<Uploaded> = source
            .blobs(&[])
            .map(|blob| async move {
                let blob = blob?;
                let known = blob.digest.clone().filter(|d| present.contains(d));
                let uploaded = match known {
                    // Not even opened: nothing is downloaded.
                    Some(digest) => Uploaded {
                        digest,
                        size: blob.size,
                        outcome: BlobOutcome::Exists,
                    },
                    None => self.destination.put_blob(blob, self.reporter).await?,
                };
                self.reporter
                    .blob_finished(&uploaded.digest, uploaded.size, uploaded.outcome);
                Ok::<_, Error>(uploaded)
            })
            .buffer_unordered(self.concurrency.max(1))
            .try_collect()
            .await?;
        let Manifests { children, root } = source.manifests().await?;
        for child in &children {
            self.destination.put_manifest(child).await?;
        }
        self.destination.commit(&root, &[]).await?;
        Ok(Pulled {
            digest: root.digest,
            blobs,
        })
    }

    /// Which of `digests` the destination has, asking about up to `--concurrency` at once.
    async fn present_among(&self, digests: Vec<Digest>) -> Result<Vec<Digest>> {
        let present: Vec<Option<Digest>> = futures_util::stream::iter(digests)
            .map(|digest| async move {
                let there = self.destination.has_blob(&digest).await?;
                Ok::<_, Error>(there.then_some(digest))
            })
            .buffer_unordered(self.concurrency.max(1))
            .try_collect()
            .await?;
        Ok(present.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_takes_every_form_of_a_push_destination() {
        let (r, plain) = registry_image("giteaadmin/app:1.0").unwrap();
        assert_eq!(
            (
                r.host.as_str(),
                r.repository.as_str(),
                r.tag.as_deref(),
                plain
            ),
            (
                "gitea.cnoe.localtest.me:8443",
                "giteaadmin/app",
                Some("1.0"),
                false
            )
        );
        let (r, _) = registry_image("giteaadmin/app").unwrap();
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.reference(), "latest");
        let (r, plain) = registry_image("http://127.0.0.1:5000/team/app:dev").unwrap();
        assert_eq!((r.host.as_str(), plain), ("127.0.0.1:5000", true));
        let (r, _) = registry_image("https://r.example/team/app").unwrap();
        assert_eq!(r.host, "r.example");
        let digest = Digest::of(b"m");
        let (r, _) = registry_image(&format!("r.example/a/b@{digest}")).unwrap();
        assert_eq!(r.reference(), digest.to_string());
        assert_eq!(r.tag, None);
    }

    #[test]
    fn docker_scheme_reads_as_skopeo_reads_it() {
        let (r, _) = registry_image("docker://ubuntu:24.04").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repository.as_str()),
            ("registry-1.docker.io", "library/ubuntu")
        );
    }

    #[test]
    fn a_registry_alone_or_upper_case_is_refused_with_the_form() {
        let error = registry_image("r.example:5000").unwrap_err();
        assert!(error.hint().unwrap().contains("r.example:5000/OWNER/NAME"));
        assert!(registry_image("giteaadmin/App").is_err());
    }

    #[test]
    fn the_hint_lists_some_tags() {
        let (r, _) = registry_image("r.example/team/app:nope").unwrap();
        let tags = vec!["2.0".to_string(), "1.0".to_string()];
        let hint = tags_hint(&r, Some(&tags));
        assert!(hint.contains("1.0, 2.0"), "{hint}");
        assert!(tags_hint(&r, Some(&[])).contains("no tags"));
    }
}
