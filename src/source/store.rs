//! Where an image's files live: a layout directory, or a tar archive indexed once so that every
//! file in it is a byte range of the tar. A gzip'd tar is first decompressed to a temporary file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tempfile::TempDir;

use super::Location;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};

/// The most we read into memory for one JSON file (manifest, index, config, manifest.json).
pub(crate) const JSON_LIMIT: u64 = 4 << 20;
/// Buffer size for streaming reads (hashing).
const CHUNK: usize = 256 << 10;
pub(super) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
pub(crate) const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Symlink chains longer than this are treated as broken (and loops end).
const MAX_LINK_HOPS: usize = 16;

/// A file or a link inside a tar, by normalised path.
#[derive(Debug)]
enum Node {
    File { offset: u64, len: u64 },
    Link(String),
}

#[derive(Debug)]
enum Backing {
    Dir,
    Tar {
        file: Arc<PathBuf>,
        nodes: HashMap<String, Node>,
    },
}

/// Files of one image source, looked up by their path relative to the layout or archive root.
#[derive(Debug)]
pub(crate) struct Store {
    /// The path the user gave, for messages.
    source: PathBuf,
    backing: Backing,
    keep_alive: Option<Arc<TempDir>>,
}

impl Store {
    /// A directory whose files are read in place.
    pub(crate) fn dir(path: &Path) -> Store {
        Store {
            source: path.to_path_buf(),
            backing: Backing::Dir,
            keep_alive: None,
        }
    }

    /// A tar file, or a gzip'd tar (detected by its magic bytes) decompressed to a temporary file.
    pub(crate) fn archive(path: &Path) -> Result<Store> {
        let magic = read_magic(path)?;
        if magic.starts_with(&ZSTD_MAGIC) {
            return Err(Error::input(format!(
                "{} is zstd-compressed, which is not supported",
                path.display()
            ))
            .with_hint(format!("decompress it first: zstd -d {}", path.display())));
        }
        let (tar_path, keep_alive) = if magic.starts_with(&GZIP_MAGIC) {
            let (tmp, file) = gunzip(path)?;
            (file, Some(Arc::new(tmp)))
        } else {
            (path.to_path_buf(), None)
        };
        let nodes = index_tar(path, &tar_path)?;
        let backing = Backing::Tar {
            file: Arc::new(tar_path),
            nodes,
        };
        Ok(Store {
            source: path.to_path_buf(),
            backing,
            keep_alive,
        })
    }

    pub(crate) fn source(&self) -> &Path {
        &self.source
    }

    pub(crate) fn keep_alive(&self) -> Option<Arc<TempDir>> {
        self.keep_alive.clone()
    }

    pub(crate) fn exists(&self, path: &str) -> bool {
        matches!(self.locate(path), Ok(Some(_)))
    }

