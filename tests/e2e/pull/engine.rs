//! Issue 19: `idpbuilder pull` into the real engines this machine runs, a Docker Engine and a
//! Podman service: the image goes in through `POST /images/load`, under the name `docker pull`
//! would give it, with the layers (`RootFS.Layers`) of the image that was pushed; a docker
//! archive written by pull is taken by `docker load -i`.

use crate::support;

use std::process::Output;

use serde_json::Value;

use support::engine::{Dockerd, Podman};
use support::fixtures::{self, FixtureImage, ImageSpec};
use support::push::result_line;
use support::registry::{Auth, Registry, RegistryOptions, Tls};
use support::skopeo::TestRegistry;
use support::{idpbuilder, stderr};

const USER: &str = "giteaadmin";
const PASS: &str = "engine-Pa55-wd-2291-pe";

fn registry() -> Registry {
    Registry::start(
        RegistryOptions::default()
            .tls(Tls::CaSigned)
            .auth(Auth::basic(USER, PASS)),
    )
}

/// A gzip-layered image put into `registry` as `team/app:1.0` by skopeo.
fn seed_app(registry: &Registry, seed: u64) -> FixtureImage {
    let work = tempfile::tempdir().expect("temp dir");
    let spec = ImageSpec::new("1.0", &[20_000, 90_000]).seed(seed);
    let layout = work.path().join("layout");
    let image = fixtures::oci_layout(&layout, &spec);
    registry.skopeo_copy_from_oci(&format!("oci:{}:1.0", layout.display()), "team/app:1.0");
    image
}

/// The `rootfs.diff_ids` of the image config `repo_tag` names in `registry`.
fn diff_ids(registry: &Registry, repo_tag: &str) -> Vec<String> {
    let mut cmd = registry.skopeo();
    cmd.args(["inspect", "--config", "--raw"])
        .args(registry.skopeo_args(support::skopeo::Side::Direct))
        .arg(format!("docker://{}/{repo_tag}", registry.host()));
    let out = cmd.output().expect("skopeo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: Value = serde_json::from_slice(&out.stdout).expect("config");
    config["rootfs"]["diff_ids"]
        .as_array()
        .expect("diff_ids")
        .iter()
        .map(|d| d.as_str().unwrap_or_default().to_string())
        .collect()
}

/// `idpbuilder pull` of `HOST/repo_tag` with the engine at `engine` as `DOCKER_HOST`.
fn pull(registry: &Registry, engine: &str, repo_tag: &str, extra: &[&str]) -> Output {
    idpbuilder()
        .env("DOCKER_HOST", engine)
        .arg("pull")
        .args(registry.tls_args())
        .args(["--username", USER, "--password-stdin"])
        .write_stdin(format!("{PASS}\n"))
        .args(extra)
        .arg(format!("{}/{repo_tag}", registry.host()))
        .output()
        .expect("run idpbuilder")
}

fn assert_ok(output: &Output, registry: &Registry) {
    assert!(
        output.status.success(),
        "pull failed: {}\nregistry log:\n{}",
        stderr(output),
        registry.log()
    );
}

#[test]
fn an_engine_image_pushed_then_pulled_back_into_docker_has_the_same_layers() {
    let Some(dockerd) = Dockerd::shared("pull into docker") else {
        return;
    };
    dockerd.build("roundtrip:1.0", &[("note.txt", b"there and back\n")]);
    let pushed_layers = dockerd.diff_ids("roundtrip:1.0");
    let registry = registry();
    let pushed = idpbuilder()
        .env("DOCKER_HOST", dockerd.host())
        .arg("push")
        .args(registry.tls_args())
        .args(["--username", USER, "--password-stdin"])
        .write_stdin(format!("{PASS}\n"))
        .arg("roundtrip:1.0")
        .arg(format!("{}/team/roundtrip:1.0", registry.host()))
        .output()
        .expect("push");
    assert_ok(&pushed, &registry);
    let digest = result_line(&pushed)
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .expect("digest");

    let output = pull(&registry, &dockerd.host(), "team/roundtrip:1.0", &[]);
    assert_ok(&output, &registry);
    let name = format!("{}/team/roundtrip:1.0", registry.host());
    assert_eq!(result_line(&output), format!("{name}@{digest}"));
    assert_eq!(
        dockerd.diff_ids(&name),
        pushed_layers,
        "docker image inspect shows the layers that were pushed"
    );
}

#[test]
fn a_gzip_image_pulled_into_docker_keeps_its_diff_ids() {
    let Some(dockerd) = Dockerd::shared("gzip image into docker") else {
        return;
    };
    let registry = registry();
    let image = seed_app(&registry, 41);
    let output = pull(&registry, &dockerd.host(), "team/app:1.0", &["-o", "json"]);
    assert_ok(&output, &registry);
    let json: Value = serde_json::from_str(support::stdout(&output).trim()).expect("json");
    assert_eq!(json["digest"], image.manifest_digest.as_str());
    assert!(
        json["destination"]
            .as_str()
            .is_some_and(|d| d.contains(&dockerd.host())),
        "{json}"
    );
    let name = format!("{}/team/app:1.0", registry.host());
    assert_eq!(dockerd.diff_ids(&name), diff_ids(&registry, "team/app:1.0"));
}

#[test]
fn a_docker_archive_written_by_pull_is_taken_by_docker_load() {
    let Some(dockerd) = Dockerd::shared("docker load -i") else {
        return;
    };
    let registry = registry();
    seed_app(&registry, 42);
    let work = tempfile::tempdir().expect("temp dir");
    let file = work.path().join("app.tar");
    let output = idpbuilder()
        .arg("pull")
        .args(registry.tls_args())
        .args(["--username", USER, "--password-stdin"])
        .write_stdin(format!("{PASS}\n"))
        .arg(format!("{}/team/app:1.0", registry.host()))
        .arg(format!("docker-archive:{}:loaded/app:7", file.display()))
        .output()
        .expect("run idpbuilder");
    assert_ok(&output, &registry);
    let load = dockerd
        .docker()
        .args(["load", "-i"])
        .arg(&file)
        .output()
        .expect("docker load");
    assert!(
        load.status.success(),
        "docker load -i: {}",
        String::from_utf8_lossy(&load.stderr)
    );
    assert_eq!(
        dockerd.diff_ids("loaded/app:7"),
        diff_ids(&registry, "team/app:1.0")
    );
}

#[test]
fn an_image_pulled_into_podman_has_the_registrys_layers() {
    let Some(podman) = Podman::shared("pull into podman") else {
        return;
    };
    let registry = registry();
    seed_app(&registry, 43);
    let output = pull(&registry, &podman.host(), "team/app:1.0", &[]);
    assert_ok(&output, &registry);
    let name = format!("{}/team/app:1.0", registry.host());
    assert_eq!(podman.diff_ids(&name), diff_ids(&registry, "team/app:1.0"));
}

#[test]
fn a_pulled_layout_unpacks_with_umoci_and_its_busybox_runs() {
    let Some(dockerd) = Dockerd::shared("umoci unpack of a pulled layout") else {
        return;
    };
    dockerd.build("runme:1.0", &[("greeting.txt", b"hello\n")]);
    let registry = registry();
    let pushed = idpbuilder()
        .env("DOCKER_HOST", dockerd.host())
        .arg("push")
        .args(registry.tls_args())
        .args(["--username", USER, "--password-stdin"])
        .write_stdin(format!("{PASS}\n"))
        .arg("runme:1.0")
        .arg(format!("{}/team/runme:1.0", registry.host()))
        .output()
        .expect("push");
    assert_ok(&pushed, &registry);
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("layout");
    let output = idpbuilder()
        .arg("pull")
        .args(registry.tls_args())
        .args(["--username", USER, "--password-stdin"])
        .write_stdin(format!("{PASS}\n"))
        .arg(format!("{}/team/runme:1.0", registry.host()))
        .arg(format!("oci:{}:run", layout.display()))
        .output()
        .expect("pull");
    assert_ok(&output, &registry);
    let rootfs = work.path().join("rootfs");
    let unpack = std::process::Command::new("umoci")
        .args(["raw", "unpack", "--image"])
        .arg(format!("{}:run", layout.display()))
        .arg(&rootfs)
        .output()
        .expect("umoci");
    assert!(
        unpack.status.success(),
        "umoci raw unpack: {}",
        String::from_utf8_lossy(&unpack.stderr)
    );
    let ran = std::process::Command::new("chroot")
        .arg(&rootfs)
        .args(["/bin/busybox", "cat", "/greeting.txt"])
        .output()
        .expect("chroot");
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "hello\n");
}

