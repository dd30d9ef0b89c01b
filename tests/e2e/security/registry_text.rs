//! Text a registry sends (its error `code` and `message`) reaches the terminal with control
//! characters escaped: no escape sequence is played, no line is forged.

use super::fake::{Fake, Reply};
use super::{Sessions, anonymous_registry, push_image, text};

/// Clears the screen, paints in red, and forges an `error:` line of its own.
const HOSTILE: &str = "\u{1b}[2J\u{1b}[31mowned\u{1b}[0m\nerror: fake\rhint: fake";

/// A registry that takes anyone and answers starting an upload with `status` and [`HOSTILE`]
/// as its OCI error message.
fn hostile(status: u16) -> Fake {
    let sessions = Sessions::default();
    Fake::plain(move |seen, me| {
        if seen.method == "POST" {
            return Reply::status(status).json(&serde_json::json!({
                "errors": [{"code": "DENIED\u{1b}]0;title\u{7}", "message": HOSTILE}]
            }));
        }
        anonymous_registry(seen, me, &sessions, me)
    })
}

fn assert_escaped(all: &str) {
    assert!(
        !all.contains('\u{1b}'),
        "an escape character reached the terminal: {all:?}"
    );
    assert!(!all.contains('\u{7}'), "{all:?}");
    assert!(!all.contains('\r'), "{all:?}");
    let errors: Vec<&str> = all.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line, not a forged one: {all}");
    assert!(!all.lines().any(|l| l.starts_with("hint: fake")), "{all}");
    assert!(errors[0].contains(r"\u{1b}[31mowned"), "{all}");
    assert!(errors[0].contains(r"\nerror: fake"), "{all}");
}

#[test]
fn a_registrys_error_message_is_shown_with_control_characters_escaped() {
    let registry = hostile(400);
    let home = tempfile::tempdir().expect("home");
    let output = push_image(home.path(), 3_000, registry.port(), |cmd| {
        cmd.args(["--plain-http"]);
    });
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert_escaped(&all);
}

#[test]
fn a_registrys_error_message_is_escaped_in_retry_warnings_too() {
    let registry = hostile(503);
    let home = tempfile::tempdir().expect("home");
    let output = push_image(home.path(), 3_000, registry.port(), |cmd| {
        cmd.args(["--plain-http", "--retries", "2"]);
    });
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("retrying"), "a retry was logged: {all}");
    assert_escaped(&all);
}
