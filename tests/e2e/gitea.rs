//! `idpbuilder push` against the Gitea model ([`GiteaModel`]: Gitea 1.24's registry rules,
//! served over HTTPS with an idpbuilder-shaped certificate): its token flow (`GET /v2/token`,
//! never `POST`), its upload rules (`Content-Range` on every `PATCH` after the first,
//! continuing exactly where the upload stands), children by digest before their index,
//! owner-first lower-case names, extra tags, a second push, twelve pushes at once; a token that
//! expires mid-push; and a proxy's 8 MiB body cap in front of it. The model's own rules are
//! tested in `gitea/model_rules.rs`.

use crate::support;

mod client;
mod fake_token;
mod model_rules;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use support::child::output_within;
use support::fixtures;
use support::gitea_model::{GiteaModel, Logged, OWNER, Options, PASSWORD};
use support::launch::idpbuilder_process;
use support::raw_image::{raw_layout, sha256};
use support::{stderr, stdout};

fn gitea(options: Options) -> GiteaModel {
    GiteaModel::start(options)
}

/// `idpbuilder push --ca-file CERT [extra] IMAGE HOST/REPO_TAG` as giteaadmin.
fn push(model: &GiteaModel, image: &Path, repo_tag: &str, extra: &[&str]) -> Output {
    let mut cmd = idpbuilder_process();
    cmd.env("IDPBUILDER_REGISTRY_USERNAME", OWNER)
        .env("IDPBUILDER_REGISTRY_PASSWORD", PASSWORD)
        .arg("push");
    match model.ca_file() {
        Some(ca) => cmd.arg("--ca-file").arg(ca),
        None => cmd.arg("--plain-http"),
    };
    cmd.args(extra)
        .arg(image)
        .arg(format!("{}/{repo_tag}", model.host()));
    output_within(&mut cmd, Duration::from_secs(120))
}

fn header<'a>(request: &'a Logged, name: &str) -> Option<&'a str> {
    match name {
        "authorization" => request.authorization.as_deref(),
        "content-range" => request.content_range.as_deref(),
        _ => None,
    }
}

#[test]
fn a_multi_platform_image_goes_up_by_giteas_rules() {
    let model = gitea(Options::default());
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("multi");
    let index = fixtures::multi_platform_layout(&dir, &[("linux", "amd64"), ("linux", "arm64")]);

    let output = push(&model, &dir, "giteaadmin/app:1.0", &[]);
    let state = model.state();
    assert!(
        output.status.success(),
        "{}\n{}",
        stderr(&output),
        state.transcript()
    );
    assert_eq!(
        stdout(&output).lines().last(),
        Some(
            format!(
                "{}/giteaadmin/app:1.0@{}",
                model.host(),
                index.manifest_digest
            )
            .as_str()
        )
    );
    assert_eq!(state.token_posts, 0, "the token is fetched with GET only");
    assert_eq!(state.tokens.len(), 1, "one token served the whole push");
    let repo = "giteaadmin/app";
    assert_eq!(
        state.manifest(repo, "1.0").as_ref(),
        Some(&index.manifest_digest),
        "the tag names the index"
    );
    for blob in &index.blob_digests {
        assert!(state.has_blob(repo, blob), "{blob} is there");
    }
    for child in &index.children {
        assert_eq!(state.manifest(repo, child).as_ref(), Some(child));
    }
    assert_eq!(state.tags(repo), ["1.0"], "children are not tags");

    let token = state
        .log
        .iter()
        .find(|r| r.path == "/v2/token")
        .expect("a token request");
    assert_eq!(token.param("service"), Some("container_registry"));
    assert_eq!(
        token.param("scope"),
        Some("repository:giteaadmin/app:pull,push")
    );
    assert!(header(token, "authorization").is_some_and(|a| a.starts_with("Basic ")));

    let registry_requests: Vec<&Logged> = state
        .log
        .iter()
        .filter(|r| r.path != "/v2/" && r.path != "/v2/token")
        .collect();
    for request in &registry_requests {
        assert!(
            request.path.starts_with("/v2/giteaadmin/app/"),
            "owner-first: {}",
            request.path
        );
        assert!(
            header(request, "authorization").is_some_and(|a| a.starts_with("Bearer ")),
            "{} {} carries the token",
            request.method,
            request.path
        );
    }
    let manifest_puts: Vec<&str> = registry_requests
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/manifests/"))
        .map(|r| r.path.rsplit('/').next().unwrap_or_default())
        .collect();
    assert_eq!(
        manifest_puts,
        [index.children[0].as_str(), &index.children[1], "1.0"],
        "each platform manifest by digest, then the index under its tag"
    );
}

