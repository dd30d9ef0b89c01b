//! Harnesses for the fuzz targets in `fuzz_targets/`, kept here so that this crate's tests can
//! replay the seed corpus and every input that once crashed (`regressions/`) on stable Rust,
//! without libFuzzer.
//!
//! Each harness takes the raw fuzz input, turns it into what the reader expects (a string, a
//! file, an OCI layout directory) and calls the library. The readers must never panic: an error
//! is the expected answer to almost every input. Where an answer can be checked cheaply, the
//! harness checks it too (a parsed destination prints back to itself, a bearer challenge has a
//! realm, every error is an input error).

pub mod layout_input;
pub mod seeds;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use idpbuilder_push::error::Kind;
use idpbuilder_push::reference::Destination;
use idpbuilder_push::registry::{Challenge, parse_challenge};
use idpbuilder_push::source;

/// `reference::Destination::parse` on arbitrary UTF-8.
pub fn destination(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Destination::parse(text) {
        Ok(parsed) => {
            // The registry client must be able to make its URLs from it.
            let url = format!("https://{}/v2/{}/", parsed.host, parsed.repository);
            assert!(
                url::Url::parse(&url).is_ok(),
                "{text:?} gives the bad URL {url:?}"
            );
            // What the tool prints must name the same place.
            let printed = parsed.to_string();
            let again = Destination::parse(&printed);
            assert!(
                again.as_ref().is_ok_and(|d| *d == parsed),
                "{text:?} parsed as {parsed:?}, printed as {printed:?}, which parses as {again:?}"
            );
        }
        Err(error) => {
            assert_eq!(error.kind(), Kind::Input, "{text:?}: {error:?}");
            assert!(error.hint().is_some(), "{text:?}: no hint in {error:?}");
        }
    }
}

/// `registry::parse_challenge` on an arbitrary `WWW-Authenticate` value.
pub fn challenge(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(Challenge::Bearer { realm, .. }) = parse_challenge(text) {
        assert!(
            !realm.is_empty(),
            "{text:?}: a bearer challenge without realm"
        );
    }
}

/// `source::open` on an OCI layout directory built from the input (see [`layout_input`]).
pub fn layout(data: &[u8]) {
    let dir = scratch().join("layout");
    let Some((argument, platform)) = layout_input::write(&dir, data) else {
        return;
    };
    check_open(&argument, platform);
}

/// `source::open` on the input written as an archive file. The input length picks how the
/// file is named on the command line, so every seed reaches each way in turn as it grows or
/// shrinks: detected, detected with `--platform`, `oci-archive:PATH:REF`, and
/// `docker-archive:PATH:REF`.
pub fn archive(data: &[u8]) {
    let path = scratch().join("image.tar");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let path = path.display();
    let (argument, platform) = match data.len() % 4 {
        0 => (path.to_string(), None),
        1 => (path.to_string(), "linux/amd64".parse().ok()),
        2 => (format!("oci-archive:{path}:v1"), None),
        _ => (format!("docker-archive:{path}:app:1.0"), None),
    };
    check_open(&argument, platform);
}

/// Opens the image; an error must be an input error with a message.
fn check_open(argument: &str, platform: Option<idpbuilder_push::oci::Platform>) {
    if let Err(error) = source::open(argument, platform) {
        assert_eq!(error.kind(), Kind::Input, "{argument}: {error:?}");
        assert!(!error.message().is_empty(), "{argument}: empty message");
    }
}

/// This process's scratch directory: in `/dev/shm` where there is one (fuzzing writes a file
/// per run), named after the process so that parallel fuzzing jobs do not meet. libFuzzer ends
/// with `exit`, so nothing is cleaned up then; instead each process removes the directories of
/// processes that are gone.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        remove_stale(&base);
        let dir = base.join(format!("{PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!(
                "cannot create the fuzz scratch directory {}: {e}",
                dir.display()
            );
        }
        dir
    })
}

const PREFIX: &str = "idpbuilder-fuzz-";

fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests;
