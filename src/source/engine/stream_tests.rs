//! Tests of [`super`]: exports built in memory, in each form an engine writes, read as a stream.

use serde_json::json;

use super::*;
use crate::source::Manifest;
use crate::source::testing::tar_bytes;

fn plan(diff_ids: &[&[u8]]) -> ExportPlan {
    ExportPlan {
        image: "app:1.0".into(),
        origin: "image app:1.0 of the engine at unix:///test.sock".into(),
        diff_ids: diff_ids.iter().map(|l| Digest::of(l)).collect(),
        platform: None,
        read_through: false,
    }
}

/// What a push of the export saw: each blob's digest as given, its bytes, and the manifests.
struct Pushed {
    blobs: Vec<(Option<Digest>, Vec<u8>)>,
    manifests: Result<Manifests>,
    stream_error: Option<Error>,
}

async fn push(stream: ByteStream, plan: ExportPlan) -> Pushed {
    use tokio::io::AsyncReadExt;
    let Export {
        mut blobs,
        manifests,
    } = read(stream, plan);
    let mut seen = Vec::new();
    let mut stream_error = None;
    while let Some(blob) = blobs.next().await {
        let blob = match blob {
            Ok(blob) => blob,
            Err(e) => {
                stream_error = Some(e);
                break;
            }
        };
        let mut reader = match blob.bytes {
            BlobBytes::Once(reader) => reader,
            BlobBytes::Reopenable(reopen) => reopen.open_at(0).await.unwrap(),
        };
        let mut bytes = Vec::new();
        if let Err(e) = reader.read_to_end(&mut bytes).await {
            stream_error = Some(
                e.into_inner()
                    .and_then(|i| i.downcast::<Error>().ok())
                    .map(|e| *e)
                    .unwrap_or_else(|| Error::input("read failed")),
            );
            break;
        }
        assert_eq!(bytes.len() as u64, blob.size);
        seen.push((blob.digest, bytes));
    }
    drop(blobs);
    Pushed {
        blobs: seen,
        manifests: manifests.await.unwrap(),
        stream_error,
    }
}

fn whole(bytes: Vec<u8>) -> ByteStream {
    futures_util::stream::iter(
        bytes
            .chunks(1000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    )
    .boxed()
}

const LAYER1: &[u8] = b"first layer: not really a tar, but bytes are bytes";
const LAYER2: &[u8] = b"second layer";

fn config() -> Vec<u8> {
    json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
        "diff_ids": [Digest::of(LAYER1).to_string(), Digest::of(LAYER2).to_string()]}})
    .to_string()
    .into_bytes()
}

/// A classic `docker save` (Docker 20.10): lexical order, `ID/layer.tar`, the config as
/// `HEX.json`, a second image's layer as a symlink.
fn classic() -> Vec<u8> {
    let config = config();
    let config_name = format!("{}.json", Digest::of(&config).hex());
    let manifest = json!([{"Config": config_name, "RepoTags": ["app:1.0"],
        "Layers": ["aaa/layer.tar", "bbb/layer.tar"]}])
    .to_string();
    tar_bytes(
        &[
            ("aaa/VERSION", b"1.0"),
            ("aaa/json", b"{\"id\":\"aaa\"}"),
            ("aaa/layer.tar", LAYER1),
            (&config_name, &config),
            ("ccc/layer.tar", LAYER2),
            ("manifest.json", manifest.as_bytes()),
            ("repositories", b"{}"),
        ],
        &[("bbb/layer.tar", "../ccc/layer.tar", tar::EntryType::Symlink)],
    )
}

