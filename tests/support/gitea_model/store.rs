//! What the model keeps between requests, shaped like Gitea's package tables: one package per
//! owner and image, package versions named by the manifest's reference (a tag or a digest),
//! files in those versions pointing at content-addressed blobs on disk, and the internal
//! `_upload` version that holds blobs no manifest names yet. Also the upload sessions.
//!
//! Gitea 1.24: `models/packages/container/search.go` (`BlobSearchOptions`, `GetContainerBlob`),
//! `routers/api/packages/container/blob.go` (`getOrCreateUploadVersion`, `createFileForBlob`),
//! `services/packages/container/blob_uploader.go` (`BlobUploader.Append`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// `container_model.UploadVersion`: the internal version uploaded blobs live in.
pub const UPLOAD_VERSION: &str = "_upload";

/// One file of a package version: a blob, or the version's `manifest.json`.
#[derive(Clone, Debug)]
pub struct File {
    /// Insertion order, as the database's ids: `GetContainerBlob` takes the first match.
    pub id: u64,
    pub digest: String,
    pub size: u64,
    /// The `mediaType` property; empty for a blob that only sits in `_upload`.
    pub media_type: String,
    /// Named `manifest.json` (`container_model.ManifestFilename`).
    pub is_manifest: bool,
}

/// One package version: a tag, a digest, or `_upload`.
#[derive(Clone, Debug, Default)]
pub struct Version {
    pub internal: bool,
    /// The `container.manifest.tagged` property: set when the reference was not a digest.
    pub tagged: bool,
    pub files: Vec<File>,
    /// The `container.manifest.reference` properties of an index version.
    pub children: Vec<String>,
}

/// One package: `OWNER/IMAGE`, lower case.
#[derive(Clone, Debug, Default)]
pub struct Package {
    /// `lower_version` -> version.
    pub versions: BTreeMap<String, Version>,
}

/// An upload session (`package_blob_upload`), global: its id is not tied to an image.
#[derive(Debug)]
pub struct Upload {
    /// `BytesReceived` as the database has it.
    pub received: u64,
    /// Bytes in the session's file on disk (more than `received` after a cut body).
    pub on_disk: u64,
}

/// Everything the model stores.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    /// `(owner, image)` lower case -> package.
    pub packages: HashMap<(String, String), Package>,
    pub uploads: HashMap<String, Upload>,
    next_file: u64,
    next_upload: u64,
    /// Package versions (and packages) whose write transaction is still open.
    pub writing: HashSet<(String, String, String)>,
}

/// What a digest search found: where, and the file.
#[derive(Clone, Debug)]
pub struct Found {
    pub version: String,
    pub file: File,
}

impl Store {
    pub fn new(root: &Path) -> Store {
        for dir in ["blobs", "uploads"] {
            std::fs::create_dir_all(root.join(dir)).expect("model storage dirs");
        }
        Store {
            root: root.to_path_buf(),
            packages: HashMap::new(),
            uploads: HashMap::new(),
            next_file: 0,
            next_upload: 0,
            writing: HashSet::new(),
        }
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.root.join("blobs").join(digest.replace(':', "_"))
    }

    fn upload_path(&self, id: &str) -> PathBuf {
        self.root.join("uploads").join(id)
    }

    /// The content store's bytes of a blob, if present.
    pub fn read_blob(&self, digest: &str) -> Option<Vec<u8>> {
        std::fs::read(self.blob_path(digest)).ok()
    }

    /// Puts bytes in the content store (idempotent); returns the digest.
    pub fn save_blob(&self, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let path = self.blob_path(&digest);
        if !path.exists() {
            std::fs::write(&path, bytes).expect("write model blob");
        }
        digest
    }

    /// `GetContainerBlob`: the first file (by id) of the image whose digest matches, in any
    /// version; with `manifest`, only `manifest.json` files.
    pub fn find(&self, owner: &str, image: &str, digest: &str, manifest: bool) -> Option<Found> {
        self.first(owner, image, |f| {
            f.digest == digest && (!manifest || f.is_manifest)
        })
    }

