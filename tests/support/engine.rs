//! Local engines for the engine-image tests: a real Docker Engine (Debian's `dockerd`, vfs
//! storage, no networking) and a real Podman service (`podman system service`, images built with
//! `buildah`), each started once per test binary in a temporary directory; and a fake engine on
//! a Unix socket that serves a recorded export (Docker 25+'s OCI form, or a stream cut short).
//!
//! A started engine is watched by a small shell loop: when the test binary exits, the engine is
//! stopped and its directory removed. Without `dockerd` or `podman` a test prints a skip line,
//! except under CI (`CI=true`), where `make deps` must have installed them.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// `sha256:HEX` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Prints a skip line, or panics under CI.
fn skip(test: &str, what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {what}; CI must run `make deps`");
    }
    eprintln!("skipped: {test}: {what}; run `make deps`");
}

/// Runs `program` in the background under a watchdog that stops it, then removes `dir`, once
/// this test binary has exited.
fn start_watched(dir: &Path, program: &str) {
    let script = format!(
        "{program} >{log} 2>&1 & child=$!; \
         while kill -0 {me} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1; done; \
         kill $child 2>/dev/null; wait $child; sleep 1; rm -rf {dir}",
        log = dir.join("engine.log").display(),
        me = std::process::id(),
        dir = dir.display(),
    );
    let mut watchdog = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the engine");
    // Reaped when it ends, after this binary (the engine outlives every test).
    std::thread::spawn(move || watchdog.wait());
}

/// Waits until `GET /_ping` on `socket` answers `OK`.
fn wait_for_ping(socket: &Path, dir: &Path, limit: Duration) {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(mut stream) = std::os::unix::net::UnixStream::connect(socket) {
            let _ = stream.write_all(b"GET /_ping HTTP/1.0\r\nHost: engine\r\n\r\n");
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.ends_with("OK") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = std::fs::read_to_string(dir.join("engine.log")).unwrap_or_default();
    panic!("the engine at {} did not answer: {log}", socket.display());
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A Docker Engine of this test binary.
pub struct Dockerd {
    dir: PathBuf,
    pub socket: PathBuf,
}

impl Dockerd {
    /// The binary's engine, started on first use; `None` (after a skip line) without dockerd.
    pub fn shared(test: &str) -> Option<&'static Dockerd> {
        static ENGINE: OnceLock<Option<Dockerd>> = OnceLock::new();
        let engine = ENGINE.get_or_init(|| {
            if !installed("dockerd") || !installed("docker") {
                return None;
            }
            let dir = tempfile::Builder::new()
                .prefix("idpb-dockerd-")
                .tempdir()
                .expect("temp dir")
                .keep();
            let socket = dir.join("docker.sock");
            let d = dir.display();
            start_watched(
                &dir,
                &format!(
                    "dockerd --data-root {d}/root --exec-root {d}/exec -H unix://{d}/docker.sock \
                     --pidfile {d}/pid --iptables=false --ip6tables=false --bridge=none \
                     --storage-driver=vfs"
                ),
            );
            wait_for_ping(&socket, &dir, Duration::from_secs(60));
            Some(Dockerd { dir, socket })
        });
        if engine.is_none() {
            skip(test, "dockerd and docker are not installed");
        }
        engine.as_ref()
    }

    /// `unix:///.../docker.sock`, for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// `docker -H` this engine.
    pub fn docker(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.arg("-H")
            .arg(self.host())
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CONFIG", self.dir.join("client"));
        cmd
    }

    /// Builds `tag` offline: `FROM scratch`, static busybox as `/bin/busybox`, then one layer
    /// per extra file (name, content).
    pub fn build(&self, tag: &str, files: &[(&str, &[u8])]) {
        let context = tempfile::tempdir().expect("build context");
        std::fs::copy(busybox(), context.path().join("busybox")).expect("copy busybox");
        let mut dockerfile = String::from("FROM scratch\nCOPY busybox /bin/busybox\n");
        for (name, content) in files {
            std::fs::write(context.path().join(name), content).expect("write file");
            dockerfile.push_str(&format!("COPY {name} /{name}\n"));
        }
        std::fs::write(context.path().join("Dockerfile"), dockerfile).expect("Dockerfile");
        run(
            self.docker()
                .args(["build", "-q", "-t", tag])
                .arg(context.path()),
            "docker build",
        );
    }

    /// The image's diff IDs as the engine reports them (`RootFS.Layers`).
    pub fn diff_ids(&self, image: &str) -> Vec<String> {
        let out = run(
            self.docker().args([
                "image",
                "inspect",
                "--format",
                "{{json .RootFS.Layers}}",
                image,
            ]),
            "docker image inspect",
        );
        serde_json::from_str(out.trim()).expect("RootFS.Layers")
    }
}

/// Debian busybox-static's binary.
pub fn busybox() -> &'static str {
    if Path::new("/bin/busybox").exists() {
        "/bin/busybox"
    } else {
        "/usr/bin/busybox"
    }
}

