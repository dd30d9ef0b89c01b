//! Issue 19: a pull's memory does not grow with the image. Peak RSS is the pulling process's
//! own (`support::child::measured`).

use crate::support;

use std::process::Command;
use std::time::Duration;

use support::child::measured;

use support::launch::idpbuilder_process;
use support::registry::{Registry, RegistryOptions};

// The 256 MiB layout and its limits are the push's own (`memory.rs`).
use super::memory::{LIMIT_KIB, big_layout};

/// Runs `command` to its end (at most 10 minutes) and returns its peak RSS in KiB.
fn peak_rss_kib(mut command: Command) -> i64 {
    let run = measured(&mut command, Duration::from_secs(600));
    assert_eq!(run.code(), Some(0), "idpbuilder failed:\n{}", run.stderr());
    run.peak_kib
}

#[test]
fn pulling_256_mib_keeps_peak_rss_under_32_mib_into_every_file_destination() {
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("big");
    big_layout(&layout);
    let mut push = idpbuilder_process();
    push.args(["push", "-q", "--plain-http"])
        .arg(&layout)
        .arg(format!("{}/team/big:1.0", registry.host()));
    peak_rss_kib(push);
    std::fs::remove_dir_all(&layout).expect("remove the source");

    for destination in [
        "oci:{}/pulled",
        "oci-archive:{}/big.tar",
        "docker-archive:{}/big.tar",
    ] {
        let destination = destination.replace("{}", &work.path().display().to_string());
        let mut pull = idpbuilder_process();
        pull.args(["pull", "-q", "--plain-http"])
            .arg(format!("{}/team/big:1.0", registry.host()))
            .arg(&destination);
        let peak = peak_rss_kib(pull);
        eprintln!("peak RSS of the pull into {destination}: {peak} KiB");
        assert!(
            peak < LIMIT_KIB,
            "{destination}: peak RSS {peak} KiB is over {LIMIT_KIB} KiB"
        );
        let _ = std::fs::remove_file(work.path().join("big.tar"));
    }
}