#[test]
fn chunks_follow_giteas_content_range_rules() {
    let model = gitea(Options::default());
    let work = tempfile::tempdir().expect("temp dir");
    let image = raw_layout(&work.path().join("big"), &[2_600_000], 1);
    let output = push(
        &model,
        &image.dir,
        "giteaadmin/big:1.0",
        &["--chunk-size", "1MiB"],
    );
    let state = model.state();
    assert!(
        output.status.success(),
        "{}\n{}",
        stderr(&output),
        state.transcript()
    );

    // The config goes in one streamed PATCH without Content-Range, which Gitea allows as the
    // first write of an upload; the layer goes in ranged chunks.
    let (patches, streamed): (Vec<&Logged>, Vec<&Logged>) = state
        .log
        .iter()
        .filter(|r| r.method == "PATCH")
        .partition(|r| r.body_len > 1_000_000 || header(r, "content-range").is_some());
    assert!(
        streamed
            .iter()
            .all(|r| header(r, "content-range").is_none()),
        "a blob in one part is one PATCH without Content-Range"
    );
    assert_eq!(patches.len(), 3, "2.6 MB in 1 MiB chunks");
    let mut next = 0;
    for patch in &patches {
        let range = header(patch, "content-range").expect("every PATCH has Content-Range");
        let (start, end) = range.split_once('-').expect("START-END");
        let (start, end): (usize, usize) = (start.parse().unwrap(), end.parse().unwrap());
        assert_eq!(start, next, "each chunk continues where the upload stands");
        assert_eq!(end + 1 - start, patch.body_len, "the range covers the body");
        assert_eq!(patch.status, 202);
        next = end + 1;
    }
    assert_eq!(next, 2_600_000);
    let layer = &image.blobs[1].0;
    let commit = state
        .log
        .iter()
        .find(|r| r.method == "PUT" && r.param("digest") == Some(layer.as_str()))
        .expect("the layer's commit");
    assert_eq!(commit.body_len, 0, "the commit carries no bytes");
    let stored = state.blob("giteaadmin/big", layer).map(|b| sha256(&b));
    assert_eq!(
        stored.as_ref(),
        Some(layer),
        "Gitea checked and kept the layer"
    );
}

