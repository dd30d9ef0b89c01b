//! The command line as a user meets it: help, version, and every bad input ending in one
//! `error:` line, a `hint:` where there is one, and the SPEC's exit code, before any network.

use crate::support;

use predicates::prelude::*;
use support::fixtures::{self, ImageSpec};
use support::{idpbuilder, stderr};

/// A destination nobody listens on: input errors must come before any connection.
const NOWHERE: &str = "127.0.0.1:9/team/app:1.0";

fn fails_with(args: &[&str], code: i32, message: &str) -> String {
    let output = idpbuilder().args(args).output().expect("run idpbuilder");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(code), "{args:?}: {err}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    assert!(
        err.contains(message),
        "{args:?}: expected {message:?} in {err}"
    );
    assert!(output.stdout.is_empty(), "nothing on stdout");
    err
}

#[test]
fn help_shows_worked_examples() {
    idpbuilder()
        .args(["push", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:"))
        .stdout(predicate::str::contains("giteaadmin/app:1.0"))
        .stdout(predicate::str::contains("--password-stdin"));
}

#[test]
fn version_is_printed() {
    idpbuilder()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn unknown_flags_are_usage_errors_with_exit_2() {
    let output = idpbuilder()
        .args(["push", "--nope", "a", "b"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn missing_image_path_exits_2() {
    let err = fails_with(
        &["push", "--plain-http", "/no/such/image.tar", NOWHERE],
        2,
        "/no/such/image.tar",
    );
    assert!(err.contains("hint: "), "{err}");
}

#[test]
fn a_directory_that_is_not_a_layout_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().display().to_string();
    fails_with(
        &["push", "--plain-http", &path, NOWHERE],
        2,
        "not an OCI image layout",
    );
}

#[test]
fn a_truncated_tar_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tar = dir.path().join("app.tar");
    fixtures::oci_archive(&tar, &ImageSpec::new("1.0", &[50_000]));
    let bytes = std::fs::read(&tar).expect("read tar");
    std::fs::write(&tar, &bytes[..bytes.len() / 3]).expect("truncate");
    fails_with(
        &["push", "--plain-http", &tar.display().to_string(), NOWHERE],
        2,
        "app.tar",
    );
}

#[test]
fn several_images_and_no_ref_lists_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let layout = dir.path().join("l");
    fixtures::oci_layout(&layout, &ImageSpec::new("one", &[100]));
    fixtures::oci_layout(&layout, &ImageSpec::new("two", &[100]).seed(2));
    let err = fails_with(
        &[
            "push",
            "--plain-http",
            &layout.display().to_string(),
            NOWHERE,
        ],
        2,
        "one",
    );
    assert!(err.contains("two"), "{err}");
    assert!(err.contains("hint: "), "{err}");
}

#[test]
fn an_unknown_ref_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let layout = dir.path().join("l");
    fixtures::oci_layout(&layout, &ImageSpec::new("one", &[100]));
    let image = format!("oci:{}:nope", layout.display());
    fails_with(&["push", "--plain-http", &image, NOWHERE], 2, "nope");
}

#[test]
fn an_upper_case_destination_names_the_fix() {
    let err = fails_with(&["push", "a.tar", "giteaadmin/MyApp:1.0"], 2, "upper-case");
    assert!(err.contains("hint: use \"giteaadmin/myapp\""), "{err}");
}

#[test]
fn a_malformed_destination_exits_2() {
    fails_with(
        &["push", "a.tar", "giteaadmin/app:bad tag"],
        2,
        "invalid destination",
    );
    fails_with(
        &["push", "a.tar", "host.example.com:99999/app"],
        2,
        "invalid destination",
    );
}

#[test]
fn a_bad_platform_is_a_usage_error() {
    let output = idpbuilder()
        .args(["push", "--platform", "linux", "a.tar", "o/n"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_username_without_password_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let layout = dir.path().join("l");
    fixtures::oci_layout(&layout, &ImageSpec::new("1.0", &[100]));
    fails_with(
        &["push", "-u", "me", &layout.display().to_string(), NOWHERE],
        2,
        "--username",
    );
}

#[test]
fn an_unreadable_ca_file_exits_2() {
    fails_with(
        &["push", "--ca-file", "/no/ca.pem", "a.tar", NOWHERE],
        2,
        "--ca-file /no/ca.pem",
    );
}