/// A Podman service of this test binary, with its own storage.
pub struct Podman {
    dir: PathBuf,
    pub socket: PathBuf,
}

impl Podman {
    /// The binary's service, started on first use; `None` (after a skip line) without podman.
    pub fn shared(test: &str) -> Option<&'static Podman> {
        static ENGINE: OnceLock<Option<Podman>> = OnceLock::new();
        let engine = ENGINE.get_or_init(|| {
            if !installed("podman") || !installed("buildah") {
                return None;
            }
            let dir = tempfile::Builder::new()
                .prefix("idpb-podman-")
                .tempdir()
                .expect("temp dir")
                .keep();
            let podman = Podman {
                socket: dir.join("podman.sock"),
                dir: dir.clone(),
            };
            std::fs::write(
                podman.storage_conf(),
                format!(
                    "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/s\"\nrunroot = \"{0}/r\"\n",
                    dir.display()
                ),
            )
            .expect("storage.conf");
            start_watched(
                &dir,
                &format!(
                    "podman {} system service --time=0 unix://{}",
                    podman.storage_flags().join(" "),
                    podman.socket.display()
                ),
            );
            wait_for_ping(&podman.socket, &dir, Duration::from_secs(60));
            Some(podman)
        });
        if engine.is_none() {
            skip(test, "podman and buildah are not installed");
        }
        engine.as_ref()
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// A `storage.conf` naming this service's storage, for `CONTAINERS_STORAGE_CONF`.
    pub fn storage_conf(&self) -> PathBuf {
        self.dir.join("storage.conf")
    }

    fn storage_flags(&self) -> Vec<String> {
        vec![
            format!("--root={}/s", self.dir.display()),
            format!("--runroot={}/r", self.dir.display()),
            "--storage-driver=vfs".into(),
        ]
    }

    fn buildah(&self) -> Command {
        let mut cmd = Command::new("buildah");
        cmd.args(self.storage_flags());
        cmd
    }

    /// Builds `tag` with buildah: busybox in one layer, each file in a layer of its own.
    pub fn build(&self, tag: &str, files: &[(&str, &[u8])]) {
        let context = tempfile::tempdir().expect("build context");
        let container = run(self.buildah().args(["from", "scratch"]), "buildah from");
        let container = container.trim();
        run(
            self.buildah()
                .args(["copy", container, busybox(), "/bin/busybox"]),
            "buildah copy",
        );
        for (name, content) in files {
            run(
                self.buildah().args(["commit", "-q", container, tag]),
                "buildah commit",
            );
            let file = context.path().join(name);
            std::fs::write(&file, content).expect("write file");
            run(
                self.buildah()
                    .args(["copy", container])
                    .arg(&file)
                    .arg(format!("/{name}")),
                "buildah copy",
            );
        }
        run(
            self.buildah().args(["commit", "-q", container, tag]),
            "buildah commit",
        );
        run(self.buildah().args(["rm", container]), "buildah rm");
    }

    /// The image's diff IDs as podman reports them.
    pub fn diff_ids(&self, image: &str) -> Vec<String> {
        let out = run(
            Command::new("podman").args(self.storage_flags()).args([
                "image",
                "inspect",
                "--format",
                "{{json .RootFS.Layers}}",
                image,
            ]),
            "podman image inspect",
        );
        serde_json::from_str(out.trim()).expect("RootFS.Layers")
    }
}

/// How the fake engine sends the export.
#[derive(Clone)]
pub enum Export {
    Whole(Vec<u8>),
    /// Announces the whole length, sends this many bytes, closes.
    CutAfter(Vec<u8>, usize),
}

/// A fake engine on a Unix socket: `/_ping`, `/version`, `/images/NAME/json` and
/// `/images/NAME/get` for one image; 404 for any other.
pub struct FakeEngine {
    _dir: tempfile::TempDir,
    pub socket: PathBuf,
}

impl FakeEngine {
    pub fn start(name: &str, inspect: Value, export: Export) -> FakeEngine {
        let dir = tempfile::Builder::new()
            .prefix("idpb-fake-engine-")
            .tempdir()
            .expect("temp dir");
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).expect("bind the fake engine");
        let name = name.to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (name, inspect, export) = (name.clone(), inspect.clone(), export.clone());
                std::thread::spawn(move || serve(stream, &name, &inspect, &export));
            }
        });
        FakeEngine { _dir: dir, socket }
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

