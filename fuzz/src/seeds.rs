//! The seed corpus (`seeds/<target>/`), made here so that it can be read and changed as code:
//! valid inputs of every kind the readers accept, which the fuzzer then mutates. The layout
//! seeds use the format of [`crate::layout_input`]; the archive seeds are the same layouts as
//! tars (plain, gzip'd, with `./` names, docker 25+ form) and classic `docker save` archives.
//! `UPDATE_SEEDS=1 cargo test --manifest-path fuzz/Cargo.toml` rewrites the files.

use std::io::Write as _;

use sha2::{Digest as _, Sha256};

use crate::layout_input::{SEPARATOR, finish, split};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const DOCKER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// One seed file: the target it is for, its file name, its bytes.
pub struct Seed {
    pub target: &'static str,
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Every seed of every target.
pub fn all() -> Vec<Seed> {
    let mut seeds = Vec::new();
    let text = |target, items: &[&str]| {
        items
            .iter()
            .enumerate()
            .map(|(i, t)| Seed {
                target,
                name: format!("{i:02}"),
                bytes: t.as_bytes().to_vec(),
            })
            .collect::<Vec<_>>()
    };
    seeds.extend(text("destination", DESTINATIONS));
    seeds.extend(text("challenge", CHALLENGES));
    for (name, layout) in layouts() {
        seeds.push(Seed {
            target: "layout",
            name: name.to_string(),
            bytes: layout.clone(),
        });
        let files = layout_files(&layout);
        for (variant, dot, gzip) in [("tar", false, false), ("dot.tar", true, false)] {
            seeds.push(archive_seed(name, variant, &tar(&files, dot), gzip));
        }
        seeds.push(archive_seed(name, "tar.gz", &tar(&files, false), true));
    }
    let modern = modern_docker_files();
    seeds.push(archive_seed(
        "docker-modern",
        "tar",
        &tar(&modern, false),
        false,
    ));
    let classic = classic_docker_files();
    seeds.push(archive_seed(
        "docker-classic",
        "tar",
        &tar(&classic, false),
        false,
    ));
    seeds.push(archive_seed(
        "docker-classic",
        "tar.gz",
        &tar(&classic, true),
        true,
    ));
    seeds
}

fn archive_seed(name: &str, variant: &str, tar: &[u8], gzip: bool) -> Seed {
    let bytes = if gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let _ = encoder.write_all(tar);
        encoder.finish().unwrap_or_default()
    } else {
        tar.to_vec()
    };
    Seed {
        target: "archive",
        name: format!("{name}.{variant}"),
        bytes,
    }
}

const DESTINATIONS: &[&str] = &[
    "giteaadmin/app:1.0",
    "gitea.cnoe.localtest.me:8443/giteaadmin/app:1.0",
    "127.0.0.1:5000/org/team/app:v2",
    "localhost/app",
    "[::1]:5000/a/b:c",
    "giteaadmin/app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "giteaadmin/app:1.0@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "registry.example.com/a.b_c__d---e/x",
    "giteaadmin/MyApp:1.0",
    "host.com:99999/app",
];

const CHALLENGES: &[&str] = &[
    r#"Bearer realm="https://gitea.cnoe.localtest.me:8443/v2/token",service="container_registry",scope="*""#,
    r#"bearer realm="http://127.0.0.1:1/v2/token", service="reg", scope="repository:a/b:pull,push""#,
    r#"Basic realm="Registry Realm""#,
    r#"Bearer realm=https://h/t,service="a\"b",junk,x="#,
    "Negotiate abc",
];

/// Descriptor JSON naming part `n` by `<n>` / `<#n>`, with extra fields.
fn desc(media_type: &str, n: usize, extra: &str) -> String {
    format!(r#"{{"mediaType":"{media_type}","digest":"<{n}>","size":<#{n}>{extra}}}"#)
}

fn named(name: &str) -> String {
    format!(r#","annotations":{{"{REF_NAME}":"{name}"}}"#)
}

fn platform(os: &str, arch: &str, variant: Option<&str>) -> String {
    match variant {
        Some(v) => {
            format!(r#","platform":{{"os":"{os}","architecture":"{arch}","variant":"{v}"}}"#)
        }
        None => format!(r#","platform":{{"os":"{os}","architecture":"{arch}"}}"#),
    }
}

fn manifest(media_type: &str, config: String, layers: &[String]) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{media_type}","config":{config},"layers":[{}]}}"#,
        layers.join(",")
    )
}

fn index(media_type: &str, entries: &[String]) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{media_type}","manifests":[{}]}}"#,
        entries.join(",")
    )
}

