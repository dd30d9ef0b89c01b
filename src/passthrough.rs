//! Living beside cnoe-io's idpbuilder. This binary is called `idpbuilder` too, and `cargo install`
//! puts it early on PATH, where it would hide `idpbuilder create`, `get secrets` and the rest. So
//! a command line that is not ours is handed, unchanged, to the next `idpbuilder` on PATH that is
//! not this binary, by `exec`: its exit code is the result. With none there, exit 2 and say where
//! to get it.
//!
//! Ours are decided by the first argument alone: `push`, `pull`, `completion`, `help` (unless it asks
//! about another command), `--help`/`-h`, `--version`/`-V`, or none at all. Anything else,
//! including a leading flag such as `--log-level`, is idpbuilder's.

use std::ffi::{OsStr, OsString};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::report;

/// Where to get cnoe-io's idpbuilder.
pub const INSTALL_URL: &str = "https://cnoe.io/docs/idpbuilder/installation";

/// The subcommands this binary answers itself.
const OUR_COMMANDS: &[&str] = &["push", "pull", "completion", "help"];
/// The flags this binary answers itself in first place.
const OUR_FLAGS: &[&str] = &["--help", "-h", "--version", "-V"];

/// Returns when the command line is ours; otherwise runs the next `idpbuilder` on PATH in this
/// process's place, or prints why it cannot and exits.
pub fn hand_over_unless_ours() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if is_ours(&args) {
        return;
    }
    let error = hand_over(&args);
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stderr().is_terminal();
    let _ = report::error(&mut std::io::stderr().lock(), &error, false, color);
    std::process::exit(error.kind().exit_code())
}

/// Whether this binary answers `args` (the arguments after the program name) itself.
pub fn is_ours(args: &[OsString]) -> bool {
    fn word(arg: Option<&OsString>) -> Option<Option<&str>> {
        arg.map(|a| a.to_str())
    }
    match word(args.first()) {
        None => true,
        Some(None) => false,
        Some(Some("help")) => match word(args.get(1)) {
            None => true,
            Some(next) => next.is_some_and(|next| OUR_COMMANDS.contains(&next)),
        },
        Some(Some(first)) => OUR_COMMANDS.contains(&first) || OUR_FLAGS.contains(&first),
    }
}

/// Set on the handed-over process: the canonical paths (a PATH-style list) of the copies of this
/// binary that handed this command line on already, so that two copies on PATH never hand it to
/// each other in a loop.
pub const HANDED_OVER_BY: &str = "IDPBUILDER_PUSH_HANDED_OVER_BY";

/// The word that made a command line not ours: the command `help` asks about, else the first.
fn asked_for(args: &[OsString]) -> String {
    let word = match args {
        [help, next, ..] if help == "help" => next,
        [first, ..] => first,
        [] => return String::new(),
    };
    word.to_string_lossy().into_owned()
}

/// What to do about a command line that is not ours, with no cnoe-io idpbuilder to run it: a
/// flag put before `push`, a mistyped `push` or `completion`, or cnoe-io's to install.
fn not_ours_hint(asked: &str) -> String {
    let install = format!(
        "install cnoe-io's idpbuilder ({INSTALL_URL}, or https://github.com/cnoe-io/idpbuilder/releases) in a directory on PATH"
    );
    if asked.starts_with('-') {
        return format!(
            "flags of push go after it (idpbuilder push {asked} ...); for cnoe-io's commands, {install}"
        );
    }
    match OUR_COMMANDS
        .iter()
        .filter(|ours| **ours != "help")
        .map(|ours| (strsim::levenshtein(asked, ours), ours))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, ours)| ours)
    {
        Some(ours) => format!("did you mean idpbuilder {ours}? For cnoe-io's commands, {install}"),
        None => install,
    }
}

