//! End-to-end: images of a local engine (issue 13) pushed by name into a real registry (TLS +
//! htpasswd), checked with skopeo and run with umoci + chroot. The engines are real: Debian's
//! `dockerd` (classic `docker save` form) and a Podman service (its compat API, and `podman
//! save` when no socket answers); Docker 25+'s OCI form and a broken engine are a fake engine on
//! a Unix socket serving a recorded export.

use crate::support;

use std::os::unix::process::CommandExt as _;
use std::process::Command;

use support::engine::{self, Dockerd, Export, FakeEngine, Podman};
use support::launch::{NOWHERE, idpbuilder_process};
use support::registry::{Auth, Registry, RegistryOptions, Tls};
use support::skopeo::{Side, TestRegistry as _};
use support::{idpbuilder, stderr, stdout};

const USER: &str = "giteaadmin";
const PASS: &str = "s3cr3t-Pa55word";

fn registry() -> Registry {
    Registry::start(
        RegistryOptions::default()
            .tls(Tls::CaSigned)
            .auth(Auth::basic(USER, PASS)),
    )
}

/// `idpbuilder push IMAGE DEST` against `registry` with the engine at `docker_host`.
fn push(registry: &Registry, docker_host: &str, image: &str, dest: &str) -> assert_cmd::Command {
    let mut cmd = idpbuilder();
    cmd.env("DOCKER_HOST", docker_host)
        .arg("push")
        .args(registry.tls_args())
        .args(["--username", USER, "--password-stdin", image, dest])
        .write_stdin(format!("{PASS}\n"))
        .timeout(std::time::Duration::from_secs(300));
    cmd
}

/// Pushes the fake engine's `app:1.0` into a fresh registry as `giteaadmin/app:1.0`.
fn push_app_from(fake: &FakeEngine) -> (Registry, std::process::Output) {
    let registry = registry();
    let output = push(
        &registry,
        &fake.host(),
        "app:1.0",
        &format!("{}/giteaadmin/app:1.0", registry.host()),
    )
    .output()
    .expect("run");
    (registry, output)
}

/// The layer digests of the manifest under `repo_tag`.
fn layers(registry: &Registry, repo_tag: &str) -> Vec<String> {
    let (bytes, _) = registry.skopeo_inspect_raw(repo_tag);
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).expect("manifest JSON");
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn has_tag(registry: &Registry, repo_tag: &str) -> bool {
    let mut cmd = registry.skopeo();
    cmd.args(["inspect", "--raw"])
        .args(registry.skopeo_args(Side::Direct))
        .arg(format!("docker://{}/{repo_tag}", registry.host()));
    cmd.output().is_ok_and(|o| o.status.success())
}

/// The digest at the end of the result line.
fn pushed_digest(output: &std::process::Output) -> String {
    let out = stdout(output);
    let line = out.lines().last().unwrap_or_default();
    line.rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default()
}

#[test]
fn a_docker_image_pushed_by_name_lands_under_the_users_repository_and_runs() {
    let Some(dockerd) = Dockerd::shared("docker image by name") else {
        return;
    };
    dockerd.build("app:1.0", &[("hello.txt", b"hello from the engine\n")]);
    let registry = registry();
    let host = registry.host();

    let output = push(&registry, &dockerd.host(), "app:1.0", &host)
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr(&output));
    let digest = pushed_digest(&output);
    assert_eq!(
        stdout(&output).trim(),
        format!("{host}/giteaadmin/app:1.0@{digest}"),
        "a registry-only destination takes OWNER from the user and NAME:TAG from the image"
    );
    assert_eq!(
        layers(&registry, "giteaadmin/app:1.0"),
        dockerd.diff_ids("app:1.0"),
        "layers keep the engine's bytes: their digests are the diff IDs"
    );
    assert_eq!(engine::run_image(&registry, "giteaadmin/app:1.0"), "hi\n");

    // The same image saved to a file gives the same manifest.
    let work = tempfile::tempdir().expect("temp dir");
    let file = work.path().join("app.tar");
    let saved = dockerd
        .docker()
        .args(["save", "-o"])
        .arg(&file)
        .arg("app:1.0")
        .status()
        .expect("docker save");
    assert!(saved.success());
    let from_file = push(
        &registry,
        &dockerd.host(),
        &file.display().to_string(),
        &format!("{host}/giteaadmin/file:1.0"),
    )
    .output()
    .expect("run");
    assert!(from_file.status.success(), "{}", stderr(&from_file));
    assert_eq!(pushed_digest(&from_file), digest);
}

