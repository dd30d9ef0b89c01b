//! What a push shows while it runs: one plain line per blob when stderr is not a terminal, bars
//! on a terminal, only the result with `-q`, and nothing but the result on stdout.

use crate::support;

use support::fault_proxy::{Fault, FaultProxy, Rule};
use support::fixtures::{self, ImageSpec};
use support::launch::{has_script, idpbuilder_on_terminal};
use support::registry::{Registry, RegistryOptions};
use support::{idpbuilder, stderr, stdout};

/// `pushed sha256:<12 hex> <size>` or `exists sha256:<12 hex> <size>`.
fn is_blob_line(line: &str, verb: &str) -> bool {
    let Some(rest) = line.strip_prefix(&format!("{verb} sha256:")) else {
        return false;
    };
    let (hex, size) = rest.split_at(12.min(rest.len()));
    hex.bytes().all(|b| b.is_ascii_hexdigit())
        && size.starts_with(' ')
        && ["B", "KiB", "MiB", "GiB"]
            .iter()
            .any(|unit| size.ends_with(unit))
}

#[test]
fn without_a_terminal_each_blob_gets_one_plain_line_and_stdout_only_the_result() {
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("l");
    let image = fixtures::oci_layout(&layout, &ImageSpec::new("1.0", &[20_000, 300_000]));
    let dest = format!("{}/team/app:1.0", registry.host());
    let run = || {
        let output = idpbuilder()
            .args(["push", "--plain-http"])
            .arg(&layout)
            .arg(&dest)
            .output()
            .expect("run idpbuilder");
        assert!(output.status.success());
        (stdout(&output), stderr(&output))
    };
    let (stdout, stderr) = run();
    assert_eq!(stdout, format!("{dest}@{}\n", image.manifest_digest));
    assert!(!stderr.contains('\x1b'), "no escape codes: {stderr:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), image.blob_digests.len(), "{stderr}");
    assert!(lines.iter().all(|l| is_blob_line(l, "pushed")), "{stderr}");

    let (again, stderr) = run();
    assert_eq!(again, stdout);
    assert!(
        stderr.lines().all(|l| is_blob_line(l, "exists")),
        "{stderr}"
    );
}

#[test]
fn quiet_prints_exactly_the_result_line() {
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("l");
    let image = fixtures::oci_layout(&layout, &ImageSpec::new("1.0", &[1_000]));
    let output = idpbuilder()
        .args(["push", "-q", "--plain-http"])
        .arg(&layout)
        .arg(format!("{}/team/app:1.0", registry.host()))
        .output()
        .expect("run idpbuilder");
    assert!(output.status.success());
    assert!(output.stderr.is_empty(), "{}", stderr(&output));
    let stdout = stdout(&output);
    assert_eq!(stdout.lines().count(), 1);
    assert!(stdout.trim_end().ends_with(&image.manifest_digest));
}

/// Under a pseudo-terminal (util-linux `script`), bars are drawn and the result still ends the
/// output.
#[test]
fn on_a_terminal_bars_are_drawn_and_the_result_comes_last() {
    if !has_script() {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("l");
    let image = fixtures::oci_layout(&layout, &ImageSpec::new("1.0", &[2_000_000]));
    let args = [
        "push".to_string(),
        "--plain-http".to_string(),
        layout.display().to_string(),
        format!("{}/team/tty:1.0", registry.host()),
    ];
    let output = idpbuilder_on_terminal(&args)
        .env_remove("NO_COLOR")
        .output()
        .expect("run script");
    let screen = stdout(&output);
    assert!(output.status.success(), "{screen}");
    assert!(
        screen.contains("total"),
        "a total bar was drawn: {screen:?}"
    );
    let last = screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    assert!(
        last.trim().ends_with(&image.manifest_digest),
        "the result line comes last: {screen:?}"
    );
}

/// A warning printed while blobs upload (a retry notice after a 503) takes the bars off the
/// screen, prints its own whole line, and the bars come back: the line is not torn by bar
/// output and the result still comes last.
#[test]
fn on_a_terminal_a_warning_during_the_upload_prints_whole_between_the_bars() {
    if !has_script() {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let registry = Registry::start(RegistryOptions::default());
    let proxy = FaultProxy::start(
        &registry.host(),
        vec![
            Rule::on("PATCH", "/blobs/uploads/")
                .after(1)
                .fault(Fault::Status(503)),
        ],
    );
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("l");
    let image = fixtures::oci_layout(&layout, &ImageSpec::new("1.0", &[2_000_000, 3_000_000]));
    let output = idpbuilder_on_terminal(&[
        "push".into(),
        "--plain-http".into(),
        "--color".into(),
        "never".into(),
        layout.display().to_string(),
        format!("{}/team/warned:1.0", proxy.host()),
    ])
    .output()
    .expect("run script");
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{screen}");
    assert_eq!(proxy.faults_injected(), 1, "{screen}");
    // What the terminal shows: every line after its last carriage return, cursor moves and
    // erasures taken out.
    let shown: Vec<String> = screen
        .lines()
        .map(|l| without_escapes(l.rsplit('\r').next().unwrap_or_default()))
        .collect();
    let warning = shown
        .iter()
        .find(|l| l.contains("warning:"))
        .unwrap_or_else(|| panic!("a warning was shown: {screen:?}"));
    assert!(
        warning.starts_with("warning: ") && warning.contains("503") && warning.contains("retrying"),
        "the warning is a whole line of its own: {warning:?}"
    );
    let after = screen.split("warning:").nth(1).unwrap_or_default();
    assert!(
        after.contains("total"),
        "the bars are drawn again after the warning: {screen:?}"
    );
    let last = shown
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .cloned()
        .unwrap_or_default();
    assert!(
        last.trim().ends_with(&image.manifest_digest),
        "the result line comes last: {screen:?}"
    );
}

/// `text` without ANSI control sequences (`ESC [ ... letter`).
fn without_escapes(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn color_never_keeps_stderr_free_of_escape_codes_on_errors() {
    let output = idpbuilder()
        .args(["push", "--color", "never", "/no/such.tar", "team/app:1.0"])
        .output()
        .expect("run idpbuilder");
    assert_eq!(output.status.code(), Some(2));
    assert!(!output.stderr.contains(&0x1b));
    let always = idpbuilder()
        .args(["push", "--color", "always", "/no/such.tar", "team/app:1.0"])
        .output()
        .expect("run idpbuilder");
    assert!(
        always.stderr.contains(&0x1b),
        "--color always colours the error label"
    );
}
