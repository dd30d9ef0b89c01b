//! One pass over an engine's export (`GET /images/{name}/get`, or `podman save` on standard
//! output): the tar is read as it arrives and each blob entry is handed to the push as a
//! [`SourceBlob`] read once, through a small bounded channel. The next entry is read only after
//! the push took the bytes of this one, so memory stays flat whatever the image size, and nothing
//! is written to disk.
//!
//! Small JSON entries (`manifest.json`, `index.json`, configs, manifests, attestations) are kept in
//! memory: which of them are blobs of the image is known only from `manifest.json`/`index.json`,
//! which an engine writes near the end. Once the tar ends, `manifests` works out the
//! manifests; the JSON blobs they name are pushed from memory, and the manifests are handed to
//! [`ImageSource::manifests`](crate::source::ImageSource::manifests).
//!
//! A blob's digest is known when its path says it (`blobs/sha256/HEX` of Docker 25+, `HEX.tar` of
//! Podman when HEX is one of the image's diff IDs): the push then `HEAD`s it and checks its bytes.
//! A classic `docker save` names layers `ID/layer.tar` with a legacy ID: such a layer goes up
//! with no digest (the one computed in flight is committed), and is hashed here too so that the
//! layer digests can be checked against the config's diff IDs at the end. When the registry
//! already holds every diff ID, those layers are read through and hashed without being sent.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::{mpsc, oneshot};

use super::manifests::{self, Resolved};
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::oci::{BlobBytes, BlobReader, Manifests, Platform, Reopen, SourceBlob};
use crate::source::store::{JSON_LIMIT, normalise};

/// Bytes read from the tar at a time.
const CHUNK: usize = 256 << 10;
/// Chunks waiting for the upload, per blob.
const QUEUE: usize = 2;
/// The most JSON kept in memory in all; past it, JSON entries stream like any blob.
const HELD_LIMIT: u64 = 64 << 20;
/// How many bytes of each entry are looked at before deciding what it is.
const PEEK: usize = 512;
/// The most tar entries (files, links, directories) an export may hold, as for a file on disk.
const MAX_ENTRIES: usize = 100_000;

/// The engine's export as bytes.
pub(crate) type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// What is known before the export is read.
#[derive(Debug, Clone)]
pub(crate) struct ExportPlan {
    /// The image as the user named it (`app:1.0`), for picking it in the export.
    pub(crate) image: String,
    /// How messages name the source: `image app:1.0 of the engine at unix:///...`.
    pub(crate) origin: Arc<str>,
    /// The image's diff IDs as the engine reports them.
    pub(crate) diff_ids: Vec<Digest>,
    pub(crate) platform: Option<Platform>,
    /// The registry holds every diff ID: layers without a digest of their own are hashed and
    /// checked but not sent.
    pub(crate) read_through: bool,
}

/// The two results of reading an export: the blobs as they go by, then the manifests.
pub(crate) struct Export {
    pub(crate) blobs: BoxStream<'static, Result<SourceBlob>>,
    pub(crate) manifests: oneshot::Receiver<Result<Manifests>>,
}

/// Starts reading `bytes` on a blocking thread; the blobs come out as the push asks for them.
pub(crate) fn read(bytes: ByteStream, plan: ExportPlan) -> Export {
    let failure: Arc<Mutex<Option<Error>>> = Arc::default();
    let slot = failure.clone();
    // The first error of the stream itself (the engine cut it, podman failed) is kept here: the
    // tar reader may wrap it beyond recognition.
    let bytes = bytes.map_err(move |e| {
        let error = match ours(e) {
            Ok(error) => error,
            Err(e) => Error::input(format!("reading the export failed: {e}")).with_cause(e),
        };
        let copy = duplicate(&error);
        slot.lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(error);
        io::Error::other(copy)
    });
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(bytes));
    let (out, blobs) = mpsc::channel::<Result<SourceBlob>>(1);
    let (done, manifests) = oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let mut pass = Pass {
            plan,
            out,
            failure,
            seen: Seen::default(),
            held: 0,
        };
        match pass.run(reader) {
            Ok(manifests) => {
                drop(pass.out);
                let _ = done.send(Ok(manifests));
            }
            Err(Stop::Failed(error)) => {
                let _ = done.send(Err(duplicate(&error)));
                let _ = pass.out.blocking_send(Err(error));
            }
            Err(Stop::Abandoned) => {
                let _ = done.send(Err(Error::input(format!(
                    "reading {} stopped before its end",
                    pass.plan.origin
                ))));
            }
        }
    });
    let blobs = futures_util::stream::unfold(blobs, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed();
    Export { blobs, manifests }
}

