//! Living beside cnoe-io's idpbuilder: a command this binary does not own is handed, with exactly
//! the same arguments, to the next `idpbuilder` on PATH, whose exit code is the result; with none
//! there, exit 2 and a hint to install it. A stand-in script plays cnoe-io's idpbuilder.

use crate::support;

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use support::idpbuilder;

/// A temporary directory holding a stand-in `idpbuilder` that writes each argument on a line of
/// `args.txt` beside it and exits 7.
struct StandIn {
    dir: tempfile::TempDir,
}

impl StandIn {
    fn new() -> StandIn {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("idpbuilder");
        let out = dir.path().join("args.txt");
        let text = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\nexit 7\n",
            out.display()
        );
        std::fs::write(&script, text).expect("write the stand-in");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .expect("make the stand-in executable");
        StandIn { dir }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The arguments the stand-in was run with, or `None` when it was not run.
    fn args(&self) -> Option<Vec<String>> {
        let text = std::fs::read_to_string(self.dir.path().join("args.txt")).ok()?;
        Some(text.lines().map(str::to_string).collect())
    }
}

/// The directory of the binary under test.
fn our_dir() -> PathBuf {
    let binary = assert_cmd::cargo::cargo_bin("idpbuilder");
    binary.parent().expect("binary directory").to_path_buf()
}

fn path_of(dirs: &[&Path]) -> OsString {
    std::env::join_paths(dirs).expect("PATH")
}

#[test]
fn an_idpbuilder_command_runs_the_next_idpbuilder_with_the_same_arguments() {
    let stand_in = StandIn::new();
    let ours = our_dir();
    let output = idpbuilder()
        .env("PATH", path_of(&[&ours, stand_in.dir()]))
        .args(["create", "--x", "y", "two words", ""])
        .output()
        .expect("run idpbuilder");
    assert_eq!(output.status.code(), Some(7), "its exit code is ours");
    assert_eq!(
        stand_in.args(),
        Some(vec![
            "create".to_string(),
            "--x".into(),
            "y".into(),
            "two words".into(),
            "".into()
        ])
    );
}

#[test]
fn help_about_another_command_and_a_leading_flag_are_handed_over_too() {
    for args in [
        &["help", "create"][..],
        &["--log-level", "debug", "get", "secrets"],
    ] {
        let stand_in = StandIn::new();
        let output = idpbuilder()
            .env("PATH", path_of(&[&our_dir(), stand_in.dir()]))
            .args(args)
            .output()
            .expect("run idpbuilder");
        assert_eq!(output.status.code(), Some(7), "{args:?}");
        let expected: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        assert_eq!(stand_in.args(), Some(expected), "{args:?}");
    }
}

#[test]
fn our_own_commands_are_not_handed_over() {
    let stand_in = StandIn::new();
    let path = path_of(&[&our_dir(), stand_in.dir()]);
    for args in [
        &["--version"][..],
        &["-V"],
        &["--help"],
        &["-h"],
        &["help"],
        &["help", "push"],
        &["push", "--help"],
        &["completion", "bash"],
    ] {
        let output = idpbuilder()
            .env("PATH", &path)
            .args(args)
            .output()
            .expect("run idpbuilder");
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert_eq!(stand_in.args(), None, "{args:?} ran the stand-in");
    }
    // No arguments: our usage, not idpbuilder's.
    let output = idpbuilder().env("PATH", &path).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stand_in.args(), None);
}

#[test]
fn a_mistyped_push_or_help_about_another_command_is_named_in_the_error() {
    let empty = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str]| {
        let output = idpbuilder()
            .env("PATH", path_of(&[&our_dir(), empty.path()]))
            .args(args)
            .output()
            .expect("run idpbuilder");
        assert_eq!(output.status.code(), Some(2));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let typo = run(&["psuh", "./app"]);
    assert!(
        typo.starts_with("error: \"psuh\" is not a command"),
        "{typo}"
    );
    assert!(
        typo.contains("\nhint: did you mean idpbuilder push?"),
        "{typo}"
    );
    let help = run(&["help", "create"]);
    assert!(
        help.starts_with("error: \"create\" is not a command"),
        "{help}"
    );
}

#[test]
fn without_another_idpbuilder_on_path_it_exits_2_with_an_install_hint() {
    let empty = tempfile::tempdir().expect("temp dir");
    let output = idpbuilder()
        .env("PATH", path_of(&[&our_dir(), empty.path()]))
        .args(["create", "--recreate"])
        .output()
        .expect("run idpbuilder");
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error: \"create\" is not a command of this idpbuilder"),
        "{err}"
    );
    assert!(
        err.contains(
            "\nhint: install cnoe-io's idpbuilder (https://cnoe.io/docs/idpbuilder/installation"
        ),
        "{err}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn this_binary_through_a_link_on_path_is_passed_over() {
    let stand_in = StandIn::new();
    let links = tempfile::tempdir().expect("temp dir");
    std::os::unix::fs::symlink(
        assert_cmd::cargo::cargo_bin("idpbuilder"),
        links.path().join("idpbuilder"),
    )
    .expect("link");
    let output = idpbuilder()
        .env("PATH", path_of(&[links.path(), &our_dir(), stand_in.dir()]))
        .args(["get", "secrets"])
        .output()
        .expect("run idpbuilder");
    assert_eq!(output.status.code(), Some(7));
    assert_eq!(
        stand_in.args(),
        Some(vec!["get".to_string(), "secrets".into()])
    );
}

#[test]
fn two_copies_of_this_binary_hand_forward_and_never_to_each_other() {
    // A hard link is another file name for PATH, and canonicalizes to itself: a copy.
    let copy_dir = tempfile::tempdir().expect("temp dir");
    let copy = copy_dir.path().join("idpbuilder");
    if std::fs::hard_link(assert_cmd::cargo::cargo_bin("idpbuilder"), &copy).is_err() {
        std::fs::copy(assert_cmd::cargo::cargo_bin("idpbuilder"), &copy).expect("copy");
    }
    let empty = tempfile::tempdir().expect("temp dir");
    let output = idpbuilder()
        .env(
            "PATH",
            path_of(&[&our_dir(), copy_dir.path(), empty.path()]),
        )
        .args(["create"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .expect("run idpbuilder");
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("no other idpbuilder is on PATH"), "{err}");

    let stand_in = StandIn::new();
    let output = idpbuilder()
        .env(
            "PATH",
            path_of(&[copy_dir.path(), &our_dir(), stand_in.dir()]),
        )
        .args(["create"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .expect("run idpbuilder");
    assert_eq!(output.status.code(), Some(7));
    assert_eq!(stand_in.args(), Some(vec!["create".to_string()]));
}