fn serve(stream: std::os::unix::net::UnixStream, name: &str, inspect: &Value, export: &Export) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
        }
        // bollard prefixes the API version: /v1.44/images/...
        let path = match path.strip_prefix("/v1.") {
            Some(rest) => rest.split_once('/').map_or("", |(_, p)| p).to_string(),
            None => path.trim_start_matches('/').to_string(),
        };
        let stream = reader.get_mut();
        let image = format!("images/{name}/");
        let (status, body, cut) = match path.as_str() {
            "_ping" => ("200 OK", b"OK".to_vec(), None),
            "version" => (
                "200 OK",
                json!({"ApiVersion": "1.44", "MinAPIVersion": "1.24", "Version": "25.0.0"})
                    .to_string()
                    .into_bytes(),
                None,
            ),
            p if p == format!("{image}json") => ("200 OK", inspect.to_string().into_bytes(), None),
            p if p == format!("{image}get") => match export {
                Export::Whole(bytes) => ("200 OK", bytes.clone(), None),
                Export::CutAfter(bytes, n) => ("200 OK", bytes.clone(), Some(*n)),
            },
            _ => (
                "404 Not Found",
                json!({"message": format!("No such image: {path}")})
                    .to_string()
                    .into_bytes(),
                None,
            ),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if stream.write_all(head.as_bytes()).is_err() {
            return;
        }
        let sent = cut.unwrap_or(body.len()).min(body.len());
        if stream.write_all(&body[..sent]).is_err() || cut.is_some() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

/// A tar of `files` (name, bytes) in the given order, with directories before their files, as
/// Go's archive/tar writes a walked directory.
pub fn tar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for (name, bytes) in files {
        let mut parent = String::new();
        for part in name
            .split('/')
            .rev()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            parent.push_str(part);
            parent.push('/');
            if dirs.insert(parent.clone()) {
                let mut header = tar::Header::new_ustar();
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder
                    .append_data(&mut header, &parent, &[][..])
                    .expect("tar dir");
            }
        }
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, name, &bytes[..])
            .expect("tar file");
    }
    builder.into_inner().expect("finish tar")
}

/// A layer: a tar holding `name` with `content`.
pub fn layer(name: &str, content: &[u8]) -> Vec<u8> {
    tar(&[(name.to_string(), content.to_vec())])
}

/// What Docker 25+ writes for `docker save app:1.0` (graph driver store): blobs by digest
/// (config, layers, a legacy v1 JSON per layer, the manifest), `index.json` naming the manifest,
/// `manifest.json`, `oci-layout`, `repositories`, all in lexical order. Returns the tar, the
/// manifest bytes, and the `/images/NAME/json` answer.
pub fn docker25_export(name: &str, layers: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>, Value) {
    let diff_ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
    let config = json!({"architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/busybox", "sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    .to_string()
    .into_bytes();
    let manifest = json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest(&config), "size": config.len()},
        "layers": layers.iter().map(|l| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": digest(l), "size": l.len()})).collect::<Vec<_>>()})
    .to_string()
    .into_bytes();
    let (repo, tag) = name.rsplit_once(':').unwrap_or((name, "latest"));
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest(&manifest), "size": manifest.len(),
            "annotations": {"io.containerd.image.name": format!("docker.io/library/{repo}:{tag}"),
                "org.opencontainers.image.ref.name": tag}}]})
    .to_string()
    .into_bytes();
    let blob = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        files.push((blob(&digest(l)), l.clone()));
        let legacy = json!({"id": format!("{i:064x}"), "created": "1970-01-01T00:00:00Z"})
            .to_string()
            .into_bytes();
        files.push((blob(&digest(&legacy)), legacy));
    }
    files.push((blob(&digest(&config)), config.clone()));
    files.push((blob(&digest(&manifest)), manifest.clone()));
    files.push(("index.json".into(), index));
    files.push((
        "manifest.json".into(),
        json!([{"Config": blob(&digest(&config)), "RepoTags": [name],
            "Layers": diff_ids.iter().map(|d| blob(d)).collect::<Vec<_>>()}])
        .to_string()
        .into_bytes(),
    ));
    files.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion": "1.0.0"}"#.to_vec(),
    ));
    files.push((
        "repositories".into(),
        json!({repo: {tag: "x"}}).to_string().into_bytes(),
    ));
    files.sort();
    let size: usize = layers.iter().map(Vec::len).sum();
    let inspect = json!({"Id": digest(&config), "RepoTags": [name], "Size": size,
        "RootFS": {"Type": "layers", "Layers": diff_ids}});
    (tar(&files), manifest, inspect)
}

/// Copies `repo_tag` out of the registry into an OCI layout, unpacks it with umoci and runs
/// `/bin/busybox echo hi` in it with chroot; returns what it printed.
pub fn run_image(registry: &dyn super::skopeo::TestRegistry, repo_tag: &str) -> String {
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("layout");
    let mut copy = registry.skopeo();
    copy.args(["copy", "--preserve-digests"])
        .args(registry.skopeo_args(super::skopeo::Side::Src))
        .arg(format!("docker://{}/{repo_tag}", registry.host()))
        .arg(format!("oci:{}:run", layout.display()));
    run(&mut copy, "skopeo copy to an OCI layout");
    let tag = "run";
    let rootfs = work.path().join("rootfs");
    run(
        Command::new("umoci")
            .args(["raw", "unpack", "--image"])
            .arg(format!("{}:{tag}", layout.display()))
            .arg(&rootfs),
        "umoci raw unpack",
    );
    run(
        Command::new("chroot")
            .arg(&rootfs)
            .args(["/bin/busybox", "echo", "hi"]),
        "chroot busybox",
    )
}