#[tokio::test]
async fn a_classic_export_gives_the_manifest_docker_archive_builds_for_the_same_tar() {
    let bytes = classic();
    let pushed = push(whole(bytes.clone()), plan(&[LAYER1, LAYER2])).await;
    assert!(pushed.stream_error.is_none(), "{:?}", pushed.stream_error);
    let manifests = pushed.manifests.unwrap();
    let config = config();
    assert_eq!(
        pushed.blobs,
        [
            (None, LAYER1.to_vec()),
            (None, LAYER2.to_vec()),
            (Some(Digest::of(&config)), config.clone())
        ],
        "layers stream by without a digest; the config goes from memory at the end"
    );

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("app.tar");
    std::fs::write(&file, &bytes).unwrap();
    let from_file = crate::source::open(&file.display().to_string(), None).unwrap();
    assert_eq!(manifests.root.digest, from_file.root.digest);
    assert_eq!(manifests.root.bytes, from_file.root.bytes);
    assert!(manifests.children.is_empty());
}

#[tokio::test]
async fn layers_already_in_the_registry_are_hashed_not_sent() {
    let mut plan = plan(&[LAYER1, LAYER2]);
    plan.read_through = true;
    let pushed = push(whole(classic()), plan).await;
    let config = config();
    assert_eq!(pushed.blobs, [(Some(Digest::of(&config)), config)]);
    assert!(pushed.manifests.is_ok());
}

#[tokio::test]
async fn layers_that_are_not_the_configs_diff_ids_are_refused() {
    let bytes = classic();
    let tampered = bytes
        .windows(LAYER2.len())
        .position(|w| w == LAYER2)
        .unwrap();
    let mut bytes = bytes;
    bytes[tampered] = b'S';
    let pushed = push(whole(bytes), plan(&[LAYER1, LAYER2])).await;
    let error = pushed.stream_error.expect("refused before the manifests");
    assert_eq!(error.kind(), crate::error::Kind::Input);
    // Refused as the layer goes by, before its last byte: its upload is never committed.
    assert!(
        error
            .message()
            .contains("ccc/layer.tar in image app:1.0 of the engine at unix:///test.sock is none of the image's layers"),
        "{error}"
    );
    assert!(pushed.manifests.is_err());
}

#[tokio::test]
async fn junk_at_the_top_of_an_export_is_not_sent() {
    // 50 small files at the top of the tar, before the image (an engine writes none there).
    let mut builder = tar::Builder::new(Vec::new());
    for n in 0..50 {
        let content = format!("junk {n}");
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("junk{n}"), content.as_bytes())
            .unwrap();
    }
    let bytes = classic();
    let mut archive = tar::Archive::new(&bytes[..]);
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let header = entry.header().clone();
        builder.append(&header, entry).unwrap();
    }
    let junk = builder.into_inner().unwrap();
    let pushed = push(whole(junk), plan(&[LAYER1, LAYER2])).await;
    if let Err(e) = &pushed.manifests {
        panic!("{e} {:?}", pushed.stream_error);
    }
    assert_eq!(pushed.blobs.len(), 3, "config and two layers only");
}

/// Docker 25+: an OCI layout in the tar, blobs by digest, the engine's own manifest.
fn docker25(manifests_null: bool) -> (Vec<u8>, Manifest) {
    let config = config();
    let c = Digest::of(&config);
    let (l1, l2) = (Digest::of(LAYER1), Digest::of(LAYER2));
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c.to_string(), "size": config.len()},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l1.to_string(), "size": LAYER1.len()},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l2.to_string(), "size": LAYER2.len()}]})
    .to_string()
    .into_bytes();
    let m = Digest::of(&manifest);
    let entries = if manifests_null {
        serde_json::Value::Null
    } else {
        json!([{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m.to_string(),
            "size": manifest.len(), "annotations": {"io.containerd.image.name": "docker.io/library/app:1.0",
            "org.opencontainers.image.ref.name": "1.0"}}])
    };
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries})
    .to_string();
    let legacy = br#"{"id":"abc","created":"1970-01-01T00:00:00Z"}"#;
    let blob = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let docker_manifest = json!([{"Config": blob(&c), "RepoTags": ["app:1.0"],
        "Layers": [blob(&l1), blob(&l2)]}])
    .to_string();
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (blob(&c), config.clone()),
        (blob(&l1), LAYER1.to_vec()),
        (blob(&l2), LAYER2.to_vec()),
        (blob(&m), manifest.clone()),
        (blob(&Digest::of(legacy)), legacy.to_vec()),
        ("index.json".into(), index.into_bytes()),
        ("manifest.json".into(), docker_manifest.into_bytes()),
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion": "1.0.0"}"#.to_vec(),
        ),
    ];
    files.sort();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), &b[..])).collect();
    let root = Manifest {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: m,
        bytes: manifest,
    };
    (tar_bytes(&refs, &[]), root)
}

