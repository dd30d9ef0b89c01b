//! Every bad input and fault the tests try, kept as data, and `docs/bad-inputs.md` made from it
//! so that the table cannot drift from what the tool does.
//!
//! - Input errors (`cases.rs`) need no registry: each runs here against the binary
//!   with a destination nobody listens on, and must exit 2 with one `error:` line holding the
//!   expected text, before any connection. Their rows are the lines the tool really printed.
//! - Registry, network and cluster faults (`rows.rs`) are proven by named tests in
//!   `tests/e2e/push.rs`, `tests/e2e/faults.rs`, the cluster tests and `registry_faults.rs` here;
//!   the check makes sure each named test exists.
//!
//! `UPDATE_DOCS=1 cargo test --test e2e bad_inputs::` rewrites the document after a change to a
//! case or to a message.

use crate::support;

mod cases;
mod found;
mod registry_faults;
mod rows;

use std::path::Path;

use cases::{INPUT_CASES, InputCase, NOWHERE};
use rows::REGISTRY_ROWS;
use support::{idpbuilder_at, stderr};

const DOC: &str = "docs/bad-inputs.md";

/// What one case printed, as the table shows it.
struct Seen {
    error: String,
    hint: Option<String>,
}

/// Runs one case; returns what it printed, or why it is wrong.
fn run(case: &InputCase) -> Result<Seen, String> {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("work");
    std::fs::create_dir_all(&dir).expect("create work dir");
    (case.setup)(&dir);
    let dir_text = dir.display().to_string();
    let args: Vec<String> = case
        .args
        .iter()
        .map(|a| a.replace("{dir}", &dir_text))
        .collect();
    let mut cmd = idpbuilder_at(work.path());
    cmd.arg("push")
        .args(&args)
        .timeout(std::time::Duration::from_secs(30));
    cmd.write_stdin(case.stdin.unwrap_or_default());
    let output = cmd.output().map_err(|e| format!("cannot run: {e}"))?;
    let err = stderr(&output).replace(&dir_text, "$DIR");
    let problem = |why: &str| Err(format!("{}: {why}\n{err}", case.what));
    if output.status.code() != Some(case.code) {
        return problem(&format!(
            "exit {:?}, expected {}",
            output.status.code(),
            case.code
        ));
    }
    if !err.starts_with("error: ") {
        return problem("stderr does not start with `error: `");
    }
    if err.lines().filter(|l| l.starts_with("error:")).count() != 1 {
        return problem("more than one `error:` line");
    }
    if !err.contains(case.expect) {
        return problem(&format!("no {:?} in stderr", case.expect));
    }
    if !output.stdout.is_empty() {
        return problem("something on stdout");
    }
    let mut lines = err.lines();
    let error = lines.next().unwrap_or_default().to_string();
    let hint = lines
        .find_map(|l| l.strip_prefix("hint: "))
        .map(str::to_string);
    Ok(Seen { error, hint })
}

