//! End-to-end: credentials from docker's `config.json` (source 4) against a real registry with
//! TLS and htpasswd: a base64 `auth` entry, a `credHelpers` entry backed by a helper script on
//! PATH, a `credsStore` whose helper is missing, and a missing or malformed file (passed over:
//! the push goes anonymous and is refused with exit 3). No cluster: HOME is empty.

use crate::support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Output;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use support::fixtures::{self, ImageSpec};
use support::registry::{Auth, Registry, RegistryOptions, Tls};
use support::skopeo::TestRegistry as _;
use support::{idpbuilder_at, text};

const USER: &str = "dockeruser";
const PASS: &str = "D0cker-L0gin-Pa55word";

fn registry() -> Registry {
    Registry::start(
        RegistryOptions::default()
            .tls(Tls::CaSigned)
            .auth(Auth::basic(USER, PASS)),
    )
}

/// Writes `config` as `home/docker/config.json` (unless `None`) and pushes with
/// `DOCKER_CONFIG=home/docker`, `-l trace`, no credential flags; `path_dir` goes first on PATH.
fn push(registry: &Registry, home: &Path, config: Option<&str>, path_dir: Option<&Path>) -> Output {
    let docker = home.join("docker");
    std::fs::create_dir_all(&docker).expect("mkdir docker");
    if let Some(config) = config {
        std::fs::write(docker.join("config.json"), config).expect("write config.json");
    }
    let layout = home.join("layout");
    let image = fixtures::oci_layout(&layout, &ImageSpec::new("1.0", &[4_000]));
    let mut cmd = idpbuilder_at(home);
    cmd.env("DOCKER_CONFIG", &docker);
    if let Some(dir) = path_dir {
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{path}", dir.display()));
    }
    let dest = format!("{}/team/app:1.0", registry.host());
    let output = cmd
        .args(["push", "-l", "trace", "--ca-file"])
        .arg(registry.ca_file().expect("TLS registry"))
        .arg(&layout)
        .arg(&dest)
        .output()
        .expect("run idpbuilder");
    if output.status.success() {
        let (_, digest) = registry.skopeo_inspect_raw("team/app:1.0");
        assert_eq!(
            digest, image.manifest_digest,
            "skopeo sees the pushed digest"
        );
    }
    output
}

fn assert_no_secret(all: &str) {
    for secret in [PASS.to_string(), STANDARD.encode(format!("{USER}:{PASS}"))] {
        assert!(
            !all.contains(&secret),
            "a secret leaked at -l trace:\n{all}"
        );
    }
}

#[test]
fn a_base64_auth_entry_is_used_and_never_printed() {
    let registry = registry();
    let home = tempfile::tempdir().expect("home");
    let auth = STANDARD.encode(format!("{USER}:{PASS}"));
    let config = format!(
        r#"{{"auths":{{"https://{}":{{"auth":"{auth}"}}}},"credsStore":"missing-helper"}}"#,
        registry.host()
    );
    let output = push(&registry, home.path(), Some(&config), None);
    let all = text(&output);
    assert!(
        output.status.success(),
        "{all}\nregistry log:\n{}",
        registry.log()
    );
    assert!(
        all.contains("helper docker-credential-missing-helper failed"),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "using the auths entry \"https://{}\"",
            registry.host()
        )),
        "{all}"
    );
    assert!(
        all.contains("credentials for 127.0.0.1:") && all.contains("docker's config.json"),
        "{all}"
    );
    assert_no_secret(&all);
}

#[test]
fn a_cred_helper_on_path_is_asked_for_the_registry_host() {
    let registry = registry();
    let home = tempfile::tempdir().expect("home");
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    let asked = home.path().join("asked");
    let script = bin.join("docker-credential-test");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\ncat > '{}'\n\
             printf '{{\"ServerURL\":\"x\",\"Username\":\"{USER}\",\"Secret\":\"{PASS}\"}}\\n'\n",
            asked.display()
        ),
    )
    .expect("write helper");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let config = format!(r#"{{"credHelpers":{{"{}":"test"}}}}"#, registry.host());
    let output = push(&registry, home.path(), Some(&config), Some(&bin));
    let all = text(&output);
    assert!(
        output.status.success(),
        "{all}\nregistry log:\n{}",
        registry.log()
    );
    assert_eq!(
        std::fs::read_to_string(&asked).expect("helper ran"),
        registry.host()
    );
    assert!(all.contains("helper docker-credential-test has"), "{all}");
    assert_no_secret(&all);
}

#[test]
fn a_missing_or_malformed_config_is_passed_over_and_the_push_is_refused() {
    let registry = registry();
    for (name, config, line) in [
        ("missing", None, "docker config: cannot read"),
        ("malformed", Some("{\"auths\": {"), "is not valid"),
        ("wrong types", Some("{\"auths\": []}"), "is not valid"),
    ] {
        let home = tempfile::tempdir().expect("home");
        let output = push(&registry, home.path(), config, None);
        let all = text(&output);
        assert_eq!(output.status.code(), Some(3), "{name}: {all}");
        assert!(all.contains(line), "{name}: {all}");
        assert!(all.contains("hint:"), "{name}: {all}");
    }
}
