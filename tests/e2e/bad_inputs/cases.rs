//! The input errors of the table: every bad IMAGE, DESTINATION and flag the tests try, each
//! with what it writes into its temporary directory first and the text its `error:` line must
//! hold. All exit 2, before any connection.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::found;
use super::support::fixtures::{self, ImageSpec};

/// A destination nobody listens on: input errors must come before any connection.
pub const NOWHERE: &str = "127.0.0.1:9/team/app:1.0";

/// One bad input: the arguments after `push` (`{dir}` is the case's own temporary directory,
/// which `setup` fills first), what goes to stdin, and what must come out.
pub struct InputCase {
    pub what: &'static str,
    pub setup: fn(&Path),
    pub args: &'static [&'static str],
    pub stdin: Option<&'static str>,
    pub code: i32,
    pub expect: &'static str,
}

const fn case(
    what: &'static str,
    setup: fn(&Path),
    args: &'static [&'static str],
    expect: &'static str,
) -> InputCase {
    InputCase {
        what,
        setup,
        args,
        stdin: None,
        code: 2,
        expect,
    }
}

const fn with_stdin(mut case: InputCase, stdin: &'static str) -> InputCase {
    case.stdin = Some(stdin);
    case
}

/// Every input error, in the order of the table: what, setup, arguments, expected text.
#[rustfmt::skip]
pub const INPUT_CASES: &[InputCase] = &[
    // The IMAGE argument.
    case("IMAGE path does not exist", nothing,
        &["/no/such/image.tar", NOWHERE],
        "image /no/such/image.tar does not exist"),
    case("IMAGE with a `:REF` but no prefix, path does not exist", nothing,
        &["app.tar:1.0", NOWHERE],
        "image app.tar:1.0 does not exist"),
    case("IMAGE neither a path nor an image of a running engine (none answers)", nothing,
        &["app:1.0", NOWHERE],
        "app:1.0 is neither a file nor an image of a running engine: no engine answered at unix:///nonexistent/docker.sock"),
    case("registry image written without `docker://` (no engine answers)", nothing,
        &["registry.example:5000/team/app:1.0", NOWHERE],
        "registry.example:5000/team/app:1.0 is neither a file nor an image of a running engine"),
    case("`docker-daemon:` image, engine unreachable", nothing,
        &["docker-daemon:app:1.0", NOWHERE],
        "cannot read engine image app:1.0: no engine answered at unix:///nonexistent/docker.sock"),
    case("directory that is not an OCI layout", empty_dir,
        &["{dir}/empty", NOWHERE],
        "is not an OCI image layout"),
    case("`oci:` prefix on a file", oci_archive,
        &["oci:{dir}/app.tar", NOWHERE],
        "is a file, not an OCI layout directory"),
    case("`oci-archive:` prefix on a directory", layout,
        &["oci-archive:{dir}/l", NOWHERE],
        "is a directory, not an archive"),
    case("`oci-archive:` prefix on a docker archive", classic_archive,
        &["oci-archive:{dir}/docker.tar", NOWHERE],
        "is not an OCI archive (it has no index.json)"),
    case("file that is not a tar", text_file,
        &["{dir}/notes.txt", NOWHERE],
        "is not a readable tar archive"),
    case("truncated tar", truncated_tar,
        &["{dir}/app.tar", NOWHERE],
        "is not a readable tar archive"),
    case("corrupt gzip (bytes changed)", corrupt_gzip,
        &["{dir}/app.tar.gz", NOWHERE],
        "is not a readable gzip archive"),
    case("truncated gzip", truncated_gzip,
        &["{dir}/app.tar.gz", NOWHERE],
        "is not a readable gzip archive"),
    case("zstd-compressed archive", zstd_file,
        &["{dir}/app.tar.zst", NOWHERE],
        "is zstd-compressed, which is not supported"),
    case("xz-compressed docker archive (`.tar.xz`)", found::xz_archive,
        &["{dir}/app.tar.xz", NOWHERE],
        "is xz-compressed, which is not supported"),
    case("bzip2-compressed docker archive (`.tar.bz2`)", found::bzip2_archive,
        &["{dir}/app.tar.bz2", NOWHERE],
        "is bzip2-compressed, which is not supported"),
    case("tar cut inside an entry's padding", found::tar_cut_in_padding,
        &["{dir}/cut.tar", NOWHERE],
        "manifest.json is cut short: the file is truncated"),
    case("skopeo `dir:` directory", found::skopeo_dir,
        &["{dir}/d", NOWHERE],
        "is in skopeo's dir: format, which idpbuilder does not read"),
    case("skopeo `dir:` IMAGE", found::skopeo_dir,
        &["dir:{dir}/d", NOWHERE],
        "is in skopeo's dir: format, which idpbuilder does not read"),
    case("layout directory without `oci-layout`", found::layout_without_oci_layout,
        &["{dir}/l", NOWHERE],
        "is not an OCI image layout (no oci-layout file)"),
    case("containerd-store `docker save` holding 2 of its index's 3 platforms", found::containerd_save_of_two,
        &["{dir}/save.tar", NOWHERE],
        "holds only 2 of the 3 images index"),
    case("containerd-store `docker save`, `--platform` not exported", found::containerd_save_of_one,
        &["--platform", "linux/amd64", "{dir}/save.tar", NOWHERE],
        "names one, but it was not exported"),
    case("`--platform unknown/unknown` on a BuildKit index", found::buildkit_index,
        &["--platform", "unknown/unknown", "{dir}/bk", NOWHERE],
        "has no image for platform unknown/unknown (it has: linux/amd64, linux/arm64)"),
    case("tar holding neither `manifest.json` nor `index.json`", tar_without_image,
        &["{dir}/files.tar", NOWHERE],
        "is neither a docker archive"),
    case("`index.json` that is not JSON", bad_index_json,
        &["{dir}/l", NOWHERE],
        "is not valid JSON"),
    case("`index.json` listing no image", empty_index,
        &["{dir}/l", NOWHERE],
        "holds no image"),
    case("manifest blob does not match its digest", manifest_mismatch,
        &["{dir}/l", NOWHERE],
        "does not match its digest"),
    case("blob missing from the layout", missing_blob,
        &["{dir}/l", NOWHERE],
        "is missing from"),
    case("blob size differs from its descriptor", size_mismatch,
        &["{dir}/l", NOWHERE],
        "but its descriptor says"),
    case("layout blob that is a link to a file outside the layout", linked_blob,
        &["{dir}/l", NOWHERE],
        "is a link that leads outside the layout"),
    case("layout whose `blobs/sha256` is a link to a directory outside it", linked_blobs_dir,
        &["{dir}/l", NOWHERE],
        "is a link that leads outside the layout"),
    case("docker schema 1 manifest", schema1,
        &["{dir}/l", NOWHERE],
        "docker schema 1 manifest, which is not supported"),
    case("unknown REF in a layout", layout,
        &["oci:{dir}/l:nope", NOWHERE],
        "no image \"nope\" in"),
    case("unknown REF in a docker archive", classic_archive,
        &["docker-archive:{dir}/docker.tar:nope:1", NOWHERE],
        "no image \"nope:1\" in"),
    case("several images in a layout, no REF", two_images,
        &["{dir}/l", NOWHERE],
        "holds 2 images: one, two"),
    case("several images in a docker archive, no REF", two_image_docker_archive,
        &["{dir}/two.tar", NOWHERE],
        "holds 2 images"),
    case("docker archive whose `manifest.json` is not a manifest list", docker_bad_manifest,
        &["{dir}/bad.tar", NOWHERE],
        "is not a docker archive manifest"),
    case("docker archive missing a layer", docker_missing_layer,
        &["{dir}/partial.tar", NOWHERE],
        "layer gone/layer.tar is missing from"),
    case("docker archive whose config lists a malformed diff ID", docker_bad_diff_id,
        &["{dir}/diff.tar", NOWHERE],
        "lists a bad diff ID for layer l/layer.tar"),
    case("`--platform` not in the index", multi_platform,
        &["--platform", "linux/s390x", "{dir}/multi", NOWHERE],
        "has no image for platform linux/s390x"),
    case("`--platform` other than a single image's own", layout,
        &["--platform", "linux/arm64", "{dir}/l", NOWHERE],
        "is for platform linux/amd64, not linux/arm64"),
    case("`--platform` not os/arch[/variant]", nothing,
        &["--platform", "linux", "a.tar", NOWHERE],
        "'linux' for '--platform <OS/ARCH[/VARIANT]>': expected os/arch or os/arch/variant, for example linux/amd64 or linux/arm64/v8"),
    // DESTINATION.
    case("upper-case letters in the repository", nothing,
        &["a.tar", "giteaadmin/MyApp:1.0"],
        "has upper-case letters"),
    case("empty destination", nothing,
        &["a.tar", ""],
        "it is empty"),
    case("registry-only destination (`HOST/`), no credentials", classic_archive,
        &["{dir}/docker.tar", "127.0.0.1:9/"],
        "there is no user name to use as its owner"),
    case("no DESTINATION (the default host), no credentials", classic_archive,
        &["{dir}/docker.tar"],
        "cannot name the repository at gitea.cnoe.localtest.me:8443"),
    case("`NAME:TAG` without an owner", nothing,
        &["a.tar", "app:1.0"],
        "invalid destination \"app:1.0\""),
    case("destination scheme other than https, oci, http", nothing,
        &["a.tar", "docker://giteaadmin/app:1.0"],
        "docker:// is not a destination scheme"),
    case("scheme with no host (`https://`)", nothing,
        &["a.tar", "https://"],
        "it names no host"),
    case("empty path component (`//`)", nothing,
        &["a.tar", "giteaadmin//app"],
        "is not a valid repository path component"),
    case("path component starting with a separator", nothing,
        &["a.tar", "giteaadmin/-app"],
        "\"-app\" is not a valid repository path component"),
    case("two separators in a row (`a..b`)", nothing,
        &["a.tar", "giteaadmin/a..b"],
        "\"a..b\" is not a valid repository path component"),
    case("repository longer than 255 characters", nothing,
        &["a.tar", LONG_REPOSITORY],
        "longer than 255 characters"),
    case("host name with a space", nothing,
        &["a.tar", "my registry.com/app"],
        "is not a valid host name"),
    case("dotted number that is not an IPv4 address", nothing,
        &["a.tar", "1.2.3.999:5000/app"],
        "\"1.2.3.999\" is not a valid host name"),
    case("IPv6 host that is not an IPv6 address", nothing,
        &["a.tar", "[fe80::zz]:5000/app"],
        "\"[fe80::zz]\" is not a valid host name"),
    case("empty tag (`app:`)", nothing,
        &["a.tar", "giteaadmin/app:"],
        "tag \"\" must be 1-128"),
    case("tag starting with `-`", nothing,
        &["a.tar", "giteaadmin/app:-x"],
        "tag \"-x\" must be 1-128"),
    case("tag longer than 128 characters", nothing,
        &["a.tar", LONG_TAG],
        "must be 1-128 letters"),
    case("digest too short", nothing,
        &["a.tar", "giteaadmin/app@sha256:12"],
        "the digest is not sha256:<64 hex>"),
    case("digest of another algorithm", nothing,
        &["a.tar", "giteaadmin/app@md5:0123"],
        "the digest is not sha256:<64 hex>"),
    case("port out of range", nothing,
        &["a.tar", "registry.example.com:99999/app"],
        "port \"99999\" is not a number from 1 to 65535"),
    case("port 0", nothing,
        &["a.tar", "registry.example.com:0/app"],
        "port \"0\" is not a number from 1 to 65535"),
    // Flags.
    case("`--chunk-size` not a size", nothing,
        &["--chunk-size", "ten", "a.tar", NOWHERE],
        "is not a size like 512MiB"),
    case("`--chunk-size` below 1KiB", nothing,
        &["--chunk-size", "12", "a.tar", NOWHERE],
        "is too small"),
    case("`--chunk-size` with an unknown unit", nothing,
        &["--chunk-size", "5XB", "a.tar", NOWHERE],
        "unknown size unit"),
    case("`--concurrency 0`", nothing,
        &["--concurrency", "0", "a.tar", NOWHERE],
        "invalid value '0' for '--concurrency <N>'"),
    case("`--retries 0`", nothing,
        &["--retries", "0", "a.tar", NOWHERE],
        "invalid value '0' for '--retries <N>'"),
    case("`--output` not text or json", nothing,
        &["-o", "yaml", "a.tar", NOWHERE],
        "invalid value 'yaml' for '--output"),
    case("unknown flag", nothing,
        &["--nope", "a.tar", NOWHERE],
        "unexpected argument '--nope'"),
    case("IMAGE missing", nothing,
        &[],
        "the following required arguments were not provided"),
    case("`--tag` not a valid tag", nothing,
        &["--tag", "v1/beta", "a.tar", NOWHERE],
        "invalid value 'v1/beta' for '--tag <TAG>'"),
    case("`--digestfile` in a directory that does not exist", nothing,
        &["--digestfile", "/no/such/dir/app.digest", "a.tar", NOWHERE],
        "directory /no/such/dir does not exist"),
    case("`--digestfile` naming a directory", nothing,
        &["--digestfile", "{dir}", "a.tar", NOWHERE],
        "is a directory; name a file"),
    case("`--src-creds` without a user name", nothing,
        &["--src-creds", ":secret", "docker://ubuntu:24.04", NOWHERE],
        "the user name is empty"),
    case("`--src-insecure` with `--src-plain-http`", nothing,
        &["--src-insecure", "--src-plain-http", "docker://ubuntu:24.04", NOWHERE],
        "cannot be used with"),
    case("`--src-*` flags with an IMAGE that is not `docker://`", layout,
        &["--src-creds", "reader", "--src-plain-http", "{dir}/l", NOWHERE],
        "--src-creds, --src-plain-http are for a docker:// IMAGE"),
    // A registry IMAGE (`docker://`), malformed.
    case("`docker://` naming no image", nothing,
        &["docker://", NOWHERE],
        "invalid image \"docker://\": it names no image"),
    case("`docker://` IMAGE with upper-case letters", nothing,
        &["docker://team/App:1.0", NOWHERE],
        "has upper-case letters"),
    case("`docker://` IMAGE with a malformed digest", nothing,
        &["docker://team/app@sha256:12", NOWHERE],
        "the digest is not sha256:<64 hex>"),
    case("`--insecure` with `--plain-http`", nothing,
        &["--insecure", "--plain-http", "a.tar", NOWHERE],
        "cannot be used with"),
    case("`--password` with `--password-stdin`", nothing,
        &["-u", "me", "-p", "pw", "--password-stdin", "a.tar", NOWHERE],
        "cannot be used with"),
    case("`-u` without a password", layout,
        &["-u", "me", "{dir}/l", NOWHERE],
        "--username was given without a password"),
    with_stdin(case("password (`--password-stdin`) without `-u`", layout,
        &["--password-stdin", "{dir}/l", NOWHERE],
        "a password was given without --username"), "secret\n"),
    with_stdin(case("empty `--password-stdin`", layout,
        &["-u", "me", "--password-stdin", "{dir}/l", NOWHERE],
        "--password-stdin read an empty password"), "\n"),
    case("`--kubeconfig` file does not exist", layout,
        &["--kubeconfig", "/no/kubeconfig", "{dir}/l", NOWHERE],
        "/no/kubeconfig"),
    case("`--kubeconfig` file that is not a kubeconfig", broken_kubeconfig,
        &["--kubeconfig", "{dir}/kubeconfig", "{dir}/l", NOWHERE],
        "cannot read --kubeconfig $DIR/kubeconfig"),
    case("`--context` not in the kubeconfig", kubeconfig,
        &["--kubeconfig", "{dir}/kubeconfig", "--context", "nope", "{dir}/l", NOWHERE],
        "context \"nope\" is not in"),
    case("unreadable `--ca-file`", nothing,
        &["--ca-file", "/no/ca.pem", "a.tar", NOWHERE],
        "cannot read --ca-file /no/ca.pem"),
    case("`--ca-file` holding no PEM certificate", not_pem,
        &["--ca-file", "{dir}/ca.pem", "a.tar", NOWHERE],
        "holds no PEM certificate"),
    case("`--ca-file` with a broken PEM block", broken_pem,
        &["--ca-file", "{dir}/ca.pem", "a.tar", NOWHERE],
        "is not a valid PEM certificate file"),
];

