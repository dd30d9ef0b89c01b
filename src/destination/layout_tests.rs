use super::*;
use crate::oci::BlobBytes;
use crate::oci::media_type::OCI_MANIFEST;
use crate::progress::Silent;

fn blob(bytes: &'static [u8]) -> SourceBlob {
    SourceBlob {
        digest: Some(Digest::of(bytes)),
        size: bytes.len() as u64,
        bytes: BlobBytes::Once(Box::pin(bytes)),
        origin: "r.example/app".into(),
    }
}

fn manifest(bytes: &[u8]) -> Manifest {
    Manifest {
        media_type: OCI_MANIFEST.into(),
        digest: Digest::of(bytes),
        bytes: bytes.to_vec(),
    }
}

fn index(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap()
}

async fn pull_into(dir: &Path, reference: &str, layer: &'static [u8], root: &Manifest) {
    let layout = LayoutDestination::new(dir.to_path_buf(), Some(reference.into()));
    layout.open().await.unwrap();
    layout
        .put_blob(blob(layer), &Silent::default())
        .await
        .unwrap();
    layout.commit(root, &[]).await.unwrap();
}

#[tokio::test]
async fn a_new_layout_appears_only_when_complete() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("layout");
    let layout = LayoutDestination::new(dir.clone(), Some("1.0".into()));
    layout.open().await.unwrap();
    let uploaded = layout
        .put_blob(blob(b"layer"), &Silent::default())
        .await
        .unwrap();
    assert_eq!(uploaded.outcome, BlobOutcome::Pulled);
    assert!(!dir.exists(), "nothing named DIR before the end");
    let root = manifest(b"{\"m\":1}");
    layout.commit(&root, &[]).await.unwrap();
    assert!(dir.join("oci-layout").is_file());
    assert!(dir.join(blob_path(&Digest::of(b"layer"))).is_file());
    assert!(dir.join(blob_path(&root.digest)).is_file());
    let index = index(&dir);
    assert_eq!(index["manifests"][0]["digest"], root.digest.as_str());
    assert_eq!(index["manifests"][0]["annotations"][REF_NAME], "1.0");
    let names: Vec<_> = std::fs::read_dir(parent.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "no temporary left: {names:?}");
}

#[tokio::test]
async fn a_failed_pull_leaves_no_new_directory() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("layout");
    let layout = LayoutDestination::new(dir.clone(), None);
    layout.open().await.unwrap();
    let mut bad = blob(b"evil");
    bad.digest = Some(Digest::of(b"good"));
    assert!(layout.put_blob(bad, &Silent::default()).await.is_err());
    drop(layout);
    assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn an_existing_layout_gains_the_image_and_keeps_the_others() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("layout");
    let first = manifest(b"{\"m\":1}");
    pull_into(&dir, "1.0", b"one", &first).await;
    let second = manifest(b"{\"m\":2}");
    pull_into(&dir, "2.0", b"two", &second).await;
    let again = manifest(b"{\"m\":3}");
    pull_into(&dir, "1.0", b"one", &again).await;
    let index = index(&dir);
    let entries: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["annotations"][REF_NAME].as_str().unwrap().to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("2.0".to_string(), second.digest.to_string()),
            ("1.0".to_string(), again.digest.to_string())
        ]
    );
}

#[tokio::test]
async fn blobs_the_layout_has_are_not_written_again() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("layout");
    pull_into(&dir, "1.0", b"one", &manifest(b"{}")).await;
    let layout = LayoutDestination::new(dir.clone(), None);
    layout.open().await.unwrap();
    let digest = Digest::of(b"one");
    assert!(layout.has_blob(&digest).await.unwrap());
    let uploaded = layout
        .put_blob(blob(b"one"), &Silent::default())
        .await
        .unwrap();
    assert_eq!(uploaded.outcome, BlobOutcome::Exists);
}

#[tokio::test]
async fn a_file_or_a_foreign_directory_or_a_missing_parent_is_refused_at_open() {
    let parent = tempfile::tempdir().unwrap();
    let file = parent.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let error = LayoutDestination::new(file, None).open().await.unwrap_err();
    assert!(error.message().contains("is a file"), "{error}");
    let other = parent.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"x").unwrap();
    let error = LayoutDestination::new(other, None)
        .open()
        .await
        .unwrap_err();
    assert!(
        error.message().contains("not an OCI image layout"),
        "{error}"
    );
    let missing = parent.path().join("no/such/layout");
    let error = LayoutDestination::new(missing, None)
        .open()
        .await
        .unwrap_err();
    assert!(error.message().contains("does not exist"), "{error}");
    assert!(error.hint().is_some_and(|h| h.contains("mkdir -p")));
}

#[test]
fn pulls_into_one_layout_at_once_each_keep_their_entry() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("layout");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(pull_into(&dir, "first", b"one", &manifest(b"{}")));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let layout = LayoutDestination::new(dir.clone(), Some(format!("r{i}")));
                let root = manifest(format!("{{\"m\":{i}}}").as_bytes());
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                runtime.block_on(layout.open()).unwrap();
                for _ in 0..5 {
                    layout.write_index(&dir, &root).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let index = index(&dir);
    let mut names: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["annotations"][REF_NAME].as_str().unwrap().to_string())
        .collect();
    names.sort();
    let mut expected: Vec<String> = (0..8).map(|i| format!("r{i}")).collect();
    expected.push("first".into());
    expected.sort();
    assert_eq!(names, expected);
}