/// Why a pass stopped early.
enum Stop {
    Failed(Error),
    /// The push stopped taking blobs (it failed elsewhere): stop quietly.
    Abandoned,
}

impl From<Error> for Stop {
    fn from(error: Error) -> Self {
        Stop::Failed(error)
    }
}

/// One blob entry of the export, as far as the end of the pass needs it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    /// Its first bytes (compression magic).
    pub(crate) head: Vec<u8>,
    /// Its bytes, when kept in memory (small JSON).
    pub(crate) bytes: Option<Bytes>,
}

/// What the pass saw, by normalised path.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// `manifest.json`, `index.json`.
    pub(crate) files: HashMap<String, Bytes>,
    pub(crate) entries: HashMap<String, Entry>,
    /// Symbolic and hard links: path to the normalised target.
    pub(crate) links: HashMap<String, String>,
}

/// The reading of one export.
struct Pass {
    plan: ExportPlan,
    out: mpsc::Sender<Result<SourceBlob>>,
    failure: Arc<Mutex<Option<Error>>>,
    seen: Seen,
    /// Bytes of JSON held in memory so far.
    held: u64,
}

/// What an entry of the export is, by its path.
enum Kind {
    /// `manifest.json` or `index.json`: read whole.
    Metadata,
    /// Legacy files (`ID/json`, `ID/VERSION`, `repositories`, `oci-layout`): not needed.
    Skip,
    /// A config, layer or manifest; with the digest its path names, if any.
    Blob(Option<Digest>),
}

