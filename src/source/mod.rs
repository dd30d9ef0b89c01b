//! Image sources: turn an IMAGE argument into an [`ImageSource`], the manifests and blob streams
//! a push reads, without reading any layer into memory.
//!
//! Local files (layout directory, OCI archive, docker archive) end up as an [`Image`]: the root
//! manifest (or index) with its exact bytes, the platform manifests under an index, and each blob
//! as a byte range of a file on disk (of the decompressed stream of a `.tar.gz`). Nothing is
//! ever written to disk. An image in another registry (`docker://`) is a
//! [`RegistryImage`](registry::RegistryImage): manifests read at open, blobs streamed by GET.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

use crate::digest::Digest;
use crate::error::{Error, Result};
pub use crate::oci::Platform;
use crate::oci::{BlobReader, Manifest, Manifests, SourceBlob};

mod docker_archive;
pub(crate) mod engine;
mod files;
mod image_ref;
mod layout;
mod names;
mod oci_archive;
mod registry;
mod store;
#[cfg(test)]
mod testing;

use store::Store;

pub use image_ref::{DOCKER_HUB, ImageReference, PREFIX};
pub use registry::RemoteAccess;

/// Where a blob's bytes lie: `len` bytes at `offset` of `file`, a plain file or an entry of a
/// tar. In a gzip'd tar, `offset` counts bytes of the decompressed stream: the bytes are had by
/// decompressing the file again (from its start, or from where an earlier read stopped), never
/// from a decompressed copy.
#[derive(Debug, Clone)]
pub struct Location {
    pub file: Arc<PathBuf>,
    pub offset: u64,
    pub len: u64,
    pub encoding: Encoding,
    /// The first bytes of the range, kept while a compressed archive was indexed: all of them
    /// for its small JSON files (manifests, configs, `index.json`), a few otherwise. Empty for
    /// files read in place.
    pub head: Held,
    /// Decoders a `.tar.gz` shares between its ranges; `None` for files read in place.
    pub(crate) parked: Option<Arc<store::gz::Parked>>,
}

impl Location {
    /// `len` bytes of a plain file from its start.
    pub(crate) fn whole_file(file: PathBuf, len: u64) -> Location {
        Location {
            file: Arc::new(file),
            offset: 0,
            len,
            encoding: Encoding::Plain,
            head: Held::default(),
            parked: None,
        }
    }

    /// All the bytes, when they are held in memory.
    pub(crate) fn held(&self) -> Option<&bytes::Bytes> {
        (self.head.0.len() as u64 == self.len).then_some(&self.head.0)
    }
}

/// How the file of a [`Location`] is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// As is: the range is read in place.
    Plain,
    /// Gzip'd: the range lies in the decompressed stream.
    Gzip,
}

/// Bytes held in memory; `Debug` shows only how many.
#[derive(Clone, Default)]
pub struct Held(pub bytes::Bytes);

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Held({} bytes)", self.0.len())
    }
}

/// A blob (config or layer) to upload.
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub location: Location,
}

/// What a source knows once opened, before any blob is read.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The source's own tag (ref name annotation, RepoTag, engine tag), when it names one.
    pub tag: Option<String>,
    /// The source's own name as a reference (`app:1.0`, `example.com/team/app:2.5`), when it
    /// has one that is more than a bare tag: a registry-only destination takes NAME:TAG from it.
    pub name: Option<String>,
    /// Blobs whose digest and size are known before reading, for progress and for `HEAD`.
    pub blobs: Vec<(Digest, u64)>,
    /// About how many bytes the blobs hold in all, when only the total is known up front.
    pub total: Option<u64>,
    /// The manifests, when known before any blob is read, so they can be checked before
    /// anything is uploaded.
    pub manifests: Option<Manifests>,
    /// Digests to check at the destination before the blobs are read: an engine stream whose
    /// layers only hashing names can then pass over the ones already there.
    pub ask_first: Vec<Digest>,
    /// The registry repository the blobs are read from: a push to the same registry mounts
    /// them from there instead of sending them.
    pub mount_from: Option<MountSource>,
}

/// An image as a copy reads it, whatever holds it: local files, a stream from an engine,
/// another registry. Blobs come first, in the order the source can give them; the manifests
/// after the last blob (a tar stream may hold its manifest at the end).
pub trait ImageSource: Send {
    /// What is known before reading.
    fn plan(&self) -> &Plan;
    /// Every blob once, with a reader of its bytes. Called once. `present`: which of
    /// [`Plan::ask_first`] the destination has.
    fn blobs(&mut self, present: &[Digest]) -> BoxStream<'static, Result<SourceBlob>>;
    /// The manifests, once every blob has been read.
    fn manifests(self: Box<Self>) -> BoxFuture<'static, Result<Manifests>>;
}

