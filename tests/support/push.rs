//! Pushing with the binary into a registry a test started, and proving with skopeo what arrived:
//! shared by `tests/push.rs` (distribution in every TLS and auth shape) and `tests/registries.rs`
//! (the same cases against each registry implementation).

use std::process::Output;

use assert_cmd::Command;

use super::fixtures::{self, FixtureImage};
use super::launch::{idpbuilder, stderr, stdout};
use super::skopeo::TestRegistry;

/// `idpbuilder push` with the registry's transport flags and credentials (password on stdin)
/// to `HOST/repo_tag`.
pub fn push_cmd(registry: &dyn TestRegistry, image: &str, repo_tag: &str) -> Command {
    let mut cmd = idpbuilder();
    cmd.arg("push").args(registry.tls_args());
    if let Some((user, pass)) = registry.credentials() {
        cmd.args(["--username", user, "--password-stdin"])
            .write_stdin(format!("{pass}\n"));
    }
    cmd.arg(image)
        .arg(format!("{}/{repo_tag}", registry.host()));
    cmd
}

/// Pushes, checks the result line (`HOST/REPO:TAG@DIGEST`), then proves with skopeo that the
/// registry holds exactly the source's digests.
pub fn push_and_verify(
    registry: &dyn TestRegistry,
    image: &str,
    repo_tag: &str,
    expected: &FixtureImage,
) {
    let output = push_cmd(registry, image, repo_tag)
        .output()
        .expect("run idpbuilder");
    assert!(
        output.status.success(),
        "push {image} failed: {}\nregistry log:\n{}",
        stderr(&output),
        registry.log()
    );
    assert_eq!(
        result_line(&output),
        format!(
            "{}/{}@{}",
            registry.host(),
            repo_tag,
            expected.manifest_digest
        ),
        "result line"
    );
    verify(registry, repo_tag, expected);
}

/// The last line a push printed on stdout: its result, `HOST/REPO:TAG@DIGEST` on success.
pub fn result_line(output: &Output) -> String {
    stdout(output)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// skopeo reads `repo_tag` with the source's manifest digest, and copies every blob (and every
/// platform manifest) of it back out.
pub fn verify(registry: &dyn TestRegistry, repo_tag: &str, expected: &FixtureImage) {
    let (_, digest) = registry.skopeo_inspect_raw(repo_tag);
    assert_eq!(
        digest, expected.manifest_digest,
        "skopeo sees the source's digest"
    );
    let copy = tempfile::tempdir().expect("temp dir");
    let out = copy.path().join("copy");
    registry.skopeo_copy_to_oci(repo_tag, &out);
    for blob in expected.blob_digests.iter().chain(&expected.children) {
        assert!(
            fixtures::blob_path(&out, blob).exists(),
            "blob {blob} came back from the registry"
        );
    }
    assert!(fixtures::blob_path(&out, &expected.manifest_digest).exists());
}
