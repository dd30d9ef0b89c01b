//! Issue 19: what `idpbuilder pull` does with bad input and a failing world. Each test is a row
//! of `docs/bad-inputs.md`: one `error:` line, a `hint:`, the SPEC's exit code, and the
//! destination left as it was (no new directory or file, no temporary file, nothing loaded).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::fault_proxy::{Fault, FaultProxy, Rule};
use support::fixtures::{self, FixtureImage, ImageSpec};
use support::launch::NO_ENGINE;
use support::registry::{Auth, Registry, RegistryOptions, Tls};
use support::skopeo::TestRegistry;
use support::{idpbuilder, stderr};

const USER: &str = "giteaadmin";
const PASS: &str = "faults-Pa55-wd-8812-pf";

fn registry() -> Registry {
    Registry::start(
        RegistryOptions::default()
            .tls(Tls::CaSigned)
            .auth(Auth::basic(USER, PASS)),
    )
}

/// An image with layers of `layers` bytes in `registry` as `team/app:1.0` (and `:1.1`).
fn seed(registry: &dyn TestRegistry, layers: &[usize]) -> FixtureImage {
    let work = tempfile::tempdir().expect("temp dir");
    let spec = ImageSpec::new("1.0", layers).seed(61);
    let layout = work.path().join("layout");
    let image = fixtures::oci_layout(&layout, &spec);
    let from = format!("oci:{}:1.0", layout.display());
    registry.skopeo_copy_from_oci(&from, "team/app:1.0");
    registry.skopeo_copy_from_oci(&from, "team/app:1.1");
    image
}

/// `idpbuilder pull` with the registry's TLS flags and `password`, then `args`.
fn pull_with(registry: &Registry, password: &str, args: &[&str]) -> Output {
    idpbuilder()
        .arg("pull")
        .args(registry.tls_args())
        .args(["--username", USER, "--password-stdin"])
        .write_stdin(format!("{password}\n"))
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("run idpbuilder")
}

fn pull(registry: &Registry, args: &[&str]) -> Output {
    pull_with(registry, PASS, args)
}

/// Exit `code`, one `error:` line holding `error`, a `hint:` holding `hint`, nothing on stdout.
fn assert_fails(output: &Output, code: i32, error: &str, hint: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {err}");
    assert!(errors[0].contains(error), "{error:?} in {err}");
    let hints: Vec<&str> = err.lines().filter(|l| l.starts_with("hint:")).collect();
    assert!(
        hints.iter().any(|h| h.contains(hint)),
        "a hint with {hint:?}: {err}"
    );
    assert!(output.stdout.is_empty(), "nothing on stdout");
}

/// What `dir` holds, by name.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A 1 MiB tmpfs (read-only with `ro`) at a new directory, unmounted on drop; `None` where
/// mounting is not allowed.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(options: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(Tmpfs(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_tag_the_registry_does_not_have_exits_2_listing_some_of_its_tags() {
    let registry = registry();
    seed(&registry, &[1000]);
    let work = tempfile::tempdir().unwrap();
    let image = format!("{}/team/app:nope", registry.host());
    let dir = format!("oci:{}", work.path().join("layout").display());
    let output = pull(&registry, &[&image, &dir]);
    assert_fails(
        &output,
        2,
        "team/app:nope does not exist",
        "the tags 1.0, 1.1",
    );
    assert!(names_in(work.path()).is_empty(), "nothing written");
}

#[test]
fn a_digest_the_registry_does_not_have_exits_2() {
    let registry = registry();
    seed(&registry, &[1000]);
    let missing = format!("sha256:{}", "0".repeat(64));
    let image = format!("{}/team/app@{missing}", registry.host());
    let work = tempfile::tempdir().unwrap();
    let dir = format!("oci:{}", work.path().join("layout").display());
    let output = pull(&registry, &[&image, &dir]);
    assert_fails(&output, 2, "does not exist", "1.0");
}

#[test]
fn a_wrong_password_exits_3() {
    let registry = registry();
    seed(&registry, &[1000]);
    let work = tempfile::tempdir().unwrap();
    let image = format!("{}/team/app:1.0", registry.host());
    let dir = format!("oci:{}", work.path().join("layout").display());
    let output = pull_with(&registry, "not-the-password", &[&image, &dir]);
    assert_fails(&output, 3, "refused the credentials", "--username");
    assert!(!stderr(&output).contains("not-the-password"));
    assert!(names_in(work.path()).is_empty());
}

#[test]
fn an_untrusted_certificate_exits_4() {
    let registry = registry();
    seed(&registry, &[1000]);
    let work = tempfile::tempdir().unwrap();
    let output = idpbuilder()
        .args(["pull", "--username", USER, "--password-stdin"])
        .write_stdin(format!("{PASS}\n"))
        .arg(format!("{}/team/app:1.0", registry.host()))
        .arg(format!("oci:{}", work.path().join("layout").display()))
        .output()
        .expect("run idpbuilder");
    assert_fails(&output, 4, "is not trusted", "--ca-file");
    assert!(names_in(work.path()).is_empty());
}

#[test]
fn no_engine_to_load_into_exits_2_before_any_download() {
    let registry = registry();
    seed(&registry, &[1000]);
    let output = idpbuilder()
        .env("DOCKER_HOST", NO_ENGINE)
        .arg("pull")
        .args(registry.tls_args())
        .args(["--username", USER, "--password-stdin"])
        .write_stdin(format!("{PASS}\n"))
        .arg(format!("{}/team/app:1.0", registry.host()))
        .output()
        .expect("run idpbuilder");
    assert_fails(&output, 2, "no engine answered", "oci:DIR");
    let blob_reads = registry
        .log()
        .lines()
        .filter(|l| l.contains("GET /v2/team/app/blobs/"))
        .count();
    assert_eq!(blob_reads, 0, "no blob was downloaded");
}

