//! The copy policy of a push: every blob (up to `--concurrency` large ones at once, and more
//! small ones beside them), then the platform manifests, then the index or manifest under its
//! tags, from any source to any destination. Nothing is tagged until everything it points at is
//! at the destination; a dry run asks instead of writing.

use std::collections::HashSet;
use std::time::Instant;

use tokio::sync::Semaphore;

use futures_util::{StreamExt, TryStreamExt};

use crate::destination::ImageDestination;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::{BlobBytes, Manifests, SourceBlob};
use crate::progress::{BlobOutcome, Reporter, Uploaded};
use crate::reference::{Destination, Target, is_valid_tag};
use crate::registry::{SMALL_BLOB, read_through};
use crate::source::ImageSource;

/// `HEAD`s in flight at once when the blobs are asked about before any upload: they carry no
/// body, so a slow link's round trips, not its bandwidth, bound them.
const HEADS_AT_ONCE: usize = 32;

/// Small blobs in flight at once beside the large ones. A blob of `SMALL_BLOB` or less spends
/// its upload waiting on round trips, not sending bytes, so it does not take one of the
/// `--concurrency` places (and goes in fewer requests where the registry allows it:
/// `registry/small.rs`). Each holds one read buffer (256 KiB), so they add at most 4 MiB.
const SMALL_AT_ONCE: usize = 16;

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

pub struct Push<'a> {
    pub destination: &'a dyn ImageDestination,
    /// The reference the image is pushed to, for its tag and the result line.
    pub target: &'a Destination,
    pub concurrency: usize,
    pub reporter: &'a dyn Reporter,
    /// `--tag`: more tags for the same manifest, written after the main one.
    pub extra_tags: &'a [String],
    /// `--dry-run`: read, log in, `HEAD` the blobs; write nothing.
    pub dry_run: bool,
}

