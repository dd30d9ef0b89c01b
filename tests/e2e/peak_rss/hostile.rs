//! Hostile peers (issue 22): a registry, a token realm, credential helpers and an engine that
//! misbehave on purpose. Each run must end in bounded memory (peak RSS under 64 MiB), bounded
//! time, one `error:` line naming the peer at fault with the SPEC's exit code, and nothing
//! pushed that no manifest names.

use crate::support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use support::child::{measured, measured_with_input};
use support::hostile::{Hostile, assert_refused, endless, respond};
use support::launch::idpbuilder_process;

/// A registry whose every answer is a bearer challenge naming a realm on itself, and whose
/// realm answers `{"token":"aaaa…` without end, as fast as it is read.
#[test]
fn an_endless_token_answer_is_cut_at_64_kib() {
    let port = Arc::new(OnceLock::<String>::new());
    let realm_host = port.clone();
    let peer = Hostile::start(move |request, conn| {
        if request.path.starts_with("/token") {
            return endless(
                conn,
                &[("Content-Type", "application/json")],
                br#"{"token":""#,
                &[b'a'; 64 << 10],
                Duration::ZERO,
            );
        }
        let host = realm_host.get().cloned().unwrap_or_default();
        let challenge = format!(r#"Bearer realm="http://{host}/token",service="hostile""#);
        respond(
            conn,
            "401 Unauthorized",
            &[("WWW-Authenticate", &challenge)],
            b"{}",
        )
    });
    let _ = port.set(peer.host());
    let work = tempfile::tempdir().expect("temp dir");
    let (layout, _) = support::tiny_layout(work.path());
    let run = measured(
        idpbuilder_process()
            .args(["push", "-q", "--plain-http"])
            .arg(&layout)
            .arg(format!("{}/team/app:1.0", peer.host())),
        Duration::from_secs(60),
    );
    assert_refused(&run, 1, "token service", Duration::from_secs(30));
    assert!(
        run.stderr().contains("larger than 64 KiB"),
        "{}",
        run.stderr()
    );
}

/// The realm sends its token one byte every 100 ms: the answer must be whole within the idle
/// time (here 1 s), however steadily it trickles.
#[test]
fn a_trickling_token_answer_ends_at_the_idle_time() {
    let port = Arc::new(OnceLock::<String>::new());
    let realm_host = port.clone();
    let peer = Hostile::start(move |request, conn| {
        if request.path.starts_with("/token") {
            return endless(
                conn,
                &[("Content-Type", "application/json")],
                br#"{"token":""#,
                b"a",
                Duration::from_millis(100),
            );
        }
        let host = realm_host.get().cloned().unwrap_or_default();
        let challenge = format!(r#"Bearer realm="http://{host}/token",service="hostile""#);
        respond(
            conn,
            "401 Unauthorized",
            &[("WWW-Authenticate", &challenge)],
            b"{}",
        )
    });
    let _ = port.set(peer.host());
    let work = tempfile::tempdir().expect("temp dir");
    let (layout, _) = support::tiny_layout(work.path());
    let run = measured(
        idpbuilder_process()
            .env("IDPBUILDER_TEST_READ_TIMEOUT_MS", "1000")
            .args(["push", "-q", "--plain-http"])
            .arg(&layout)
            .arg(format!("{}/team/app:1.0", peer.host())),
        Duration::from_secs(60),
    );
    assert_refused(&run, 1, "token service", Duration::from_secs(30));
    assert!(
        run.stderr().contains("did not send its token within 1s"),
        "{}",
        run.stderr()
    );
}

/// A registry that wants Basic credentials for everything (none of which will do).
fn basic_only() -> Hostile {
    Hostile::start(|_, conn| {
        respond(
            conn,
            "401 Unauthorized",
            &[("WWW-Authenticate", r#"Basic realm="hostile""#)],
            b"{}",
        )
    })
}

/// `--password-stdin` fed from `/dev/zero`: refused after 64 KiB, before any request.
#[test]
fn password_stdin_without_end_is_refused_after_64_kib() {
    let peer = basic_only();
    let work = tempfile::tempdir().expect("temp dir");
    let (layout, _) = support::tiny_layout(work.path());
    let zero = std::fs::File::open("/dev/zero").expect("open /dev/zero");
    let run = measured_with_input(
        idpbuilder_process()
            .args([
                "push",
                "-q",
                "--plain-http",
                "--username",
                "u",
                "--password-stdin",
            ])
            .arg(&layout)
            .arg(format!("{}/team/app:1.0", peer.host())),
        Stdio::from(zero),
        Duration::from_secs(60),
    );
    assert_refused(
        &run,
        2,
        "--password-stdin read more than 64 KiB",
        Duration::from_secs(10),
    );
    assert!(peer.requests().is_empty(), "{:?}", peer.requests());
}

/// Writes `config.json` naming `helper` for the peer, and `docker-credential-NAME` scripts into
/// `bin`; returns the command with `DOCKER_CONFIG` and `PATH` set, at debug level.
fn with_helper(work: &Path, peer: &Hostile, helper: &str, scripts: &[(&str, String)]) -> Command {
    let docker = work.join("docker");
    let bin = work.join("bin");
    std::fs::create_dir_all(&docker).expect("mkdir docker");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    let config = format!(r#"{{"credHelpers":{{"{}":"{helper}"}}}}"#, peer.host());
    std::fs::write(docker.join("config.json"), config).expect("config.json");
    for (name, script) in scripts {
        let path = bin.join(format!("docker-credential-{name}"));
        std::fs::write(&path, script).expect("write helper");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let (layout, _) = support::tiny_layout(work);
    let path = std::env::var("PATH").unwrap_or_default();
    let mut cmd = idpbuilder_process();
    cmd.env("DOCKER_CONFIG", &docker)
        .env("PATH", format!("{}:{path}", bin.display()))
        .args(["push", "-l", "debug", "--plain-http"])
        .arg(&layout)
        .arg(format!("{}/team/app:1.0", peer.host()));
    cmd
}

/// A helper that answers without end (`yes`): read to 1 MiB, then stopped; the push goes on
/// without its credentials and is refused by the registry (exit 3).
#[test]
fn a_credential_helper_answering_without_end_is_cut_at_1_mib() {
    let peer = basic_only();
    let work = tempfile::tempdir().expect("temp dir");
    let script = "#!/bin/sh\nexec yes\n".to_string();
    let run = measured(
        &mut with_helper(work.path(), &peer, "chatty", &[("chatty", script)]),
        Duration::from_secs(60),
    );
    assert_refused(&run, 3, "requires credentials", Duration::from_secs(20));
    assert!(
        run.stderr()
            .contains("docker-credential-chatty answered with more than 1024 KiB"),
        "{}",
        run.stderr()
    );
}

/// A helper that starts a child and waits: at the (test-sized) timeout the whole group is
/// killed, the child included.
#[test]
fn a_credential_helper_that_hangs_is_killed_with_its_children() {
    let peer = basic_only();
    let work = tempfile::tempdir().expect("temp dir");
    let pid_file = work.path().join("child.pid");
    let script = format!(
        "#!/bin/sh\nsleep 600 &\necho $! > '{}'\nwait\n",
        pid_file.display()
    );
    let mut cmd = with_helper(work.path(), &peer, "slow", &[("slow", script)]);
    cmd.env("IDPBUILDER_TEST_HELPER_TIMEOUT_MS", "500");
    let run = measured(&mut cmd, Duration::from_secs(60));
    assert_refused(&run, 3, "requires credentials", Duration::from_secs(20));
    assert!(
        run.stderr()
            .contains("docker-credential-slow did not answer within 0.5s"),
        "{}",
        run.stderr()
    );
    let pid = std::fs::read_to_string(&pid_file).expect("the helper ran");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z"),
        "the helper's child survived: {stat}"
    );
}

/// `"credHelpers": {"HOST": "x/evil"}` would run `./docker-credential-x/evil` from wherever the
/// push started; the name is refused and nothing runs.
#[test]
fn a_credential_helper_name_with_a_slash_runs_nothing() {
    let peer = basic_only();
    let work = tempfile::tempdir().expect("temp dir");
    let marker = work.path().join("ran");
    let mut cmd = with_helper(work.path(), &peer, "x/evil", &[]);
    let evil = work.path().join("docker-credential-x");
    std::fs::create_dir_all(&evil).expect("mkdir");
    std::fs::write(
        evil.join("evil"),
        format!("#!/bin/sh\ntouch '{}'\n", marker.display()),
    )
    .expect("write");
    std::fs::set_permissions(evil.join("evil"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    cmd.current_dir(work.path());
    let run = measured(&mut cmd, Duration::from_secs(60));
    assert_refused(&run, 3, "requires credentials", Duration::from_secs(20));
    assert!(!marker.exists(), "the helper at a relative path ran");
    assert!(run.stderr().contains("is not a name"), "{}", run.stderr());
}

/// A wrapper `idpbuilder` first on PATH that hands every command to "the first other
/// idpbuilder", which is us: we hand `create` to it once, it hands it back, and we stop there
/// (it used to go round until the mark outgrew the argument space, ~70 s, then blame cnoe's).
#[test]
fn a_wrapper_that_hands_the_command_back_is_run_once() {
    let ours = Path::new(env!("CARGO_BIN_EXE_idpbuilder"));
    let our_dir = ours.parent().expect("binary directory");
    let shim = tempfile::tempdir().expect("temp dir");
    let count = shim.path().join("count");
    let script = format!(
        "#!/bin/sh\necho run >> '{}'\nIFS=:\nfor d in $PATH; do\n  \
         [ \"$d\" != '{}' ] && [ -x \"$d/idpbuilder\" ] && exec \"$d/idpbuilder\" \"$@\"\ndone\nexit 9\n",
        count.display(),
        shim.path().display()
    );
    let wrapper = shim.path().join("idpbuilder");
    std::fs::write(&wrapper, script).expect("write the wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = std::env::join_paths([shim.path(), our_dir]).expect("PATH");
    let mut cmd = idpbuilder_process();
    cmd.env("PATH", path).args(["create", "--build-name", "x"]);
    let run = measured(&mut cmd, Duration::from_secs(60));
    assert_refused(&run, 2, "came back to", Duration::from_secs(10));
    let runs = std::fs::read_to_string(&count).unwrap_or_default();
    assert_eq!(
        runs.lines().count(),
        1,
        "the wrapper ran {} times",
        runs.lines().count()
    );
}

/// Without `/proc` (here: a tmpfs over it in a user namespace) our own path is unknown: the
/// command is refused instead of being handed to ourselves for ever (978 execs in 5 s).
#[test]
fn without_proc_a_foreign_command_is_refused_not_handed_to_ourselves() {
    let ours = env!("CARGO_BIN_EXE_idpbuilder");
    let probe = Command::new("unshare")
        .args(["-rm", "sh", "-c", "mount -t tmpfs none /proc"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: unshare -rm cannot mount over /proc here");
        return;
    }
    let our_dir = Path::new(ours).parent().expect("binary directory");
    let mut cmd =
        support::launch::isolated("/usr/bin/unshare", Path::new(support::launch::NOWHERE));
    cmd.env("PATH", our_dir).args([
        "-rm",
        "/bin/sh",
        "-c",
        "/usr/bin/mount -t tmpfs none /proc && exec \"$0\" create",
        ours,
    ]);
    let run = measured(&mut cmd, Duration::from_secs(60));
    assert_refused(&run, 2, "cannot tell its own path", Duration::from_secs(10));
}

/// A kubeconfig whose user runs an `exec` plugin that takes 30 s (an SSO prompt, a slow cloud
/// CLI) and counts its runs in `count`.
fn slow_exec_kubeconfig(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let count = dir.join("count");
    let plugin = dir.join("plugin");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\nexec 2>/dev/null\necho run >> '{}'\nsleep 30\n\
             echo '{{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"t\"}}}}'\n",
            count.display()
        ),
    )
    .expect("write plugin");
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: x\n\
             clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:1'}}}}]\n\
             users: [{{name: u, user: {{exec: {{apiVersion: client.authentication.k8s.io/v1beta1, command: '{}', interactiveMode: Never}}}}}}]\n\
             contexts: [{{name: x, context: {{cluster: c, user: u}}}}]\n",
            plugin.display()
        ),
    )
    .expect("write kubeconfig");
    (kubeconfig, count)
}

/// A push to a registry named by IP address cannot be to the cluster's Gitea: the kubeconfig's
/// `exec` plugin is not run at all.
#[test]
fn a_push_to_an_ip_address_never_runs_the_kubeconfig_exec_plugin() {
    let registry =
        support::registry::Registry::start(support::registry::RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let (kubeconfig, count) = slow_exec_kubeconfig(work.path());
    let (layout, _) = support::tiny_layout(work.path());
    let mut cmd = idpbuilder_process();
    cmd.env("KUBECONFIG", &kubeconfig)
        .args(["push", "-q", "--plain-http"])
        .arg(&layout)
        .arg(format!("127.0.0.1:{}/team/app:1.0", registry.port()));
    let run = measured(&mut cmd, Duration::from_secs(60));
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert!(
        run.elapsed < Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
    assert!(!count.exists(), "the exec plugin ran");
}

/// A host name may be the cluster's Gitea, so the cluster is read, but the plugin runs off the
/// push's runtime and is abandoned at the budget (here 1 s): the push goes on (it used to wait
/// for the plugin three times over, 90 s).
#[test]
fn a_slow_kubeconfig_exec_plugin_is_abandoned_at_the_budget() {
    let registry =
        support::registry::Registry::start(support::registry::RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let (kubeconfig, count) = slow_exec_kubeconfig(work.path());
    let (layout, _) = support::tiny_layout(work.path());
    let mut cmd = idpbuilder_process();
    cmd.env("KUBECONFIG", &kubeconfig)
        .env("IDPBUILDER_TEST_CLUSTER_BUDGET_MS", "1000")
        .args(["push", "-l", "debug", "--plain-http"])
        .arg(&layout)
        .arg(format!("{}/team/app:1.0", registry.localhost()));
    let run = measured(&mut cmd, Duration::from_secs(60));
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert!(
        run.elapsed < Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
    assert!(
        run.stderr().contains("cluster: no answer within 1s"),
        "{}",
        run.stderr()
    );
    let runs = std::fs::read_to_string(&count).unwrap_or_default();
    assert_eq!(
        runs.lines().count(),
        1,
        "the plugin ran {} times",
        runs.lines().count()
    );
}

/// `--src-creds USER` asks for the password on the terminal; the bars are not drawn over the
/// question while it waits (they used to erase it within 100 ms). The source here refuses every
/// password, so the push never gets a plan and no bar is drawn at all.
#[test]
fn the_password_prompt_is_not_drawn_over_by_the_bars() {
    if !support::launch::has_script() {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let peer = basic_only();
    let args = [
        "push".to_string(),
        "--src-plain-http".to_string(),
        "--plain-http".to_string(),
        "--src-creds".to_string(),
        "someone".to_string(),
        format!("docker://{}/team/src:1.0", peer.host()),
        format!("{}/team/app:1.0", peer.host()),
    ];
    let mut cmd = support::launch::idpbuilder_on_terminal(&args);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run script");
    let mut stdin = child.stdin.take().expect("stdin");
    // The question waits a second before it is answered: time for ~5 bar redraws.
    std::thread::sleep(Duration::from_secs(1));
    use std::io::Write as _;
    stdin.write_all(b"wrong\n").expect("answer");
    drop(stdin);
    let output = child.wait_with_output().expect("wait for script");
    let screen = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        screen.contains(&format!("Password for someone at {}:", peer.host())),
        "{screen:?}"
    );
    assert!(
        !screen.contains("total"),
        "a bar was drawn while the question waited: {screen:?}"
    );
    assert!(screen.contains("error:"), "{screen:?}");
}

/// A fake engine: `/_ping` and `/version` as Docker 25 answers them; every other request goes to
/// `images`.
fn engine(
    images: impl Fn(&support::hostile::Request, support::hostile::Conn) -> std::io::Result<()>
    + Send
    + Sync
    + 'static,
) -> Hostile {
    Hostile::start_unix(move |request, conn| {
        let path = request.path.as_str();
        if path.ends_with("/_ping") {
            return respond(conn, "200 OK", &[], b"OK");
        }
        if path.ends_with("/version") {
            let version = br#"{"ApiVersion":"1.44","MinAPIVersion":"1.24","Version":"25.0.0"}"#;
            return respond(
                conn,
                "200 OK",
                &[("Content-Type", "application/json")],
                version,
            );
        }
        images(request, conn)
    })
}

/// An engine whose `/images/{name}/json` answer never ends (bollard collected 3 GB in 9 s):
/// read to 4 MiB, then refused naming the engine.
#[test]
fn an_endless_inspect_answer_from_the_engine_is_cut_at_4_mib() {
    let peer = engine(|_, conn| {
        endless(
            conn,
            &[("Content-Type", "application/json")],
            br#"{"Id":""#,
            &[b'a'; 64 << 10],
            Duration::ZERO,
        )
    });
    let registry = basic_only();
    let mut cmd = idpbuilder_process();
    cmd.env("DOCKER_HOST", peer.docker_host())
        .args(["push", "-q", "--plain-http", "docker-daemon:app:1.0"])
        .arg(format!("{}/team/app:1.0", registry.host()));
    let run = measured(&mut cmd, Duration::from_secs(60));
    assert_refused(
        &run,
        2,
        &format!("the engine at {}", peer.docker_host()),
        Duration::from_secs(20),
    );
    assert!(
        run.stderr().contains("larger than 4 MiB"),
        "{}",
        run.stderr()
    );
    assert!(
        registry
            .requests()
            .iter()
            .all(|r| !r.starts_with("PUT") && !r.starts_with("POST")),
        "{:?}",
        registry.requests()
    );
}

/// An engine that trickles its inspect answer: it must be whole within the deadline (here
/// 1 s, `IDPBUILDER_TEST_ENGINE_DEADLINE_MS`).
#[test]
fn a_trickling_inspect_answer_ends_at_the_deadline() {
    let peer = engine(|_, conn| {
        endless(
            conn,
            &[("Content-Type", "application/json")],
            br#"{"Id":""#,
            b"a",
            Duration::from_millis(100),
        )
    });
    let registry = basic_only();
    let mut cmd = idpbuilder_process();
    cmd.env("DOCKER_HOST", peer.docker_host())
        .env("IDPBUILDER_TEST_ENGINE_DEADLINE_MS", "1000")
        .args(["push", "-q", "--plain-http", "docker-daemon:app:1.0"])
        .arg(format!("{}/team/app:1.0", registry.host()));
    let run = measured(&mut cmd, Duration::from_secs(60));
    assert_refused(
        &run,
        2,
        &format!("the engine at {}", peer.docker_host()),
        Duration::from_secs(20),
    );
    assert!(
        run.stderr().contains("did not come whole within 1s"),
        "{}",
        run.stderr()
    );
}

/// An engine that knows `app:1.0` (300,000 bytes, one layer) and answers its export with
/// `export`.
fn engine_with_export(
    export: impl Fn(support::hostile::Conn) -> std::io::Result<()> + Send + Sync + 'static,
) -> Hostile {
    engine(move |request, conn| {
        if request.path.ends_with("/json") {
            let inspect = format!(
                r#"{{"Id":"sha256:{0}","RootFS":{{"Type":"layers","Layers":["sha256:{0}"]}},"Size":300000}}"#,
                "ab".repeat(32)
            );
            return respond(
                conn,
                "200 OK",
                &[("Content-Type", "application/json")],
                inspect.as_bytes(),
            );
        }
        if request.path.ends_with("/get") {
            return export(conn);
        }
        respond(
            conn,
            "404 Not Found",
            &[],
            br#"{"message":"no such thing"}"#,
        )
    })
}

/// The 512-byte tar header of a file `name` that claims `size` bytes.
fn tar_header(name: &str, size: u64) -> Vec<u8> {
    let mut header = tar::Header::new_ustar();
    header.set_path(name).expect("name");
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    header.as_bytes().to_vec()
}

fn push_engine_image(peer: &Hostile, registry: &support::registry::Registry) -> Command {
    let mut cmd = idpbuilder_process();
    cmd.env("DOCKER_HOST", peer.docker_host())
        .env("IDPBUILDER_TEST_READ_TIMEOUT_MS", "1000")
        .args(["push", "-q", "--plain-http", "docker-daemon:app:1.0"])
        .arg(format!("{}/team/app:1.0", registry.host()));
    cmd
}

/// An export that stops after its first header and never ends: the stream's own idle timer
/// (here 1 s) ends it, though no upload is in flight (it hung 400 s), naming the engine.
#[test]
fn an_export_that_stalls_after_a_header_ends_at_the_idle_time() {
    let peer = engine_with_export(|conn| {
        conn.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nConnection: close\r\n\r\n",
        )?;
        conn.write_all(&tar_header("blobs/sha256/x", 1000))?;
        conn.flush()?;
        std::thread::sleep(Duration::from_secs(30));
        Ok(())
    });
    let registry =
        support::registry::Registry::start(support::registry::RegistryOptions::default());
    let run = measured(
        &mut push_engine_image(&peer, &registry),
        Duration::from_secs(60),
    );
    assert_refused(
        &run,
        2,
        &format!("the engine at {} sent nothing for 1s", peer.docker_host()),
        Duration::from_secs(20),
    );
}

/// An export that runs on and on although the engine said the image holds 300,000 bytes: cut
/// at twice that and 64 MiB, naming the engine (it ran for ever).
#[test]
fn an_endless_export_is_cut_past_the_size_the_engine_gave() {
    let peer = engine_with_export(|conn| {
        conn.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nConnection: close\r\n\r\n",
        )?;
        conn.write_all(&tar_header("junk", 1 << 40))?;
        loop {
            conn.write_all(&[0; 64 << 10])?;
        }
    });
    let registry =
        support::registry::Registry::start(support::registry::RegistryOptions::default());
    let run = measured(
        &mut push_engine_image(&peer, &registry),
        Duration::from_secs(60),
    );
    assert_refused(
        &run,
        2,
        &format!("the engine at {} sent more than", peer.docker_host()),
        Duration::from_secs(30),
    );
}

/// A source registry that trickles a manifest one byte every 100 ms: the manifest must be whole
/// within the idle time (here 1 s); the error names the source registry (it ran 900 s with no
/// output).
#[test]
fn a_trickling_source_manifest_ends_at_the_idle_time_naming_the_source() {
    let source = Hostile::start(|request, conn| {
        if request.path == "/v2/" {
            return respond(conn, "200 OK", &[], b"{}");
        }
        if request.method == "GET" && request.path.contains("/manifests/") {
            return endless(
                conn,
                &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                b"{",
                b" ",
                Duration::from_millis(100),
            );
        }
        respond(
            conn,
            "404 Not Found",
            &[],
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]}"#,
        )
    });
    let registry =
        support::registry::Registry::start(support::registry::RegistryOptions::default());
    let mut cmd = idpbuilder_process();
    cmd.env("IDPBUILDER_TEST_READ_TIMEOUT_MS", "1000")
        .args(["push", "-q", "--plain-http", "--src-plain-http"])
        .arg(format!("docker://{}/team/src:1.0", source.host()))
        .arg(format!("{}/team/app:1.0", registry.host()));
    let run = measured(&mut cmd, Duration::from_secs(60));
    assert_refused(
        &run,
        1,
        &format!("source registry {} did not send manifest", source.host()),
        Duration::from_secs(40),
    );
}

/// A source registry whose layer is 500 bytes where its manifest says 1000, and says so in
/// `Content-Length`: the manifest is wrong, which no retry changes: exit 2 naming the blob, no
/// retries, no tag (it was retried five times as a network fault and ended exit 1).
#[test]
fn a_source_blob_shorter_than_its_descriptor_exits_2_naming_it() {
    use support::fixtures::sha256;
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let layer = vec![b'x'; 500];
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(&layer), "size": 1000}],
    })
    .to_string();
    let layer_digest = sha256(&layer);
    let config_digest = sha256(&config);
    let source = Hostile::start(move |request, conn| {
        let path = request.path.as_str();
        if path == "/v2/" {
            return respond(conn, "200 OK", &[], b"{}");
        }
        if path.contains("/manifests/") {
            return respond(
                conn,
                "200 OK",
                &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                manifest.as_bytes(),
            );
        }
        if path.ends_with(&layer_digest) {
            return respond(conn, "200 OK", &[], &layer);
        }
        if path.ends_with(&config_digest) {
            return respond(conn, "200 OK", &[], &config);
        }
        respond(conn, "404 Not Found", &[], b"{}")
    });
    let registry =
        support::registry::Registry::start(support::registry::RegistryOptions::default());
    let mut cmd = idpbuilder_process();
    cmd.args(["push", "-q", "--plain-http", "--src-plain-http"])
        .arg(format!("docker://{}/team/src:1.0", source.host()))
        .arg(format!("{}/team/app:1.0", registry.host()));
    let run = measured(&mut cmd, Duration::from_secs(60));
    assert_refused(
        &run,
        2,
        &format!(
            "blob {} of the source image at {}",
            sha256(&[b'x'; 500]),
            source.host()
        ),
        Duration::from_secs(20),
    );
    assert!(!run.stderr().contains("retrying"), "{}", run.stderr());
    // The short layer is not read again as if the network had cut it (the config may be: a
    // small blob is sent a second time when the registry turns down its one-request way).
    let layer_reads = source
        .requests()
        .iter()
        .filter(|r| r.ends_with(&sha256(&[b'x'; 500])))
        .count();
    assert!(layer_reads <= 2, "{:?}", source.requests());
}

/// An engine whose export starts with 3,000 junk files at the top level, then holds a valid
/// image (Docker 25+ form): the image is pushed, the junk is not (3,000 extra blobs went up,
/// exit 0, tagged).
#[test]
fn junk_files_in_an_engine_export_are_never_uploaded() {
    use support::engine::{Export, FakeEngine};
    let (image, manifest, inspect) =
        support::engine::docker25_export("app:1.0", &[support::engine::layer("a.txt", b"a")]);
    let mut builder = tar::Builder::new(Vec::new());
    let junk: Vec<Vec<u8>> = (0..3000)
        .map(|n| format!("junk number {n}").into_bytes())
        .collect();
    for (n, content) in junk.iter().enumerate() {
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("junk{n}"), &content[..])
            .expect("junk");
    }
    let mut archive = tar::Archive::new(&image[..]);
    for entry in archive.entries().expect("entries") {
        let entry = entry.expect("entry");
        let header = entry.header().clone();
        builder.append(&header, entry).expect("append");
    }
    let tar = builder.into_inner().expect("tar");
    let fake = FakeEngine::start("app:1.0", inspect, Export::Whole(tar));
    let registry =
        support::registry::Registry::start(support::registry::RegistryOptions::default());
    let mut cmd = idpbuilder_process();
    cmd.env("DOCKER_HOST", fake.host())
        .args(["push", "-q", "--plain-http", "docker-daemon:app:1.0"])
        .arg(format!("{}/team/app:1.0", registry.host()));
    let run = measured(&mut cmd, Duration::from_secs(60));
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert!(registry.manifest_exists("team/app", &support::fixtures::sha256(&manifest)));
    for content in junk.iter().step_by(300) {
        let digest = support::fixtures::sha256(content);
        assert!(
            !registry.blob_exists("team/app", &digest),
            "junk {digest} was uploaded"
        );
    }
    assert!(
        run.peak_kib < support::hostile::RSS_LIMIT_KIB,
        "peak RSS {} KiB",
        run.peak_kib
    );
}
