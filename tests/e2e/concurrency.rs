//! Blob uploads run up to `--concurrency` at once, never more, and the manifest waits for every
//! blob. A wiremock registry records when each request arrives; every blob's closing `PUT` is
//! answered after a fixed delay, so each upload occupies a known interval.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::fixtures::{self, ImageSpec};
use support::mock_registry::empty_team_app;
use support::{idpbuilder, stderr};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const DELAY: Duration = Duration::from_millis(300);

type Log = Arc<Mutex<Vec<(String, Instant)>>>;

/// Answers with `template` and notes the request's arrival.
struct Recorder {
    log: Log,
    template: ResponseTemplate,
}

impl Respond for Recorder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let what = format!("{} {}", request.method, request.url.path());
        self.log
            .lock()
            .expect("log lock")
            .push((what, Instant::now()));
        self.template.clone()
    }
}

async fn registry(log: &Log) -> MockServer {
    let server =
        empty_team_app(ResponseTemplate::new(202).insert_header("Location", "/upload/session"))
            .await;
    Mock::given(method("PATCH"))
        .and(path("/upload/session"))
        .respond_with(ResponseTemplate::new(202).insert_header("Location", "/upload/session"))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/upload/session"))
        .respond_with(Recorder {
            log: log.clone(),
            template: ResponseTemplate::new(201).set_delay(DELAY),
        })
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path_regex("^/v2/team/app/manifests/"))
        .respond_with(Recorder {
            log: log.clone(),
            template: ResponseTemplate::new(201),
        })
        .mount(&server)
        .await;
    server
}

/// Pushes a 6-blob image with `--concurrency N`; returns blob PUT arrivals and the manifest's.
async fn push_with(concurrency: &str) -> (Vec<Instant>, Instant) {
    let log: Log = Arc::default();
    let server = registry(&log).await;
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("l");
    fixtures::oci_layout(&layout, &ImageSpec::new("1.0", &[100, 200, 300, 400, 500]));
    let host = server.address().to_string();
    let concurrency = concurrency.to_string();
    let output = tokio::task::spawn_blocking(move || {
        idpbuilder()
            .args(["push", "-q", "--plain-http", "--concurrency", &concurrency])
            .arg(&layout)
            .arg(format!("{host}/team/app:1.0"))
            .output()
            .expect("run idpbuilder")
    })
    .await
    .expect("join");
    assert!(output.status.success(), "{}", stderr(&output));
    let log = log.lock().expect("log lock").clone();
    let blobs: Vec<Instant> = log
        .iter()
        .filter(|(w, _)| w.starts_with("PUT /upload"))
        .map(|(_, t)| *t)
        .collect();
    let manifest = log
        .iter()
        .find(|(w, _)| w.contains("/manifests/"))
        .map(|(_, t)| *t)
        .expect("a manifest was pushed");
    assert_eq!(blobs.len(), 6, "{log:?}");
    (blobs, manifest)
}

/// The largest number of `[arrival, arrival + DELAY)` intervals open at one time.
fn max_overlap(arrivals: &[Instant]) -> usize {
    arrivals
        .iter()
        .map(|start| {
            arrivals
                .iter()
                .filter(|other| **other <= *start && *start < **other + DELAY)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn four_at_a_time_overlap_but_never_more_than_four() {
    let (blobs, manifest) = push_with("4").await;
    let overlap = max_overlap(&blobs);
    assert!((2..=4).contains(&overlap), "overlap {overlap}");
    let last_done = blobs.iter().map(|t| *t + DELAY).max().expect("blobs");
    assert!(
        manifest >= last_done,
        "the manifest came after every blob's PUT was answered"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_at_a_time_is_strictly_sequential() {
    let (mut blobs, manifest) = push_with("1").await;
    blobs.sort();
    assert_eq!(max_overlap(&blobs), 1);
    for pair in blobs.windows(2) {
        assert!(
            pair[1] >= pair[0] + DELAY,
            "a PUT started before the previous one was answered"
        );
    }
    assert!(manifest >= *blobs.last().expect("blobs") + DELAY);
}
