//! Copies out of and within the cluster's Gitea (`docker://` IMAGE): idpbuilder's certificate is
//! trusted for the source when it is the cluster's Gitea, and the admin credentials reach the
//! source only as the destination's own, when both are that Gitea.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::support::fixtures::{self, ImageSpec};
use super::support::kube_api::KubeAuth;
use super::support::push::verify;
use super::support::registry::{Registry, RegistryOptions};
use super::support::skopeo::TestRegistry as _;
use super::support::{stderr, stdout};
use super::{CertAt, PASS, USER, idpbuilder, idpbuilder_cluster, idpbuilder_registry, text};

/// The cluster's Gitea (a registry with idpbuilder's certificate and the admin password, at
/// `localhost`) holding a small image at `giteaadmin/app:1.0`.
fn gitea_with_an_image(dir: &std::path::Path) -> (Registry, fixtures::FixtureImage) {
    let gitea = idpbuilder_registry();
    let layout = dir.join("layout");
    let image = fixtures::oci_layout(&layout, &ImageSpec::new("1.0", &[40_000]));
    gitea.skopeo_copy_from_oci(
        &format!("oci:{}:1.0", layout.display()),
        "giteaadmin/app:1.0",
    );
    (gitea, image)
}

#[test]
fn a_copy_out_of_the_clusters_gitea_trusts_its_certificate_but_gets_no_admin_credentials() {
    let home = tempfile::tempdir().expect("home");
    let (gitea, image) = gitea_with_an_image(home.path());
    let ca = gitea.ca_file().expect("TLS").to_path_buf();
    let cluster = idpbuilder_cluster(&["localhost"], Some((&ca, CertAt::DefaultSecret)));
    let kubeconfig = cluster.kubeconfig(home.path(), KubeAuth::Token);
    let dest = Registry::start(RegistryOptions::default());
    let source = format!("docker://{}/giteaadmin/app:1.0", gitea.localhost());
    let to = format!("{}/mirror/app:1.0", dest.host());

    // Without source credentials: anonymous, refused; the admin password stayed home.
    let output = idpbuilder(home.path())
        .env("KUBECONFIG", &kubeconfig)
        .args(["--plain-http", "-l", "debug", &source, &to])
        .output()
        .expect("run idpbuilder");
    let all = text(&output);
    assert_eq!(output.status.code(), Some(3), "{all}");
    assert!(
        stderr(&output).contains(&format!(
            "\nerror: source registry {} refused anonymous access to giteaadmin/app",
            gitea.localhost()
        )),
        "{all}"
    );
    assert!(
        all.contains("credentials for the source localhost"),
        "{all}"
    );
    assert!(all.contains("none (anonymous)"), "{all}");
    assert!(
        !gitea.log().contains("Basic "),
        "no Authorization went to the source"
    );

    // With them: idpbuilder's certificate is trusted for the source without --src-ca-file.
    let output = idpbuilder(home.path())
        .env("KUBECONFIG", &kubeconfig)
        .env("IDPBUILDER_SRC_USERNAME", USER)
        .env("IDPBUILDER_SRC_PASSWORD", PASS)
        .args(["--plain-http", "-l", "debug", &source, &to])
        .output()
        .expect("run idpbuilder");
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(
        all.contains("TLS for the source localhost"),
        "the cluster's certificate was pinned for the source: {all}"
    );
    assert_eq!(
        stdout(&output).lines().last().unwrap_or_default(),
        format!("{to}@{}", image.manifest_digest)
    );
    verify(&dest, "mirror/app:1.0", &image);
}

#[test]
fn a_copy_within_the_clusters_gitea_needs_no_flags_and_mounts_the_blobs() {
    let home = tempfile::tempdir().expect("home");
    let (gitea, image) = gitea_with_an_image(home.path());
    let ca = gitea.ca_file().expect("TLS").to_path_buf();
    let cluster = idpbuilder_cluster(&["localhost"], Some((&ca, CertAt::DefaultSecret)));
    let kubeconfig = cluster.kubeconfig(home.path(), KubeAuth::Token);
    let to = format!("{}/giteaadmin/copy:1.0", gitea.localhost());
    let output = idpbuilder(home.path())
        .env("KUBECONFIG", &kubeconfig)
        .args(["-l", "trace"])
        .arg(format!("docker://{}/giteaadmin/app:1.0", gitea.localhost()))
        .arg(&to)
        .output()
        .expect("run idpbuilder");
    let all = text(&output);
    assert!(output.status.success(), "{all}\n{}", gitea.log());
    assert!(
        all.contains("the destination's credentials (same registry)"),
        "{all}"
    );
    assert_eq!(
        all.matches("mounted sha256:").count(),
        image.blob_digests.len(),
        "{all}"
    );
    assert_eq!(
        stdout(&output).lines().last().unwrap_or_default(),
        format!("{to}@{}", image.manifest_digest)
    );
    for secret in [PASS.to_string(), STANDARD.encode(format!("{USER}:{PASS}"))] {
        assert!(!all.contains(&secret), "a secret at -l trace");
    }
    verify(&gitea, "giteaadmin/copy:1.0", &image);
}
