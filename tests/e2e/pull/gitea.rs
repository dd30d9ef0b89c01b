//! Issue 19: `idpbuilder pull` from the Gitea model (Gitea 1.24's registry over HTTPS with an
//! idpbuilder-shaped certificate, `GET /v2/token` for a Bearer token): what push put there comes
//! back into a layout with every digest, the token asked for is for pulling only, and a tag
//! Gitea does not have is named with the tags it does have.

use crate::support;

use std::process::Output;
use std::time::Duration;

use support::child::output_within;
use support::fixtures::{self, ImageSpec};
use support::gitea_model::{GiteaModel, OWNER, Options, PASSWORD};
use support::launch::idpbuilder_process;
use support::{sha256, stderr, stdout};

/// `idpbuilder COMMAND --ca-file CERT ARGS` as giteaadmin (credentials in the environment).
fn run(model: &GiteaModel, command: &str, args: &[String]) -> Output {
    let mut cmd = idpbuilder_process();
    cmd.env("IDPBUILDER_REGISTRY_USERNAME", OWNER)
        .env("IDPBUILDER_REGISTRY_PASSWORD", PASSWORD)
        .arg(command)
        .arg("--ca-file")
        .arg(model.ca_file().expect("the model speaks TLS"))
        .args(args);
    output_within(&mut cmd, Duration::from_secs(120))
}

#[test]
fn what_push_put_into_gitea_comes_back_with_every_digest_on_a_pull_only_token() {
    let model = GiteaModel::start(Options::default());
    let work = tempfile::tempdir().expect("temp dir");
    let source = work.path().join("source");
    let image = fixtures::oci_layout(&source, &ImageSpec::new("1.0", &[4000, 120_000]).seed(71));
    let reference = format!("{}/{OWNER}/app:1.0", model.host());
    let pushed = run(
        &model,
        "push",
        &[format!("oci:{}:1.0", source.display()), reference.clone()],
    );
    assert!(pushed.status.success(), "push: {}", stderr(&pushed));
    let before = model.state().log.len();

    let dir = work.path().join("pulled");
    let pulled = run(
        &model,
        "pull",
        &[reference.clone(), format!("oci:{}", dir.display())],
    );
    assert!(pulled.status.success(), "pull: {}", stderr(&pulled));
    assert_eq!(
        stdout(&pulled).trim(),
        format!("oci:{}:1.0@{}", dir.display(), image.manifest_digest)
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let root = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(root, image.manifest_digest);
    for blob in image.blob_digests.iter().chain([&image.manifest_digest]) {
        let hex = blob.trim_start_matches("sha256:");
        let bytes = std::fs::read(dir.join("blobs/sha256").join(hex)).expect("blob");
        assert_eq!(&sha256(&bytes), blob);
    }
    let state = model.state();
    let scopes: Vec<&str> = state.log[before..]
        .iter()
        .filter(|r| r.path.ends_with("/token"))
        .filter_map(|r| r.param("scope"))
        .collect();
    assert!(!scopes.is_empty(), "a token was asked for");
    assert!(
        scopes
            .iter()
            .all(|s| *s == format!("repository:{OWNER}/app:pull")),
        "pull asks for pull only: {scopes:?}"
    );
    let writes = state.log[before..]
        .iter()
        .filter(|r| !matches!(r.method.as_str(), "GET" | "HEAD"))
        .count();
    assert_eq!(writes, 0, "a pull writes nothing to Gitea");
}

#[test]
fn a_tag_gitea_does_not_have_is_named_with_the_tags_it_has() {
    let model = GiteaModel::start(Options::default());
    let work = tempfile::tempdir().expect("temp dir");
    let source = work.path().join("source");
    fixtures::oci_layout(&source, &ImageSpec::new("1.0", &[2000]).seed(72));
    let reference = format!("{}/{OWNER}/app", model.host());
    for tag in ["1.0", "stable"] {
        let pushed = run(
            &model,
            "push",
            &[
                format!("oci:{}:1.0", source.display()),
                format!("{reference}:{tag}"),
            ],
        );
        assert!(pushed.status.success(), "push: {}", stderr(&pushed));
    }
    let pulled = run(
        &model,
        "pull",
        &[
            format!("{reference}:2.0"),
            format!("oci:{}", work.path().join("pulled").display()),
        ],
    );
    let err = stderr(&pulled);
    assert_eq!(pulled.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{OWNER}/app:2.0 does not exist")),
        "{err}"
    );
    assert!(err.contains("has the tags 1.0, stable"), "{err}");
    assert!(!work.path().join("pulled").exists());
}
