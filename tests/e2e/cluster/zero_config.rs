//! What works with no flags at all, and what happens when the cluster cannot be reached.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::support::kube_api::{self, FakeCluster, KubeAuth, SilentServer};
use super::support::push::result_line;
use super::support::registry::Registry;
use super::support::skopeo::TestRegistry as _;
use super::support::stderr;
use super::{CertAt, PASS, USER, idpbuilder, idpbuilder_cluster, idpbuilder_registry, image, text};

/// Pushes with no credential or TLS flag, with `kubeconfig` given by `how`, and checks the
/// digest with skopeo. Returns everything the binary printed.
fn zero_config_push(
    registry: &Registry,
    cluster: &FakeCluster,
    auth: KubeAuth,
    how: &str,
) -> String {
    let home = tempfile::tempdir().expect("home");
    let (layout, expected) = image(home.path());
    let kubeconfig = cluster.kubeconfig(home.path(), auth);
    let mut cmd = idpbuilder(home.path());
    match how {
        "flag" => {
            cmd.arg("--kubeconfig").arg(&kubeconfig);
        }
        "home" => {
            std::fs::create_dir_all(home.path().join(".kube")).expect("mkdir .kube");
            std::fs::copy(&kubeconfig, home.path().join(".kube/config")).expect("copy kubeconfig");
        }
        _ => {
            cmd.env("KUBECONFIG", &kubeconfig);
        }
    }
    let dest = format!("{}/giteaadmin/app:1.0", registry.localhost());
    let output = cmd
        .args(["-l", "trace", &layout, &dest])
        .output()
        .expect("run idpbuilder");
    let all = text(&output);
    assert!(
        output.status.success(),
        "push failed:\n{all}\nregistry log:\n{}",
        registry.log()
    );
    assert_eq!(
        result_line(&output),
        format!("{dest}@{}", expected.manifest_digest)
    );
    let (_, digest) = registry.skopeo_inspect_raw("giteaadmin/app:1.0");
    assert_eq!(
        digest, expected.manifest_digest,
        "skopeo sees the pushed digest"
    );
    for secret in [
        PASS.to_string(),
        STANDARD.encode(format!("{USER}:{PASS}")),
        kube_api::TOKEN.to_string(),
    ] {
        assert!(
            !all.contains(&secret),
            "a secret leaked at -l trace:\n{all}"
        );
    }
    all
}

#[test]
fn a_push_without_flags_takes_credentials_and_certificate_from_the_default_secret() {
    let registry = idpbuilder_registry();
    let ca = registry.ca_file().expect("TLS registry").to_path_buf();
    let cluster = idpbuilder_cluster(&["localhost"], Some((&ca, CertAt::DefaultSecret)));
    let log = zero_config_push(&registry, &cluster, KubeAuth::Token, "env");
    assert!(log.contains("credentials for localhost:"), "{log}");
    assert!(
        log.contains("the cluster's secret gitea/gitea-credential"),
        "{log}"
    );
    assert!(
        log.contains("Secret default/idpbuilder-cert key ca.crt"),
        "{log}"
    );
    let requests = cluster.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(r.method, "GET", "the cluster is only read: {r:?}");
        assert_eq!(
            r.authorization.as_deref(),
            Some(&*format!("Bearer {}", kube_api::TOKEN))
        );
    }
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert!(
        paths.contains(&"/api/v1/namespaces/gitea/secrets/gitea-credential"),
        "{paths:?}"
    );
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with(&kube_api::ingress_path("gitea"))),
        "{paths:?}"
    );
}

#[test]
fn older_releases_keep_the_certificate_in_a_configmap_and_the_token_stands_in_for_the_password() {
    let registry = idpbuilder_registry();
    let ca = registry.ca_file().expect("TLS registry").to_path_buf();
    let cluster = idpbuilder_cluster(&["localhost"], Some((&ca, CertAt::DefaultConfigMap)));
    cluster.secret(
        "gitea",
        "gitea-credential",
        &[
            ("username", USER.as_bytes()),
            ("password", b""),
            ("token", PASS.as_bytes()),
        ],
    );
    let log = zero_config_push(&registry, &cluster, KubeAuth::ClientCertificate, "flag");
    assert!(
        log.contains("ConfigMap default/idpbuilder-cert key ca.crt"),
        "{log}"
    );
    for r in cluster.requests() {
        assert!(r.client_certificate && r.authorization.is_none(), "{r:?}");
    }
}