#[test]
fn a_second_push_of_a_docker_image_sends_no_layer_again() {
    let Some(dockerd) = Dockerd::shared("second push") else {
        return;
    };
    dockerd.build("again:1.0", &[("again.txt", b"twice\n")]);
    let registry = registry();
    let dest = format!("{}/giteaadmin/again:1.0", registry.host());
    let first = push(&registry, &dockerd.host(), "docker-daemon:again:1.0", &dest)
        .output()
        .expect("run");
    assert!(first.status.success(), "{}", stderr(&first));
    let second = push(&registry, &dockerd.host(), "docker-daemon:again:1.0", &dest)
        .output()
        .expect("run");
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(pushed_digest(&first), pushed_digest(&second));
    assert!(
        !stderr(&second).contains("pushed "),
        "every layer was in the registry already:\n{}",
        stderr(&second)
    );
}

#[test]
fn a_dry_run_of_an_engine_image_reads_the_export_and_writes_nothing() {
    let Some(dockerd) = Dockerd::shared("engine dry run") else {
        return;
    };
    dockerd.build("dry:1.0", &[("dry.txt", b"only looked at\n")]);
    let registry = registry();
    let dest = format!("{}/giteaadmin/dry:1.0", registry.host());
    let dry = push(&registry, &dockerd.host(), "dry:1.0", &dest)
        .arg("--dry-run")
        .output()
        .expect("run");
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(
        stderr(&dry).contains("dry run: would send")
            && !stderr(&dry).contains("would send 0 blobs")
            && stderr(&dry).contains(", 0 already present"),
        "{}",
        stderr(&dry)
    );
    assert!(
        !has_tag(&registry, "giteaadmin/dry:1.0"),
        "nothing was written"
    );

    let pushed = push(&registry, &dockerd.host(), "dry:1.0", &dest)
        .output()
        .expect("run");
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    assert_eq!(
        pushed_digest(&dry),
        pushed_digest(&pushed),
        "the dry run names the manifest the push writes"
    );
    let again = push(&registry, &dockerd.host(), "dry:1.0", &dest)
        .arg("--dry-run")
        .output()
        .expect("run");
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("would send 0 blobs"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn an_engine_push_needs_no_temporary_space() {
    let Some(dockerd) = Dockerd::shared("1 MiB TMPDIR") else {
        return;
    };
    dockerd.build("small-tmp:1.0", &[("big.bin", &vec![7u8; 3 << 20])]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(tmp.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI runs as root and must be able to mount a tmpfs"
        );
        eprintln!("skipped: 1 MiB TMPDIR: cannot mount a tmpfs (not root?)");
        return;
    }
    let registry = registry();
    let output = push(
        &registry,
        &dockerd.host(),
        "small-tmp:1.0",
        &format!("{}/giteaadmin/small-tmp:1.0", registry.host()),
    )
    .env("TMPDIR", tmp.path())
    .output()
    .expect("run");
    let _ = Command::new("umount").arg(tmp.path()).status();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        layers(&registry, "giteaadmin/small-tmp:1.0"),
        dockerd.diff_ids("small-tmp:1.0")
    );
}

#[test]
fn a_podman_image_lands_through_the_podman_socket_and_runs() {
    let Some(podman) = Podman::shared("podman socket") else {
        return;
    };
    podman.build(
        "localhost/papp:sock",
        &[("hello.txt", b"hello from podman\n")],
    );
    let registry = registry();
    let output = push(
        &registry,
        &podman.host(),
        "localhost/papp:sock",
        &registry.host(),
    )
    .output()
    .expect("run");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with(&format!("{}/giteaadmin/papp:sock@", registry.host())),
        "{}",
        stdout(&output)
    );
    assert_eq!(
        layers(&registry, "giteaadmin/papp:sock"),
        podman.diff_ids("localhost/papp:sock")
    );
    assert_eq!(engine::run_image(&registry, "giteaadmin/papp:sock"), "hi\n");
}

#[test]
fn podman_save_is_read_when_no_engine_socket_answers() {
    let Some(podman) = Podman::shared("podman save") else {
        return;
    };
    if std::path::Path::new("/var/run/docker.sock").exists()
        || std::path::Path::new("/run/podman/podman.sock").exists()
    {
        eprintln!("skipped: podman save: this machine has an engine socket that would answer");
        return;
    }
    podman.build("localhost/papp:save", &[("saved.txt", b"saved\n")]);
    let registry = registry();
    let output = push(
        &registry,
        "unused",
        "localhost/papp:save",
        &format!("{}/giteaadmin/papp:save", registry.host()),
    )
    .env_remove("DOCKER_HOST")
    .env("CONTAINERS_STORAGE_CONF", podman.storage_conf())
    .arg("-l")
    .arg("debug")
    .output()
    .expect("run");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("reading podman save"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        layers(&registry, "giteaadmin/papp:save"),
        podman.diff_ids("localhost/papp:save")
    );
}

