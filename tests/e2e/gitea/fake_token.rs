//! Token renewal on the wiremock fake (`support::gitea_fake`): a token that expires mid-push
//! and is answered with a Bearer challenge. Real Gitea answers an expired or unknown token with
//! a bare 401 ("authGroup.Verify", no `WWW-Authenticate`), which the model does; the client's
//! renewal on a challenged 401 (distribution's token auth answers so) is kept tested here.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::support::child::output_within;
use crate::support::gitea_fake::{GiteaFake, Knobs, OWNER, PASSWORD};
use crate::support::launch::idpbuilder_process;
use crate::support::raw_image::raw_layout;
use crate::support::stderr;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer};

async fn gitea(knobs: Knobs) -> (MockServer, GiteaFake) {
    let server = MockServer::start().await;
    let fake = GiteaFake::new(&server.address().to_string(), knobs);
    Mock::given(any())
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    (server, fake)
}

/// `idpbuilder push --plain-http IMAGE HOST/REPO_TAG` as giteaadmin, off the async runtime so
/// the mock server keeps answering.
async fn push(server: &MockServer, image: &Path, repo_tag: &str) -> Output {
    let mut cmd = idpbuilder_process();
    cmd.env("IDPBUILDER_REGISTRY_USERNAME", OWNER)
        .env("IDPBUILDER_REGISTRY_PASSWORD", PASSWORD)
        .args(["push", "--plain-http"])
        .arg(image)
        .arg(format!("{}/{repo_tag}", server.address()));
    tokio::task::spawn_blocking(move || output_within(&mut cmd, Duration::from_secs(90)))
        .await
        .expect("run idpbuilder")
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
    let output = push(&server, &image.dir, "giteaadmin/expiring:1.0").await;
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
    let output = push(&server, &image.dir, "giteaadmin/refused:1.0").await;
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
