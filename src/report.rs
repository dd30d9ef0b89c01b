//! What the user reads at the end: the result on stdout (text or JSON) and, on failure, the
//! `error:` / `hint:` / `caused by:` lines on stderr.
//!
//! Messages can hold text from elsewhere (a registry's error message, a file name, an
//! underlying error): every line is printed through [`escape_controls`], so no such text can
//! play a terminal escape sequence or start a line of its own (a fake `error:`).

use std::borrow::Cow;
use std::io::Write;

use crate::cli::OutputFormat;
use crate::error::Error;
use crate::push::Summary;

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

/// `text` with every control character (C0, DEL, C1) and every bidirectional-text control
/// written out as an escape: `\n`, `\r`, `\t`, else `\u{1b}` and the like. Text without
/// any is returned as it is.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    fn needs_escape(c: char) -> bool {
        // Bidirectional controls can make a line read differently from what it says.
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}')
            || matches!(c, '\u{2066}'..='\u{2069}');
        c.is_control() || bidi
    }
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
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
    fn control_characters_are_escaped_and_plain_text_is_untouched() {
        assert!(matches!(
            escape_controls("giteaadmin/app: ok"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_controls("\u{1b}[2Jwiped\u{1b}]0;title\u{7}"),
            "\\u{1b}[2Jwiped\\u{1b}]0;title\\u{7}"
        );
        assert_eq!(
            escape_controls("a\nerror: fake\r\tb\u{7f}\u{9b}"),
            "a\\nerror: fake\\r\\tb\\u{7f}\\u{9b}"
        );
        assert_eq!(escape_controls("abc\u{202e}cba"), "abc\\u{202e}cba");
        assert_eq!(escape_controls("grüße ✓"), "grüße ✓");
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