impl Pass {
    fn run(&mut self, reader: impl Read) -> std::result::Result<Manifests, Stop> {
        let mut archive = tar::Archive::new(reader);
        let entries = archive.entries().map_err(|e| self.tar_error(e))?;
        for (count, entry) in entries.enumerate() {
            if count >= MAX_ENTRIES {
                return Err(Stop::Failed(
                    Error::input(format!(
                        "{} holds more than {MAX_ENTRIES} tar entries, more than any image needs",
                        self.plan.origin
                    ))
                    .with_hint(HINT_DAMAGED),
                ));
            }
            let mut entry = entry.map_err(|e| self.tar_error(e))?;
            let path = entry.path().map_err(|e| self.tar_error(e))?;
            let Some(path) = normalise(&path.to_string_lossy()) else {
                continue;
            };
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                if let Ok(Some(target)) = entry.link_name() {
                    let target = target.to_string_lossy().into_owned();
                    let target = if kind.is_symlink() {
                        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                        normalise(&format!("{dir}/{target}"))
                    } else {
                        normalise(&target)
                    };
                    if let Some(target) = target {
                        self.seen.links.insert(path, target);
                    }
                }
                continue;
            }
            if !kind.is_file() && kind != tar::EntryType::Continuous {
                continue;
            }
            let size = entry.size();
            match self.kind(&path) {
                Kind::Skip => {}
                Kind::Metadata => {
                    let bytes = self.read_small(&mut entry, &path, size)?;
                    self.seen.files.insert(path, bytes);
                }
                Kind::Blob(named) => self.blob(&mut entry, path, size, named)?,
            }
        }
        if let Some(error) = self.stream_failure() {
            return Err(Stop::Failed(error));
        }
        let Resolved {
            manifests,
            from_memory,
        } = manifests::resolve(&self.seen, &self.plan)?;
        for (digest, bytes) in from_memory {
            let blob = SourceBlob {
                digest: Some(digest),
                size: bytes.len() as u64,
                bytes: BlobBytes::Reopenable(Arc::new(Memory(bytes))),
                origin: self.plan.origin.clone(),
            };
            self.out
                .blocking_send(Ok(blob))
                .map_err(|_| Stop::Abandoned)?;
        }
        Ok(manifests)
    }

    fn kind(&self, path: &str) -> Kind {
        match path {
            "manifest.json" | "index.json" => return Kind::Metadata,
            "repositories" | "oci-layout" => return Kind::Skip,
            _ => {}
        }
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            return Kind::Blob(Digest::parse(&format!("sha256:{hex}")).ok());
        }
        match path.rsplit_once('/') {
            // Legacy `ID/json` and `ID/VERSION`; `ID/layer.tar` is a layer without a digest.
            Some((_, "layer.tar")) => Kind::Blob(None),
            Some(_) => Kind::Skip,
            // At the top: a config (`HEX.json`) or a Podman layer named by its diff ID
            // (`HEX.tar`). Anything else there is no part of an image, and is not sent.
            None if path.ends_with(".json") => Kind::Blob(None),
            None => match path
                .strip_suffix(".tar")
                .and_then(|hex| Digest::parse(&format!("sha256:{hex}")).ok())
                .filter(|digest| self.plan.diff_ids.contains(digest))
            {
                Some(named) => Kind::Blob(Some(named)),
                None => {
                    tracing::debug!("{}: passing over {path}", self.plan.origin);
                    Kind::Skip
                }
            },
        }
    }

    /// A config, layer or manifest: kept when it is small JSON, else streamed to the push (or,
    /// for a layer without a digest whose diff IDs the registry all has, hashed and dropped).
    fn blob(
        &mut self,
        entry: &mut impl Read,
        path: String,
        size: u64,
        named: Option<Digest>,
    ) -> std::result::Result<(), Stop> {
        let mut head = vec![0; PEEK.min(size as usize)];
        self.read_exact(entry, &mut head)?;
        let json = head.first() == Some(&b'{') && size <= JSON_LIMIT;
        let (digest, bytes) = if json && self.held + size <= HELD_LIMIT {
            let mut bytes = BytesMut::from(&head[..]);
            bytes.resize(size as usize, 0);
            self.read_exact(entry, &mut bytes[head.len()..])?;
            let bytes = bytes.freeze();
            let digest = Digest::of(&bytes);
            if let Some(named) = named.filter(|n| *n != digest) {
                return Err(Stop::Failed(self.mismatch(&path, &named, &digest)));
            }
            self.held += size;
            (digest, Some(bytes))
        } else if named.is_none() && self.plan.read_through {
            (self.hash_through(entry, &head, size)?, None)
        } else {
            (self.send(entry, &path, &head, size, named)?, None)
        };
        head.truncate(8);
        self.seen.entries.insert(
            path,
            Entry {
                digest,
                size,
                head,
                bytes,
            },
        );
        Ok(())
    }

    /// Hands the entry to the push as a blob read once; returns its digest (computed here when
    /// the path did not name one).
    fn send(
        &mut self,
        entry: &mut impl Read,
        path: &str,
        head: &[u8],
        size: u64,
        named: Option<Digest>,
    ) -> std::result::Result<Digest, Stop> {
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(QUEUE);
        let blob = SourceBlob {
            digest: named.clone(),
            size,
            bytes: BlobBytes::Once(receiver_reader(rx)),
            origin: self.plan.origin.clone(),
        };
        self.out
            .blocking_send(Ok(blob))
            .map_err(|_| Stop::Abandoned)?;
        let mut hasher = named.is_none().then(Hasher::new);
        // A layer without a digest of its own (classic `ID/layer.tar`) must hash to one of the
        // image's diff IDs; it is checked before its last byte goes, so that anything else is
        // never committed to the registry.
        let diff_ids = &self.plan.diff_ids;
        let origin = &self.plan.origin;
        let mut pass_on = |chunk: Bytes, last: bool| {
            if let Some(hasher) = hasher.as_mut() {
                hasher.update(&chunk);
                if last && !diff_ids.is_empty() {
                    let digest = hasher.clone().finish();
                    if !diff_ids.contains(&digest) {
                        let error = Error::input(format!(
                            "{path} in {origin} is none of the image's layers: it hashes to {digest}, which is not one of the diff IDs the engine reported"
                        ))
                        .with_hint(HINT_DAMAGED);
                        let _ = tx.blocking_send(Err(io::Error::other(duplicate(&error))));
                        return Err(Stop::Failed(error));
                    }
                }
            }
            tx.blocking_send(Ok(chunk)).map_err(|_| Stop::Abandoned)
        };
        let mut remaining = size - head.len() as u64;
        if !head.is_empty() {
            pass_on(Bytes::copy_from_slice(head), remaining == 0)?;
        }
        while remaining > 0 {
            let mut chunk = vec![0; CHUNK.min(remaining as usize)];
            if let Err(stop) = self.read_exact(entry, &mut chunk) {
                if let Stop::Failed(error) = &stop {
                    let _ = tx.blocking_send(Err(io::Error::other(duplicate(error))));
                }
                return Err(stop);
            }
            remaining -= chunk.len() as u64;
            pass_on(Bytes::from(chunk), remaining == 0)?;
        }
        Ok(match (named, hasher) {
            (Some(named), _) => named,
            (None, Some(hasher)) => hasher.finish(),
            (None, None) => Hasher::new().finish(),
        })
    }

    /// Reads the entry to its end, hashing it, without sending it.
    fn hash_through(
        &mut self,
        entry: &mut impl Read,
        head: &[u8],
        size: u64,
    ) -> std::result::Result<Digest, Stop> {
        let mut hasher = Hasher::new();
        hasher.update(head);
        let mut remaining = size - head.len() as u64;
        let mut chunk = vec![0; CHUNK];
        while remaining > 0 {
            let want = CHUNK.min(remaining as usize);
            self.read_exact(entry, &mut chunk[..want])?;
            hasher.update(&chunk[..want]);
            remaining -= want as u64;
        }
        Ok(hasher.finish())
    }

    fn read_small(
        &mut self,
        entry: &mut impl Read,
        path: &str,
        size: u64,
    ) -> std::result::Result<Bytes, Stop> {
        if size > JSON_LIMIT {
            return Err(Stop::Failed(Error::input(format!(
                "{path} in {} is larger than {} MiB",
                self.plan.origin,
                JSON_LIMIT >> 20
            ))));
        }
        let mut bytes = vec![0; size as usize];
        self.read_exact(entry, &mut bytes)?;
        Ok(Bytes::from(bytes))
    }

    /// Fills `buffer` from the entry; an entry that ends early is a cut stream.
    fn read_exact(
        &self,
        entry: &mut impl Read,
        buffer: &mut [u8],
    ) -> std::result::Result<(), Stop> {
        let mut filled = 0;
        while filled < buffer.len() {
            match entry.read(&mut buffer[filled..]) {
                Ok(0) => return Err(Stop::Failed(self.cut())),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Stop::Failed(self.tar_error(e))),
            }
        }
        Ok(())
    }

    fn stream_failure(&self) -> Option<Error> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// A tar error: the stream's own failure when there was one, else a corrupt tar.
    fn tar_error(&self, error: io::Error) -> Error {
        if let Some(failure) = self.stream_failure() {
            return failure;
        }
        match ours(error) {
            Ok(error) => error,
            Err(e) => Error::input(format!("{} is not a valid image tar", self.plan.origin))
                .with_hint(HINT_DAMAGED)
                .with_cause(e),
        }
    }

    fn cut(&self) -> Error {
        self.stream_failure().unwrap_or_else(|| {
            Error::input(format!(
                "{} ended in the middle of a file",
                self.plan.origin
            ))
            .with_hint(HINT_DAMAGED)
        })
    }

    fn mismatch(&self, path: &str, named: &Digest, actual: &Digest) -> Error {
        Error::input(format!(
            "{path} of {} does not match its name {named} (its bytes hash to {actual})",
            self.plan.origin
        ))
        .with_hint(HINT_DAMAGED)
    }
}

