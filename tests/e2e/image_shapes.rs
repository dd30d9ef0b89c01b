//! The image shapes people build (issue 20), each a fixture written by the specs
//! (`tests/support/fixtures_shapes.rs`), pushed into CNCF distribution (TLS + htpasswd),
//! container-registry and the Gitea model, one test per registry. Each shape either arrives
//! with its digests (read back by skopeo where skopeo can, from the model's storage for Gitea),
//! or fails as the registry makes it fail, with one `error:` line and no tag. What each
//! registry does with each shape is the table in `docs/registries.md`.

use crate::support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use support::child::output_within;
use support::container_registry::ContainerRegistry;
use support::fixtures::{self, FixtureImage};
use support::fixtures_shapes as shapes;
use support::gitea_model::{GiteaModel, OWNER, Options, PASSWORD};
use support::launch::idpbuilder_process;
use support::push::{push_cmd, result_line};
use support::registry::{Auth, Registry, RegistryOptions, Tls};
use support::skopeo::{Side, TestRegistry};
use support::{stderr, stdout};

/// What a registry does with a shape.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// Pushed with the source's digests; skopeo copies it back out.
    Arrives,
    /// Pushed with the source's digests; skopeo reads the manifest but cannot copy the image.
    ArrivesSkopeoReadsManifestOnly,
    /// The registry refuses the manifest: exit 1, one `error:` line holding this text, a hint
    /// that says the registry refused it (not the HTTPS guess), no tag.
    RegistryRefuses(&'static str),
    /// Refused before any upload: exit 2, one `error:` line holding this text, and a hint.
    RefusedFirst(&'static str),
}

use Outcome::{Arrives, ArrivesSkopeoReadsManifestOnly, RefusedFirst, RegistryRefuses};

/// One shape: its name in the repository, and how it is written.
struct Shape {
    name: &'static str,
    write: fn(&Path) -> FixtureImage,
}

fn foreign(dir: &Path) -> FixtureImage {
    shapes::foreign_layer_image(dir).0
}

fn referrer(dir: &Path) -> FixtureImage {
    shapes::referrer(dir).0
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "buildkit",
        write: shapes::buildkit_index,
    },
    Shape {
        name: "dockerlist",
        write: shapes::docker_manifest_list,
    },
    Shape {
        name: "zstd",
        write: shapes::zstd_image,
    },
    Shape {
        name: "foreign",
        write: foreign,
    },
    Shape {
        name: "artifact",
        write: shapes::artifact_with_empty_config,
    },
    Shape {
        name: "helm",
        write: shapes::helm_chart,
    },
    Shape {
        name: "artifactmanifest",
        write: shapes::artifact_manifest,
    },
    Shape {
        name: "referrer",
        write: referrer,
    },
];