#[test]
fn the_certificate_is_found_in_ingress_nginx_with_the_kubeconfig_in_home() {
    let registry = idpbuilder_registry();
    let ca = registry.ca_file().expect("TLS registry").to_path_buf();
    let cluster = idpbuilder_cluster(&["localhost"], Some((&ca, CertAt::IngressNginx)));
    let log = zero_config_push(&registry, &cluster, KubeAuth::Token, "home");
    assert!(
        log.contains("Secret ingress-nginx/idpbuilder-cert key tls.crt"),
        "{log}"
    );
}

#[test]
fn an_unreachable_cluster_is_passed_over_and_the_untrusted_certificate_exits_4_in_time() {
    let registry = idpbuilder_registry();
    let home = tempfile::tempdir().expect("home");
    let (layout, _) = image(home.path());
    let silent = SilentServer::start();
    let creds = FakeCluster::start();
    let closed = format!("https://127.0.0.1:{}", kube_api::closed_port());
    let runs = [
        ("closed", closed.clone(), "debug"),
        ("silent", silent.url(), "debug"),
        ("quiet", closed, "warn"),
    ];
    for (name, url, level) in runs {
        let kubeconfig = kube_api::write_kubeconfig(
            home.path(),
            name,
            &url,
            &creds.ca(),
            KubeAuth::Token,
            home.path(),
        );
        let started = Instant::now();
        let output = idpbuilder(home.path())
            .env("KUBECONFIG", &kubeconfig)
            .args([
                "-l",
                level,
                &layout,
                &format!("{}/giteaadmin/app:1.0", registry.localhost()),
            ])
            .timeout(Duration::from_secs(30))
            .output()
            .expect("run idpbuilder");
        let elapsed = started.elapsed();
        let all = text(&output);
        assert_eq!(output.status.code(), Some(4), "{name}: {all}");
        assert!(
            elapsed < Duration::from_secs(10),
            "{name}: took {elapsed:?}"
        );
        assert!(
            all.contains("--ca-file") && all.contains("--insecure"),
            "{name}: {all}"
        );
        if level == "debug" {
            assert!(
                all.contains("cluster:"),
                "{name}: a debug line says why: {all}"
            );
        } else {
            let stderr = stderr(&output);
            assert!(
                stderr
                    .lines()
                    .all(|l| l.starts_with("error:") || l.starts_with("hint:")),
                "{name}: only the error and its hint at the default level: {all}"
            );
        }
    }
}

#[test]
fn the_cluster_is_not_read_when_credentials_and_trust_are_given() {
    let registry = idpbuilder_registry();
    let home = tempfile::tempdir().expect("home");
    let (layout, _) = image(home.path());
    let cluster = idpbuilder_cluster(&["localhost"], None);
    let output = idpbuilder(home.path())
        .env(
            "KUBECONFIG",
            cluster.kubeconfig(home.path(), KubeAuth::Token),
        )
        .env("IDPBUILDER_REGISTRY_USERNAME", USER)
        .env("IDPBUILDER_REGISTRY_PASSWORD", PASS)
        .arg("--ca-file")
        .arg(registry.ca_file().expect("TLS registry"))
        .args([
            &layout,
            &format!("{}/giteaadmin/app:1.0", registry.localhost()),
        ])
        .output()
        .expect("run idpbuilder");
    assert!(output.status.success(), "{}", text(&output));
    assert!(cluster.requests().is_empty(), "{:?}", cluster.requests());
}

/// Not a check: serves a fake idpbuilder (cluster + registry) for a push by hand, printing the
/// command to try. Run with `cargo test --test e2e -- --ignored --nocapture manual_zero_config`;
/// it stops after 5 minutes or when the file it names is removed.
#[test]
#[ignore]
fn manual_zero_config_set_up() {
    let registry = idpbuilder_registry();
    let ca = registry.ca_file().expect("TLS registry").to_path_buf();
    let cluster = idpbuilder_cluster(&["localhost"], Some((&ca, CertAt::DefaultSecret)));
    let dir = tempfile::tempdir().expect("dir");
    let (layout, _) = image(dir.path());
    let kubeconfig = cluster.kubeconfig(dir.path(), KubeAuth::Token);
    let running = dir.path().join("running");
    std::fs::write(&running, "remove me to stop").expect("write stop file");
    println!(
        "KUBECONFIG={} idpbuilder push {layout} {}/giteaadmin/app:1.0",
        kubeconfig.display(),
        registry.localhost()
    );
    println!("remove {} to stop", running.display());
    let deadline = Instant::now() + Duration::from_secs(300);
    while running.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
}
