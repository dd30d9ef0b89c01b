//! Bad cluster data and bad flags: each is passed over with a debug line, or is an `error:` (exit
//! 2) when the user named it explicitly.

use std::path::{Path, PathBuf};

use super::support::kube_api::{FakeCluster, KubeAuth};
use super::{
    Recorder, idpbuilder, idpbuilder_cluster, idpbuilder_registry, image, push_to_recorder,
    push_with_cluster, text,
};

/// Pushes to a recorder standing for the Gitea host, with a cluster that lists it and holds
/// what `setup` puts there (no credential secret unless it adds one).
fn push_with_bad_cluster(setup: impl FnOnce(&FakeCluster)) -> (Option<i32>, String) {
    let home = tempfile::tempdir().expect("home");
    let cluster = FakeCluster::start();
    cluster.ingresses("gitea", &["localhost"]);
    setup(&cluster);
    let recorder = Recorder::start();
    let kubeconfig = cluster.kubeconfig(home.path(), KubeAuth::Token);
    let result = push_to_recorder(&recorder, "localhost", home.path(), &kubeconfig, &[]);
    assert!(recorder.authorizations().is_empty());
    result
}

#[test]
fn a_missing_secret_is_passed_over_with_a_debug_line() {
    let (code, all) = push_with_bad_cluster(|_| {});
    assert_eq!(code, Some(3), "{all}");
    assert!(
        all.contains("gitea/gitea-credential (404 NotFound"),
        "{all}"
    );
    assert!(all.contains("hint:"), "{all}");
}

#[test]
fn a_secret_without_the_keys_is_passed_over_with_a_debug_line() {
    let (code, all) =
        push_with_bad_cluster(|c| c.secret("gitea", "gitea-credential", &[("user", b"x")]));
    assert_eq!(code, Some(3), "{all}");
    assert!(
        all.contains("passing over Secret gitea/gitea-credential: it has no username key"),
        "{all}"
    );
}

#[test]
fn a_forbidden_secret_is_passed_over_with_a_debug_line() {
    let (code, all) =
        push_with_bad_cluster(|c| c.forbid("/api/v1/namespaces/gitea/secrets/gitea-credential"));
    assert_eq!(code, Some(3), "{all}");
    assert!(all.contains("403 Forbidden"), "{all}");
}

#[test]
fn a_configmap_holding_garbage_is_passed_over_and_tls_fails_with_exit_4() {
    let registry = idpbuilder_registry();
    let home = tempfile::tempdir().expect("home");
    let (layout, _) = image(home.path());
    let cluster = idpbuilder_cluster(&["localhost"], None);
    cluster.config_map(
        "default",
        "idpbuilder-cert",
        &[("ca.crt", "this is not a certificate")],
    );
    let output = push_with_cluster(home.path(), &cluster, &layout, &registry);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(4), "{all}");
    assert!(
        all.contains(
            "passing over ConfigMap default/idpbuilder-cert key ca.crt: it holds no PEM certificate"
        ),
        "{all}"
    );
    assert!(
        all.contains("--ca-file") && all.contains("--insecure"),
        "{all}"
    );
}

fn explicit_kubeconfig_error(args: &[&str], kubeconfig: Option<&Path>) -> String {
    let home = tempfile::tempdir().expect("home");
    let (layout, _) = image(home.path());
    let mut cmd = idpbuilder(home.path());
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    let output = cmd
        .args(args)
        .args([&layout, "localhost:1/giteaadmin/app:1.0"])
        .output()
        .expect("run");
    let all = text(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(
        all.starts_with("error: ") || all.contains("\nerror: "),
        "{all}"
    );
    all
}

#[test]
fn a_malformed_kubeconfig_is_an_error_when_named_and_passed_over_when_found() {
    let dir = tempfile::tempdir().expect("dir");
    let broken: PathBuf = dir.path().join("broken");
    std::fs::write(&broken, "clusters: [ {{ not yaml").expect("write");
    let all = explicit_kubeconfig_error(&["--kubeconfig", &broken.display().to_string()], None);
    assert!(
        all.contains(&format!("cannot read --kubeconfig {}", broken.display())),
        "{all}"
    );
    let missing = dir.path().join("missing").display().to_string();
    explicit_kubeconfig_error(&["--kubeconfig", &missing], None);

    let recorder = Recorder::start();
    let (code, all) = push_to_recorder(&recorder, "localhost", dir.path(), &broken, &[]);
    assert_eq!(code, Some(3), "{all}");
    assert!(
        all.contains(&format!("cluster: passing over {}", broken.display())),
        "{all}"
    );
}

#[test]
fn an_unknown_context_is_an_error_naming_the_known_ones() {
    let dir = tempfile::tempdir().expect("dir");
    let cluster = FakeCluster::start();
    let kubeconfig = cluster.kubeconfig(dir.path(), KubeAuth::Token);
    let all = explicit_kubeconfig_error(&["--context", "nope"], Some(&kubeconfig));
    assert!(
        all.contains("error: context \"nope\" is not in $KUBECONFIG"),
        "{all}"
    );
    assert!(all.contains("hint: pass one of: fake"), "{all}");
    assert!(cluster.requests().is_empty());
}
