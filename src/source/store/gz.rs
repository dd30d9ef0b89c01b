//! Gzip'd tars read where they lie, never decompressed to disk. One streaming pass indexes the
//! tar (names, links, and where each file lies in the decompressed stream), keeping in memory
//! the small JSON files a push reads; any other range is read by decompressing the file again
//! from its start, discarding what comes before the range.
//!
//! Memory stays bounded: at most [`HOLD_BUDGET`] bytes of JSON are kept, and a range is
//! streamed through a small bounded channel. Reading a range costs decompressing everything
//! before it; that is the price of writing nothing to disk.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{JSON_LIMIT, Node, index_entries, not_a_tar};
use crate::error::{Error, Result};
use crate::source::{BlobReader, Held};

/// The decompressed stream of a gzip file (of all its members, as gunzip reads them).
pub(super) type Decoder = MultiGzDecoder<BufReader<File>>;

/// The most JSON bytes one archive's index keeps in memory.
const HOLD_BUDGET: u64 = 8 << 20;
/// How many bytes of every file the index keeps, for magic numbers and to spot JSON.
const HEAD: usize = 16;
/// Size of the pieces a range is streamed in, and how many may wait in the channel.
const PIECE: usize = 64 << 10;
const PIECES_IN_FLIGHT: usize = 4;

pub(super) fn decoder(path: &Path) -> io::Result<Decoder> {
    let file = BufReader::with_capacity(PIECE, File::open(path)?);
    Ok(MultiGzDecoder::new(file))
}

/// Decompresses and discards `n` bytes; a stream that ends first is an error.
pub(super) fn skip(reader: &mut impl Read, n: u64) -> io::Result<()> {
    let mut buffer = vec![0u8; PIECE];
    let mut left = n;
    while left > 0 {
        let want = left.min(PIECE as u64) as usize;
        match reader.read(&mut buffer[..want]) {
            Ok(0) => return Err(ended_early()),
            Ok(read) => left -= read as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn ended_early() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the archive ends before the file does",
    )
}

/// Indexes the gzip'd tar at `path` in one pass over its decompressed stream, then reads the
/// stream to its end so that a corrupt or truncated file is refused now, not half-way through
/// a push.
pub(super) fn index(path: &Path) -> Result<HashMap<String, Node>> {
    let inner = decoder(path)
        .map_err(|e| Error::input(format!("cannot open {}: {e}", path.display())).with_cause(e))?;
    let failure = Rc::new(RefCell::new(None));
    let mut stream = Watched {
        inner,
        failure: failure.clone(),
    };
    let mut budget = HOLD_BUDGET;
    let nodes = {
        let mut archive = tar::Archive::new(&mut stream);
        let fail = |why: &dyn std::fmt::Display| match failure.borrow().as_ref() {
            Some(gzip) => not_gzip(path, gzip),
            None => not_a_tar(path, why),
        };
        let entries = archive.entries().map_err(|e| fail(&e))?;
        index_entries(entries, None, |entry| keep(entry, &mut budget), fail)?
    };
    io::copy(&mut stream, &mut io::sink()).map_err(|e| not_gzip(path, &e))?;
    Ok(nodes)
}

fn not_gzip(path: &Path, why: &dyn std::fmt::Display) -> Error {
    Error::input(format!(
        "{} is not a readable gzip archive ({why})",
        path.display()
    ))
    .with_hint("the file is corrupt or truncated; export it again")
}

/// The decompressed stream, remembering the error it failed with (so a tar error caused by the
/// gzip layer is reported as such).
struct Watched<R> {
    inner: R,
    failure: Rc<RefCell<Option<io::Error>>>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            self.failure
                .borrow_mut()
                .get_or_insert_with(|| io::Error::new(e.kind(), e.to_string()));
        })
    }
}

/// What the index keeps of a file as it goes by: all of a small file that looks like JSON
/// while the budget lasts, else its first [`HEAD`] bytes.
fn keep<R: Read>(entry: &mut tar::Entry<'_, R>, budget: &mut u64) -> io::Result<Held> {
    let len = entry.size();
    let mut bytes = Vec::with_capacity(HEAD);
    entry.by_ref().take(HEAD as u64).read_to_end(&mut bytes)?;
    let whole = bytes.len() as u64 == len;
    if !whole && looks_like_json(&bytes) && len <= JSON_LIMIT && len <= *budget {
        bytes.reserve((len as usize).saturating_sub(bytes.len()));
        entry.by_ref().take(len).read_to_end(&mut bytes)?;
        if (bytes.len() as u64) < len {
            return Err(ended_early());
        }
    }
    if bytes.len() as u64 == len {
        *budget = budget.saturating_sub(len);
    } else {
        bytes.truncate(HEAD);
    }
    Ok(Held(Bytes::from(bytes)))
}