/// Execs the next `idpbuilder` with `args`; returns only the error when it cannot.
fn hand_over(args: &[OsString]) -> Error {
    let marked: Vec<PathBuf> = std::env::var_os(HANDED_OVER_BY)
        .map(|list| std::env::split_paths(&list).collect())
        .unwrap_or_default();
    let me = std::env::current_exe().and_then(std::fs::canonicalize);
    let skip = match copies_to_skip(marked, me, &asked_for(args)) {
        Ok(skip) => skip,
        Err(error) => return error,
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    let first = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(other) = next_on_path(&path, &skip) else {
        let asked = asked_for(args);
        return Error::input(format!(
            "{asked:?} is not a command of this idpbuilder (push, pull, completion), and no other idpbuilder is on PATH to hand it to"
        ))
        .with_hint(not_ours_hint(&asked));
    };
    let error = run(&other, args, &skip);
    Error::input(format!("cannot run {} for {first:?}", other.display()))
        .with_cause(error)
        .with_hint(format!(
            "check that {} is cnoe-io's idpbuilder and can be executed",
            other.display()
        ))
}

/// The copies of this binary a hand-over must pass over: those in the mark and this one. A
/// command line that comes back to a copy already in the mark is going round in a loop (a shim
/// that hands to "the first other idpbuilder", which is us), and one whose own path cannot be
/// known (no `/proc`) might be handed to itself for ever: both are refused.
fn copies_to_skip(
    marked: Vec<PathBuf>,
    me: std::io::Result<PathBuf>,
    asked: &str,
) -> Result<Vec<PathBuf>, Error> {
    let me = me.map_err(|e| {
        Error::input(format!(
            "{asked:?} is not a command of this idpbuilder (push, completion), and it is not handed to another idpbuilder: this one cannot tell its own path ({e}), so it might hand the command to itself"
        ))
        .with_hint("run cnoe-io's idpbuilder by its full path (its own path is unknown without /proc, as in a chroot or minimal sandbox)")
    })?;
    if marked.contains(&me) {
        return Err(Error::input(format!(
            "{asked:?} came back to {} after it was handed over: another idpbuilder on PATH hands it back, in a loop",
            me.display()
        ))
        .with_hint("run cnoe-io's idpbuilder by its full path, or remove the idpbuilder wrapper that hands commands on from PATH"));
    }
    let mut skip = Vec::with_capacity(marked.len() + 1);
    for path in marked.into_iter().chain([me]) {
        if !skip.contains(&path) {
            skip.push(path);
        }
    }
    Ok(skip)
}

/// Replaces this process with `program args`; returns only on failure.
#[cfg(unix)]
fn run(program: &Path, args: &[OsString], handed_over_by: &[PathBuf]) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(program);
    command.args(args);
    if let Ok(list) = std::env::join_paths(handed_over_by) {
        command.env(HANDED_OVER_BY, list);
    }
    command.exec()
}

/// Without `exec`: runs `program args` and exits with its exit code.
#[cfg(not(unix))]
fn run(program: &Path, args: &[OsString], handed_over_by: &[PathBuf]) -> std::io::Error {
    let mut command = std::process::Command::new(program);
    command.args(args);
    if let Ok(list) = std::env::join_paths(handed_over_by) {
        command.env(HANDED_OVER_BY, list);
    }
    match command.status() {
        Ok(status) => std::process::exit(status.code().unwrap_or(1)),
        Err(error) => error,
    }
}

/// The `idpbuilder` to hand over to: the first executable one on `path` that is not in `skip`
/// (canonical paths: this binary, and copies of it that handed over already). Empty and relative
/// PATH entries are passed over: the current directory is never searched.
pub fn next_on_path(path: &OsStr, skip: &[PathBuf]) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(executable_name()))
        .find(|candidate| {
            is_executable(candidate)
                && std::fs::canonicalize(candidate).is_ok_and(|c| !skip.contains(&c))
        })
}