/// A repository of a registry that holds the source's blobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSource {
    /// `host[:port]`.
    pub host: String,
    pub repository: String,
}

/// A name that says more than a tag (`app:1.0`, `example.com/app`), not a bare tag (`1.0`).
fn full_name(name: &str) -> Option<String> {
    (names::tag_of(name).as_deref() != Some(name)).then(|| name.to_string())
}

/// Opens the IMAGE argument as the source it names. Adding a kind of source means one file
/// under `src/source/` and one line here. `remote` says how to reach the registry of a
/// `docker://` IMAGE (see [`ImageReference::parse`]).
pub async fn open_source(
    argument: &str,
    platform: Option<Platform>,
    remote: Option<RemoteAccess>,
) -> Result<Box<dyn ImageSource>> {
    if let Some(path) = argument.strip_prefix(SKOPEO_DIR)
        && !Path::new(argument).exists()
    {
        return Err(skopeo_dir(path));
    }
    if let Some(reference) = ImageReference::parse(argument)? {
        let remote = remote.ok_or_else(|| {
            Error::input(format!(
                "no way to reach the registry of {reference} was given"
            ))
        })?;
        return Ok(Box::new(registry::open(reference, platform, remote).await?));
    }
    if let Some(request) = engine::requested(argument) {
        return Ok(Box::new(engine::open(request, platform).await?));
    }
    let argument = argument.to_string();
    let files = tokio::task::spawn_blocking(move || open(&argument, platform))
        .await
        .map_err(|e| Error::input("reading the image failed").with_cause(e))??;
    Ok(Box::new(files::FileImage::new(files)))
}

/// An image in local files (layout, OCI archive, docker archive): everything is known at once.
#[derive(Debug)]
pub struct Image {
    /// Configs and layers of every manifest, each digest once.
    pub blobs: Vec<Blob>,
    /// Platform manifests of an index (pushed before the index); empty for a single image.
    pub children: Vec<Manifest>,
    /// The manifest or index the tag will point at.
    pub root: Manifest,
    /// The source's own tag (ref name annotation or RepoTag), when it names exactly one.
    pub source_tag: Option<String>,
    /// The source's own full name (RepoTag, or a ref name that is more than a tag), when it has
    /// exactly one.
    pub source_name: Option<String>,
}

/// What the user asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `:REF` of a prefixed IMAGE argument.
    pub reference: Option<String>,
    /// `--platform`.
    pub platform: Option<Platform>,
}

/// The file format a prefix forces, or `Detect` for a bare path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileFormat {
    Layout,
    OciArchive,
    DockerArchive,
    Detect,
}

/// Opens the IMAGE argument: `oci:PATH[:REF]`, `oci-archive:PATH[:REF]`, `docker-archive:PATH[:REF]`,
/// or a bare path whose kind is detected from its contents.
///
/// How `PATH[:REF]` splits: if the whole text names an existing file or directory, it is the
/// PATH and there is no REF (so a path such as `./a:b` works). Otherwise the longest part before
/// a `:` that exists is the PATH and the rest is REF, so a REF may itself hold a `:`
/// (`docker-archive:app.tar:foo:1.0`). When nothing exists, the first `:` splits, as in skopeo,
/// and the error names that PATH. An empty REF is no REF. A bare path never has a REF.
pub fn open(argument: &str, platform: Option<Platform>) -> Result<Image> {
    let (kind, path, reference) = parse_argument(argument);
    let selection = Selection {
        reference,
        platform,
    };
    let path = Path::new(&path);
    let meta = std::fs::metadata(path).map_err(|e| missing(argument, path, kind, e))?;
    match (kind, meta.is_dir()) {
        (FileFormat::Layout | FileFormat::Detect, true) => layout_dir(path, &selection),
        (FileFormat::OciArchive, false) => oci_archive::open(&Store::archive(path)?, &selection),
        (FileFormat::DockerArchive, false) => {
            docker_archive::open(&Store::archive(path)?, &selection)
        }
        (FileFormat::Detect, false) => detect_archive(path, &selection),
        (FileFormat::Layout, false) => Err(Error::input(format!(
            "{} is a file, not an OCI layout directory",
            path.display()
        ))
        .with_hint(format!(
            "for an archive, use oci-archive:{0} or docker-archive:{0}",
            path.display()
        ))),
        (FileFormat::OciArchive | FileFormat::DockerArchive, true) => Err(Error::input(format!(
            "{} is a directory, not an archive",
            path.display()
        ))
        .with_hint(format!(
            "for an OCI layout directory, use oci:{}",
            path.display()
        ))),
    }
}

