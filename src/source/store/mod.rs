//! Where an image's files live: a layout directory, or a tar archive indexed once so that every
//! file in it is a byte range of the tar. A gzip'd tar is never decompressed to disk: it is
//! indexed in one streaming pass ([`gz`]), and its files are ranges of the decompressed
//! stream, read by decompressing again.
//!
//! Nothing outside the source is ever read: a layout's files (links included) must resolve
//! inside the layout directory, and a link inside a tar leads to another entry of the same tar,
//! its `..` and `/` resolved within the archive.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Encoding, Held, Location};
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};

pub(super) mod gz;

/// The most we read into memory for one JSON file (manifest, index, config, manifest.json).
pub(crate) const JSON_LIMIT: u64 = 4 << 20;
/// Buffer size for streaming reads (hashing).
pub(super) const CHUNK: usize = 256 << 10;
pub(super) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
pub(crate) const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Compressions `docker load` reads that we do not, by magic number: each is refused with the
/// command that decompresses it, never read as a tar (which would fail on binary bytes).
const UNREAD_COMPRESSIONS: [(&[u8], &str, &str); 3] = [
    (&ZSTD_MAGIC, "zstd", "zstd -d"),
    (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz", "xz -d -k"),
    (b"BZh", "bzip2", "bunzip2 -k"),
];
/// How long a tar's blocks are: an entry's data is padded to a multiple of this.
const TAR_BLOCK: u64 = 512;
/// Symlink chains longer than this are treated as broken (and loops end).
const MAX_LINK_HOPS: usize = 16;
/// The most files and links a tar may hold: no image needs nearly as many, and each costs
/// memory in the index.
pub(super) const MAX_ENTRIES: usize = 100_000;

/// A file or a link inside a tar, by normalised path.
#[derive(Debug)]
pub(super) enum Node {
    /// `len` bytes at `offset` (of the decompressed stream for a gzip'd tar), with the first
    /// bytes kept while indexing.
    File {
        offset: u64,
        len: u64,
        head: Held,
    },
    Link(String),
}

#[derive(Debug)]
enum Backing {
    /// A directory; `root` is its canonical path, inside which every file must resolve.
    Dir { root: PathBuf },
    Tar {
        file: Arc<PathBuf>,
        encoding: Encoding,
        nodes: HashMap<String, Node>,
        /// For a gzip'd tar, the decoders its blob ranges share.
        parked: Option<Arc<gz::Parked>>,
    },
}

/// Files of one image source, looked up by their path relative to the layout or archive root.
#[derive(Debug)]
pub(crate) struct Store {
    /// The path the user gave, for messages.
    source: PathBuf,
    backing: Backing,
}

impl Store {
    /// A directory whose files are read in place.
    pub(crate) fn dir(path: &Path) -> Store {
        let root = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        Store {
            source: path.to_path_buf(),
            backing: Backing::Dir { root },
        }
    }

    /// A tar file, or a gzip'd tar (detected by its magic bytes) indexed as a stream.
    pub(crate) fn archive(path: &Path) -> Result<Store> {
        let magic = read_magic(path)?;
        if let Some((_, name, command)) = UNREAD_COMPRESSIONS
            .iter()
            .find(|(m, _, _)| magic.starts_with(m))
        {
            return Err(Error::input(format!(
                "{} is {name}-compressed, which is not supported",
                path.display()
            ))
            .with_hint(format!("decompress it first: {command} {}", path.display())));
        }
        let (encoding, nodes, parked) = if magic.starts_with(&GZIP_MAGIC) {
            (Encoding::Gzip, gz::index(path)?, Some(Arc::default()))
        } else {
            (Encoding::Plain, index_tar(path)?, None)
        };
        Ok(Store {
            source: path.to_path_buf(),
            backing: Backing::Tar {
                file: Arc::new(path.to_path_buf()),
                encoding,
                nodes,
                parked,
            },
        })
    }

    pub(crate) fn source(&self) -> &Path {
        &self.source
    }

    pub(crate) fn exists(&self, path: &str) -> bool {
        matches!(self.locate(path), Ok(Some(_)))
    }

    /// Where the regular file at `path` lies, following links; `None` when there is no such
    /// file. A layout file that resolves outside the layout directory is an error.
    pub(crate) fn locate(&self, path: &str) -> Result<Option<Location>> {
        let Some(mut name) = normalise(path) else {
            return Ok(None);
        };
        match &self.backing {
            Backing::Dir { root } => {
                let full = self.source.join(&name);
                match std::fs::metadata(&full) {
                    Ok(meta) if meta.is_file() => {
                        self.check_inside(root, &name, &full)?;
                        Ok(Some(Location::whole_file(full, meta.len())))
                    }
                    Ok(_) => Ok(None),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => {
                        Err(Error::input(format!("cannot read {}", full.display())).with_cause(e))
                    }
                }
            }
            Backing::Tar {
                file,
                encoding,
                nodes,
                parked,
            } => {
                for _ in 0..MAX_LINK_HOPS {
                    match nodes.get(&name) {
                        Some(Node::File { offset, len, head }) => {
                            return Ok(Some(Location {
                                file: file.clone(),
                                offset: *offset,
                                len: *len,
                                encoding: *encoding,
                                head: head.clone(),
                                parked: parked.clone(),
                            }));
                        }
                        Some(Node::Link(target)) => name = target.clone(),
                        None => return Ok(None),
                    }
                }
                Ok(None)
            }
        }
    }

    /// The paths of the regular files directly under the folder `dir`, sorted.
    pub(crate) fn files_in(&self, dir: &str) -> Vec<String> {
        let Some(dir) = normalise(dir) else {
            return Vec::new();
        };
        let mut found: Vec<String> = match &self.backing {
            Backing::Dir { .. } => std::fs::read_dir(self.source.join(&dir))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy()))
                .collect(),
            Backing::Tar { nodes, .. } => nodes
                .iter()
                .filter(|(name, node)| {
                    matches!(node, Node::File { .. })
                        && name
                            .strip_prefix(&dir)
                            .and_then(|rest| rest.strip_prefix('/'))
                            .is_some_and(|rest| !rest.contains('/'))
                })
                .map(|(name, _)| name.clone())
                .collect(),
        };
        found.sort();
        found
    }

    /// A file of the layout must not be (or lie under) a link leading out of it: the push
    /// would send bytes of some other file under the layout's digest for it.
    fn check_inside(&self, root: &Path, name: &str, full: &Path) -> Result<()> {
        let real = full.canonicalize().map_err(|e| {
            Error::input(format!("cannot read {}: {e}", full.display())).with_cause(e)
        })?;
        if real.starts_with(root) {
            return Ok(());
        }
        Err(Error::input(format!(
            "{name} in {} is a link that leads outside the layout (to {})",
            self.source.display(),
            real.display()
        ))
        .with_hint(
            "a layout must hold its own files: copy them in (cp --dereference), or export the image again",
        ))
    }

    /// Reads the whole of a small file (JSON); a missing file or one over `limit` is an error.
    pub(crate) fn read_small(&self, path: &str, limit: u64) -> Result<Vec<u8>> {
        let location = self
            .locate(path)?
            .ok_or_else(|| Error::input(format!("{} has no {path}", self.source.display())))?;
        read_location(&location, limit).map_err(|e| self.corrupt(path, e))
    }

    /// The error for a file of this source that cannot be read as it should.
    pub(crate) fn corrupt(&self, path: &str, cause: Error) -> Error {
        Error::input(format!(
            "cannot read {path} in {}: {}",
            self.source.display(),
            cause.message()
        ))
        .with_hint("the image is corrupt or truncated; export it again")
    }
}

