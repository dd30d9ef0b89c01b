//! Text from elsewhere (a registry's error message, a file name, a cluster's answer) made safe
//! to print on a terminal: one helper every voice that prints uses.

use std::borrow::Cow;

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
}
