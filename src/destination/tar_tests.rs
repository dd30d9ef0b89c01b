use std::io::Read;

use super::*;
use crate::oci::BlobBytes;
use crate::oci::media_type::{DOCKER_LIST, OCI_INDEX, OCI_MANIFEST};

fn blob(bytes: &'static [u8]) -> SourceBlob {
    SourceBlob {
        digest: Some(Digest::of(bytes)),
        size: bytes.len() as u64,
        bytes: BlobBytes::Once(Box::pin(bytes)),
        origin: "r.example/app".into(),
    }
}

fn image_manifest(config: &[u8], layers: &[&[u8]], layer_type: &str) -> Manifest {
    let layers: Vec<_> = layers
        .iter()
        .map(
            |l| json!({"mediaType": layer_type, "digest": Digest::of(l).as_str(), "size": l.len()}),
        )
        .collect();
    let bytes = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::of(config).as_str(), "size": config.len()},
        "layers": layers,
    })
    .to_string()
    .into_bytes();
    Manifest {
        media_type: OCI_MANIFEST.into(),
        digest: Digest::of(&bytes),
        bytes,
    }
}

fn no_write_error(e: io::Error) -> Error {
    Error::input(e.to_string())
}

/// Every entry of a tar: name and bytes.
fn entries(tar_bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(tar_bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

#[tokio::test]
async fn a_docker_archive_names_config_and_layers_in_manifest_json() {
    let root = image_manifest(
        b"{}",
        &[b"layer one"],
        "application/vnd.oci.image.layer.v1.tar+gzip",
    );
    let shape = Shape::Docker {
        repo_tags: vec!["r.example/app:1.0".into()],
    };
    let mut tar = ImageTar::start(Vec::new(), shape).await.unwrap();
    tar.blob(blob(b"{}"), &|_| {}, &no_write_error)
        .await
        .unwrap();
    tar.blob(blob(b"layer one"), &|_| {}, &no_write_error)
        .await
        .unwrap();
    let bytes = tar.finish(&root).await.unwrap();
    assert_eq!(bytes.len() % 512, 0);
    let entries = entries(&bytes);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    let config = blob_path(&Digest::of(b"{}"));
    let layer = blob_path(&Digest::of(b"layer one"));
    assert_eq!(
        names,
        [
            "blobs/",
            "blobs/sha256/",
            config.as_str(),
            layer.as_str(),
            "manifest.json"
        ]
    );
    let manifest: serde_json::Value = serde_json::from_slice(&entries[4].1).unwrap();
    assert_eq!(
        manifest,
        json!([{"Config": config, "RepoTags": ["r.example/app:1.0"], "Layers": [layer]}])
    );
    assert_eq!(entries[3].1, b"layer one");
}

#[tokio::test]
async fn an_oci_archive_keeps_manifests_as_blobs_and_names_the_root() {
    let root = image_manifest(b"{}", &[], "x");
    let shape = Shape::Oci {
        reference: Some("1.0".into()),
    };
    let mut tar = ImageTar::start(Vec::new(), shape).await.unwrap();
    tar.blob(blob(b"{}"), &|_| {}, &no_write_error)
        .await
        .unwrap();
    let bytes = tar.finish(&root).await.unwrap();
    let entries = entries(&bytes);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"oci-layout"));
    let root_path = blob_path(&root.digest);
    assert!(names.contains(&root_path.as_str()), "{names:?}");
    let (_, index) = entries.iter().find(|(n, _)| n == "index.json").unwrap();
    let index: serde_json::Value = serde_json::from_slice(index).unwrap();
    assert_eq!(index["manifests"][0]["digest"], root.digest.as_str());
    assert_eq!(index["manifests"][0]["annotations"][REF_NAME], "1.0");
}

#[tokio::test]
async fn wrong_bytes_stop_the_tar() {
    let shape = Shape::Oci { reference: None };
    let mut tar = ImageTar::start(Vec::new(), shape).await.unwrap();
    let mut bad = blob(b"evil");
    bad.digest = Some(Digest::of(b"good"));
    let error = tar.blob(bad, &|_| {}, &no_write_error).await.unwrap_err();
    assert!(error.message().contains("does not match"), "{error}");
}

#[test]
fn a_docker_archive_refuses_an_index_a_non_image_and_foreign_layers() {
    let docker = Shape::Docker { repo_tags: vec![] };
    let index = Manifests {
        children: vec![],
        root: Manifest {
            media_type: OCI_INDEX.into(),
            digest: Digest::of(b"i"),
            bytes: b"{}".to_vec(),
        },
    };
    let error = docker.check(&index, "a docker archive").unwrap_err();
    assert!(
        error.hint().is_some_and(|h| h.contains("--platform")),
        "{error:?}"
    );
    let foreign = Manifests {
        children: vec![],
        root: image_manifest(
            b"{}",
            &[b"win"],
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        ),
    };
    let error = docker.check(&foreign, "a docker archive").unwrap_err();
    assert!(error.message().contains("foreign layer"), "{error}");
    let list = Manifests {
        children: vec![],
        root: Manifest {
            media_type: DOCKER_LIST.into(),
            digest: Digest::of(b"l"),
            bytes: b"{}".to_vec(),
        },
    };
    assert!(Shape::Oci { reference: None }.check(&list, "x").is_ok());
    let fine = Manifests {
        children: vec![],
        root: image_manifest(b"{}", &[b"l"], "application/vnd.oci.image.layer.v1.tar"),
    };
    assert!(docker.check(&fine, "a docker archive").is_ok());
}