#[tokio::test]
async fn a_docker_25_export_keeps_the_engines_manifest_and_names_every_blob() {
    for manifests_null in [false, true] {
        let (bytes, root) = docker25(manifests_null);
        let pushed = push(whole(bytes), plan(&[LAYER1, LAYER2])).await;
        assert!(pushed.stream_error.is_none(), "{:?}", pushed.stream_error);
        let manifests = pushed.manifests.unwrap();
        assert_eq!(manifests.root.digest, root.digest, "null: {manifests_null}");
        assert_eq!(manifests.root.bytes, root.bytes);
        let mut digests: Vec<Option<Digest>> = pushed.blobs.iter().map(|b| b.0.clone()).collect();
        digests.sort();
        let mut expected = vec![
            Some(Digest::of(&config())),
            Some(Digest::of(LAYER1)),
            Some(Digest::of(LAYER2)),
        ];
        expected.sort();
        assert_eq!(digests, expected, "no legacy JSON, no manifest as a blob");
    }
}

#[tokio::test]
async fn an_index_with_only_the_local_platform_pushes_that_platform() {
    let config = config();
    let c = Digest::of(&config);
    let l1 = Digest::of(LAYER1);
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": l1.to_string(), "size": LAYER1.len()}]})
    .to_string();
    let m = Digest::of(manifest.as_bytes());
    let attestation = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c.to_string(), "size": config.len()},
        "layers": []})
    .to_string();
    let a = Digest::of(attestation.as_bytes());
    let missing = Digest::of(b"arm64 manifest not in the engine");
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m.to_string(), "size": manifest.len(),
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": missing.to_string(), "size": 10,
         "platform": {"os": "linux", "architecture": "arm64"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": a.to_string(), "size": attestation.len(),
         "platform": {"os": "unknown", "architecture": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": m.to_string()}}]})
    .to_string();
    let i = Digest::of(index.as_bytes());
    let top = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": i.to_string(), "size": index.len(),
        "annotations": {"io.containerd.image.name": "docker.io/library/app:1.0"}}]})
    .to_string();
    let blob = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let bytes = tar_bytes(
        &[
            (&blob(&c), &config),
            (&blob(&l1), LAYER1),
            (&blob(&m), manifest.as_bytes()),
            (&blob(&a), attestation.as_bytes()),
            (&blob(&i), index.as_bytes()),
            ("index.json", top.as_bytes()),
        ],
        &[],
    );
    let pushed = push(whole(bytes), plan(&[LAYER1])).await;
    let manifests = pushed.manifests.unwrap();
    assert_eq!(manifests.root.digest, m);
    assert!(manifests.children.is_empty());
}

#[tokio::test]
async fn a_stream_cut_mid_layer_fails_the_blob_with_the_engines_error() {
    let bytes = classic();
    let cut_at = bytes
        .windows(LAYER1.len())
        .position(|w| w == LAYER1)
        .unwrap()
        + 10;
    let head = Bytes::copy_from_slice(&bytes[..cut_at]);
    let stream = futures_util::stream::iter(vec![
        Ok(head),
        Err(io::Error::other(Error::input(
            "the engine at unix:///test.sock stopped sending image app:1.0",
        ))),
    ])
    .boxed();
    let pushed = push(stream, plan(&[LAYER1, LAYER2])).await;
    let error = pushed.stream_error.expect("the blob read fails");
    assert!(
        error.message().contains("stopped sending image app:1.0"),
        "{error}"
    );
    assert!(pushed.manifests.is_err());
}