fn config(os: &str, arch: &str) -> String {
    format!(r#"{{"os":"{os}","architecture":"{arch}","rootfs":{{"type":"layers","diff_ids":[]}}}}"#)
}

fn join(parts: &[String]) -> Vec<u8> {
    parts
        .iter()
        .map(|p| p.as_bytes())
        .collect::<Vec<_>>()
        .join(SEPARATOR)
}

/// The layout seeds, by name.
fn layouts() -> Vec<(&'static str, Vec<u8>)> {
    let layer = |n: usize| desc(LAYER_GZIP, n, "");
    let single = join(&[
        "v1 -".into(),
        index(INDEX, &[desc(MANIFEST, 2, &named("v1"))]),
        manifest(MANIFEST, desc(CONFIG, 3, ""), &[layer(4), layer(5)]),
        config("linux", "amd64"),
        "first layer".into(),
        "\u{1f}\u{8b}second layer".into(),
    ]);
    let multi = join(&[
        "- linux/arm64".into(),
        index(INDEX, &[desc(INDEX, 2, &named("multi"))]),
        index(
            INDEX,
            &[
                desc(MANIFEST, 3, &platform("linux", "amd64", None)),
                desc(MANIFEST, 4, &platform("linux", "arm64", Some("v8"))),
            ],
        ),
        manifest(MANIFEST, desc(CONFIG, 5, ""), &[layer(7)]),
        manifest(MANIFEST, desc(CONFIG, 6, ""), &[layer(7), layer(8)]),
        config("linux", "amd64"),
        config("linux", "arm64"),
        "shared layer".into(),
        "arm layer".into(),
    ]);
    let nested = join(&[
        "- -".into(),
        index(INDEX, &[desc(INDEX, 2, "")]),
        index(INDEX, &[desc(INDEX, 3, "")]),
        index(
            INDEX,
            &[desc(MANIFEST, 4, &platform("linux", "arm", Some("v7")))],
        ),
        manifest(MANIFEST, desc(CONFIG, 5, ""), &[layer(6)]),
        config("linux", "arm"),
        "layer".into(),
    ]);
    let foreign = format!(
        r#"{{"mediaType":"{DOCKER_FOREIGN}","digest":"sha256:{}","size":5,"urls":["https://example.com/x"]}}"#,
        "a".repeat(64)
    );
    let docker = join(&[
        "- linux/amd64".into(),
        index(INDEX, &[desc(DOCKER_LIST, 2, "")]),
        index(
            DOCKER_LIST,
            &[desc(DOCKER_MANIFEST, 3, &platform("linux", "amd64", None))],
        ),
        manifest(
            DOCKER_MANIFEST,
            desc(DOCKER_CONFIG, 4, ""),
            &[desc(DOCKER_LAYER, 5, ""), foreign],
        ),
        config("linux", "amd64"),
        "docker layer".into(),
    ]);
    let containerd = |name: &str, tag: &str| {
        format!(r#","annotations":{{"{CONTAINERD_NAME}":"{name}","{REF_NAME}":"{tag}"}}"#)
    };
    let two = join(&[
        "docker.io/library/app:2.0 -".into(),
        index(
            INDEX,
            &[
                desc(MANIFEST, 2, &containerd("docker.io/library/app:1.0", "1.0")),
                desc(MANIFEST, 3, &containerd("docker.io/library/app:2.0", "2.0")),
            ],
        ),
        manifest(MANIFEST, desc(CONFIG, 4, ""), &[layer(6)]),
        manifest(MANIFEST, desc(CONFIG, 5, ""), &[layer(6)]),
        config("linux", "amd64"),
        config("linux", "arm64"),
        "layer".into(),
    ]);
    let schema1 = join(&[
        "- -".into(),
        index(
            INDEX,
            &[desc(
                "application/vnd.docker.distribution.manifest.v1+prettyjws",
                2,
                "",
            )],
        ),
        r#"{"schemaVersion":1,"name":"app","tag":"1.0","fsLayers":[]}"#.into(),
    ]);
    vec![
        ("single", single),
        ("multi", multi),
        ("nested", nested),
        ("docker-types", docker),
        ("two-images", two),
        ("schema1", schema1),
    ]
}

/// The files of the layout a layout seed describes, as archive entries.
fn layout_files(seed: &[u8]) -> Vec<Entry> {
    let parts = finish(split(seed));
    let mut files = vec![Entry::file(
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )];
    if let Some(index) = parts.get(1) {
        files.push(Entry::file("index.json", index));
    }
    for blob in parts.iter().skip(2) {
        let name = format!("blobs/sha256/{}", hex::encode(Sha256::digest(blob)));
        if !files.iter().any(|f| f.name == name) {
            files.push(Entry::file(&name, blob));
        }
    }
    files
}

/// docker 25+ `docker save`: an OCI layout plus `manifest.json` pointing into `blobs/`.
fn modern_docker_files() -> Vec<Entry> {
    let layouts = layouts();
    let single = layouts
        .first()
        .map(|(_, l)| l.as_slice())
        .unwrap_or_default();
    let parts = finish(split(single));
    let path = |n: usize| {
        let hex = parts
            .get(n)
            .map(|p| hex::encode(Sha256::digest(p)))
            .unwrap_or_default();
        format!("blobs/sha256/{hex}")
    };
    let manifest = format!(
        r#"[{{"Config":"{}","RepoTags":["app:1.0"],"Layers":["{}","{}"]}}]"#,
        path(3),
        path(4),
        path(5)
    );
    let mut files = layout_files(single);
    files.push(Entry::file("manifest.json", manifest.as_bytes()));
    files
}

/// Classic `docker save`: `manifest.json`, a config file and layer tars, one layer a symlink
/// to another and one a hard link, as docker writes repeated layers.
fn classic_docker_files() -> Vec<Entry> {
    let config = config("linux", "amd64");
    let manifest = r#"[{"Config":"cfg.json","RepoTags":["app:1.0","app:latest"],"Layers":["l1/layer.tar","l2/layer.tar","l3/layer.tar","l4/layer.tar"]},{"Config":"cfg.json","RepoTags":["other:2"],"Layers":[]}]"#;
    vec![
        Entry::file("manifest.json", manifest.as_bytes()),
        Entry::file("cfg.json", config.as_bytes()),
        Entry::file("l1/layer.tar", b"plain layer"),
        Entry::file("l2/layer.tar", b"\x1f\x8bgzip layer"),
        Entry::link("l3/layer.tar", "../l1/layer.tar", true),
        Entry::link("l4/layer.tar", "l2/layer.tar", false),
        Entry::file("repositories", br#"{"app":{"1.0":"x"}}"#),
    ]
}

/// One archive entry: a file, or a symbolic or hard link.
pub struct Entry {
    name: String,
    data: Vec<u8>,
    link: Option<(String, bool)>,
}

impl Entry {
    fn file(name: &str, data: &[u8]) -> Entry {
        Entry {
            name: name.to_string(),
            data: data.to_vec(),
            link: None,
        }
    }

    fn link(name: &str, target: &str, symbolic: bool) -> Entry {
        Entry {
            name: name.to_string(),
            data: Vec::new(),
            link: Some((target.to_string(), symbolic)),
        }
    }
}

/// A tar of `entries`; with `dot`, names start with `./` and directories get entries, as GNU
/// tar writes them.
fn tar(entries: &[Entry], dot: bool) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let prefix = if dot { "./" } else { "" };
    if dot {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        let _ = builder.append_data(&mut header, "./", std::io::empty());
    }
    for entry in entries {
        let name = format!("{prefix}{}", entry.name);
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_mtime(0);
        match &entry.link {
            None => {
                header.set_size(entry.data.len() as u64);
                let _ = builder.append_data(&mut header, &name, entry.data.as_slice());
            }
            Some((target, symbolic)) => {
                header.set_entry_type(if *symbolic {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                header.set_size(0);
                let _ = builder.append_link(&mut header, &name, target);
            }
        }
    }
    builder.into_inner().unwrap_or_default()
}