pub(crate) const HINT_DAMAGED: &str =
    "the engine sent a damaged export; check it with docker info (or podman info) and try again";

/// Our own error carried inside an `io::Error`, taken back out.
fn ours(error: io::Error) -> std::result::Result<Error, io::Error> {
    if error.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        match error.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(ours)) => return Ok(*ours),
            Some(Err(other)) => return Err(io::Error::other(other)),
            None => return Err(io::Error::other("unknown error")),
        }
    }
    Err(error)
}

/// The same message, hint and kind, without the cause (an error goes two ways: to the blob
/// stream and to the manifests).
pub(crate) fn duplicate(error: &Error) -> Error {
    let copy = Error::new(error.kind(), error.message());
    match error.hint() {
        Some(hint) => copy.with_hint(hint),
        None => copy,
    }
}

/// The bytes of one blob, as the upload reads them.
fn receiver_reader(rx: mpsc::Receiver<io::Result<Bytes>>) -> BlobReader {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Box::pin(tokio_util::io::StreamReader::new(stream))
}

/// A small blob kept in memory.
struct Memory(Bytes);

impl Reopen for Memory {
    fn open_at(
        &self,
        offset: u64,
    ) -> futures_util::future::BoxFuture<'static, io::Result<BlobReader>> {
        let start = (offset as usize).min(self.0.len());
        let reader: BlobReader = Box::pin(io::Cursor::new(self.0.slice(start..)));
        Box::pin(futures_util::future::ready(Ok(reader)))
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