/// Reads all of `location` into memory, refusing anything over `limit` bytes.
pub(crate) fn read_location(location: &Location, limit: u64) -> Result<Vec<u8>> {
    if location.len > limit {
        return Err(Error::input(format!(
            "it is {} bytes, more than the {limit} allowed",
            location.len
        )));
    }
    if let Some(bytes) = location.held() {
        return Ok(bytes.to_vec());
    }
    let mut bytes = Vec::with_capacity(location.len as usize);
    reader(location)
        .and_then(|r| r.take(location.len).read_to_end(&mut bytes))
        .map_err(read_error)?;
    if bytes.len() as u64 != location.len {
        return Err(Error::input("it ends early"));
    }
    Ok(bytes)
}

/// The first `n` bytes of `location` (fewer when it is shorter), for magic-number checks.
pub(crate) fn head(location: &Location, n: usize) -> Result<Vec<u8>> {
    let held = &location.head.0;
    if held.len() >= n || held.len() as u64 == location.len {
        return Ok(held[..n.min(held.len())].to_vec());
    }
    let mut bytes = Vec::with_capacity(n);
    reader(location)
        .and_then(|r| r.take(n as u64).read_to_end(&mut bytes))
        .map_err(read_error)?;
    Ok(bytes)
}

/// The sha256 of the bytes at `location`, read as a stream.
pub(crate) fn hash(location: &Location) -> Result<Digest> {
    if let Some(bytes) = location.held() {
        return Ok(Digest::of(bytes));
    }
    let mut reader = reader(location).map_err(read_error)?;
    hash_stream(&mut reader, location.len)
}

