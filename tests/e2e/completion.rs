//! `idpbuilder completion SHELL` and the man pages: both made from the clap definitions.

use crate::support;

use support::idpbuilder;

fn script(shell: &str) -> String {
    let output = idpbuilder()
        .args(["completion", shell])
        .output()
        .expect("run idpbuilder");
    assert_eq!(output.status.code(), Some(0), "{shell}");
    assert!(output.stderr.is_empty(), "{shell}: nothing on stderr");
    String::from_utf8(output.stdout).expect("UTF-8 script")
}

#[test]
fn every_shell_gets_a_script() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = script(shell);
        assert!(!script.trim().is_empty(), "{shell}");
        assert!(script.contains("idpbuilder"), "{shell}");
        assert!(script.contains("digestfile"), "{shell}: the push flags");
    }
}

#[test]
fn the_bash_script_is_valid_bash() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("idpbuilder.bash");
    std::fs::write(&file, script("bash")).expect("write script");
    let status = std::process::Command::new("bash")
        .arg("-n")
        .arg(&file)
        .status()
        .expect("run bash");
    assert!(status.success(), "bash -n refused the script");
}

#[test]
fn the_bash_script_completes_push_flags() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("idpbuilder.bash");
    std::fs::write(&file, script("bash")).expect("write script");
    // Source it and ask for the completions of `idpbuilder push --dig`.
    let probe = format!(
        "source '{}'; COMP_WORDS=(idpbuilder push --dig); COMP_CWORD=2; \
         COMP_LINE='idpbuilder push --dig'; COMP_POINT=${{#COMP_LINE}}; \
         _idpbuilder idpbuilder --dig push; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let output = std::process::Command::new("bash")
        .args(["-c", &probe])
        .output()
        .expect("run bash");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(out.lines().any(|l| l == "--digestfile"), "{out}");
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let output = idpbuilder()
        .args(["completion", "tcsh"])
        .output()
        .expect("run idpbuilder");
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
}

#[test]
fn completion_help_says_how_to_install() {
    let output = idpbuilder()
        .args(["completion", "--help"])
        .output()
        .expect("run idpbuilder");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        out.contains("bash-completion/completions/idpbuilder"),
        "{out}"
    );
}