const LONG_REPOSITORY: &str = concat!(
    "giteaadmin/",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
);
const LONG_TAG: &str = concat!(
    "giteaadmin/app:",
    "1234567890123456789012345678901234567890123456789012345678901234567890",
    "1234567890123456789012345678901234567890123456789012345678901234567890"
);

// Setups: each writes the image (or file) its case needs into `dir`.

fn nothing(_: &Path) {}

fn empty_dir(dir: &Path) {
    std::fs::create_dir_all(dir.join("empty")).expect("create dir");
}

pub fn spec() -> ImageSpec {
    ImageSpec::new("1.0", &[1_000])
}

fn layout(dir: &Path) {
    fixtures::oci_layout(&dir.join("l"), &spec());
}

fn oci_archive(dir: &Path) {
    fixtures::oci_archive(&dir.join("app.tar"), &spec());
}

fn classic_archive(dir: &Path) {
    fixtures::classic_docker_archive(&dir.join("docker.tar"), &["app:1.0"], &spec());
}

fn text_file(dir: &Path) {
    std::fs::write(dir.join("notes.txt"), "hello, not an image\n").expect("write file");
}

fn truncated_tar(dir: &Path) {
    let path = dir.join("app.tar");
    fixtures::oci_archive(&path, &ImageSpec::new("1.0", &[50_000]));
    let bytes = std::fs::read(&path).expect("read tar");
    std::fs::write(&path, &bytes[..bytes.len() / 3]).expect("truncate");
}