#[test]
fn names_gitea_would_refuse_fail_with_the_fix() {
    let model = gitea(Options::default());
    let work = tempfile::tempdir().expect("temp dir");
    let image = raw_layout(&work.path().join("l"), &[1_000], 2);

    let upper = push(&model, &image.dir, "giteaadmin/MyApp:1.0", &[]);
    assert_eq!(upper.status.code(), Some(2), "{}", stderr(&upper));
    assert!(
        stderr(&upper).contains(r#"hint: use "giteaadmin/myapp""#),
        "{}",
        stderr(&upper)
    );
    assert!(model.state().log.is_empty(), "refused before any request");

    // Gitea answers an unknown owner with its router's plain 404 ("Not found."), not an OCI
    // error code: the hint comes from the name having no owner.
    let ownerless = push(&model, &image.dir, "app:1.0", &["--retries", "1"]);
    let err = stderr(&ownerless);
    assert_eq!(ownerless.status.code(), Some(1), "{err}");
    assert!(err.contains("404"), "{err}");
    assert!(
        err.contains("giteaadmin/app"),
        "the hint names an owner: {err}"
    );
}

/// Gitea answers a token it no longer accepts (expired after 24 h, or signed with another
/// secret) with a bare 401: no `WWW-Authenticate`, so a client that renews only on a challenge
/// gives up. With the challenge (the fake's flow), `fake_token` shows the renewal works.
#[test]
fn an_expired_gitea_token_is_renewed_once_and_the_push_succeeds() {
    let model = gitea(Options {
        expire_first_token_after: Some(4),
        ..Options::default()
    });
    let work = tempfile::tempdir().expect("temp dir");
    let image = raw_layout(&work.path().join("l"), &[300_000, 5_000, 700], 3);
    let output = push(&model, &image.dir, "giteaadmin/expiring:1.0", &[]);
    let state = model.state();
    assert!(
        output.status.success(),
        "{}\n{}",
        stderr(&output),
        state.transcript()
    );
    assert!(state.refusals >= 1, "the first token was refused mid-push");
    assert_eq!(state.tokens.len(), 2, "renewed once");
    assert!(state.manifest("giteaadmin/expiring", "1.0").is_some());
}

#[test]
fn a_token_gitea_stops_accepting_mid_push_exits_3_without_a_tag() {
    let model = gitea(Options {
        expire_first_token_after: Some(4),
        refuse_renewed_tokens: true,
        ..Options::default()
    });
    let work = tempfile::tempdir().expect("temp dir");
    let image = raw_layout(&work.path().join("l"), &[300_000, 5_000, 700], 4);
    let output = push(&model, &image.dir, "giteaadmin/refused:1.0", &[]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("refused the credentials"), "{err}");
    assert!(err.contains("\nhint: "), "{err}");
    let state = model.state();
    assert!(state.refusals >= 1, "the token was refused mid-push");
    assert!(
        state.versions("giteaadmin/refused").is_empty(),
        "no manifest, no tag"
    );
}

/// A proxy in front of Gitea that refuses bodies over 8 MiB: a 40 MiB layer still gets
/// through, in chunks, with one warning.
#[test]
fn a_40_mib_blob_passes_an_8_mib_body_cap_in_chunks_with_one_warning() {
    let model = gitea(Options {
        body_cap: Some(8 << 20),
        ..Options::default()
    });
    let work = tempfile::tempdir().expect("temp dir");
    let image = raw_layout(&work.path().join("l"), &[40 << 20], 5);
    let output = push(&model, &image.dir, "giteaadmin/capped:1.0", &[]);
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("(413)"), "{err}");
    let state = model.state();
    assert!(state.too_large >= 1);
    assert!(
        state.upload_bodies.iter().all(|&len| len <= 8 << 20),
        "every accepted body is under the cap: {:?}",
        state.upload_bodies
    );
    let layer = &image.blobs[1].0;
    let stored = state.blob("giteaadmin/capped", layer).map(|b| sha256(&b));
    assert_eq!(stored.as_ref(), Some(layer));
}

#[test]
fn extra_tags_point_at_the_same_image_and_a_second_push_uploads_nothing() {
    let model = gitea(Options::default());
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("multi");
    let index = fixtures::multi_platform_layout(&dir, &[("linux", "amd64"), ("linux", "arm64")]);
    let extra = ["-t", "latest", "-t", "Stable"];
    let first = push(&model, &dir, "giteaadmin/tagged:1.0", &extra);
    assert!(
        first.status.success(),
        "{}\n{}",
        stderr(&first),
        model.state().transcript()
    );
    let requests_before = {
        let state = model.state();
        for tag in ["1.0", "latest", "stable"] {
            assert_eq!(
                state.manifest("giteaadmin/tagged", tag).as_ref(),
                Some(&index.manifest_digest),
                "{tag}"
            );
        }
        assert_eq!(state.tags("giteaadmin/tagged"), ["1.0", "latest", "stable"]);
        state.log.len()
    };

    let again = push(&model, &dir, "giteaadmin/tagged:1.0", &extra);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stdout(&again).lines().last(), stdout(&first).lines().last());
    let state = model.state();
    let second = &state.log[requests_before..];
    assert!(
        !second
            .iter()
            .any(|r| r.method == "PATCH" || r.method == "POST"),
        "no blob went up twice: {:?}",
        second
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        state.manifest("giteaadmin/tagged", "stable").as_ref(),
        Some(&index.manifest_digest)
    );
}