    fn first(&self, owner: &str, image: &str, wanted: impl Fn(&File) -> bool) -> Option<Found> {
        let package = self.packages.get(&key(owner, image))?;
        package
            .versions
            .iter()
            .flat_map(|(name, v)| v.files.iter().map(move |f| (name, f)))
            .filter(|(_, f)| wanted(f))
            .min_by_key(|(_, f)| f.id)
            .map(|(name, f)| Found {
                version: name.clone(),
                file: f.clone(),
            })
    }

    /// `GetContainerBlob` without a digest condition (a descriptor with no `digest`): the
    /// image's first file of all.
    pub fn find_any(&self, owner: &str, image: &str) -> Option<Found> {
        self.first(owner, image, |_| true)
    }

    /// The same, among `manifest.json` files only.
    pub fn find_any_manifest(&self, owner: &str, image: &str) -> Option<Found> {
        self.first(owner, image, |f| f.is_manifest)
    }

    /// The manifest file of the version named `tag` (lower-cased, as `lower_version`).
    pub fn find_tag(&self, owner: &str, image: &str, tag: &str) -> Option<File> {
        let version = self
            .packages
            .get(&key(owner, image))?
            .versions
            .get(&tag.to_lowercase())?;
        version.files.iter().find(|f| f.is_manifest).cloned()
    }

    /// `getOrCreateUploadVersion` + `createFileForBlob`: the blob joins the image's `_upload`
    /// version (once).
    pub fn add_uploaded(&mut self, owner: &str, image: &str, digest: &str, size: u64) {
        self.next_file += 1;
        let id = self.next_file;
        let upload = self
            .packages
            .entry(key(owner, image))
            .or_default()
            .versions
            .entry(UPLOAD_VERSION.to_string())
            .or_insert_with(|| Version {
                internal: true,
                ..Version::default()
            });
        if upload.files.iter().any(|f| f.digest == digest) {
            return;
        }
        upload.files.push(File {
            id,
            digest: digest.to_string(),
            size,
            media_type: String::new(),
            is_manifest: false,
        });
    }

    /// A new file id for a file the caller is about to store.
    pub fn next_file_id(&mut self) -> u64 {
        self.next_file += 1;
        self.next_file
    }

    /// `CreateBlobUpload`: a new session with a 25-character lower-case id.
    pub fn create_upload(&mut self) -> String {
        self.next_upload += 1;
        let seed = sha256(format!("upload-{}", self.next_upload).as_bytes());
        let id: String = seed["sha256:".len()..][..25].to_string();
        std::fs::File::create(self.upload_path(&id)).expect("create model upload file");
        self.uploads.insert(
            id.clone(),
            Upload {
                received: 0,
                on_disk: 0,
            },
        );
        id
    }

    /// `BlobUploader.Append`: the file must end where the database says, else
    /// "offset mismatch between file and model" (500). A body that broke off leaves its bytes
    /// in the file without counting them, so every later append of that session fails.
    pub fn append(&mut self, id: &str, bytes: &[u8], complete: bool) -> Result<(), &'static str> {
        let path = self.upload_path(id);
        let upload = self.uploads.get_mut(id).ok_or("no such upload")?;
        if upload.on_disk != upload.received {
            return Err("offset mismatch between file and model");
        }
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|_| "cannot open upload file")?;
        file.write_all(bytes)
            .map_err(|_| "cannot write upload file")?;
        upload.on_disk += bytes.len() as u64;
        if complete {
            upload.received = upload.on_disk;
            Ok(())
        } else {
            Err("unexpected EOF")
        }
    }

    /// The bytes of an upload session as received so far.
    pub fn upload_bytes(&self, id: &str) -> Vec<u8> {
        std::fs::read(self.upload_path(id)).unwrap_or_default()
    }

    /// `RemoveBlobUploadByID`.
    pub fn remove_upload(&mut self, id: &str) {
        self.uploads.remove(id);
        let _ = std::fs::remove_file(self.upload_path(id));
    }
}

/// The package key: owner and image, lower case (`package.lower_name`).
pub fn key(owner: &str, image: &str) -> (String, String) {
    (owner.to_lowercase(), image.to_lowercase())
}

/// `sha256:HEX` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// go-digest's `Digest.Validate` for the algorithms Gitea links in: `ALG:HEX`, lower-case hex
/// of the algorithm's length.
pub fn valid_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