#[test]
fn a_docker_25_export_is_pushed_with_the_engines_own_manifest() {
    let layers_in = vec![
        engine::layer("bin/tool", &vec![1u8; 300_000]),
        engine::layer("etc/hello.txt", b"hello\n"),
    ];
    let (tar, manifest, inspect) = engine::docker25_export("app:1.0", &layers_in);
    let fake = FakeEngine::start("app:1.0", inspect, Export::Whole(tar));
    let (registry, output) = push_app_from(&fake);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(pushed_digest(&output), engine::digest(&manifest));
    let (bytes, _) = registry.skopeo_inspect_raw("giteaadmin/app:1.0");
    assert_eq!(
        bytes, manifest,
        "the manifest is the engine's, byte for byte"
    );
}

#[test]
fn an_engine_that_cuts_the_stream_mid_layer_exits_2_without_a_tag() {
    let big = engine::layer("bin/tool", &vec![1u8; 2_000_000]);
    let (tar, _, inspect) = engine::docker25_export("app:1.0", &[big]);
    let fake = FakeEngine::start("app:1.0", inspect, Export::CutAfter(tar, 1_000_000));
    let (registry, output) = push_app_from(&fake);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    assert!(err.contains("image app:1.0"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert!(!has_tag(&registry, "giteaadmin/app:1.0"));
}

#[test]
fn a_corrupt_export_exits_2_without_a_tag() {
    let (mut tar, _, inspect) = engine::docker25_export("app:1.0", &[engine::layer("a.txt", b"a")]);
    for byte in &mut tar[..1024] {
        *byte = 0x42;
    }
    let fake = FakeEngine::start("app:1.0", inspect, Export::Whole(tar));
    let (registry, output) = push_app_from(&fake);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("not a valid image tar"), "{err}");
    assert!(err.contains("image app:1.0"), "{err}");
    assert!(!has_tag(&registry, "giteaadmin/app:1.0"));
}

#[test]
fn an_image_the_engine_does_not_have_exits_2_naming_it() {
    let fake = FakeEngine::start("app:1.0", serde_json::json!({}), Export::Whole(Vec::new()));
    for (image, expected) in [
        ("docker-daemon:nope:1.0", "has no image nope:1.0"),
        ("docker-daemon:nope", "has no image nope:latest"),
        (
            "nope:1.0",
            "nope:1.0 is neither a file nor an image of the engine at",
        ),
        ("nope", "(it has no nope:latest)"),
    ] {
        let output = idpbuilder()
            .env("DOCKER_HOST", fake.host())
            .args(["push", image, "127.0.0.1:9/team/app:1.0"])
            .output()
            .expect("run");
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{err}");
        assert!(err.starts_with("error: "), "{err}");
        assert!(err.contains(expected), "{err}");
        assert!(err.contains(&fake.host()), "names the socket: {err}");
        assert!(err.contains("hint: docker images"), "{err}");
    }
}

#[test]
fn a_socket_without_permission_exits_2_naming_it() {
    // The binary runs as `nobody` (65534), which may not open a socket only root may use.
    if is_root() {
        let fake = FakeEngine::start("app:1.0", serde_json::json!({}), Export::Whole(Vec::new()));
        std::fs::set_permissions(
            &fake.socket,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("chmod the socket");
        let mut cmd = idpbuilder_process();
        cmd.env("DOCKER_HOST", fake.host())
            .env("HOME", NOWHERE)
            .args(["push", "docker-daemon:app:1.0", "127.0.0.1:9/team/app:1.0"])
            .uid(65534)
            .gid(65534);
        let output = support::child::output_within(&mut cmd, std::time::Duration::from_secs(30));
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{err}");
        assert!(err.contains("permission denied"), "{err}");
        assert!(err.contains(&fake.host()), "{err}");
        assert!(
            err.contains("hint: add your user to the docker group"),
            "{err}"
        );
    } else {
        eprintln!("skipped: permission denied: needs root to run the binary as another user");
    }
}

/// Whether this test runs as root (it can then start the binary as `nobody`).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
