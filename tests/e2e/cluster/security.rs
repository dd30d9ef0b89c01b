//! What goes where: the cluster's credentials and certificate reach only its own Gitea host, and
//! each credential source wins over the later ones.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::support::kube_api::{self, KubeAuth};
use super::{
    CertAt, PASS, Recorder, USER, basic, idpbuilder, idpbuilder_cluster, idpbuilder_registry,
    image, push_to_recorder, push_with_cluster, text,
};

#[test]
fn the_cluster_certificate_is_not_trusted_for_a_host_that_is_not_its_gitea() {
    let registry = idpbuilder_registry();
    let ca = registry.ca_file().expect("TLS registry").to_path_buf();
    let home = tempfile::tempdir().expect("home");
    let (layout, _) = image(home.path());
    // The Ingress names another host; then the Ingresses cannot be read (fallback names only).
    let listed_elsewhere = idpbuilder_cluster(
        &["gitea.cnoe.localtest.me"],
        Some((&ca, CertAt::DefaultSecret)),
    );
    let unreadable = idpbuilder_cluster(&[], Some((&ca, CertAt::DefaultSecret)));
    unreadable.forbid(&kube_api::ingress_path("gitea"));
    for cluster in [listed_elsewhere, unreadable] {
        let output = push_with_cluster(home.path(), &cluster, &layout, &registry);
        let all = text(&output);
        assert_eq!(output.status.code(), Some(4), "{all}");
        assert!(all.contains("is not the cluster's Gitea"), "{all}");
        assert!(
            !registry.log().contains("giteaadmin/app"),
            "no request reached the registry"
        );
    }
}

#[test]
fn cluster_credentials_never_go_to_a_host_that_is_not_its_gitea() {
    let home = tempfile::tempdir().expect("home");
    let cluster = idpbuilder_cluster(&["localhost"], None);
    let kubeconfig = cluster.kubeconfig(home.path(), KubeAuth::Token);

    let elsewhere = Recorder::start();
    let (code, all) = push_to_recorder(&elsewhere, "127.0.0.1", home.path(), &kubeconfig, &[]);
    assert_eq!(code, Some(3), "{all}");
    assert!(
        elsewhere.authorizations().is_empty(),
        "{:?}",
        elsewhere.authorizations()
    );
    assert!(
        all.contains("credentials for 127.0.0.1:") && all.contains("none (anonymous)"),
        "{all}"
    );

    // The control: the same recorder under the Gitea host name does get them.
    let gitea = Recorder::start();
    let (code, all) = push_to_recorder(&gitea, "localhost", home.path(), &kubeconfig, &[]);
    assert_eq!(code, Some(3), "{all}");
    assert_eq!(gitea.authorizations(), vec![basic(USER, PASS)]);
}

#[test]
fn each_source_wins_over_the_later_ones() {
    let home = tempfile::tempdir().expect("home");
    let cluster = idpbuilder_cluster(&["localhost"], None);
    let kubeconfig = cluster.kubeconfig(home.path(), KubeAuth::Token);
    let recorder = Recorder::start();
    let docker = home.path().join("docker");
    std::fs::create_dir_all(&docker).expect("mkdir docker");
    let key = format!("localhost:{}", recorder.port());
    let auth = STANDARD.encode("dockeruser:dockerpass");
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"{key}":{{"auth":"{auth}"}}}}}}"#),
    )
    .expect("write config.json");

    let mut seen = Vec::new();
    for case in ["flags", "env", "cluster", "docker"] {
        let before = recorder.authorizations().len();
        let (layout, _) = image(home.path());
        let mut cmd = idpbuilder(home.path());
        cmd.env("KUBECONFIG", &kubeconfig)
            .env("DOCKER_CONFIG", &docker);
        match case {
            "flags" => {
                cmd.env("IDPBUILDER_REGISTRY_USERNAME", "envuser")
                    .env("IDPBUILDER_REGISTRY_PASSWORD", "envpass")
                    .args(["-u", "flaguser", "--password-stdin"])
                    .write_stdin("flagpass\n");
            }
            "env" => {
                cmd.env("IDPBUILDER_REGISTRY_USERNAME", "envuser")
                    .env("IDPBUILDER_REGISTRY_PASSWORD", "envpass");
            }
            "docker" => cluster.secret("gitea", "gitea-credential", &[]),
            _ => {}
        }
        let output = cmd
            .args([
                "--plain-http",
                &layout,
                &format!("{key}/giteaadmin/app:1.0"),
            ])
            .output()
            .expect("run idpbuilder");
        assert_eq!(output.status.code(), Some(3), "{case}: {}", text(&output));
        seen.push(recorder.authorizations()[before..].to_vec());
    }
    assert_eq!(
        seen,
        vec![
            vec![basic("flaguser", "flagpass")],
            vec![basic("envuser", "envpass")],
            vec![basic(USER, PASS)],
            vec![basic("dockeruser", "dockerpass")],
        ]
    );
}