    /// Where the regular file at `path` lies, following links; `None` when there is no such file.
    pub(crate) fn locate(&self, path: &str) -> Result<Option<Location>> {
        let Some(mut name) = normalise(path) else {
            return Ok(None);
        };
        match &self.backing {
            Backing::Dir => {
                let full = self.source.join(&name);
                match std::fs::metadata(&full) {
                    Ok(meta) if meta.is_file() => Ok(Some(Location {
                        file: Arc::new(full),
                        offset: 0,
                        len: meta.len(),
                    })),
                    Ok(_) => Ok(None),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => {
                        Err(Error::input(format!("cannot read {}", full.display())).with_cause(e))
                    }
                }
            }
            Backing::Tar { file, nodes } => {
                for _ in 0..MAX_LINK_HOPS {
                    match nodes.get(&name) {
                        Some(Node::File { offset, len }) => {
                            return Ok(Some(Location {
                                file: file.clone(),
                                offset: *offset,
                                len: *len,
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
    let mut reader = open_at(location)?;
    let mut bytes = Vec::with_capacity(location.len as usize);
    reader.read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() as u64 != location.len {
        return Err(Error::input("it ends early"));
    }
    Ok(bytes)
}

/// The first `n` bytes of `location` (fewer when it is shorter), for magic-number checks.
pub(crate) fn head(location: &Location, n: usize) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(n);
    open_at(location)?
        .take(n as u64)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    Ok(bytes)
}

/// The sha256 of the bytes at `location`, read as a stream.
pub(crate) fn hash(location: &Location) -> Result<Digest> {
    let mut reader = open_at(location)?;
    let mut hasher = Hasher::new();
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let n = reader.read(&mut buffer).map_err(read_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    if hasher.len() != location.len {
        return Err(Error::input("it ends early"));
    }
    Ok(hasher.finish())
}

fn open_at(location: &Location) -> Result<io::Take<File>> {
    let mut file = File::open(location.file.as_path()).map_err(read_error)?;
    file.seek(SeekFrom::Start(location.offset))
        .map_err(read_error)?;
    Ok(file.take(location.len))
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
    let mut magic = Vec::with_capacity(4);
    file.take(4)
        .read_to_end(&mut magic)
        .map_err(|e| Error::input(format!("cannot read {}: {e}", path.display())).with_cause(e))?;
    Ok(magic)
}

fn not_a_tar(source: &Path, why: impl std::fmt::Display) -> Error {
    Error::input(format!("{} is not a readable tar archive ({why})", source.display()))
        .with_hint("pass an OCI layout directory, an OCI archive, or a docker archive (docker save -o FILE IMAGE)")
}

/// Decompresses `path` once into a new temporary directory; returns it and the tar inside.
fn gunzip(path: &Path) -> Result<(TempDir, PathBuf)> {
    let tmp = tempfile::Builder::new()
        .prefix("idpbuilder-push-")
        .tempdir()
        .map_err(|e| {
            Error::input(format!("cannot create a temporary directory: {e}")).with_cause(e)
        })?;
    let target = tmp.path().join("image.tar");
    let disk_error = |e: io::Error| {
        Error::input(format!(
            "cannot decompress {} to {}: {e}",
            path.display(),
            target.display()
        ))
        .with_hint("free some space in the temporary directory, or set TMPDIR to a larger one")
        .with_cause(e)
    };
    let input = File::open(path)
        .map_err(|e| Error::input(format!("cannot open {}: {e}", path.display())).with_cause(e))?;
    let mut decoder = flate2::read::MultiGzDecoder::new(BufReader::new(input));
    let mut output = BufWriter::new(File::create(&target).map_err(disk_error)?);
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let n = decoder.read(&mut buffer).map_err(|e| {
            Error::input(format!(
                "{} is not a readable gzip archive ({e})",
                path.display()
            ))
            .with_hint("the file is corrupt or truncated; export it again")
            .with_cause(e)
        })?;
        if n == 0 {
            break;
        }
        output.write_all(&buffer[..n]).map_err(disk_error)?;
    }
    output.flush().map_err(disk_error)?;
    Ok((tmp, target))
}

/// Lists the files and links of the tar at `tar_path` (`source` is the user's name for it).
fn index_tar(source: &Path, tar_path: &Path) -> Result<HashMap<String, Node>> {
    let file = File::open(tar_path).map_err(|e| not_a_tar(source, &e))?;
    let total = file.metadata().map_err(|e| not_a_tar(source, &e))?.len();
    let mut archive = tar::Archive::new(file);
    let mut nodes = HashMap::new();
    for entry in archive
        .entries_with_seek()
        .map_err(|e| not_a_tar(source, &e))?
    {
        let entry = entry.map_err(|e| not_a_tar(source, &e))?;
        let Some(name) = normalise(&String::from_utf8_lossy(&entry.path_bytes())) else {
            continue;
        };
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let (offset, len) = (entry.raw_file_position(), entry.size());
                if offset.saturating_add(len) > total {
                    return Err(not_a_tar(
                        source,
                        format_args!("{name} is cut short: the file is truncated"),
                    ));
                }
                nodes.insert(name, Node::File { offset, len });
            }
            tar::EntryType::Symlink => {
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
        return Err(not_a_tar(source, "no files in it"));
    }
    Ok(nodes)
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