/// Twelve pushes of one multi-platform image into one image name at once, each under its own
/// tag: their child manifest writes overlap on the same package versions (the digests), which
/// Gitea answers with 500; every push must still succeed.
#[test]
fn twelve_pushes_at_once_into_one_image_all_succeed() {
    let model = Arc::new(gitea(Options::default()));
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("multi");
    let index = fixtures::multi_platform_layout(&dir, &[("linux", "amd64"), ("linux", "arm64")]);
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|i| {
                let (model, dir) = (Arc::clone(&model), dir.clone());
                scope.spawn(move || push(&model, &dir, &format!("giteaadmin/crowd:v{i}"), &[]))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("push thread"))
            .collect()
    });
    let state = model.state();
    let overlaps = state
        .log
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/manifests/") && r.status == 500)
        .count();
    eprintln!("manifest writes answered 500: {overlaps}");
    for (i, output) in outputs.iter().enumerate() {
        assert!(
            output.status.success(),
            "push {i} failed ({overlaps} manifest writes answered 500): {}",
            stderr(output)
        );
        assert_eq!(
            state
                .manifest("giteaadmin/crowd", &format!("v{i}"))
                .as_ref(),
            Some(&index.manifest_digest)
        );
    }
}

/// A connection cut part-way through a chunk's body: Gitea keeps the bytes that arrived in the
/// session's file without counting them, so every later `PATCH`/`PUT` of that session answers
/// 500 ("offset mismatch between file and model"). The push must still get through, by starting
/// the blob over in a new session.
#[test]
fn a_chunk_cut_mid_body_on_gitea_still_gets_the_blob_up() {
    use support::fault_proxy::{Fault, FaultProxy, Rule};
    let model = gitea(Options {
        tls: false,
        ..Options::default()
    });
    let proxy = FaultProxy::start(
        &model.host(),
        vec![
            Rule::on("PATCH", "/blobs/uploads/")
                .body_over(500_000)
                .after(1)
                .fault(Fault::ResetAfter(300_000)),
        ],
    );
    let work = tempfile::tempdir().expect("temp dir");
    let image = raw_layout(&work.path().join("big"), &[2_600_000], 6);
    let mut cmd = idpbuilder_process();
    cmd.env("IDPBUILDER_REGISTRY_USERNAME", OWNER)
        .env("IDPBUILDER_REGISTRY_PASSWORD", PASSWORD)
        .args(["push", "--plain-http", "--chunk-size", "1MiB"])
        .arg(&image.dir)
        .arg(format!("{}/giteaadmin/cut:1.0", proxy.host()));
    let output = output_within(&mut cmd, Duration::from_secs(120));
    let state = model.state();
    assert_eq!(proxy.faults_injected(), 1);
    assert!(
        output.status.success(),
        "{}\n{}",
        stderr(&output),
        state.transcript()
    );
    let layer = &image.blobs[1].0;
    assert_eq!(
        state
            .blob("giteaadmin/cut", layer)
            .map(|b| sha256(&b))
            .as_ref(),
        Some(layer)
    );
}

/// Gitea refuses an index inside an index. The refusal comes before any upload (exit 2, one
/// `error:` with a `hint:`), where it once came after every blob had gone up; distribution
/// takes the same layout whole (tests/e2e/registries.rs).
#[test]
fn a_nested_index_is_refused_before_any_upload() {
    let model = gitea(Options::default());
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("nested");
    fixtures::nested_index_layout(&dir);
    let output = push(&model, &dir, "giteaadmin/nested:1.0", &[]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("index inside an index"), "{err}");
    assert!(err.contains("hint: "), "{err}");
    let state = model.state();
    let writes: Vec<&Logged> = state
        .log
        .iter()
        .filter(|l| l.method != "GET" && l.method != "HEAD")
        .collect();
    assert!(
        writes.is_empty(),
        "no blob or manifest was sent:\n{}",
        state.transcript()
    );
}