fn corrupt_gzip(dir: &Path) {
    let path = dir.join("app.tar.gz");
    fixtures::oci_archive(&path, &ImageSpec::new("1.0", &[50_000]));
    let mut bytes = std::fs::read(&path).expect("read gzip");
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 64] {
        *byte ^= 0x5a;
    }
    std::fs::write(&path, bytes).expect("write gzip");
}

fn truncated_gzip(dir: &Path) {
    let path = dir.join("app.tar.gz");
    fixtures::oci_archive(&path, &ImageSpec::new("1.0", &[50_000]));
    let bytes = std::fs::read(&path).expect("read gzip");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");
}

fn zstd_file(dir: &Path) {
    std::fs::write(
        dir.join("app.tar.zst"),
        b"\x28\xb5\x2f\xfd rest of a zstd frame",
    )
    .expect("write file");
}

/// Writes a tar of `files` at `path`.
fn tar_files(path: &Path, files: &[(&str, &[u8])]) {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, name, *data)
            .expect("append");
    }
    std::fs::write(path, builder.into_inner().expect("finish tar")).expect("write tar");
}

fn tar_without_image(dir: &Path) {
    tar_files(&dir.join("files.tar"), &[("README", b"just files")]);
}

fn bad_index_json(dir: &Path) {
    layout(dir);
    std::fs::write(dir.join("l/index.json"), "{\"manifests\": [").expect("write index");
}

