//! skopeo, the reference client, pointed at a registry a test started ([`TestRegistry`]: the
//! distribution [`Registry`](super::registry::Registry) or the
//! [`ContainerRegistry`](super::container_registry::ContainerRegistry)): what tests use to put
//! images in and to check what our binary pushed.
//!
//! Every command is isolated from host state: its own policy, auth file, registries.conf and
//! registries.d in the registry's temp dir, and a cert dir holding `ca.crt` when TLS is on.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use sha2::{Digest as _, Sha256};

use super::certs::ServerCert;

const POLICY: &str = r#"{"default":[{"type":"insecureAcceptAnything"}]}"#;

/// Which side of a skopeo command the registry is on, choosing the flag prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// `--src-creds`, `--src-cert-dir`, `--src-tls-verify` (copy from the registry).
    Src,
    /// `--dest-creds`, `--dest-cert-dir`, `--dest-tls-verify` (copy into the registry).
    Dest,
    /// `--creds`, `--cert-dir`, `--tls-verify` (inspect, list-tags).
    Direct,
}

/// Writes skopeo's private configuration into a new registry's temp dir `dir`.
pub(super) fn prepare(dir: &Path, cert: Option<&ServerCert>) {
    std::fs::write(dir.join("policy.json"), POLICY).expect("write policy.json");
    std::fs::write(dir.join("auth.json"), "{}").expect("write auth.json");
    std::fs::write(dir.join("registries.conf"), "").expect("write registries.conf");
    std::fs::create_dir_all(dir.join("registries.d")).expect("mkdir registries.d");
    if let Some(cert) = cert {
        let cert_dir = dir.join("skopeo-certs");
        std::fs::create_dir_all(&cert_dir).expect("create skopeo cert dir");
        std::fs::copy(&cert.trust, cert_dir.join("ca.crt")).expect("copy ca.crt");
    }
}

/// A registry a test started, as its clients see it: address, credentials, trust. skopeo's
/// checks against it come with it, so one test body can run against any implementation.
pub trait TestRegistry {
    /// `127.0.0.1:PORT`.
    fn host(&self) -> String;
    /// The accepted user and password, if the registry wants any.
    fn credentials(&self) -> Option<(&str, &str)>;
    /// The PEM a client must trust; `None` for plain HTTP.
    fn ca_file(&self) -> Option<&Path>;
    /// The registry's own temp dir, where [`prepare`] wrote skopeo's configuration.
    fn dir(&self) -> &Path;
    /// Everything the registry logged so far.
    fn log(&self) -> String;

    fn is_tls(&self) -> bool {
        self.ca_file().is_some()
    }

    /// Transport flags for `idpbuilder push`: `--ca-file PEM`, or `--plain-http`.
    fn tls_args(&self) -> Vec<String> {
        match self.ca_file() {
            Some(ca) => vec!["--ca-file".into(), ca.display().to_string()],
            None => vec!["--plain-http".into()],
        }
    }

    /// skopeo flags to reach this registry on `side`: credentials, cert dir or no TLS verify.
    fn skopeo_args(&self, side: Side) -> Vec<String> {
        let prefix = match side {
            Side::Src => "--src-",
            Side::Dest => "--dest-",
            Side::Direct => "--",
        };
        let mut args = Vec::new();
        if let Some((user, pass)) = self.credentials() {
            args.push(format!("{prefix}creds={user}:{pass}"));
        }
        if self.is_tls() {
            let dir = self.dir().join("skopeo-certs");
            args.push(format!("{prefix}cert-dir={}", dir.display()));
        } else {
            args.push(format!("{prefix}tls-verify=false"));
        }
        args
    }

    /// A `skopeo` command isolated from host state: its own policy, auth file and registries
    /// configuration.
    fn skopeo(&self) -> Command {
        let dir = self.dir();
        let mut cmd = Command::new("skopeo");
        cmd.arg("--policy")
            .arg(dir.join("policy.json"))
            .arg("--registries.d")
            .arg(dir.join("registries.d"))
            .env("REGISTRY_AUTH_FILE", dir.join("auth.json"))
            .env("CONTAINERS_REGISTRIES_CONF", dir.join("registries.conf"))
            .stdin(Stdio::null());
        cmd
    }

