//! DESTINATION forms and the flags of issue 11, end to end against a real registry.
//!
//! The `#[ignore]`d tests are the SPEC lines that need the push pipeline to use
//! `DestinationArg`, `-t`, `--digestfile` and `--dry-run`; they are written ahead of it and
//! are un-ignored when it does.

use crate::support;

#[allow(unused_imports, reason = "the skopeo checks of a registry")]
use support::skopeo::TestRegistry;

use std::process::Output;

use support::fixtures::{self, ImageSpec};
use support::idpbuilder;
use support::registry::{Auth, Registry, RegistryOptions, Tls};

const USER: &str = "giteaadmin";
const PASS: &str = "s3cr3t-Pa55word";
/// A destination nobody listens on: input errors must come before any connection.
const NOWHERE: &str = "127.0.0.1:9/team/app:1.0";

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn last_line(output: &Output) -> String {
    let out = String::from_utf8_lossy(&output.stdout);
    out.lines().last().unwrap_or_default().to_string()
}

/// `idpbuilder push ARGS` with the registry's credentials, the password on stdin.
fn push(registry: &Registry, args: &[&str]) -> Output {
    let mut cmd = idpbuilder();
    cmd.arg("push");
    if let Some((user, pass)) = registry.credentials() {
        cmd.args(["--username", user, "--password-stdin"])
            .write_stdin(format!("{pass}\n"));
    }
    cmd.args(args).output().expect("run idpbuilder")
}

fn plain_http_registry() -> Registry {
    Registry::start(RegistryOptions::default().auth(Auth::basic(USER, PASS)))
}

#[test]
fn a_url_destination_is_no_longer_a_bad_port() {
    for destination in [
        "https://127.0.0.1:9/team/app:1.0",
        "oci://127.0.0.1:9/team/app:1.0",
        "http://127.0.0.1:9/team/app:1.0",
    ] {
        let output = idpbuilder()
            .args(["push", "/no/such/image.tar", destination])
            .output()
            .expect("run idpbuilder");
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{destination}: {err}");
        assert!(!err.contains("invalid destination"), "{destination}: {err}");
        assert!(err.contains("/no/such/image.tar"), "{destination}: {err}");
    }
}

#[test]
fn an_https_destination_pushes_to_its_host() {
    let registry = Registry::start(
        RegistryOptions::default()
            .tls(Tls::CaSigned)
            .auth(Auth::basic(USER, PASS)),
    );
    let work = tempfile::tempdir().expect("temp dir");
    let image = fixtures::oci_layout(&work.path().join("l"), &ImageSpec::new("1.0", &[3_000]));
    let layout = work.path().join("l").display().to_string();
    let destination = format!("https://{}/giteaadmin/app:1.0", registry.host());
    let mut args: Vec<String> = registry.tls_args();
    args.extend([layout, destination]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = push(&registry, &args);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        last_line(&output),
        format!(
            "{}/giteaadmin/app:1.0@{}",
            registry.host(),
            image.manifest_digest
        )
    );
    assert_eq!(registry.tags("giteaadmin/app"), ["1.0"]);
}

#[test]
fn an_invalid_tag_flag_is_a_usage_error_before_anything_else() {
    let output = idpbuilder()
        .args(["push", "-t", "v1/beta", "/no/such/image.tar", NOWHERE])
        .output()
        .expect("run idpbuilder");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error: invalid value 'v1/beta' for '--tag <TAG>'"),
        "{err}"
    );
}

#[test]
fn no_destination_and_no_credentials_shows_the_full_form() {
    let work = tempfile::tempdir().expect("temp dir");
    let archive = work.path().join("app.tar");
    fixtures::classic_docker_archive(&archive, &["app:1.0"], &ImageSpec::new("x", &[1_000]));
    let output = idpbuilder()
        .args(["push", &archive.display().to_string()])
        .output()
        .expect("run idpbuilder");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("no user name"), "{err}");
    assert!(
        err.contains("hint: ")
            && err.contains("idpbuilder push IMAGE gitea.cnoe.localtest.me:8443/OWNER/NAME:TAG"),
        "{err}"
    );
}

#[test]

fn an_http_destination_talks_plain_http_without_the_flag() {
    let registry = plain_http_registry();
    let work = tempfile::tempdir().expect("temp dir");
    let image = fixtures::oci_layout(&work.path().join("l"), &ImageSpec::new("1.0", &[3_000]));
    let layout = work.path().join("l").display().to_string();
    let destination = format!("http://{}/team/app:1.0", registry.host());
    let output = push(&registry, &[&layout, &destination]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        last_line(&output),
        format!("{}/team/app:1.0@{}", registry.host(), image.manifest_digest)
    );
}

#[test]

fn a_registry_only_destination_takes_the_owner_from_the_user_and_the_name_from_the_image() {
    let registry = plain_http_registry();
    let work = tempfile::tempdir().expect("temp dir");
    let archive = work.path().join("app.tar");
    let image = fixtures::classic_docker_archive(
        &archive,
        &["example.com/team/app:2.5"],
        &ImageSpec::new("x", &[2_000]),
    );
    let archive = archive.display().to_string();
    for destination in [registry.host(), format!("{}/", registry.host())] {
        let output = push(&registry, &["--plain-http", &archive, &destination]);
        assert!(
            output.status.success(),
            "{destination}: {}",
            stderr(&output)
        );
        assert_eq!(
            last_line(&output),
            format!(
                "{}/giteaadmin/app:2.5@{}",
                registry.host(),
                image.manifest_digest
            ),
            "{destination}"
        );
    }
    assert_eq!(registry.tags("giteaadmin/app"), ["2.5"]);
}

