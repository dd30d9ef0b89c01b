//! The input format of the `layout` target: a whole OCI layout in one text-friendly input, so
//! that the fuzzer can reach past the digest checks into the index walk.
//!
//! Parts are separated by a line holding `--` (`\n--\n`):
//! 0. options: `REF PLATFORM`, whitespace-separated, `-` for none (`v1 linux/arm64`, `- -`);
//! 1. `index.json` (absent: the directory has only `oci-layout`);
//! 2. and on: blobs, each stored as `blobs/sha256/<its sha256>`.
//!
//! In every part, `<N>` becomes the digest (`sha256:...`) and `<#N>` the size of part N, when
//! N is one digit and a later part; parts are finished from the last to the first, so a
//! manifest can name its config and layers, and an index its manifests.

use std::path::Path;

use idpbuilder_push::oci::Platform;
use sha2::{Digest as _, Sha256};

pub const SEPARATOR: &[u8] = b"\n--\n";

/// Writes the layout the input describes into `dir` (emptied first); returns the IMAGE
/// argument (`oci:DIR[:REF]`) and the platform to select. `None` when the directory cannot be
/// written.
pub fn write(dir: &Path, data: &[u8]) -> Option<(String, Option<Platform>)> {
    let parts = finish(split(data));
    let _ = std::fs::remove_dir_all(dir);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).ok()?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).ok()?;
    if let Some(index) = parts.get(1) {
        std::fs::write(dir.join("index.json"), index).ok()?;
    }
    for blob in parts.iter().skip(2) {
        std::fs::write(blobs.join(hex::encode(Sha256::digest(blob))), blob).ok()?;
    }
    let options = parts
        .first()
        .map(|o| String::from_utf8_lossy(o).into_owned());
    let mut options = options.as_deref().unwrap_or_default().split_whitespace();
    let reference = options.next().filter(|r| *r != "-");
    let platform = options.next().and_then(|p| p.parse().ok());
    let argument = match reference {
        Some(r) => format!("oci:{}:{r}", dir.display()),
        None => format!("oci:{}", dir.display()),
    };
    Some((argument, platform))
}

/// The parts of the input, as written (before `<N>` substitution).
pub fn split(data: &[u8]) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = find(rest, SEPARATOR) {
        parts.push(rest[..at].to_vec());
        rest = &rest[at + SEPARATOR.len()..];
    }
    parts.push(rest.to_vec());
    parts
}

/// Replaces `<N>` and `<#N>` in every part, from the last part to the first.
pub fn finish(mut parts: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    for k in (0..parts.len()).rev() {
        let (head, later) = parts.split_at_mut(k + 1);
        let part = &mut head[k];
        let reference = |n: usize| n.checked_sub(k + 1).and_then(|i| later.get(i));
        let mut out = Vec::with_capacity(part.len());
        let mut i = 0;
        while i < part.len() {
            match token(&part[i..]) {
                Some((len, n, size)) if reference(n).is_some() => {
                    let target = reference(n).map(Vec::as_slice).unwrap_or_default();
                    if size {
                        out.extend_from_slice(target.len().to_string().as_bytes());
                    } else {
                        out.extend_from_slice(b"sha256:");
                        out.extend_from_slice(hex::encode(Sha256::digest(target)).as_bytes());
                    }
                    i += len;
                }
                _ => {
                    out.push(part[i]);
                    i += 1;
                }
            }
        }
        *part = out;
    }
    parts
}

/// `<N>` or `<#N>` at the start of `bytes`: its length, N, and whether it asks for the size.
fn token(bytes: &[u8]) -> Option<(usize, usize, bool)> {
    match bytes {
        [b'<', d, b'>', ..] if d.is_ascii_digit() => Some((3, usize::from(d - b'0'), false)),
        [b'<', b'#', d, b'>', ..] if d.is_ascii_digit() => Some((4, usize::from(d - b'0'), true)),
        _ => None,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