fn empty_index(dir: &Path) {
    layout(dir);
    std::fs::write(
        dir.join("l/index.json"),
        r#"{"schemaVersion":2,"manifests":[]}"#,
    )
    .expect("write index");
}

fn manifest_mismatch(dir: &Path) {
    let image = fixtures::oci_layout(&dir.join("l"), &spec());
    let path = fixtures::blob_path(&dir.join("l"), &image.manifest_digest);
    let text = std::fs::read_to_string(&path).expect("read manifest");
    std::fs::write(&path, text.replacen("layers", "LAYERS", 1)).expect("write manifest");
}

/// The path of the image's one layer blob.
fn layer_path(dir: &Path) -> PathBuf {
    let image = fixtures::oci_layout(&dir.join("l"), &spec());
    let layer = image.blob_digests.last().expect("a layer");
    fixtures::blob_path(&dir.join("l"), layer)
}

fn missing_blob(dir: &Path) {
    std::fs::remove_file(layer_path(dir)).expect("remove layer");
}

fn size_mismatch(dir: &Path) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(layer_path(dir))
        .expect("open layer");
    file.write_all(b"extra").expect("append");
}

/// The layer blob becomes a link to a file of the same size outside the layout.
fn linked_blob(dir: &Path) {
    let blob = layer_path(dir);
    let size = std::fs::metadata(&blob).expect("layer size").len();
    let outside = dir.join("secret");
    std::fs::write(&outside, vec![b'x'; size as usize]).expect("write secret");
    std::fs::remove_file(&blob).expect("remove layer");
    std::os::unix::fs::symlink(&outside, &blob).expect("link layer");
}