/// A wrong blob stops the load before its end: the engine is left without the image.
#[test]
fn a_corrupt_blob_aborts_the_load_and_the_engine_gets_nothing() {
    let Some(dockerd) = Dockerd::shared("corrupt blob into docker") else {
        return;
    };
    let registry = registry();
    let image = seed_app(&registry, 44);
    let layer = image.blob_digests.last().expect("a layer");
    let hex = layer.trim_start_matches("sha256:");
    let data = registry
        .dir()
        .join("storage/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let mut bytes = std::fs::read(&data).expect("stored layer");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&data, bytes).expect("corrupt the stored layer");

    let output = pull(&registry, &dockerd.host(), "team/app:1.0", &[]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("does not match its digest"), "{err}");
    let name = format!("{}/team/app:1.0", registry.host());
    let inspect = dockerd
        .docker()
        .args(["image", "inspect", &name])
        .output()
        .expect("docker image inspect");
    assert!(!inspect.status.success(), "{name} was loaded after all");
}

/// No engine socket answers and `podman` is on PATH: the image goes in by `podman load`.
#[test]
fn without_an_engine_socket_the_image_goes_in_by_podman_load() {
    let Some(podman) = Podman::shared("podman load") else {
        return;
    };
    let registry = registry();
    seed_app(&registry, 45);
    let output = idpbuilder()
        .env_remove("DOCKER_HOST")
        .env("CONTAINERS_STORAGE_CONF", podman.storage_conf())
        .arg("pull")
        .args(registry.tls_args())
        .args(["--username", USER, "--password-stdin", "-o", "json"])
        .write_stdin(format!("{PASS}\n"))
        .arg(format!("{}/team/app:1.0", registry.host()))
        .output()
        .expect("run idpbuilder");
    assert_ok(&output, &registry);
    let json: Value = serde_json::from_str(support::stdout(&output).trim()).expect("json");
    assert_eq!(json["destination"], "podman load", "{json}");
    let name = format!("{}/team/app:1.0", registry.host());
    assert_eq!(podman.diff_ids(&name), diff_ids(&registry, "team/app:1.0"));
}
