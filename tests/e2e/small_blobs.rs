//! Small blobs (1 MiB or less) go in the fewest requests each registry takes (issue 23):
//! Gitea one `POST ?digest=` with the body, distribution `POST` then `PUT ?digest=` with the
//! body, container-registry `POST`, `PATCH`, empty `PUT`. The first blob tries each shorter way
//! for the whole push; a refused one (distribution ignores the single POST's body with a 202,
//! container-registry answers 500 to a `PUT` with a body) falls back without failing. Requests
//! are counted by a proxy that forwards everything (distribution, container-registry) or by
//! the Gitea model's own log; skopeo (or the model's store) reads every digest back.

use crate::support;

use std::path::Path;
use std::time::Duration;

use support::child::output_within;
use support::container_registry::ContainerRegistry;
use support::fault_proxy::{FaultProxy, Seen};
use support::fixtures::{self, FixtureImage, ImageSpec};
use support::gitea_model::{GiteaModel, OWNER, Options, PASSWORD, sha256};
use support::launch::idpbuilder_process;
use support::push::verify;
use support::registry::{Registry, RegistryOptions};
use support::skopeo::TestRegistry;
use support::stderr;

/// Twenty small layers, and the config: 21 small blobs.
const LAYERS: usize = 20;

fn small_image(dir: &Path) -> FixtureImage {
    let sizes: Vec<usize> = (0..LAYERS).map(|i| 1_000 + i * 20_000).collect();
    fixtures::oci_layout(dir, &ImageSpec::new("1.0", &sizes).seed(23))
}

/// Pushes `image` through a proxy that forwards every request to `registry`, checks the
/// digests with skopeo, and returns the upload requests the proxy saw.
fn push_counted(
    registry: &dyn TestRegistry,
    dir: &Path,
    image: &FixtureImage,
    repo_tag: &str,
) -> Vec<Seen> {
    let proxy = FaultProxy::start(&registry.host(), vec![]);
    let mut cmd = idpbuilder_process();
    cmd.args(["push", "--plain-http"]);
    if let Some((user, pass)) = registry.credentials() {
        cmd.env("IDPBUILDER_REGISTRY_USERNAME", user)
            .env("IDPBUILDER_REGISTRY_PASSWORD", pass);
    }
    cmd.arg(dir).arg(format!("{}/{repo_tag}", proxy.host()));
    let output = output_within(&mut cmd, Duration::from_secs(120));
    assert!(
        output.status.success(),
        "{}\nregistry log:\n{}",
        stderr(&output),
        registry.log()
    );
    verify(registry, repo_tag, image);
    proxy
        .seen()
        .into_iter()
        .filter(|s| s.path.contains("/uploads/"))
        .collect()
}

fn count(seen: &[Seen], method: &str, with_body: bool) -> usize {
    seen.iter()
        .filter(|s| s.method == method && (s.content_length.unwrap_or(0) > 0) == with_body)
        .count()
}

fn shown(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .map(|s| format!("{} {} {:?}", s.method, s.path, s.content_length))
        .collect()
}

#[test]
fn distribution_takes_a_small_blob_in_two_requests_after_ignoring_one_single_post() {
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("l");
    let image = small_image(&dir);
    let blobs = LAYERS + 1;
    let seen = push_counted(&registry, &dir, &image, "small/dist:1.0");
    // One blob tried the single POST: distribution answered 202 and dropped the body; that
    // blob went on in the session it opened. Every blob: one POST, one PUT with the body;
    // but the blob that already sent its body once does not wait for another blob's trial of
    // the PUT with a body (its source's deadline runs), so it may go PATCH, empty PUT instead.
    assert_eq!(count(&seen, "POST", true), 1, "{:#?}", shown(&seen));
    assert_eq!(
        count(&seen, "POST", false),
        blobs - 1,
        "{:#?}",
        shown(&seen)
    );
    let patched = count(&seen, "PATCH", true);
    assert!(patched <= 1, "{:#?}", shown(&seen));
    assert_eq!(
        count(&seen, "PUT", true),
        blobs - patched,
        "{:#?}",
        shown(&seen)
    );
    assert_eq!(seen.len(), 2 * blobs + patched, "{:#?}", shown(&seen));
}