/// `blobs/sha256` moves out of the layout and a link takes its place.
fn linked_blobs_dir(dir: &Path) {
    layout(dir);
    let blobs = dir.join("l/blobs/sha256");
    std::fs::rename(&blobs, dir.join("elsewhere")).expect("move blobs");
    std::os::unix::fs::symlink(dir.join("elsewhere"), &blobs).expect("link blobs");
}

fn schema1(dir: &Path) {
    let l = dir.join("l");
    std::fs::create_dir_all(l.join("blobs/sha256")).expect("create layout");
    let manifest = br#"{"schemaVersion":1,"name":"app","tag":"1.0","fsLayers":[]}"#;
    let digest = fixtures::sha256(manifest);
    std::fs::write(fixtures::blob_path(&l, &digest), manifest).expect("write manifest");
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws","digest":"{digest}","size":{}}}]}}"#,
        manifest.len()
    );
    std::fs::write(l.join("index.json"), index).expect("write index");
    std::fs::write(l.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("write");
}

fn two_images(dir: &Path) {
    fixtures::oci_layout(&dir.join("l"), &ImageSpec::new("one", &[100]));
    fixtures::oci_layout(&dir.join("l"), &ImageSpec::new("two", &[100]).seed(2));
}

fn two_image_docker_archive(dir: &Path) {
    let manifest = br#"[{"Config":"c.json","RepoTags":["app:1.0"],"Layers":[]},{"Config":"c.json","RepoTags":["app:2.0"],"Layers":[]}]"#;
    tar_files(
        &dir.join("two.tar"),
        &[("manifest.json", manifest), ("c.json", b"{}")],
    );
}

