//! Tests of [`super::open`]: argument parsing and detection of the source kind.

use super::*;
use crate::source::testing::{Layout, named, tar_dir, tar_files};

fn layout_with_image(dir: &Path) -> String {
    let layout = Layout::new(dir);
    let (desc, _) = layout.image("linux", "amd64", &[b"layer"]);
    layout.finish(&[named(&desc, "1.0")]);
    desc["digest"].as_str().unwrap().to_string()
}

fn s(text: &str) -> String {
    text.to_string()
}

#[test]
fn arguments_split_at_the_longest_existing_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().display().to_string();
    std::fs::write(tmp.path().join("a:b"), b"").unwrap();
    std::fs::write(tmp.path().join("app.tar"), b"").unwrap();
    let cases = [
        (
            format!("oci:{dir}/a:b"),
            (FileFormat::Layout, format!("{dir}/a:b"), None),
        ),
        (
            format!("oci:{dir}/a:b:v1"),
            (FileFormat::Layout, format!("{dir}/a:b"), Some(s("v1"))),
        ),
        (
            format!("docker-archive:{dir}/app.tar:foo:1.0"),
            (
                FileFormat::DockerArchive,
                format!("{dir}/app.tar"),
                Some(s("foo:1.0")),
            ),
        ),
        (
            format!("oci-archive:{dir}/app.tar:"),
            (FileFormat::OciArchive, format!("{dir}/app.tar"), None),
        ),
        (
            s("oci-archive:nothing/here.tar:v1:x"),
            (
                FileFormat::OciArchive,
                s("nothing/here.tar"),
                Some(s("v1:x")),
            ),
        ),
        (
            format!("{dir}/app.tar:foo"),
            (FileFormat::Detect, format!("{dir}/app.tar:foo"), None),
        ),
    ];
    for (argument, expected) in cases {
        assert_eq!(parse_argument(&argument), expected, "{argument}");
    }
}

#[test]
fn a_missing_path_is_an_input_error_with_a_hint() {
    let err = open("/no/such/image.tar", None).unwrap_err();
    assert_eq!(err.message(), "image /no/such/image.tar does not exist");
    assert_eq!(err.kind(), crate::error::Kind::Input);
    assert!(err.hint().unwrap().contains("docker save"));
    let err = open("oci-archive:/no/such.tar:v1", None).unwrap_err();
    assert_eq!(err.message(), "image /no/such.tar does not exist");
}

#[test]
fn a_directory_that_is_not_a_layout_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let err = open(&tmp.path().display().to_string(), None).unwrap_err();
    let expected = format!(
        "{} is not an OCI image layout (neither oci-layout nor index.json)",
        tmp.path().display()
    );
    assert_eq!(err.message(), expected);
    assert!(err.hint().is_some());
}

#[test]
fn a_layout_directory_missing_one_file_is_refused_naming_that_file() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("index.json"), b"{}").unwrap();
    let path = tmp.path().display().to_string();
    let err = open(&path, None).unwrap_err();
    assert_eq!(
        err.message(),
        format!("{path} is not an OCI image layout (no oci-layout file)")
    );
    std::fs::remove_file(tmp.path().join("index.json")).unwrap();
    std::fs::write(tmp.path().join("oci-layout"), b"{}").unwrap();
    let err = open(&path, None).unwrap_err();
    assert_eq!(
        err.message(),
        format!("{path} is not an OCI image layout (no index.json)")
    );
}

#[test]
fn skopeos_dir_format_is_refused_as_a_format_we_do_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("manifest.json"), b"{}").unwrap();
    std::fs::write(
        tmp.path().join("version"),
        b"Directory Transport Version: 1.1\n",
    )
    .unwrap();
    let path = tmp.path().display().to_string();
    let err = open(&path, None).unwrap_err();
    assert_eq!(
        err.message(),
        format!("{path} is in skopeo's dir: format, which idpbuilder does not read")
    );
    assert_eq!(
        err.hint(),
        Some(
            format!("copy it to an OCI layout first: skopeo copy dir:{path} oci:{path}-oci")
                .as_str()
        )
    );
}

#[test]
fn a_layout_directory_is_detected_and_selected_by_ref() {
    let tmp = tempfile::tempdir().unwrap();
    let digest = layout_with_image(tmp.path());
    let path = tmp.path().display().to_string();
    assert_eq!(open(&path, None).unwrap().root.digest.as_str(), digest);
    assert_eq!(
        open(&format!("oci:{path}:1.0"), None)
            .unwrap()
            .root
            .digest
            .as_str(),
        digest
    );
    assert!(open(&format!("oci:{path}:2.0"), None).is_err());
    let err = open(&format!("oci-archive:{path}"), None).unwrap_err();
    assert!(err.hint().unwrap().contains("oci:"));
}

#[test]
fn archives_are_detected_from_their_contents() {
    let tmp = tempfile::tempdir().unwrap();
    let digest = layout_with_image(&tmp.path().join("layout"));
    let oci = tmp.path().join("oci.bin");
    tar_dir(&tmp.path().join("layout"), &oci, true);
    assert_eq!(
        open(&oci.display().to_string(), None)
            .unwrap()
            .root
            .digest
            .as_str(),
        digest
    );
    let err = open(&format!("oci:{}", oci.display()), None).unwrap_err();
    assert!(
        err.message()
            .ends_with("is a file, not an OCI layout directory"),
        "{}",
        err.message()
    );

    let docker = tmp.path().join("docker.tar");
    let manifest = br#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["l.tar"]}]"#;
    tar_files(
        &docker,
        &[
            ("c.json", b"{}"),
            ("l.tar", b"l"),
            ("manifest.json", manifest),
        ],
        false,
    );
    let image = open(&docker.display().to_string(), None).unwrap();
    assert_eq!(image.source_tag.as_deref(), Some("1"));
    assert!(open(&format!("docker-archive:{}:x:1", docker.display()), None).is_ok());

    let other = tmp.path().join("other.tar");
    tar_files(&other, &[("README", b"hi")], false);
    let err = open(&other.display().to_string(), None).unwrap_err();
    assert!(err.message().ends_with(
        "is neither a docker archive (no manifest.json) nor an OCI archive (no index.json)"
    ));
}

#[test]
fn a_truncated_archive_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    layout_with_image(&tmp.path().join("layout"));
    let full = tmp.path().join("full.tar");
    tar_dir(&tmp.path().join("layout"), &full, false);
    let bytes = std::fs::read(&full).unwrap();
    let cut = tmp.path().join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2 + 100]).unwrap();
    let err = open(&cut.display().to_string(), None).unwrap_err();
    assert!(
        err.message().starts_with(&format!(
            "{} is not a readable tar archive (",
            cut.display()
        )),
        "{}",
        err.message()
    );
}
