//! The plan and order of a push: every blob (up to `--concurrency` at once), then the platform
//! manifests, then the index or manifest under its tag. Nothing is tagged until everything it
//! points at is in the registry.

use std::time::Instant;

use futures_util::{StreamExt, TryStreamExt};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::Manifests;
use crate::progress::{BlobOutcome, Reporter};
use crate::reference::{Destination, Target, is_valid_tag};
use crate::registry::{ChunkPolicy, Registry, Uploaded};
use crate::source::ImageSource;

/// What a push did, for the result line and `-o json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub reference: String,
    pub digest: String,
    /// Size in bytes of the pushed manifest or index.
    pub size: u64,
    pub blobs_uploaded: usize,
    /// Blobs the registry had already.
    pub blobs_skipped: usize,
    /// Blobs mounted from another repository of the same registry: no byte sent.
    pub blobs_mounted: usize,
    pub bytes_uploaded: u64,
    /// Every tag written (or, in a dry run, that would be): the main one, then `--tag`s.
    pub tags: Vec<String>,
    pub seconds: f64,
    /// `--dry-run`: nothing was written; `blobs_uploaded` and `bytes_uploaded` are what a push
    /// would send.
    pub dry_run: bool,
}

/// The tag the root manifest is pushed under, or `None` for a push by digest.
pub fn tag_for(
    destination: &Destination,
    root: &Digest,
    source_tag: Option<&str>,
) -> Result<Option<String>> {
    match &destination.target {
        Target::Tag(tag) => Ok(Some(tag.clone())),
        Target::Digest(digest) => check_digest(destination, root, digest).map(|()| None),
        Target::TagAndDigest(tag, digest) => {
            check_digest(destination, root, digest).map(|()| Some(tag.clone()))
        }
        Target::Default => Ok(Some(
            source_tag
                .filter(|t| is_valid_tag(t))
                .unwrap_or("latest")
                .to_string(),
        )),
    }
}

fn check_digest(destination: &Destination, root: &Digest, digest: &Digest) -> Result<()> {
    if digest == root {
        return Ok(());
    }
    Err(Error::input(format!(
        "the image's digest is {root}, not {digest} as {destination} asks"
    ))
    .with_hint("drop @DIGEST from the destination, or pick the image with that digest"))
}

/// Gitea refuses an index inside an index, after the blobs went up; say so before that.
fn check_flat(manifests: &Manifests) -> Result<()> {
    match manifests.nested_index() {
        None => Ok(()),
        Some(nested) => Err(Error::input(format!(
            "the image's index {} holds another index ({}); Gitea and other registries refuse nested indexes",
            manifests.root.digest, nested.digest
        ))
        .with_hint("push one platform with --platform os/arch, or flatten the index first")),
    }
}

pub struct Push<'a> {
    pub registry: &'a Registry,
    pub destination: &'a Destination,
    pub concurrency: usize,
    pub chunks: &'a ChunkPolicy,
    pub reporter: &'a dyn Reporter,
    /// `--tag`: more tags for the same manifest, written after the main one.
    pub extra_tags: &'a [String],
    /// `--dry-run`: read, log in, `HEAD` the blobs; write nothing.
    pub dry_run: bool,
}