    /// The manifest (or index) bytes under `repo_tag` (`REPO:TAG` or `REPO@DIGEST`) and their
    /// digest `sha256:...`, as `skopeo inspect --raw` reads them.
    fn skopeo_inspect_raw(&self, repo_tag: &str) -> (Vec<u8>, String) {
        let mut cmd = self.skopeo();
        cmd.args(["inspect", "--raw"])
            .args(self.skopeo_args(Side::Direct))
            .arg(format!("docker://{}/{repo_tag}", self.host()));
        let out = run_ok(cmd, "skopeo inspect --raw");
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&out.stdout)));
        (out.stdout, digest)
    }

    /// Copies `repo_tag` (every platform) out of the registry into the OCI layout `dir`.
    fn skopeo_copy_to_oci(&self, repo_tag: &str, dir: &Path) {
        let mut cmd = self.skopeo();
        cmd.args(["copy", "--all", "--preserve-digests"])
            .args(self.skopeo_args(Side::Src))
            .arg(format!("docker://{}/{repo_tag}", self.host()))
            .arg(format!("oci:{}", dir.display()));
        run_ok(cmd, "skopeo copy to oci");
    }

    /// Copies `layout_ref` (any skopeo source, e.g. `oci:DIR:TAG`, every platform, digests
    /// unchanged) into the registry as `repo_tag`, with the registry's credentials.
    fn skopeo_copy_from_oci(&self, layout_ref: &str, repo_tag: &str) {
        let out = self.try_skopeo_copy_from_oci(layout_ref, repo_tag, self.credentials());
        assert!(
            out.status.success(),
            "skopeo copy {layout_ref} -> {repo_tag} failed: {}\nregistry log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// Like [`TestRegistry::skopeo_copy_from_oci`] with the given credentials (`None`: anonymous),
    /// returning skopeo's output whatever happened.
    fn try_skopeo_copy_from_oci(
        &self,
        layout_ref: &str,
        repo_tag: &str,
        creds: Option<(&str, &str)>,
    ) -> Output {
        let mut cmd = self.skopeo();
        cmd.args(["copy", "--all", "--preserve-digests"]);
        cmd.args(
            self.skopeo_args(Side::Dest)
                .into_iter()
                .filter(|a| !a.starts_with("--dest-creds=")),
        );
        if let Some((user, pass)) = creds {
            cmd.arg(format!("--dest-creds={user}:{pass}"));
        }
        cmd.arg(layout_ref)
            .arg(format!("docker://{}/{repo_tag}", self.host()));
        cmd.output()
            .expect("cannot run `skopeo`: install it (make deps)")
    }

    /// Whether `repo_tag` (`REPO:TAG` or `REPO@DIGEST`) names a manifest the registry serves.
    /// Works where there is no tag list (container-registry has none).
    fn has_manifest(&self, repo_tag: &str) -> bool {
        let mut cmd = self.skopeo();
        cmd.args(["inspect", "--raw"])
            .args(self.skopeo_args(Side::Direct))
            .arg(format!("docker://{}/{repo_tag}", self.host()));
        let out = cmd
            .output()
            .expect("cannot run `skopeo`: install it (make deps)");
        if out.status.success() {
            return true;
        }
        let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(
            stderr.contains("unknown") || stderr.contains("404") || stderr.contains("not found"),
            "skopeo inspect {repo_tag} failed for another reason than a missing manifest: {stderr}"
        );
        false
    }

    /// The tags of `repo` (`skopeo list-tags`); empty when the repository has none or is unknown.
    fn tags(&self, repo: &str) -> Vec<String> {
        let mut cmd = self.skopeo();
        cmd.arg("list-tags")
            .args(self.skopeo_args(Side::Direct))
            .arg(format!("docker://{}/{repo}", self.host()));
        let out = cmd
            .output()
            .expect("cannot run `skopeo`: install it (make deps)");
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("404"),
                "skopeo list-tags {repo} failed: {stderr}"
            );
            return Vec::new();
        }
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("skopeo list-tags prints JSON");
        let mut tags: Vec<String> = json["Tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        tags
    }
}

fn run_ok(mut cmd: Command, what: &str) -> Output {
    let out = cmd
        .output()
        .expect("cannot run `skopeo`: install it (make deps)");
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