/// The sha256 of each location, in order. Ranges of one gzip'd archive are hashed in a single
/// pass over its decompressed stream rather than one pass each.
pub(crate) fn hash_all(locations: &[Location]) -> Vec<Result<Digest>> {
    let mut results: Vec<Option<Result<Digest>>> = Vec::with_capacity(locations.len());
    let mut streamed: Vec<usize> = Vec::new();
    for (i, location) in locations.iter().enumerate() {
        if location.encoding == Encoding::Gzip && location.held().is_none() {
            results.push(None);
            streamed.push(i);
        } else {
            results.push(Some(hash(location)));
        }
    }
    // In offset order, so that one decoder goes through each file once.
    streamed.sort_by(|&a, &b| {
        let (a, b) = (&locations[a], &locations[b]);
        (a.file.as_path(), a.offset).cmp(&(b.file.as_path(), b.offset))
    });
    let mut stream: Option<(Arc<PathBuf>, u64, gz::Decoder)> = None;
    for i in streamed {
        let location = &locations[i];
        let reusable = matches!(&stream, Some((file, position, _))
            if *file == location.file && *position <= location.offset);
        if !reusable {
            match gz::decoder(&location.file) {
                Ok(decoder) => stream = Some((location.file.clone(), 0, decoder)),
                Err(e) => {
                    results[i] = Some(Err(read_error(e)));
                    stream = None;
                    continue;
                }
            }
        }
        let Some((_, position, decoder)) = stream.as_mut() else {
            continue;
        };
        let result = gz::skip(decoder, location.offset - *position)
            .map_err(read_error)
            .and_then(|()| hash_stream(decoder, location.len));
        *position = location.offset + location.len;
        if result.is_err() {
            stream = None;
        }
        results[i] = Some(result);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::input("it was not read"))))
        .collect()
}