/// Pushes every shape with `push` and checks each outcome against `expected` (by shape name).
fn push_every_shape(
    expected: &[(&str, Outcome)],
    push: &dyn Fn(&Path, &str, &str) -> Output,
    arrived: &dyn Fn(&str, &FixtureImage, Outcome) -> Result<(), String>,
    has_tag: &dyn Fn(&str) -> bool,
) {
    let work = tempfile::tempdir().expect("temp dir");
    let mut wrong = Vec::new();
    for shape in SHAPES {
        let dir = work.path().join(shape.name);
        let image = (shape.write)(&dir);
        let repo_tag = format!("giteaadmin/{}:1.0", shape.name);
        let output = push(&dir, &image.ref_name, &repo_tag);
        let err = stderr(&output);
        let outcome = expected
            .iter()
            .find(|(name, _)| *name == shape.name)
            .map(|(_, o)| *o)
            .unwrap_or(Arrives);
        let errors = err.lines().filter(|l| l.starts_with("error:")).count();
        let problem = match outcome {
            Arrives | ArrivesSkopeoReadsManifestOnly => {
                if output.status.success() {
                    let line = result_line(&output);
                    if !line.ends_with(&format!("{repo_tag}@{}", image.manifest_digest)) {
                        Some(format!("result line {line:?}"))
                    } else {
                        arrived(&repo_tag, &image, outcome).err()
                    }
                } else {
                    Some(format!("exit {:?}", output.status.code()))
                }
            }
            RegistryRefuses(text) | RefusedFirst(text) => {
                let code = if matches!(outcome, RefusedFirst(_)) {
                    2
                } else {
                    1
                };
                let hinted = match outcome {
                    RefusedFirst(_) => err.contains("\nhint: "),
                    _ => {
                        err.contains("refused")
                            && err.contains("\nhint: ")
                            && !err.contains("HTTPS")
                    }
                };
                let fine = output.status.code() == Some(code)
                    && errors == 1
                    && err.contains(text)
                    && hinted
                    && !has_tag(&repo_tag);
                (!fine).then(|| format!("exit {:?}", output.status.code()))
            }
        };
        if let Some(problem) = problem {
            wrong.push(format!(
                "{}: expected {outcome:?}, got {problem}\n{err}{}",
                shape.name,
                stdout(&output)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// skopeo reads the manifest with the source's digest and, for `Arrives`, copies every blob
/// and platform manifest back out; otherwise it reads each platform manifest by digest.
fn skopeo_reads(
    registry: &dyn TestRegistry,
    repo_tag: &str,
    image: &FixtureImage,
    outcome: Outcome,
) -> Result<(), String> {
    let (_, digest) = registry.skopeo_inspect_raw(repo_tag);
    if digest != image.manifest_digest {
        return Err(format!("skopeo sees {digest}"));
    }
    if outcome != Arrives {
        let repository = repo_tag.split(':').next().unwrap_or_default();
        for child in &image.children {
            let (_, digest) = registry.skopeo_inspect_raw(&format!("{repository}@{child}"));
            if &digest != child {
                return Err(format!("skopeo reads {digest} for {child}"));
            }
        }
        return Ok(());
    }
    let copy = tempfile::tempdir().expect("temp dir");
    let out = copy.path().join("copy");
    let mut cmd = registry.skopeo();
    cmd.args(["copy", "--all", "--preserve-digests"])
        .args(registry.skopeo_args(Side::Src))
        .arg(format!("docker://{}/{repo_tag}", registry.host()))
        .arg(format!("oci:{}", out.display()));
    let done = cmd.output().expect("run skopeo");
    if !done.status.success() {
        return Err(format!(
            "skopeo copy: {}",
            String::from_utf8_lossy(&done.stderr)
        ));
    }
    for blob in image.blob_digests.iter().chain(&image.children) {
        if !fixtures::blob_path(&out, blob).exists() {
            return Err(format!("blob {blob} did not come back"));
        }
    }
    Ok(())
}

/// `oci:DIR:REF`: each shape's layout names its image by REF (the referrer's holds two).
fn image_arg(dir: &Path, ref_name: &str) -> String {
    format!("oci:{}:{ref_name}", dir.display())
}

#[test]
fn every_shape_goes_into_distribution() {
    let registry = Registry::start(
        RegistryOptions::default()
            .tls(Tls::CaSigned)
            .auth(Auth::basic("giteaadmin", "s3cr3t-Pa55word")),
    );
    let expected = [
        ("dockerlist", ArrivesSkopeoReadsManifestOnly),
        // 500 "invalid URL on layer": distribution refuses `urls` unless its configuration
        // allows them (validation.manifests.urls.allow).
        ("foreign", RegistryRefuses("500")),
        ("artifact", ArrivesSkopeoReadsManifestOnly),
        ("helm", ArrivesSkopeoReadsManifestOnly),
        ("artifactmanifest", RegistryRefuses("MANIFEST_INVALID")),
        ("referrer", ArrivesSkopeoReadsManifestOnly),
    ];
    push_every_shape(
        &expected,
        &|dir, ref_name, repo_tag| {
            push_cmd(&registry, &image_arg(dir, ref_name), repo_tag)
                .output()
                .expect("run idpbuilder")
        },
        &|repo_tag, image, outcome| skopeo_reads(&registry, repo_tag, image, outcome),
        &|repo_tag| registry.has_manifest(repo_tag),
    );
}

#[test]
fn every_shape_goes_into_container_registry() {
    let Some(registry) =
        ContainerRegistry::start_or_skip("every_shape_goes_into_container_registry")
    else {
        return;
    };
    let expected = [
        ("buildkit", RegistryRefuses("400")),
        ("dockerlist", RegistryRefuses("400")),
        ("artifact", ArrivesSkopeoReadsManifestOnly),
        ("helm", ArrivesSkopeoReadsManifestOnly),
        ("artifactmanifest", RegistryRefuses("400")),
        ("referrer", ArrivesSkopeoReadsManifestOnly),
    ];
    push_every_shape(
        &expected,
        &|dir, ref_name, repo_tag| {
            push_cmd(&registry, &image_arg(dir, ref_name), repo_tag)
                .output()
                .expect("run idpbuilder")
        },
        &|repo_tag, image, outcome| skopeo_reads(&registry, repo_tag, image, outcome),
        &|repo_tag| registry.has_manifest(repo_tag),
    );
}

/// `idpbuilder push --ca-file CERT IMAGE HOST/REPO_TAG` into the Gitea model as giteaadmin.
fn push_to_gitea(model: &GiteaModel, image: &str, repo_tag: &str) -> Output {
    let mut cmd = idpbuilder_process();
    cmd.env("IDPBUILDER_REGISTRY_USERNAME", OWNER)
        .env("IDPBUILDER_REGISTRY_PASSWORD", PASSWORD)
        .arg("push");
    match model.ca_file() {
        Some(ca) => cmd.arg("--ca-file").arg(ca),
        None => cmd.arg("--plain-http"),
    };
    cmd.arg(image).arg(format!("{}/{repo_tag}", model.host()));
    output_within(&mut cmd, Duration::from_secs(120))
}

#[test]
fn every_shape_goes_into_the_gitea_model_or_is_refused_first() {
    let model = GiteaModel::start(Options::default());
    let expected = [
        (
            "foreign",
            RefusedFirst("names the foreign (non-distributable) layer"),
        ),
        (
            "artifactmanifest",
            RefusedFirst("which refuses application/vnd.oci.artifact.manifest.v1+json"),
        ),
    ];
    let tag_of = |repo_tag: &str| {
        let (repository, tag) = repo_tag.split_once(':').unwrap_or((repo_tag, "latest"));
        model.state().manifest(repository, tag)
    };
    push_every_shape(
        &expected,
        &|dir, ref_name, repo_tag| push_to_gitea(&model, &image_arg(dir, ref_name), repo_tag),
        &|repo_tag, image, _| {
            let tagged = tag_of(repo_tag);
            if tagged.as_deref() != Some(image.manifest_digest.as_str()) {
                return Err(format!("the tag names {tagged:?}"));
            }
            let repository = repo_tag.split(':').next().unwrap_or_default();
            let state = model.state();
            let missing = image
                .blob_digests
                .iter()
                .chain(&image.children)
                .find(|digest| {
                    !state.has_blob(repository, digest)
                        && state.manifest(repository, digest).is_none()
                });
            match missing {
                Some(digest) => Err(format!("{digest} is not stored")),
                None => Ok(()),
            }
        },
        &|repo_tag| tag_of(repo_tag).is_some(),
    );
}

/// A referrer (a manifest with `subject`) after its subject: Gitea stores both under their
/// tags, but it has no referrers API, so `GET /v2/NAME/referrers/DIGEST` is 404 and nothing
/// lists the referrer by its subject. The push does not write the referrers tag schema's
/// fallback tag (`sha256-HEX`) either: the referrer is found by the tag it is pushed to.
#[test]
fn a_referrer_is_stored_by_gitea_which_has_no_referrers_api() {
    let model = GiteaModel::start(Options {
        tls: false,
        ..Options::default()
    });
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("signed");
    let (referrer, subject) = shapes::referrer(&dir);
    for (image, tag) in [(&subject, "1.0"), (&referrer, "sig")] {
        let output = push_to_gitea(
            &model,
            &image_arg(&dir, &image.ref_name),
            &format!("giteaadmin/signed:{tag}"),
        );
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(
            model.state().manifest("giteaadmin/signed", tag).as_deref(),
            Some(image.manifest_digest.as_str())
        );
    }
    assert_eq!(
        model.state().tags("giteaadmin/signed"),
        ["1.0", "sig"],
        "no referrers fallback tag"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let status = runtime.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let base = model.base_url();
        let token: serde_json::Value = http
            .get(format!("{base}/v2/token?service=container_registry"))
            .basic_auth(OWNER, Some(PASSWORD))
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("token JSON");
        http.get(format!(
            "{base}/v2/giteaadmin/signed/referrers/{}",
            subject.manifest_digest
        ))
        .bearer_auth(token["token"].as_str().unwrap_or_default())
        .send()
        .await
        .expect("referrers request")
        .status()
    });
    assert_eq!(status.as_u16(), 404, "Gitea has no referrers API");
}
