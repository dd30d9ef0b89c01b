//! A registry that cannot be reached says why, in words a user acts on: a host name that does
//! not resolve fails at once (no retries) and says so; idpbuilder's own host points at
//! idpbuilder not running.

use crate::support;

use std::time::{Duration, Instant};

use support::fixtures::{self, ImageSpec};
use support::{idpbuilder, stderr};

fn layout(dir: &std::path::Path) -> String {
    let layout = dir.join("l");
    fixtures::oci_layout(&layout, &ImageSpec::new("1.0", &[1_000]));
    layout.display().to_string()
}

#[test]
fn a_host_name_that_does_not_resolve_fails_at_once_and_says_so() {
    let work = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let output = idpbuilder()
        .args(["push", "-u", "someone", "-p", "secret"])
        .arg(layout(work.path()))
        .arg("no-such-registry.invalid/team/app:1.0")
        .output()
        .expect("run idpbuilder");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.lines().any(|l| l.starts_with("error:")
            && l.contains("no-such-registry.invalid")
            && l.contains("does not resolve")),
        "{err}"
    );
    assert!(!err.contains("retrying"), "not retried: {err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no backoff for a name that does not resolve"
    );
}

#[test]
fn idpbuilders_own_host_unreachable_points_at_idpbuilder_not_running() {
    let work = tempfile::tempdir().expect("temp dir");
    let output = idpbuilder()
        .args(["push", "--retries", "1", "-u", "giteaadmin", "-p", "secret"])
        .arg(layout(work.path()))
        .arg("giteaadmin/app:1.0")
        .output()
        .expect("run idpbuilder");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("hint:") && l.contains("idpbuilder create")),
        "{err}"
    );
}