/// The sha256 of `len` bytes from `reader`; fewer is an error.
fn hash_stream(reader: &mut dyn Read, len: u64) -> Result<Digest> {
    let mut hasher = Hasher::new();
    let mut buffer = vec![0u8; CHUNK];
    let mut reader = reader.take(len);
    loop {
        let n = reader.read(&mut buffer).map_err(read_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    if hasher.len() != len {
        return Err(Error::input("it ends early"));
    }
    Ok(hasher.finish())
}

/// A blocking reader positioned at the start of `location` (it may run past its end).
fn reader(location: &Location) -> io::Result<Box<dyn Read>> {
    match location.encoding {
        Encoding::Plain => {
            let mut file = File::open(location.file.as_path())?;
            file.seek(SeekFrom::Start(location.offset))?;
            Ok(Box::new(file))
        }
        Encoding::Gzip => {
            let mut decoder = gz::decoder(&location.file)?;
            gz::skip(&mut decoder, location.offset)?;
            Ok(Box::new(decoder))
        }
    }
}

fn read_error(e: io::Error) -> Error {
    Error::input(e.to_string()).with_cause(e)
}

/// Normalises a path inside an archive: no `./`, no leading `/`, `..` resolved (never above the
/// root). `None` for the root itself.
pub(crate) fn normalise(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    }
}

fn read_magic(path: &Path) -> Result<Vec<u8>> {
    let file = File::open(path)
        .map_err(|e| Error::input(format!("cannot open {}: {e}", path.display())).with_cause(e))?;
    let mut magic = Vec::with_capacity(6);
    file.take(6)
        .read_to_end(&mut magic)
        .map_err(|e| Error::input(format!("cannot read {}: {e}", path.display())).with_cause(e))?;
    Ok(magic)
}

pub(super) fn not_a_tar(source: &Path, why: impl std::fmt::Display) -> Error {
    Error::input(format!("{} is not a readable tar archive ({why})", source.display()))
        .with_hint("pass an OCI layout directory, an OCI archive, or a docker archive (docker save -o FILE IMAGE)")
}

/// Lists the files and links of the uncompressed tar at `path`, skipping over file contents.
fn index_tar(path: &Path) -> Result<HashMap<String, Node>> {
    let file = File::open(path).map_err(|e| not_a_tar(path, &e))?;
    let total = file.metadata().map_err(|e| not_a_tar(path, &e))?.len();
    let mut archive = tar::Archive::new(file);
    let entries = archive
        .entries_with_seek()
        .map_err(|e| not_a_tar(path, &e))?;
    index_entries(
        entries,
        Some(total),
        |_| Ok(Held::default()),
        |why: &dyn std::fmt::Display| not_a_tar(path, why),
    )
}

/// Lists the files and links of a tar as its entries go by. `keep` reads what is kept in
/// memory of each file; `total`, when known, is the tar's size (a file past it is cut short);
/// `fail` makes the error for a tar that cannot be read.
pub(super) fn index_entries<R: Read>(
    entries: tar::Entries<'_, R>,
    total: Option<u64>,
    mut keep: impl FnMut(&mut tar::Entry<'_, R>) -> io::Result<Held>,
    fail: impl Fn(&dyn std::fmt::Display) -> Error,
) -> Result<HashMap<String, Node>> {
    let mut nodes = HashMap::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| fail(&e))?;
        let Some(name) = normalise(&String::from_utf8_lossy(&entry.path_bytes())) else {
            continue;
        };
        if nodes.len() >= MAX_ENTRIES {
            return Err(fail(&format_args!(
                "it holds more than {MAX_ENTRIES} files, more than any image needs"
            )));
        }
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let (offset, len) = (entry.raw_file_position(), entry.size());
                // The data and the padding after it must both be there: a tar cut in the
                // padding would otherwise end quietly, as if it held no more files.
                let padded = len.div_ceil(TAR_BLOCK).saturating_mul(TAR_BLOCK);
                if total.is_some_and(|total| offset.saturating_add(padded) > total) {
                    return Err(fail(&format_args!(
                        "{name} is cut short: the file is truncated"
                    )));
                }
                let head = keep(&mut entry).map_err(|e| fail(&e))?;
                nodes.insert(name, Node::File { offset, len, head });
            }
            tar::EntryType::Symlink => {
                // Relative to the link's own directory; `..` stops at the archive's root and an
                // absolute target starts there, so no link leads out of the archive.
                let target = match link {
                    Some(l) if l.starts_with('/') => normalise(&l),
                    Some(l) => normalise(&format!("{name}/../{l}")),
                    None => None,
                };
                if let Some(target) = target {
                    nodes.insert(name, Node::Link(target));
                }
            }
            tar::EntryType::Link => {
                if let Some(target) = link.as_deref().and_then(normalise) {
                    nodes.insert(name, Node::Link(target));
                }
            }
            _ => {}
        }
    }
    if nodes.is_empty() {
        return Err(fail(&"no files in it"));
    }
    Ok(nodes)
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