/// Splits the argument into kind, path and REF, following the rule documented on [`open`].
fn parse_argument(argument: &str) -> (FileFormat, String, Option<String>) {
    let prefixes = [
        ("oci:", FileFormat::Layout),
        ("oci-archive:", FileFormat::OciArchive),
        ("docker-archive:", FileFormat::DockerArchive),
    ];
    let Some((kind, rest)) = prefixes
        .iter()
        .find_map(|(p, k)| argument.strip_prefix(p).map(|r| (*k, r)))
    else {
        return (FileFormat::Detect, argument.to_string(), None);
    };
    let exists = |p: &str| !p.is_empty() && Path::new(p).exists();
    let split = if exists(rest) {
        None
    } else {
        let colons: Vec<usize> = rest.match_indices(':').map(|(i, _)| i).collect();
        colons
            .iter()
            .rev()
            .copied()
            .find(|&i| exists(&rest[..i]))
            .or_else(|| colons.first().copied())
    };
    match split {
        Some(i) => {
            let reference = Some(rest[i + 1..].to_string()).filter(|r| !r.is_empty());
            (kind, rest[..i].to_string(), reference)
        }
        None => (kind, rest.to_string(), None),
    }
}

fn missing(argument: &str, path: &Path, kind: FileFormat, cause: std::io::Error) -> Error {
    let message = if cause.kind() == std::io::ErrorKind::NotFound {
        format!("image {} does not exist", path.display())
    } else {
        format!("cannot read image {}: {cause}", path.display())
    };
    let hint = if kind == FileFormat::Detect && argument.contains(':') {
        "IMAGE is a local file or directory; to pick one image of an archive, use \
         oci:PATH:REF, oci-archive:PATH:REF or docker-archive:PATH:REF"
    } else {
        "pass an OCI layout directory, an OCI archive, or a docker archive (docker save -o app.tar IMAGE)"
    };
    Error::input(message).with_hint(hint).with_cause(cause)
}

/// A directory, which must be an OCI image layout.
fn layout_dir(path: &Path, selection: &Selection) -> Result<Image> {
    let store = Store::dir(path);
    if is_skopeo_dir(&store) {
        return Err(skopeo_dir(&path.display().to_string()));
    }
    let missing = match (store.exists("oci-layout"), store.exists("index.json")) {
        (true, true) => return layout::open(&store, selection, "oci"),
        (false, true) => "no oci-layout file",
        (true, false) => "no index.json",
        (false, false) => "neither oci-layout nor index.json",
    };
    Err(Error::input(format!(
        "{} is not an OCI image layout ({missing})",
        path.display()
    ))
    .with_hint("pass a directory written by skopeo copy ... oci:DIR, or an image archive file"))
}

/// The prefix skopeo gives its own directory format.
const SKOPEO_DIR: &str = "dir:";

/// A directory in skopeo's `dir:` format: a `version` file saying so, `manifest.json`, and
/// blobs named by their hex digest.
fn is_skopeo_dir(store: &Store) -> bool {
    store.exists("manifest.json")
        && store
            .read_small("version", 256)
            .is_ok_and(|v| v.starts_with(b"Directory Transport Version"))
}

/// skopeo's `dir:` format is not one we read: say so, and how to make one we do.
fn skopeo_dir(path: &str) -> Error {
    Error::input(format!(
        "{path} is in skopeo's dir: format, which idpbuilder does not read"
    ))
    .with_hint(format!(
        "copy it to an OCI layout first: skopeo copy dir:{path} oci:{path}-oci"
    ))
}

/// A file: a docker archive when it has `manifest.json`, else an OCI archive when it has
/// `index.json`.
fn detect_archive(path: &Path, selection: &Selection) -> Result<Image> {
    let store = Store::archive(path)?;
    if store.exists("manifest.json") {
        docker_archive::open(&store, selection)
    } else if store.exists("index.json") {
        oci_archive::open(&store, selection)
    } else {
        Err(Error::input(format!(
            "{} is neither a docker archive (no manifest.json) nor an OCI archive (no index.json)",
            path.display()
        ))
        .with_hint("export the image with docker save -o app.tar IMAGE or skopeo copy ... oci-archive:app.tar"))
    }
}

#[cfg(test)]
#[path = "open_tests.rs"]
mod tests;
