//! `idpbuilder push` against a registry that behaves as Gitea's does ([`GiteaFake`]): its token
//! flow (`GET /v2/token`, never `POST`), its upload rules (`Content-Range` on every `PATCH`,
//! continuing exactly where the upload stands), children before their index, owner-first
//! lower-case names; a token that expires mid-push; and a proxy's 8 MiB body cap in front of it.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use support::child::output_within;
use support::fixtures;
use support::gitea_fake::{GiteaFake, Knobs, OWNER, PASSWORD};
use support::launch::idpbuilder_process;
use support::raw_image::{raw_layout, sha256};
use support::{stderr, stdout};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request};

async fn gitea(knobs: Knobs) -> (MockServer, GiteaFake) {
    gitea_on(MockServer::start().await, knobs).await
}

async fn gitea_on(server: MockServer, knobs: Knobs) -> (MockServer, GiteaFake) {
    let fake = GiteaFake::new(&server.address().to_string(), knobs);
    Mock::given(any())
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    (server, fake)
}

/// `idpbuilder push --plain-http [extra] IMAGE HOST/REPO_TAG` as giteaadmin, run off the async
/// runtime so the mock server keeps answering.
async fn push(server: &MockServer, image: &Path, repo_tag: &str, extra: &[&str]) -> Output {
    let mut cmd = idpbuilder_process();
    cmd.env("IDPBUILDER_REGISTRY_USERNAME", OWNER)
        .env("IDPBUILDER_REGISTRY_PASSWORD", PASSWORD)
        .args(["push", "--plain-http"])
        .args(extra)
        .arg(image)
        .arg(format!("{}/{repo_tag}", server.address()));
    tokio::task::spawn_blocking(move || output_within(&mut cmd, Duration::from_secs(90)))
        .await
        .expect("run idpbuilder")
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_platform_image_goes_up_by_giteas_rules() {
    let (server, fake) = gitea(Knobs::default()).await;
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("multi");
    let index = fixtures::multi_platform_layout(&dir, &[("linux", "amd64"), ("linux", "arm64")]);

    let output = push(&server, &dir, "giteaadmin/app:1.0", &[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = stdout(&output);
    assert_eq!(
        printed.lines().last(),
        Some(
            format!(
                "{}/giteaadmin/app:1.0@{}",
                server.address(),
                index.manifest_digest
            )
            .as_str()
        )
    );
    {
        let state = fake.state();
        assert_eq!(state.token_posts, 0, "the token is fetched with GET only");
        assert_eq!(state.tokens.len(), 1, "one token served the whole push");
        let repo = "giteaadmin/app".to_string();
        assert_eq!(
            state.manifests.get(&(repo.clone(), "1.0".into())),
            Some(&index.manifest_digest),
            "the tag names the index"
        );
        for blob in &index.blob_digests {
            assert!(state.blobs.contains_key(&(repo.clone(), blob.clone())));
        }
    }

    let requests = requests(&server).await;
    let token = requests
        .iter()
        .find(|r| r.url.path() == "/v2/token")
        .expect("a token request");
    let query: Vec<(String, String)> = token.url.query_pairs().into_owned().collect();
    assert!(query.contains(&("service".into(), "container_registry".into())));
    assert!(query.contains(&("scope".into(), "repository:giteaadmin/app:pull,push".into())));
    assert!(header(token, "authorization").is_some_and(|a| a.starts_with("Basic ")));

    let registry_requests: Vec<&Request> = requests
        .iter()
        .filter(|r| r.url.path() != "/v2/" && r.url.path() != "/v2/token")
        .collect();
    for request in &registry_requests {
        assert!(
            request.url.path().starts_with("/v2/giteaadmin/app/"),
            "owner-first: {}",
            request.url
        );
        assert!(
            header(request, "authorization").is_some_and(|a| a.starts_with("Bearer ")),
            "{} {} carries the token",
            request.method,
            request.url
        );
    }
    let manifest_puts: Vec<&str> = registry_requests
        .iter()
        .filter(|r| r.method.as_str() == "PUT" && r.url.path().contains("/manifests/"))
        .map(|r| r.url.path().rsplit('/').next().unwrap_or_default())
        .collect();
    assert_eq!(
        manifest_puts,
        [index.children[0].as_str(), &index.children[1], "1.0"],
        "each platform manifest by digest, then the index under its tag"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_follow_giteas_content_range_rules() {
    let (server, fake) = gitea(Knobs::default()).await;
    let work = tempfile::tempdir().expect("temp dir");
    let image = raw_layout(&work.path().join("big"), &[2_600_000], 1);
    let output = push(
        &server,
        &image.dir,
        "giteaadmin/big:1.0",
        &["--chunk-size", "1MiB"],
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));

    let requests = requests(&server).await;
    // The config goes in one streamed PATCH without Content-Range, which Gitea allows as the
    // first write of an upload; the layer goes in ranged chunks.
    let (patches, streamed): (Vec<&Request>, Vec<&Request>) = requests
        .iter()
        .filter(|r| r.method.as_str() == "PATCH")
        .partition(|r| r.body.len() > 1_000_000 || header(r, "content-range").is_some());
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
        assert_eq!(
            end + 1 - start,
            patch.body.len(),
            "the range covers the body"
        );
        next = end + 1;
    }
    assert_eq!(next, 2_600_000);
    let layer = &image.blobs[1].0;
    let commit = requests
        .iter()
        .find(|r| {
            r.method.as_str() == "PUT"
                && r.url
                    .query_pairs()
                    .any(|(k, v)| k == "digest" && v == layer.as_str())
        })
        .expect("the layer's commit");
    assert!(commit.body.is_empty(), "the commit carries no bytes");
    let stored = fake
        .state()
        .blobs
        .get(&("giteaadmin/big".to_string(), layer.clone()))
        .map(|b| sha256(b));
    assert_eq!(
        stored.as_ref(),
        Some(layer),
        "Gitea checked and kept the layer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_gitea_would_refuse_fail_with_the_fix() {
    let (server, _fake) = gitea(Knobs::default()).await;
    let work = tempfile::tempdir().expect("temp dir");
    let image = raw_layout(&work.path().join("l"), &[1_000], 2);

    let upper = push(&server, &image.dir, "giteaadmin/MyApp:1.0", &[]).await;
    assert_eq!(upper.status.code(), Some(2), "{}", stderr(&upper));
    assert!(
        stderr(&upper).contains(r#"hint: use "giteaadmin/myapp""#),
        "{}",
        stderr(&upper)
    );
    assert!(
        requests(&server).await.is_empty(),
        "refused before any request"
    );

    let ownerless = push(&server, &image.dir, "app:1.0", &["--retries", "1"]).await;
    let err = stderr(&ownerless);
    assert_eq!(ownerless.status.code(), Some(1), "{err}");
    assert!(err.contains("NAME_UNKNOWN"), "{err}");
    assert!(
        err.contains("giteaadmin/app"),
        "the hint names an owner: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_renewed_once_and_the_push_succeeds() {
    let knobs = Knobs {
        expire_first_token_after: Some(4),
        ..Knobs::default()
    };
    let (server, fake) = gitea(knobs).await;
    let work = tempfile::tempdir().expect("temp dir");
    let image = raw_layout(&work.path().join("l"), &[300_000, 5_000, 700], 3);
    let output = push(&server, &image.dir, "giteaadmin/expiring:1.0", &[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let state = fake.state();
    assert!(state.refusals >= 1, "the first token was refused mid-push");
    assert_eq!(
        state.tokens.len(),
        2,
        "renewed once, however many requests were refused"
    );
    assert!(
        state
            .manifests
            .contains_key(&("giteaadmin/expiring".to_string(), "1.0".to_string()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_refused_again_after_renewal_exits_3_without_a_tag() {
    let knobs = Knobs {
        expire_first_token_after: Some(4),
        refuse_renewed_tokens: true,
        ..Knobs::default()
    };
    let (server, fake) = gitea(knobs).await;
    let work = tempfile::tempdir().expect("temp dir");
    let image = raw_layout(&work.path().join("l"), &[300_000, 5_000, 700], 4);
    let output = push(&server, &image.dir, "giteaadmin/refused:1.0", &[]).await;
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("refused the credentials"), "{err}");
    assert!(err.contains("\nhint: "), "{err}");
    let state = fake.state();
    assert!(state.tokens.len() >= 2, "it did try a new token");
    assert!(state.manifests.is_empty(), "no manifest, no tag");
}

/// A proxy in front of Gitea that refuses bodies over 8 MiB: a 40 MiB layer still gets
/// through, in chunks, with one warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_40_mib_blob_passes_an_8_mib_body_cap_in_chunks_with_one_warning() {
    let knobs = Knobs {
        body_cap: Some(8 << 20),
        ..Knobs::default()
    };
    // The mock server would keep every body it saw; the fake counts what matters.
    let server = MockServer::builder()
        .disable_request_recording()
        .start()
        .await;
    let (server, fake) = gitea_on(server, knobs).await;
    let work = tempfile::tempdir().expect("temp dir");
    let image = raw_layout(&work.path().join("l"), &[40 << 20], 5);
    let output = push(&server, &image.dir, "giteaadmin/capped:1.0", &[]).await;
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("(413)"), "{err}");
    let state = fake.state();
    assert!(state.too_large >= 1);
    assert!(
        state.upload_bodies.iter().all(|&len| len <= 8 << 20),
        "every accepted body is under the cap: {:?}",
        state.upload_bodies
    );
    let layer = &image.blobs[1].0;
    let stored = state
        .blobs
        .get(&("giteaadmin/capped".to_string(), layer.clone()))
        .map(|b| sha256(b));
    assert_eq!(stored.as_ref(), Some(layer));
}