/// Digests (`sha256:HEX`, `sha256/HEX`) lose their hex (`sha256:…`), and any other run of more
/// than 40 letters or digits is cut to its first 10 and `…`: the table is about what a message
/// says, and a fixture's digests or a 256-character name would only make it wide.
fn shorten(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let is_digest = run.len() == 64
            && run
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && (out.ends_with("sha256:") || out.ends_with("sha256/"));
        if is_digest {
            out.push('…');
        } else if run.chars().count() > 40 {
            out.extend(run.chars().take(10));
            out.push('…');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Text as one table cell in a code span.
fn code_cell(text: &str) -> String {
    let text = shorten(text).replace('|', "\\|");
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

const INTRO: &str = "\
# Bad inputs and faults

Every bad input and every fault the tests try, with the exit code and what the tool says. Exit
codes are the SPEC's: 0 pushed, 1 registry or network failure after retries, 2 usage or input
error, 3 authentication or authorisation refused, 4 TLS certificate not trusted, 130 interrupted.

Generated and checked by `tests/e2e/bad_inputs/mod.rs`, so it cannot drift from the tool: change a
case in `tests/e2e/bad_inputs/cases.rs` or `rows.rs` (or a message in the code), then run
`UPDATE_DOCS=1 cargo test --test e2e bad_inputs::`.

## Input errors

Found before any connection: each case runs the binary with the destination `NOWHERE`, where
nobody listens, and must exit 2 with one `error:` line. The lines below are as printed, except
that `$DIR` stands for the case's temporary directory, digests are cut to `sha256:…` and other
names over 40 characters to their first 10 and `…`. Flag errors come from the command-line
parser, which adds a usage line instead of a `hint:`.

| # | input | exit | `error:` line | `hint:` line |
|---|---|---|---|---|
";

const FAULTS_INTRO: &str = "
## Registry, network and cluster faults

These need a registry (a real distribution registry, a wiremock one, or a fault-injecting proxy
in front of a real one) or a fake cluster; the test named on each row proves it. `HOST` and
`REPO` stand for the destination's host and repository. Exit 0 means the fault is survived and
the image is pushed with the source's digests.

| # | fault | exit | outcome | proven by |
|---|---|---|---|---|
";

fn document(seen: &[Seen]) -> String {
    let mut doc = INTRO.replace("NOWHERE", NOWHERE);
    for (i, (case, seen)) in INPUT_CASES.iter().zip(seen).enumerate() {
        let hint = seen.hint.as_deref().map(code_cell).unwrap_or_default();
        doc.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            i + 1,
            cell(case.what),
            case.code,
            code_cell(&seen.error),
            hint
        ));
    }
    doc.push_str(FAULTS_INTRO);
    for (i, row) in REGISTRY_ROWS.iter().enumerate() {
        doc.push_str(&format!(
            "| {} | {} | {} | {} | `{}` `{}` |\n",
            INPUT_CASES.len() + i + 1,
            cell(row.what),
            row.code,
            cell(row.outcome),
            row.file,
            row.test
        ));
    }
    doc
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_input_case_fails_as_the_table_says_and_the_table_is_current() {
    // Two at a time: each case starts the binary once.
    let results: Vec<Result<Seen, String>> = std::thread::scope(|scope| {
        let half = INPUT_CASES.len().div_ceil(2);
        let handles: Vec<_> = INPUT_CASES
            .chunks(half)
            .map(|chunk| scope.spawn(move || chunk.iter().map(run).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("case thread"))
            .collect()
    });
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} input cases failed:\n\n{}",
        failures.len(),
        INPUT_CASES.len(),
        failures
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    let seen: Vec<Seen> = results.into_iter().filter_map(Result::ok).collect();
    let expected = document(&seen);
    let path = root().join(DOC);
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).expect("write the document");
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    if actual != expected {
        let (line, (want, have)) = expected
            .lines()
            .chain(std::iter::repeat(""))
            .zip(actual.lines().chain(std::iter::repeat("")))
            .enumerate()
            .find(|(_, (want, have))| want != have)
            .unwrap_or((0, ("", "")));
        panic!(
            "{DOC} is out of date: run UPDATE_DOCS=1 cargo test --test e2e bad_inputs::\n\
             first difference, line {}:\n  expected: {want}\n  found:    {have}",
            line + 1
        );
    }
}

#[test]
fn the_table_has_at_least_30_rows_and_unique_inputs() {
    assert!(INPUT_CASES.len() + REGISTRY_ROWS.len() >= 30);
    let mut names: Vec<&str> = INPUT_CASES
        .iter()
        .map(|c| c.what)
        .chain(REGISTRY_ROWS.iter().map(|r| r.what))
        .collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "every row names a different input");
}

#[test]
fn every_registry_row_names_a_test_that_exists() {
    for row in REGISTRY_ROWS {
        let source = std::fs::read_to_string(root().join(row.file))
            .unwrap_or_else(|e| panic!("{}: cannot read {}: {e}", row.what, row.file));
        let defined = source.contains(&format!("fn {}(", row.test));
        assert!(defined, "{}: no fn {} in {}", row.what, row.test, row.file);
    }
}