impl Push<'_> {
    /// Pushes every blob of `source`, then its manifests, then the tag. Manifests a source
    /// knows up front are checked before anything is uploaded.
    pub async fn run(&self, mut source: Box<dyn ImageSource>, started: Instant) -> Result<Summary> {
        let source_tag = source.source_tag();
        if let Some(manifests) = source.manifests_known() {
            tag_for(
                self.destination,
                &manifests.root.digest,
                source_tag.as_deref(),
            )?;
        }
        self.registry.login().await?;
        if self.dry_run {
            return self.dry_run(source, started).await;
        }

        self.check_presence(source.as_mut()).await?;
        self.reporter.plan(&source.planned_blobs());
        if let Some(total) = source.planned_total() {
            self.reporter.plan_total(total);
        }
        let uploaded: Vec<Uploaded> = source
            .blobs()
            .map(|blob| async move {
                let uploaded = self
                    .registry
                    .upload_blob(blob?, self.chunks, self.reporter)
                    .await?;
                self.reporter
                    .blob_finished(&uploaded.digest, uploaded.size, uploaded.outcome);
                tracing::trace!("{:?} {}", uploaded.outcome, uploaded.digest);
                Ok::<_, Error>(uploaded)
            })
            .buffer_unordered(self.concurrency.max(1))
            .try_collect()
            .await?;

        let manifests = source.manifests().await?;
        check_flat(&manifests)?;
        let Manifests { children, root } = manifests;
        let tag = tag_for(self.destination, &root.digest, source_tag.as_deref())?;
        for child in &children {
            self.registry
                .put_manifest(child.digest.as_str(), child)
                .await?;
        }
        let reference = tag.clone().unwrap_or_else(|| root.digest.to_string());
        self.registry.put_manifest(&reference, &root).await?;
        let tags = self.tags(tag.as_deref());
        for extra in tags.iter().skip(usize::from(tag.is_some())) {
            self.registry.put_manifest(extra, &root).await?;
            self.reporter.note(&format!(
                "tagged {}/{}:{extra}",
                self.destination.host, self.destination.repository
            ));
        }

        let with = |outcome| uploaded.iter().filter(move |u| u.outcome == outcome);
        Ok(Summary {
            reference: self.shown(tag.as_deref(), &root.digest),
            digest: root.digest.to_string(),
            size: root.bytes.len() as u64,
            blobs_uploaded: with(BlobOutcome::Pushed).count(),
            blobs_skipped: with(BlobOutcome::Exists).count(),
            blobs_mounted: with(BlobOutcome::Mounted).count(),
            bytes_uploaded: with(BlobOutcome::Pushed).map(|u| u.size).sum(),
            tags,
            seconds: started.elapsed().as_secs_f64(),
            dry_run: false,
        })
    }

    /// `HEAD`s the blobs a source asks about before it is read, and tells it which are there.
    async fn check_presence(&self, source: &mut dyn ImageSource) -> Result<()> {
        let wanted = source.presence_wanted();
        if wanted.is_empty() {
            return Ok(());
        }
        let present = self.present_among(wanted).await?;
        source.present(&present);
        Ok(())
    }

    /// Which of `digests` the registry has, `HEAD`ing up to `--concurrency` at once.
    async fn present_among(&self, digests: Vec<Digest>) -> Result<Vec<Digest>> {
        let present: Vec<Option<Digest>> = futures_util::stream::iter(digests)
            .map(|digest| async move {
                let there = self.registry.blob_exists(&digest).await?;
                Ok::<_, Error>(there.then_some(digest))
            })
            .buffer_unordered(self.concurrency.max(1))
            .try_collect()
            .await?;
        Ok(present.into_iter().flatten().collect())
    }

    /// The main tag (none for a push by digest), then each `--tag` not already written.
    fn tags(&self, tag: Option<&str>) -> Vec<String> {
        let mut tags: Vec<String> = tag.map(str::to_string).into_iter().collect();
        for extra in self.extra_tags {
            if !tags.contains(extra) {
                tags.push(extra.clone());
            }
        }
        tags
    }

    fn shown(&self, tag: Option<&str>, digest: &Digest) -> String {
        let Destination {
            host, repository, ..
        } = self.destination;
        match tag {
            Some(tag) => format!("{host}/{repository}:{tag}@{digest}"),
            None => format!("{host}/{repository}@{digest}"),
        }
    }

    /// What a push would send: `HEAD` for every blob, one line on stderr, the reference on
    /// stdout. A source whose manifests are known only once read (an engine's export) is read
    /// through, its blobs hashed and dropped. No request that writes is made.
    async fn dry_run(&self, mut source: Box<dyn ImageSource>, started: Instant) -> Result<Summary> {
        let source_tag = source.source_tag();
        let (manifests, blobs) = match source.manifests_known() {
            Some(manifests) => (manifests, source.planned_blobs()),
            None => {
                let blobs: Vec<(Digest, u64)> = source
                    .blobs()
                    .and_then(|blob| async move {
                        let size = blob.size;
                        Ok((crate::registry::read_through(blob).await?, size))
                    })
                    .try_collect()
                    .await?;
                let manifests = source.manifests().await?;
                check_flat(&manifests)?;
                (manifests, blobs)
            }
        };
        let tag = tag_for(
            self.destination,
            &manifests.root.digest,
            source_tag.as_deref(),
        )?;
        let there = self
            .present_among(blobs.iter().map(|(digest, _)| digest.clone()).collect())
            .await?;
        let mut missing = (0, 0);
        let mut present = (0, 0);
        for (digest, size) in blobs {
            let counts = if there.contains(&digest) {
                &mut present
            } else {
                &mut missing
            };
            counts.0 += 1;
            counts.1 += size;
        }
        self.reporter.note(&format!(
            "dry run: would send {} blobs ({}), {} already present; nothing was written",
            missing.0,
            indicatif::HumanBytes(missing.1),
            present.0
        ));
        Ok(Summary {
            reference: self.shown(tag.as_deref(), &manifests.root.digest),
            digest: manifests.root.digest.to_string(),
            size: manifests.root.bytes.len() as u64,
            blobs_uploaded: missing.0,
            blobs_skipped: present.0,
            blobs_mounted: 0,
            bytes_uploaded: missing.1,
            tags: self.tags(tag.as_deref()),
            seconds: started.elapsed().as_secs_f64(),
            dry_run: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image with nothing but a root digest and maybe a tag of its own.
    struct Image {
        root: Manifests,
        source_tag: Option<&'static str>,
    }

    fn image(source_tag: Option<&'static str>) -> Image {
        let bytes = br#"{"schemaVersion":2}"#.to_vec();
        Image {
            root: Manifests {
                children: vec![],
                root: crate::oci::Manifest {
                    media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                    digest: Digest::of(&bytes),
                    bytes,
                },
            },
            source_tag,
        }
    }

    fn tag_for(destination: &Destination, image: &Image) -> Result<Option<String>> {
        super::tag_for(destination, &image.root.root.digest, image.source_tag)
    }

    #[test]
    fn explicit_tag_wins() {
        let d = Destination::parse("o/n:2.0").unwrap();
        assert_eq!(
            tag_for(&d, &image(Some("1.0"))).unwrap().as_deref(),
            Some("2.0")
        );
    }

    #[test]
    fn default_tag_is_the_sources_own_else_latest() {
        let d = Destination::parse("o/n").unwrap();
        assert_eq!(
            tag_for(&d, &image(Some("1.0"))).unwrap().as_deref(),
            Some("1.0")
        );
        assert_eq!(
            tag_for(&d, &image(None)).unwrap().as_deref(),
            Some("latest")
        );
        assert_eq!(
            tag_for(&d, &image(Some("not a tag"))).unwrap().as_deref(),
            Some("latest")
        );
    }

    #[test]
    fn digest_destination_must_match_the_image() {
        let img = image(None);
        let ok = Destination::parse(&format!("o/n@{}", img.root.root.digest)).unwrap();
        assert_eq!(tag_for(&ok, &img).unwrap(), None);
        let other = Destination::parse(&format!("o/n@{}", Digest::of(b"other"))).unwrap();
        assert_eq!(
            tag_for(&other, &img).unwrap_err().kind(),
            crate::error::Kind::Input
        );
        let tagged = Destination::parse(&format!("o/n:1.0@{}", img.root.root.digest)).unwrap();
        assert_eq!(tag_for(&tagged, &img).unwrap().as_deref(), Some("1.0"));
        let wrong = Destination::parse(&format!("o/n:1.0@{}", Digest::of(b"other"))).unwrap();
        assert!(
            tag_for(&wrong, &img).is_err(),
            "a tag with the wrong digest is refused"
        );
    }

    #[test]
    fn an_index_inside_an_index_is_refused_before_anything_is_sent() {
        let manifest = |media_type: &str, bytes: &[u8]| crate::oci::Manifest {
            media_type: media_type.into(),
            digest: Digest::of(bytes),
            bytes: bytes.to_vec(),
        };
        let flat = Manifests {
            children: vec![manifest("application/vnd.oci.image.manifest.v1+json", b"a")],
            root: manifest("application/vnd.oci.image.index.v1+json", b"i"),
        };
        assert!(check_flat(&flat).is_ok());
        let nested = Manifests {
            children: vec![
                manifest("application/vnd.oci.image.manifest.v1+json", b"a"),
                manifest(
                    "application/vnd.docker.distribution.manifest.list.v2+json",
                    b"n",
                ),
            ],
            ..flat
        };
        let error = check_flat(&nested).expect_err("nested");
        assert_eq!(error.kind(), crate::error::Kind::Input);
        assert!(error.message().contains("nested"), "{error}");
        assert!(error.hint().is_some_and(|h| h.contains("--platform")));
    }
}