#[tokio::test]
async fn a_stream_that_ends_mid_file_or_is_not_a_tar_is_an_input_error() {
    let bytes = classic();
    let pushed = push(whole(bytes[..1500].to_vec()), plan(&[LAYER1, LAYER2])).await;
    let error = pushed.stream_error.expect("refused");
    assert_eq!(error.kind(), crate::error::Kind::Input);
    assert!(
        error.message().contains("image app:1.0 of the engine"),
        "{error}"
    );

    let garbage = vec![0x42u8; 4096];
    let pushed = push(whole(garbage), plan(&[])).await;
    let error = pushed.stream_error.expect("refused");
    assert!(
        error.message().contains("image app:1.0 of the engine"),
        "{error}"
    );
    assert!(error.hint().is_some());
}

#[tokio::test]
async fn an_index_naming_one_child_many_times_reads_it_once() {
    let config = config();
    let c = Digest::of(&config);
    let l1 = Digest::of(LAYER1);
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": l1.to_string(), "size": LAYER1.len()}]})
    .to_string();
    let m = Digest::of(manifest.as_bytes());
    let entry = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m.to_string(),
        "size": manifest.len(), "platform": {"os": "linux", "architecture": "amd64"}});
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": vec![entry; 5_000]})
    .to_string();
    let i = Digest::of(index.as_bytes());
    let top = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": i.to_string(), "size": index.len()}]})
    .to_string();
    let blob = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let bytes = tar_bytes(
        &[
            (&blob(&c), &config),
            (&blob(&l1), LAYER1),
            (&blob(&m), manifest.as_bytes()),
            (&blob(&i), index.as_bytes()),
            ("index.json", top.as_bytes()),
        ],
        &[],
    );
    let pushed = push(whole(bytes), plan(&[LAYER1])).await;
    let manifests = pushed.manifests.unwrap();
    assert_eq!(manifests.root.digest, i);
    assert_eq!(
        manifests.children.len(),
        1,
        "the child once, not 5,000 times"
    );
}

#[tokio::test]
async fn an_index_whose_manifests_add_up_to_more_than_the_limit_is_refused() {
    let config = config();
    let c = Digest::of(&config);
    let blob = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    // Five distinct manifests of 3.5 MiB each (padded annotations): each is small JSON the
    // export holds, but together they are more than one image may hold.
    let children: Vec<String> = (0..5)
        .map(|n| {
            json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c.to_string(), "size": config.len()},
                "layers": [], "annotations": {"n": n.to_string(), "pad": "x".repeat(7 << 19)}})
            .to_string()
        })
        .collect();
    let entries: Vec<serde_json::Value> = children
        .iter()
        .map(|m| {
            json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": Digest::of(m.as_bytes()).to_string(), "size": m.len()})
        })
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries})
    .to_string();
    let i = Digest::of(index.as_bytes());
    let top = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": i.to_string(), "size": index.len()}]})
    .to_string();
    let mut files: Vec<(String, &[u8])> = vec![(blob(&c), &config)];
    for child in &children {
        files.push((blob(&Digest::of(child.as_bytes())), child.as_bytes()));
    }
    files.push((blob(&i), index.as_bytes()));
    files.push(("index.json".to_string(), top.as_bytes()));
    let files: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (p.as_str(), *b)).collect();
    let pushed = push(whole(tar_bytes(&files, &[])), plan(&[])).await;
    let Err(error) = pushed.manifests else {
        panic!("the manifests were not refused");
    };
    assert_eq!(error.kind(), crate::error::Kind::Input);
    assert!(
        error
            .message()
            .starts_with("the manifests of image app:1.0 of the engine at unix:///test.sock add up to more than 16 MiB (6 manifests"),
        "{error}"
    );
}
