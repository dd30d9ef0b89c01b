//! Issue 22: a kubeconfig whose user gets its credentials from an `exec` plugin (a cloud CLI, an
//! SSO helper). The plugin is run once per run, whatever it answers (a token, a token about to
//! expire, a client certificate), for a push and for a pull to the cluster's Gitea; kube's
//! client on its own ran it three times to build one client, and again before every request
//! when the token was about to expire.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::support::kube_api::{self, FakeCluster};
use super::support::skopeo::TestRegistry as _;
use super::{CertAt, PASS, idpbuilder, idpbuilder_cluster, idpbuilder_registry, image, text};

/// Writes a plugin into `dir` that appends a line to `runs` each time it runs and prints
/// `answer` (an ExecCredential; `EXPIRY` in it becomes a time 30 s from the run).
fn plugin(dir: &Path, answer: &serde_json::Value) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt as _;
    let runs = dir.join("runs");
    let answer_file = dir.join("answer.json");
    std::fs::write(&answer_file, answer.to_string()).expect("write answer");
    let script = format!(
        "#!/bin/sh\necho run >> '{}'\n\
         expiry=$(date -u -d \"@$(( $(date +%s) + 30 ))\" +%Y-%m-%dT%H:%M:%SZ)\n\
         sed \"s/EXPIRY/$expiry/\" '{}'\n",
        runs.display(),
        answer_file.display()
    );
    let path = dir.join("plugin");
    std::fs::write(&path, script).expect("write plugin");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (path, runs)
}

fn credential(status: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status})
}

/// How many times the plugin ran since `runs` was last removed.
fn runs(runs: &Path) -> usize {
    let count = std::fs::read_to_string(runs)
        .unwrap_or_default()
        .lines()
        .count();
    let _ = std::fs::remove_file(runs);
    count
}

fn cluster(registry: &super::support::registry::Registry) -> FakeCluster {
    let ca = registry.ca_file().expect("TLS registry").to_path_buf();
    idpbuilder_cluster(&["localhost"], Some((&ca, CertAt::DefaultSecret)))
}

/// No secret of the run (the plugin's token, the cluster's password) in what it printed.
fn assert_no_secret(all: &str) {
    for secret in [kube_api::TOKEN, PASS] {
        assert!(!all.contains(secret), "a secret leaked at -l trace:\n{all}");
    }
}

#[test]
fn a_kubeconfig_exec_plugin_runs_once_for_a_push_and_once_for_a_pull() {
    let registry = idpbuilder_registry();
    let cluster = cluster(&registry);
    let home = tempfile::tempdir().expect("home");
    let (layout, expected) = image(home.path());
    let (plugin, count) = plugin(home.path(), &credential(json!({"token": kube_api::TOKEN})));
    let kubeconfig = cluster.exec_kubeconfig(home.path(), &plugin);
    let dest = format!("{}/giteaadmin/app:1.0", registry.localhost());
    let output = idpbuilder(home.path())
        .env("KUBECONFIG", &kubeconfig)
        .args(["-l", "trace", &layout, &dest])
        .output()
        .expect("run idpbuilder");
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert_no_secret(&all);
    let (_, digest) = registry.skopeo_inspect_raw("giteaadmin/app:1.0");
    assert_eq!(digest, expected.manifest_digest);
    assert_eq!(runs(&count), 1, "the plugin's runs for a push:\n{all}");

    let pulled = home.path().join("pulled");
    let output = super::support::idpbuilder_at(home.path())
        .env("KUBECONFIG", &kubeconfig)
        .args(["pull", "-l", "trace", &dest])
        .arg(format!("oci:{}", pulled.display()))
        .output()
        .expect("run idpbuilder pull");
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert_no_secret(&all);
    assert_eq!(runs(&count), 1, "the plugin's runs for a pull:\n{all}");
    assert!(
        cluster
            .requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(&*format!("Bearer {}", kube_api::TOKEN))),
        "every cluster read carried the plugin's token"
    );
}

/// A token that expires within the minute (kube's client ran the plugin again before every
/// request), and a client certificate instead of a token: once each.
#[test]
fn an_expiring_token_or_a_client_certificate_from_an_exec_plugin_is_asked_for_once() {
    let registry = idpbuilder_registry();
    let cluster = cluster(&registry);
    let (certificate, key) = cluster.client_identity();
    let answers = [
        (
            "a token expiring in 30 s",
            credential(json!({"token": kube_api::TOKEN, "expirationTimestamp": "EXPIRY"})),
        ),
        (
            "a client certificate",
            credential(json!({"clientCertificateData": certificate, "clientKeyData": key})),
        ),
    ];
    for (what, answer) in answers {
        let home = tempfile::tempdir().expect("home");
        let (layout, _) = image(home.path());
        let (plugin, count) = plugin(home.path(), &answer);
        let output = idpbuilder(home.path())
            .env("KUBECONFIG", cluster.exec_kubeconfig(home.path(), &plugin))
            .args(["-l", "debug", &layout])
            .arg(format!("{}/giteaadmin/app:1.0", registry.localhost()))
            .output()
            .expect("run idpbuilder");
        let all = text(&output);
        assert!(output.status.success(), "{what}: {all}");
        assert!(
            all.contains("the cluster's secret gitea/gitea-credential"),
            "{what}: the cluster was read with the plugin's answer:\n{all}"
        );
        assert_eq!(runs(&count), 1, "{what}: the plugin's runs:\n{all}");
    }
    assert!(
        cluster.requests().iter().any(|r| r.client_certificate),
        "the plugin's client certificate was presented"
    );
}

/// Whether process `pid` is gone (or a zombie waiting for init), within a second or two.
fn gone(pid: &str) -> bool {
    for _ in 0..100 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
        if stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z") {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

/// A plugin that starts a child and waits (an SSO prompt nobody answers): the push goes on at
/// the budget (here 1 s) and the plugin is killed then with its child, not left running.
#[test]
fn a_slow_exec_plugin_is_killed_with_its_child_at_the_budget() {
    use std::os::unix::fs::PermissionsExt as _;
    let registry = super::support::registry::Registry::start(
        super::support::registry::RegistryOptions::default(),
    );
    let cluster = FakeCluster::start();
    let home = tempfile::tempdir().expect("home");
    let (layout, _) = image(home.path());
    let (plugin_pid, child_pid) = (
        home.path().join("plugin.pid"),
        home.path().join("child.pid"),
    );
    let plugin = home.path().join("plugin");
    let script = format!(
        "#!/bin/sh\necho $$ > '{}'\nsleep 600 &\necho $! > '{}'\nwait\n",
        plugin_pid.display(),
        child_pid.display()
    );
    std::fs::write(&plugin, script).expect("write plugin");
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let started = std::time::Instant::now();
    let output = idpbuilder(home.path())
        .env("KUBECONFIG", cluster.exec_kubeconfig(home.path(), &plugin))
        .env("IDPBUILDER_TEST_CLUSTER_BUDGET_MS", "1000")
        .args(["--plain-http", "-l", "debug", &layout])
        .arg(format!("{}/team/app:1.0", registry.localhost()))
        .output()
        .expect("run idpbuilder");
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{all}"
    );
    assert!(all.contains("cluster: no answer within 1s"), "{all}");
    for (what, file) in [("the plugin", &plugin_pid), ("its child", &child_pid)] {
        let pid = std::fs::read_to_string(file).expect("the plugin ran");
        assert!(gone(&pid), "{what} ({}) is still running", pid.trim());
    }
}