/// Whether a file starting with `head` may be JSON: its first non-blank byte opens an object
/// or an array (or there is none yet).
fn looks_like_json(head: &[u8]) -> bool {
    head.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_none_or(|b| *b == b'{' || *b == b'[')
}

/// Decoders of one archive left where a range ended (or was dropped), so that a range further
/// on goes on from there rather than decompressing from the start again: with more blobs than
/// uploads at once, the archive is then gone through a few times, not once per blob. Shared by
/// the locations of one archive; at most [`PARKED_MAX`] are kept.
#[derive(Default)]
pub struct Parked(Mutex<Vec<(u64, Decoder)>>);

/// How many decoders one archive keeps parked (each holds a 32 KiB window and its buffers).
const PARKED_MAX: usize = 4;

impl Parked {
    /// The parked decoder furthest on but not past `offset`, with its position; else a new one.
    fn take(&self, file: &Path, offset: u64) -> io::Result<(u64, Decoder)> {
        let mut parked = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let best = (0..parked.len())
            .filter(|&i| parked[i].0 <= offset)
            .max_by_key(|&i| parked[i].0);
        match best {
            Some(i) => Ok(parked.swap_remove(i)),
            None => {
                drop(parked);
                Ok((0, decoder(file)?))
            }
        }
    }

    fn put(&self, position: u64, decoder: Decoder) {
        let mut parked = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if parked.len() >= PARKED_MAX {
            parked.remove(0);
        }
        parked.push((position, decoder));
    }
}

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parked = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let positions: Vec<u64> = parked.iter().map(|(p, _)| *p).collect();
        f.debug_tuple("Parked").field(&positions).finish()
    }
}

/// `len` bytes at `offset` of the decompressed stream of `file`, as an async reader: a thread
/// decompresses (discarding everything before `offset`, from a parked decoder when there is
/// one before it) and hands the range over in pieces through a bounded channel. The reader is
/// returned once its first piece is ready, so the time spent skipping passes before any
/// request is made, never while a registry waits for a body; an archive that ends before the
/// range starts fails here. Dropping the reader stops the thread at its next piece.
pub(in crate::source) async fn stream(
    file: Arc<PathBuf>,
    parked: Arc<Parked>,
    offset: u64,
    len: u64,
) -> io::Result<BlobReader> {
    let (sender, mut receiver) = mpsc::channel::<io::Result<Bytes>>(PIECES_IN_FLIGHT);
    std::thread::Builder::new()
        .name("gunzip".to_string())
        .spawn(move || {
            if let Err(e) = feed(&file, &parked, offset, len, &sender) {
                let _ = sender.blocking_send(Err(e));
            }
        })?;
    let first = match receiver.recv().await {
        Some(Err(e)) => return Err(e),
        first => first,
    };
    let rest = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    let pieces = futures_util::stream::iter(first).chain(rest);
    Ok(Box::pin(tokio_util::io::StreamReader::new(pieces)))
}

/// Sends the range through `sender`, then parks the decoder where it stopped; returns early,
/// quietly, once nobody listens. A decoder that failed is dropped.
fn feed(
    file: &Path,
    parked: &Parked,
    offset: u64,
    len: u64,
    sender: &mpsc::Sender<io::Result<Bytes>>,
) -> io::Result<()> {
    let (mut position, mut decoder) = parked.take(file, offset)?;
    let mut buffer = vec![0u8; PIECE];
    let end = offset + len;
    while position < end {
        if sender.is_closed() {
            break;
        }
        let sending = position >= offset;
        let limit = if sending { end } else { offset };
        let want = (limit - position).min(PIECE as u64) as usize;
        let n = match decoder.read(&mut buffer[..want]) {
            Ok(0) => return Err(ended_early()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        position += n as u64;
        if sending
            && sender
                .blocking_send(Ok(Bytes::copy_from_slice(&buffer[..n])))
                .is_err()
        {
            break;
        }
    }
    parked.put(position, decoder);
    Ok(())
}

#[cfg(test)]
#[path = "gz_tests.rs"]
mod tests;