fn docker_bad_manifest(dir: &Path) {
    tar_files(
        &dir.join("bad.tar"),
        &[("manifest.json", br#"{"Config":"c.json"}"#)],
    );
}

fn docker_missing_layer(dir: &Path) {
    let manifest = br#"[{"Config":"c.json","RepoTags":["app:1.0"],"Layers":["gone/layer.tar"]}]"#;
    tar_files(
        &dir.join("partial.tar"),
        &[("manifest.json", manifest), ("c.json", b"{}")],
    );
}

fn docker_bad_diff_id(dir: &Path) {
    let manifest = br#"[{"Config":"c.json","RepoTags":["app:1.0"],"Layers":["l/layer.tar"]}]"#;
    let config = br#"{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":["sha256:not-a-digest"]}}"#;
    tar_files(
        &dir.join("diff.tar"),
        &[
            ("manifest.json", manifest),
            ("c.json", config),
            ("l/layer.tar", b"layer bytes"),
        ],
    );
}

fn multi_platform(dir: &Path) {
    fixtures::multi_platform_layout(
        &dir.join("multi"),
        &[("linux", "amd64"), ("linux", "arm64")],
    );
}

fn broken_kubeconfig(dir: &Path) {
    layout(dir);
    std::fs::write(dir.join("kubeconfig"), "clusters: [ {{ not yaml").expect("write file");
}

/// A valid kubeconfig with one context, `kind-localdev`, for a cluster nobody runs.
fn kubeconfig(dir: &Path) {
    layout(dir);
    let config = "apiVersion: v1\nkind: Config\ncurrent-context: kind-localdev\n\
        clusters:\n- name: kind-localdev\n  cluster:\n    server: https://127.0.0.1:9\n\
        contexts:\n- name: kind-localdev\n  context:\n    cluster: kind-localdev\n    user: admin\n\
        users:\n- name: admin\n  user:\n    token: abc\n";
    std::fs::write(dir.join("kubeconfig"), config).expect("write file");
}

fn not_pem(dir: &Path) {
    std::fs::write(dir.join("ca.pem"), "not a certificate\n").expect("write file");
}

fn broken_pem(dir: &Path) {
    std::fs::write(
        dir.join("ca.pem"),
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .expect("write file");
}