#[test]
fn a_registry_only_destination_without_a_source_name_shows_the_full_form() {
    let registry = plain_http_registry();
    let work = tempfile::tempdir().expect("temp dir");
    // A layout whose only name is the bare tag `1.0`: no NAME to take.
    fixtures::oci_layout(&work.path().join("l"), &ImageSpec::new("1.0", &[1_000]));
    let layout = work.path().join("l").display().to_string();
    let output = push(&registry, &["--plain-http", &layout, &registry.host()]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no single name (none, or several) to take NAME:TAG from"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "idpbuilder push IMAGE {}/OWNER/NAME:TAG",
            registry.host()
        )),
        "{err}"
    );
}

#[test]

fn extra_tags_and_the_digest_file() {
    let registry = plain_http_registry();
    let work = tempfile::tempdir().expect("temp dir");
    let image = fixtures::oci_layout(&work.path().join("l"), &ImageSpec::new("1.0", &[3_000]));
    let layout = work.path().join("l").display().to_string();
    let digest_file = work.path().join("app.digest");
    let destination = format!("{}/team/app:1.0", registry.host());
    let output = push(
        &registry,
        &[
            "--plain-http",
            "-t",
            "latest",
            "--tag",
            "stable",
            "--digestfile",
            &digest_file.display().to_string(),
            "-o",
            "json",
            &layout,
            &destination,
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let mut tags = registry.tags("team/app");
    tags.sort();
    assert_eq!(tags, ["1.0", "latest", "stable"]);
    let written = std::fs::read_to_string(&digest_file).expect("the digest file");
    assert_eq!(written.trim(), image.manifest_digest);
    let result: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(
        result["tags"],
        serde_json::json!(["1.0", "latest", "stable"]),
        "every tag written: {result}"
    );
    let err = stderr(&output);
    for tag in ["latest", "stable"] {
        let line = format!("tagged {}/team/app:{tag}", registry.host());
        assert!(err.lines().any(|l| l == line), "{line} in:\n{err}");
    }
}

/// A digest file that cannot be written after the push: the push is not lost from view (its
/// reference is still printed), and the exit code says the flag's value was bad.
#[test]
fn an_unwritable_digest_file_still_prints_the_pushed_reference() {
    let registry = plain_http_registry();
    let work = tempfile::tempdir().expect("temp dir");
    let image = fixtures::oci_layout(&work.path().join("l"), &ImageSpec::new("1.0", &[3_000]));
    let layout = work.path().join("l").display().to_string();
    let destination = format!("{}/team/app:1.0", registry.host());
    let output = push(
        &registry,
        &[
            "--plain-http",
            "--digestfile",
            "/proc/version",
            &layout,
            &destination,
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output)
            .contains("the image was pushed, but --digestfile /proc/version cannot be written"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("{destination}@{}", image.manifest_digest)
    );
}

#[test]
fn a_dry_run_writes_nothing() {
    let registry = plain_http_registry();
    let work = tempfile::tempdir().expect("temp dir");
    let image = fixtures::oci_layout(&work.path().join("l"), &ImageSpec::new("1.0", &[3_000]));
    let layout = work.path().join("l").display().to_string();
    let destination = format!("{}/team/app:1.0", registry.host());
    let digest_file = work.path().join("app.digest");
    let output = push(
        &registry,
        &[
            "--plain-http",
            "--dry-run",
            "-o",
            "json",
            "--digestfile",
            &digest_file.display().to_string(),
            &layout,
            &destination,
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!digest_file.exists(), "a dry run writes no digest file");
    let result: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(result["dry_run"], true, "{result}");
    assert_eq!(
        result["blobs_uploaded"],
        image.blob_digests.len(),
        "what a push would send: {result}"
    );
    assert!(registry.tags("team/app").is_empty(), "no tag");
    for blob in &image.blob_digests {
        assert!(!registry.blob_exists("team/app", blob), "no blob {blob}");
    }
    assert_eq!(registry.uploads_in_progress("team/app"), 0, "no upload");
}

/// Every request a dry run makes, recorded by a proxy in front of the registry, only reads:
/// no `POST`, `PUT`, `PATCH` or `DELETE`, and the repository never shows in `/v2/_catalog`.
#[test]
fn a_dry_run_sends_only_reads() {
    let registry = plain_http_registry();
    let proxy = support::fault_proxy::FaultProxy::start(&registry.host(), vec![]);
    let work = tempfile::tempdir().expect("temp dir");
    fixtures::oci_layout(
        &work.path().join("l"),
        &ImageSpec::new("1.0", &[3_000, 5_000]),
    );
    let layout = work.path().join("l").display().to_string();
    let output = idpbuilder()
        .args([
            "push",
            "--plain-http",
            "--dry-run",
            "--username",
            USER,
            "--password-stdin",
        ])
        .write_stdin(format!("{PASS}\n"))
        .arg(&layout)
        .arg(format!("{}/team/dry:1.0", proxy.host()))
        .output()
        .expect("run idpbuilder");
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(err.contains("dry run: would send"), "{err}");
    let seen = proxy.seen();
    assert!(!seen.is_empty(), "the dry run logged in and checked blobs");
    let writes: Vec<_> = seen
        .iter()
        .filter(|s| !matches!(s.method.as_str(), "GET" | "HEAD"))
        .collect();
    assert!(writes.is_empty(), "no write request: {writes:?}");
    let catalog = std::process::Command::new("curl")
        .args(["-sS", "-u", &format!("{USER}:{PASS}")])
        .arg(format!("http://{}/v2/_catalog", registry.host()))
        .output()
        .expect("run curl");
    let catalog = String::from_utf8_lossy(&catalog.stdout);
    assert!(catalog.contains("repositories"), "{catalog}");
    assert!(!catalog.contains("team/dry"), "{catalog}");
}
