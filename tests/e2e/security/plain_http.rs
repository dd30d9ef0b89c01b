//! Credentials over plain HTTP: the cluster's Gitea admin credentials never go in clear text to
//! a host that is not loopback; credentials the user gave do, with a `warning:` line.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use super::fake::Fake;
use super::support::kube_api::{FakeCluster, KubeAuth};
use super::{PASS, Scheme, Sessions, USER, basic, idpbuilder, image, registry, text};

/// An address of this machine that is not loopback (the one it would reach the network from),
/// found without sending a packet; `None` on a machine with no network at all.
fn non_loopback_address() -> Option<IpAddr> {
    ["192.0.2.1:9", "10.255.255.1:9", "8.8.8.8:53"]
        .iter()
        .find_map(|target| {
            let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
            socket.connect(target).ok()?;
            let ip = socket.local_addr().ok()?.ip();
            (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
        })
}

/// A cluster whose Gitea Ingress names `host`, with the admin credentials.
fn cluster(host: &str) -> FakeCluster {
    let cluster = FakeCluster::start();
    cluster.secret(
        "gitea",
        "gitea-credential",
        &[("username", USER.as_bytes()), ("password", PASS.as_bytes())],
    );
    cluster.ingresses("gitea", &[host]);
    cluster
}

fn destination(registry: &Fake, ip: IpAddr) -> String {
    format!("{}/team/app:1.0", SocketAddr::new(ip, registry.port()))
}

fn warnings(all: &str) -> Vec<&str> {
    all.lines().filter(|l| l.starts_with("warning:")).collect()
}

#[test]
fn cluster_credentials_never_go_over_plain_http_to_a_host_that_is_not_loopback() {
    let Some(ip) = non_loopback_address() else {
        eprintln!("skipped: this machine has no address that is not loopback");
        return;
    };
    let registry = Fake::plain_on(ip, registry(Scheme::Basic, Sessions::default(), None));
    let home = tempfile::tempdir().expect("home");
    let cluster = cluster(&ip.to_string());
    let layout = image(home.path(), 3_000);
    let output = idpbuilder(home.path())
        .env(
            "KUBECONFIG",
            cluster.kubeconfig(home.path(), KubeAuth::Token),
        )
        .args([
            "--plain-http",
            "-l",
            "debug",
            &layout,
            &destination(&registry, ip),
        ])
        .output()
        .expect("run idpbuilder");
    let all = text(&output);
    // An IP address is never the cluster's Gitea (an Ingress host is a name), so the cluster is
    // not even read: its credentials cannot go anywhere. The push goes anonymous and is refused.
    assert_eq!(output.status.code(), Some(3), "{all}");
    assert!(
        all.contains("cannot be the cluster's Gitea") && !all.contains("gitea-credential"),
        "the cluster was not read: {all}"
    );
    assert!(registry.authorized().is_empty(), "{:?}", registry.seen());
    assert!(!all.contains(PASS), "{all}");
}

#[test]
fn credentials_given_by_the_user_over_plain_http_to_a_host_that_is_not_loopback_draw_a_warning() {
    let Some(ip) = non_loopback_address() else {
        eprintln!("skipped: this machine has no address that is not loopback");
        return;
    };
    let registry = Fake::plain_on(ip, registry(Scheme::Basic, Sessions::default(), None));
    let home = tempfile::tempdir().expect("home");
    let layout = image(home.path(), 3_000);
    let output = idpbuilder(home.path())
        .args(["--plain-http", "-u", USER, "--password-stdin", &layout])
        .arg(destination(&registry, ip))
        .write_stdin(format!("{PASS}\n"))
        .output()
        .expect("run idpbuilder");
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    let warned = warnings(&all);
    assert_eq!(warned.len(), 1, "{all}");
    assert!(
        warned[0].contains("plain HTTP") && warned[0].contains(&ip.to_string()),
        "{all}"
    );
    assert!(
        registry
            .authorized()
            .iter()
            .all(|s| s.authorization == Some(basic(USER, PASS)))
    );
    assert!(!registry.authorized().is_empty());
}

#[test]
fn credentials_over_plain_http_to_a_loopback_host_need_no_warning() {
    // Locations as paths: they stay on `localhost`, the name the cluster's Gitea has here.
    let answer = registry(Scheme::Basic, Sessions::default(), None);
    let registry = Fake::plain(move |seen, me| answer(seen, me).location_as_path(me));
    let home = tempfile::tempdir().expect("home");
    // A name, as an Ingress host must be: the cluster is read for it.
    let cluster = cluster("localhost");
    let layout = image(home.path(), 3_000);
    for user_given in [false, true] {
        let mut cmd = idpbuilder(home.path());
        cmd.env(
            "KUBECONFIG",
            cluster.kubeconfig(home.path(), KubeAuth::Token),
        )
        .arg("--plain-http");
        if user_given {
            cmd.args(["-u", USER, "--password-stdin"])
                .write_stdin(format!("{PASS}\n"));
        }
        let output = cmd
            .arg(&layout)
            .arg(format!("localhost:{}/team/app:1.0", registry.port()))
            .output()
            .expect("run idpbuilder");
        let all = text(&output);
        assert_eq!(output.status.code(), Some(0), "{all}");
        assert!(warnings(&all).is_empty(), "{all}");
    }
    assert!(
        registry
            .authorized()
            .iter()
            .all(|s| s.authorization == Some(basic(USER, PASS)))
    );
}
