//! What the user reads at the end: the result on stdout (text or JSON) and, on failure, the
//! `error:` / `hint:` / `caused by:` lines on stderr.
//!
//! Messages can hold text from elsewhere (a registry's error message, a file name, an
//! underlying error): every line is printed through [`escape_controls`], so no such text can
//! play a terminal escape sequence or start a line of its own (a fake `error:`).

use std::io::Write;

use crate::cli::OutputFormat;
use crate::error::Error;
use crate::pull::PullSummary;
use crate::push::Summary;
use crate::text::escape_controls;

/// The result on stdout; its last line is `HOST/REPO:TAG@sha256:DIGEST` in text mode.
pub fn result(
    out: &mut impl Write,
    summary: &Summary,
    format: OutputFormat,
) -> std::io::Result<()> {
    match format {
        OutputFormat::Text => writeln!(out, "{}", summary.reference),
        OutputFormat::Json => {
            serde_json::to_writer(&mut *out, summary)?;
            writeln!(out)
        }
    }
}

/// The result of a pull on stdout; its last line is what was written with its digest
/// (`oci:DIR:REF@sha256:...`) in text mode.
pub fn pull_result(
    out: &mut impl Write,
    summary: &PullSummary,
    format: OutputFormat,
) -> std::io::Result<()> {
    match format {
        OutputFormat::Text => writeln!(out, "{}", escape_controls(&summary.reference)),
        OutputFormat::Json => {
            serde_json::to_writer(&mut *out, summary)?;
            writeln!(out)
        }
    }
}

/// `error: ...`, then `hint: ...`, then the causes when `verbose`.
pub fn error(
    err: &mut impl Write,
    error: &Error,
    verbose: bool,
    color: bool,
) -> std::io::Result<()> {
    let (red, yellow, reset) = if color {
        ("\x1b[1;31m", "\x1b[1;33m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    writeln!(
        err,
        "{red}error:{reset} {}",
        escape_controls(error.message())
    )?;
    if let Some(hint) = error.hint() {
        writeln!(err, "{yellow}hint:{reset} {}", escape_controls(hint))?;
    }
    if verbose {
        let mut cause = std::error::Error::source(error);
        while let Some(c) = cause {
            writeln!(err, "caused by: {}", escape_controls(&c.to_string()))?;
            cause = c.source();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        Summary {
            reference: "h/o/n:1@sha256:abc".into(),
            digest: "sha256:abc".into(),
            size: 10,
            blobs_uploaded: 2,
            blobs_skipped: 1,
            blobs_mounted: 0,
            bytes_uploaded: 300,
            tags: vec!["1".into()],
            seconds: 0.5,
            dry_run: false,
        }
    }

    #[test]
    fn text_result_is_the_reference_line() {
        let mut out = Vec::new();
        result(&mut out, &summary(), OutputFormat::Text).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "h/o/n:1@sha256:abc\n");
    }

    #[test]
    fn json_result_has_every_field() {
        let mut out = Vec::new();
        result(&mut out, &summary(), OutputFormat::Json).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        for key in [
            "reference",
            "digest",
            "size",
            "blobs_uploaded",
            "blobs_skipped",
            "blobs_mounted",
            "bytes_uploaded",
            "tags",
            "seconds",
            "dry_run",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn registry_text_cannot_forge_lines_or_play_escape_sequences() {
        let e = Error::registry("h answered 400: DENIED: \u{1b}[31mowned\u{1b}[0m\nerror: fake")
            .with_hint("x\nhint: fake")
            .with_cause(std::io::Error::other("cause\n\u{1b}[2J"));
        let mut out = Vec::new();
        error(&mut out, &e, true, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert_eq!(
            text,
            "error: h answered 400: DENIED: \\u{1b}[31mowned\\u{1b}[0m\\nerror: fake\n\
             hint: x\\nhint: fake\n\
             caused by: cause\\n\\u{1b}[2J\n"
        );
    }

    #[test]
    fn error_lines_with_hint_and_causes_only_when_verbose() {
        let e = Error::input("image x does not exist")
            .with_hint("check the path")
            .with_cause(std::io::Error::other("no such file"));
        let mut quiet = Vec::new();
        error(&mut quiet, &e, false, false).unwrap();
        assert_eq!(
            String::from_utf8(quiet).unwrap(),
            "error: image x does not exist\nhint: check the path\n"
        );
        let mut verbose = Vec::new();
        error(&mut verbose, &e, true, false).unwrap();
        assert!(
            String::from_utf8(verbose)
                .unwrap()
                .ends_with("caused by: no such file\n")
        );
    }
}