#[test]
fn container_registry_refuses_a_put_with_a_body_once_and_gets_post_patch_put() {
    let Some(registry) = ContainerRegistry::start_or_skip(
        "small_blobs::container_registry_refuses_a_put_with_a_body_once_and_gets_post_patch_put",
    ) else {
        return;
    };
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("l");
    let image = small_image(&dir);
    let blobs = LAYERS + 1;
    let seen = push_counted(&registry, &dir, &image, "giteaadmin/small:1.0");
    // One single POST (202, body dropped) and one PUT with a body (500) were tried, each by
    // one blob; then every blob went POST, PATCH, empty PUT.
    assert_eq!(count(&seen, "POST", true), 1, "{:#?}", shown(&seen));
    assert_eq!(count(&seen, "PUT", true), 1, "{:#?}", shown(&seen));
    // The blob that tried the single POST may PATCH in the session it opened before the PUT
    // trial's verdict is in, and start over in a fresh one if that session fails.
    let patched = count(&seen, "PATCH", true);
    assert!(
        (blobs..=blobs + 1).contains(&patched),
        "{:#?}",
        shown(&seen)
    );
    assert_eq!(count(&seen, "PUT", false), blobs, "{:#?}", shown(&seen));
    let posts = count(&seen, "POST", false);
    assert!(
        (blobs - 1..=blobs + 2).contains(&posts),
        "a plain POST per blob, give or take the trials' sessions: {:#?}",
        shown(&seen)
    );
    assert!(
        seen.len() <= 3 * blobs + 6,
        "three requests per blob and the two trials: {:#?}",
        shown(&seen)
    );
}

/// Pushes the image into a fresh model with `extra` flags; returns the model and the image.
fn push_to_gitea(extra: &[&str]) -> (GiteaModel, FixtureImage) {
    let model = GiteaModel::start(Options::default());
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("l");
    let image = small_image(&dir);
    let mut cmd = idpbuilder_process();
    cmd.env("IDPBUILDER_REGISTRY_USERNAME", OWNER)
        .env("IDPBUILDER_REGISTRY_PASSWORD", PASSWORD)
        .arg("push")
        .args(extra);
    match model.ca_file() {
        Some(ca) => cmd.arg("--ca-file").arg(ca),
        None => cmd.arg("--plain-http"),
    };
    cmd.arg(&dir)
        .arg(format!("{}/giteaadmin/small:1.0", model.host()));
    let output = output_within(&mut cmd, Duration::from_secs(120));
    let state = model.state();
    assert!(
        output.status.success(),
        "{}\n{}",
        stderr(&output),
        state.transcript()
    );
    for digest in &image.blob_digests {
        let stored = state.blob("giteaadmin/small", digest).map(|b| sha256(&b));
        assert_eq!(stored.as_ref(), Some(digest), "Gitea kept {digest}");
    }
    assert_eq!(
        state.manifest("giteaadmin/small", "1.0").as_ref(),
        Some(&image.manifest_digest)
    );
    drop(state);
    (model, image)
}

/// The upload requests the model answered, and how they read.
fn gitea_uploads(model: &GiteaModel) -> (Vec<support::gitea_model::Logged>, Vec<String>) {
    let uploads: Vec<_> = model
        .state()
        .log
        .iter()
        .filter(|r| r.path.contains("/blobs/uploads"))
        .cloned()
        .collect();
    let shown = uploads
        .iter()
        .map(|r| format!("{} {} {} {}", r.method, r.path, r.status, r.body_len))
        .collect();
    (uploads, shown)
}

#[test]
fn gitea_takes_a_small_blob_in_one_post() {
    // One blob at a time: the first tries the single POST (201), every later one goes so too.
    let (model, image) = push_to_gitea(&["--concurrency", "1"]);
    let (uploads, shown) = gitea_uploads(&model);
    assert_eq!(
        uploads.len(),
        image.blob_digests.len(),
        "one request per blob: {shown:#?}"
    );
    assert!(
        uploads
            .iter()
            .all(|r| r.method == "POST" && r.param("digest").is_some() && r.status == 201),
        "each a single POST ?digest= with the body, answered 201: {shown:#?}"
    );

    // Many at once: the blobs that start while the first one tries the single POST do not
    // wait for it and go POST, then PUT with the body (which Gitea takes); none goes PATCH.
    let (model, image) = push_to_gitea(&[]);
    let (uploads, shown) = gitea_uploads(&model);
    let blobs = image.blob_digests.len();
    let single = uploads
        .iter()
        .filter(|r| r.method == "POST" && r.param("digest").is_some())
        .count();
    let put_with_body = uploads
        .iter()
        .filter(|r| r.method == "PUT" && r.body_len > 0)
        .count();
    assert!(single >= 1, "{shown:#?}");
    assert_eq!(single + put_with_body, blobs, "{shown:#?}");
    assert_eq!(uploads.len(), single + 2 * put_with_body, "{shown:#?}");
    assert!(uploads.iter().all(|r| r.method != "PATCH"), "{shown:#?}");
}