fn executable_name() -> &'static str {
    if cfg!(windows) {
        "idpbuilder.exe"
    } else {
        "idpbuilder"
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(args: &[&str]) -> bool {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        is_ours(&args)
    }

    #[test]
    fn an_unknown_own_path_or_a_return_is_never_handed_over() {
        let unknown = copies_to_skip(
            Vec::new(),
            Err(std::io::ErrorKind::NotFound.into()),
            "create",
        );
        let message = unknown.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("cannot tell its own path"), "{message}");
        let me = PathBuf::from("/opt/a/idpbuilder");
        let back = copies_to_skip(vec![me.clone()], Ok(me.clone()), "create");
        let message = back.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("came back to /opt/a/idpbuilder"),
            "{message}"
        );
        let other = PathBuf::from("/opt/b/idpbuilder");
        let skip = copies_to_skip(vec![other.clone(), other.clone()], Ok(me.clone()), "create");
        assert_eq!(skip.ok(), Some(vec![other, me]));
    }

    #[test]
    fn our_commands_and_flags_stay_here() {
        assert!(ours(&[]));
        assert!(ours(&["push", "app:1.0"]));
        assert!(ours(&["completion", "bash"]));
        assert!(ours(&["--help"]));
        assert!(ours(&["-h"]));
        assert!(ours(&["--version"]));
        assert!(ours(&["-V"]));
        assert!(ours(&["help"]));
        assert!(ours(&["help", "push"]));
    }

    #[test]
    fn a_command_line_not_ours_gets_the_hint_for_its_likely_mistake() {
        let args = |words: &[&str]| words.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(asked_for(&args(&["help", "create"])), "create");
        assert_eq!(asked_for(&args(&["psuh", "app"])), "psuh");
        assert!(not_ours_hint("psuh").starts_with("did you mean idpbuilder push?"));
        assert!(not_ours_hint("completon").starts_with("did you mean idpbuilder completion?"));
        assert!(not_ours_hint("--log-level").starts_with("flags of push go after it"));
        assert!(not_ours_hint("create").starts_with("install cnoe-io's idpbuilder"));
        assert!(not_ours_hint("get").starts_with("install cnoe-io's idpbuilder"));
    }

    #[test]
    fn everything_else_is_idpbuilders() {
        assert!(!ours(&["create", "--recreate"]));
        assert!(!ours(&["get", "secrets"]));
        assert!(!ours(&["delete"]));
        assert!(!ours(&["version"]));
        assert!(!ours(&["help", "create"]));
        assert!(!ours(&["--log-level", "debug", "create"]));
        assert!(!ours(&["pushx"]));
        assert!(!ours(&[""]));
    }

    #[cfg(unix)]
    #[test]
    fn a_first_argument_that_is_not_utf8_is_idpbuilders() {
        use std::os::unix::ffi::OsStringExt;
        assert!(!is_ours(&[OsString::from_vec(vec![0xff, b'x'])]));
    }

    #[cfg(unix)]
    fn executable(dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).unwrap();
        let file = dir.join("idpbuilder");
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::canonicalize(file).unwrap()
    }

    #[cfg(unix)]
    #[test]
    fn the_first_idpbuilder_on_path_that_is_not_skipped_is_taken() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let (a, b, c) = (root.join("a"), root.join("b"), root.join("c"));
        let (in_a, in_b, in_c) = (executable(&a), executable(&b), executable(&c));
        let path = std::env::join_paths([&a, &b, &c]).unwrap();
        assert_eq!(next_on_path(&path, &[]), Some(in_a.clone()));
        assert_eq!(
            next_on_path(&path, std::slice::from_ref(&in_a)),
            Some(in_b.clone())
        );
        assert_eq!(
            next_on_path(&path, std::slice::from_ref(&in_b)),
            Some(in_a.clone())
        );
        assert_eq!(
            next_on_path(&path, &[in_a.clone(), in_b.clone()]),
            Some(in_c.clone())
        );
        assert_eq!(next_on_path(&path, &[in_a, in_b, in_c]), None);
    }

    #[cfg(unix)]
    #[test]
    fn this_binary_through_a_link_is_still_this_binary() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let (a, b) = (root.join("a"), root.join("b"));
        let (in_a, in_b) = (executable(&a), executable(&b));
        let link = root.join("link");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        let path = std::env::join_paths([&link, &b]).unwrap();
        assert_eq!(next_on_path(&path, &[in_a]), Some(in_b));
    }

    #[cfg(unix)]
    #[test]
    fn files_that_cannot_run_and_relative_or_empty_entries_are_passed_over() {
        let tmp = tempfile::tempdir().unwrap();
        let plain = tmp.path().join("plain");
        std::fs::create_dir_all(&plain).unwrap();
        std::fs::write(plain.join("idpbuilder"), "not executable").unwrap();
        let directory = tmp.path().join("dir");
        std::fs::create_dir_all(directory.join("idpbuilder")).unwrap();
        let good = executable(&tmp.path().join("good"));
        let good_dir = tmp.path().join("good");
        let mut path = OsString::from(":relative:");
        path.push(std::env::join_paths([&plain, &directory, &good_dir]).unwrap());
        let found = next_on_path(&path, &[]).map(|f| std::fs::canonicalize(f).unwrap());
        assert_eq!(found, Some(good));
        assert_eq!(next_on_path(OsStr::new(""), &[]), None);
    }
}