#[test]
fn a_destination_directory_that_does_not_exist_exits_2() {
    let registry = registry();
    seed(&registry, &[1000]);
    let image = format!("{}/team/app:1.0", registry.host());
    let output = pull(&registry, &[&image, "oci:/nonexistent/dir/layout"]);
    assert_fails(&output, 2, "/nonexistent/dir does not exist", "mkdir -p");
    let output = pull(
        &registry,
        &[&image, "docker-archive:/nonexistent/dir/app.tar"],
    );
    assert_fails(&output, 2, "/nonexistent/dir does not exist", "mkdir -p");
}

#[test]
fn a_read_only_destination_exits_2_before_any_download() {
    let Some(tmpfs) = Tmpfs::mount("ro,size=1m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let registry = registry();
    seed(&registry, &[1000]);
    let image = format!("{}/team/app:1.0", registry.host());
    for destination in [
        "oci:{}/layout",
        "oci-archive:{}/app.tar",
        "docker-archive:{}/app.tar",
    ] {
        let destination = destination.replace("{}", &tmpfs.path().display().to_string());
        let output = pull(&registry, &[&image, &destination]);
        assert_fails(&output, 2, "read-only", "a directory you may write to");
    }
}

#[test]
fn a_full_disk_exits_2_and_leaves_nothing_behind() {
    let Some(tmpfs) = Tmpfs::mount("size=1m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let registry = registry();
    seed(&registry, &[600_000, 900_000]);
    let image = format!("{}/team/app:1.0", registry.host());
    let place = tmpfs.path().display().to_string();
    for destination in [
        format!("oci:{place}/layout"),
        format!("oci-archive:{place}/app.tar"),
        format!("docker-archive:{place}/app.tar"),
    ] {
        let output = pull(&registry, &[&image, &destination]);
        assert_fails(&output, 2, "no space left", "free some space");
        assert!(
            names_in(tmpfs.path()).is_empty(),
            "{destination}: left {:?}",
            names_in(tmpfs.path())
        );
    }
}

/// The data file of blob `digest` in the registry's storage.
fn stored_blob(registry: &Registry, digest: &str) -> PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    registry
        .dir()
        .join("storage/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

#[test]
fn a_registry_serving_wrong_bytes_leaves_nothing_written() {
    let registry = registry();
    let image = seed(&registry, &[50_000]);
    let layer = image.blob_digests.last().expect("a layer").clone();
    let data = stored_blob(&registry, &layer);
    let mut bytes = std::fs::read(&data).expect("stored layer");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&data, bytes).expect("corrupt the stored layer");

    let work = tempfile::tempdir().unwrap();
    let name = format!("{}/team/app:1.0", registry.host());
    for destination in [
        "oci:{}/layout",
        "oci-archive:{}/app.tar",
        "docker-archive:{}/app.tar",
    ] {
        let destination = destination.replace("{}", &work.path().display().to_string());
        let output = pull(&registry, &[&name, &destination]);
        assert_fails(&output, 2, "does not match its digest", "push the image");
        assert!(
            names_in(work.path()).is_empty(),
            "{destination}: left {:?}",
            names_in(work.path())
        );
    }

    // An existing layout keeps its index.json, and gains no blob that is wrong.
    let dir = work.path().join("existing");
    fixtures::oci_layout(&dir, &ImageSpec::new("other", &[3000]).seed(62));
    let index = std::fs::read(dir.join("index.json")).unwrap();
    let output = pull(&registry, &[&name, &format!("oci:{}", dir.display())]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(std::fs::read(dir.join("index.json")).unwrap(), index);
    let hex = layer.trim_start_matches("sha256:");
    assert!(!dir.join("blobs/sha256").join(hex).exists());
    let temporary: Vec<String> = names_in(&dir.join("blobs/sha256"))
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(temporary.is_empty(), "{temporary:?}");
}

#[test]
fn ctrl_c_during_a_pull_exits_130_and_leaves_nothing() {
    let registry = Registry::start(RegistryOptions::default());
    seed(&registry, &[300_000]);
    let rule = Rule::on("GET", "/blobs/sha256:")
        .always()
        .fault(Fault::Delay(Duration::from_secs(30)));
    let proxy = FaultProxy::start(&registry.host(), vec![rule]);
    let work = tempfile::tempdir().unwrap();
    let mut child = support::launch::idpbuilder_process()
        .args(["pull", "--plain-http"])
        .arg(format!("{}/team/app:1.0", proxy.host()))
        .arg(format!("oci:{}", work.path().join("layout").display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start idpbuilder");
    proxy.wait_for(Duration::from_secs(20), "a blob download", |p| {
        p.seen()
            .iter()
            .any(|s| s.method == "GET" && s.path.contains("/blobs/"))
    });
    let sent = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let output = loop {
        if child.try_wait().expect("wait").is_some() {
            break child.wait_with_output().expect("output");
        }
        if sent.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("idpbuilder still running 5 s after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        sent.elapsed() <= Duration::from_secs(1),
        "{:?}",
        sent.elapsed()
    );
    assert_fails(
        &output,
        130,
        "interrupted",
        "the destination was left as it was",
    );
    assert!(
        names_in(work.path()).is_empty(),
        "left {:?}",
        names_in(work.path())
    );
}