impl Push<'_> {
    /// Pushes every blob of `source`, then its manifests, then the tags. Manifests a source
    /// knows up front are checked before anything is uploaded. A dry run goes the same way,
    /// asking the destination what it has instead of writing: a blob the source can name only
    /// by hashing it (an engine's export) is read through for its digest.
    pub async fn run(&self, mut source: Box<dyn ImageSource>, started: Instant) -> Result<Summary> {
        let plan = source.plan().clone();
        if let Some(manifests) = &plan.manifests {
            tag_for(self.target, &manifests.root.digest, plan.tag.as_deref())?;
        }
        self.destination.open().await?;
        if let Some(manifests) = &plan.manifests {
            self.destination.check(manifests)?;
        }

        // Every blob known by digest up front is asked about at once, before any upload: a
        // slow link then waits one round trip for all of them, not one per blob.
        let mut ask: Vec<Digest> = plan.ask_first.clone();
        ask.extend(plan.blobs.iter().map(|(digest, _)| digest.clone()));
        let mut seen = HashSet::new();
        ask.retain(|digest| seen.insert(digest.clone()));
        let present = if self.dry_run {
            Vec::new()
        } else {
            self.present_among(ask).await?
        };
        let present_set: HashSet<Digest> = present.iter().cloned().collect();
        // A source that hands out blobs as a stream goes by (an engine's export) keeps to
        // `--concurrency` in all; one whose blobs are all known up front gets small ones beside.
        // `--concurrency 1` means one at a time, small blobs too.
        let small_lane =
            self.concurrency > 1 && plan.ask_first.is_empty() && !plan.blobs.is_empty();
        let large = Semaphore::new(self.concurrency.max(1));
        let small = Semaphore::new(SMALL_AT_ONCE);
        let in_flight = self.concurrency.max(1) + if small_lane { SMALL_AT_ONCE } else { 0 };
        if !self.dry_run {
            self.reporter.plan(&plan.blobs);
            if let Some(total) = plan.total {
                self.reporter.plan_total(total);
            }
        }
        let blobs: Vec<Uploaded> = source
            .blobs(&present)
            .map(|blob| {
                let (large, small, present_set) = (&large, &small, &present_set);
                async move {
                    let blob = blob?;
                    if self.dry_run {
                        return self.would_send(blob).await;
                    }
                    let reopenable = matches!(blob.bytes, BlobBytes::Reopenable(_));
                    if let Some(digest) = &blob.digest
                        && reopenable
                        && present_set.contains(digest)
                    {
                        let uploaded = Uploaded {
                            digest: digest.clone(),
                            size: blob.size,
                            outcome: BlobOutcome::Exists,
                        };
                        self.reporter
                            .blob_finished(digest, blob.size, uploaded.outcome);
                        return Ok(uploaded);
                    }
                    let lane = if small_lane && reopenable && blob.size <= SMALL_BLOB {
                        small
                    } else {
                        large
                    };
                    let _place = lane
                        .acquire()
                        .await
                        .map_err(|_| Error::registry("the upload lanes closed"))?;
                    self.put_blob(blob).await
                }
            })
            .buffer_unordered(in_flight)
            .try_collect()
            .await?;

        let manifests = source.manifests().await?;
        if plan.manifests.is_none() {
            self.destination.check(&manifests)?;
        }
        let Manifests { children, root } = manifests;
        let tag = tag_for(self.target, &root.digest, plan.tag.as_deref())?;
        let tags = self.tags(tag.as_deref());
        let with = |outcome| blobs.iter().filter(move |u| u.outcome == outcome);
        let summary = Summary {
            reference: self.shown(tag.as_deref(), &root.digest),
            digest: root.digest.to_string(),
            size: root.bytes.len() as u64,
            blobs_uploaded: with(BlobOutcome::Pushed).count(),
            blobs_skipped: with(BlobOutcome::Exists).count(),
            blobs_mounted: with(BlobOutcome::Mounted).count(),
            bytes_uploaded: with(BlobOutcome::Pushed).map(|u| u.size).sum(),
            tags,
            seconds: 0.0,
            dry_run: self.dry_run,
        };
        if self.dry_run {
            self.reporter.note(&format!(
                "dry run: would send {} blobs ({}), {} already present; nothing was written",
                summary.blobs_uploaded,
                indicatif::HumanBytes(summary.bytes_uploaded),
                summary.blobs_skipped
            ));
        } else {
            for child in &children {
                self.destination.put_manifest(child).await?;
            }
            self.destination.commit(&root, &summary.tags).await?;
            for extra in summary.tags.iter().skip(usize::from(tag.is_some())) {
                self.reporter.note(&format!(
                    "tagged {}/{}:{extra}",
                    self.target.host, self.target.repository
                ));
            }
        }
        Ok(Summary {
            seconds: started.elapsed().as_secs_f64(),
            ..summary
        })
    }

    /// One blob to the destination, reported when it is there.
    async fn put_blob(&self, blob: SourceBlob) -> Result<Uploaded> {
        let uploaded = self.destination.put_blob(blob, self.reporter).await?;
        self.reporter
            .blob_finished(&uploaded.digest, uploaded.size, uploaded.outcome);
        tracing::trace!("{:?} {}", uploaded.outcome, uploaded.digest);
        Ok(uploaded)
    }

    /// What a dry run learns of one blob: `Exists` when the destination has it, else `Pushed`
    /// (it would be sent). A blob without a digest is read through to learn it.
    async fn would_send(&self, blob: SourceBlob) -> Result<Uploaded> {
        let size = blob.size;
        let digest = match blob.digest.clone() {
            Some(digest) => digest,
            None => read_through(blob).await?,
        };
        let outcome = if self.destination.has_blob(&digest).await? {
            BlobOutcome::Exists
        } else {
            BlobOutcome::Pushed
        };
        Ok(Uploaded {
            digest,
            size,
            outcome,
        })
    }

    /// Which of `digests` the destination has, asking about up to [`HEADS_AT_ONCE`] at once.
    async fn present_among(&self, digests: Vec<Digest>) -> Result<Vec<Digest>> {
        let present: Vec<Option<Digest>> = futures_util::stream::iter(digests)
            .map(|digest| async move {
                let there = self.destination.has_blob(&digest).await?;
                Ok::<_, Error>(there.then_some(digest))
            })
            .buffer_unordered(HEADS_AT_ONCE)
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
        } = self.target;
        match tag {
            Some(tag) => format!("{host}/{repository}:{tag}@{digest}"),
            None => format!("{host}/{repository}@{digest}"),
        }
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
}
