//! Blob uploads larger than 1 MiB run up to `--concurrency` at once, never more; smaller ones
//! (which wait on round trips, not bandwidth) run up to 16 at once beside them; the manifest
//! waits for every blob. A wiremock registry records when each request arrives; every blob's
//! closing `PUT` is answered after a fixed delay, so each upload occupies a known interval.

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

/// Layers of just over 1 MiB: large blobs, each taking one of the `--concurrency` places.
const LARGE: [usize; 5] = [1_100_000, 1_100_001, 1_100_002, 1_100_003, 1_100_004];

/// Pushes a 6-blob image (`layers` and a small config) with `--concurrency N`; returns blob
/// PUT arrivals and the manifest's.
async fn push_with(concurrency: &str, layers: &[usize]) -> (Vec<Instant>, Instant) {
    let log: Log = Arc::default();
    let server = registry(&log).await;
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("l");
    fixtures::oci_layout(&layout, &ImageSpec::new("1.0", layers));
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
    let (blobs, manifest) = push_with("4", &LARGE).await;
    let overlap = max_overlap(&blobs);
    // Four large layers, plus the small config beside them.
    assert!((2..=5).contains(&overlap), "overlap {overlap}");
    let last_done = blobs.iter().map(|t| *t + DELAY).max().expect("blobs");
    assert!(
        manifest >= last_done,
        "the manifest came after every blob's PUT was answered"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_at_a_time_is_strictly_sequential() {
    // `--concurrency 1` means one at a time for small blobs too.
    let (mut blobs, manifest) = push_with("1", &[100, 200, 300, 400, 500]).await;
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

#[tokio::test(flavor = "multi_thread")]
async fn small_blobs_go_side_by_side_beyond_the_concurrency() {
    let (blobs, _) = push_with("2", &[100, 200, 300, 400, 500]).await;
    let overlap = max_overlap(&blobs);
    assert!(
        overlap > 2,
        "six small blobs with --concurrency 2: overlap {overlap}"
    );
}
