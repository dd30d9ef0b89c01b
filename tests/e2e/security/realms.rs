//! Token realms: an HTTPS registry's realm must be HTTPS; credentials go in clear text only to a
//! realm on the same host as a plain-HTTP registry.

use super::fake::{Fake, Reply};
use super::support::certs;
use super::{PASS, USER, push_image, text};

/// A registry at `me` that answers every request with a Bearer challenge naming `realm`.
fn challenging(realm: String) -> impl Fn(&super::fake::Seen, std::net::SocketAddr) -> Reply {
    move |_, _| {
        Reply::status(401).header(
            "WWW-Authenticate",
            &format!(r#"Bearer realm="{realm}",service="fake""#),
        )
    }
}

#[test]
fn a_tls_registrys_plain_http_token_realm_is_refused_and_gets_no_credentials() {
    let token = Fake::plain(|_, _| Reply::status(200).json(&serde_json::json!({"token": "t"})));
    let home = tempfile::tempdir().expect("home");
    let cert = certs::ca_signed(home.path());
    // Same host, another port, plain HTTP.
    let registry = Fake::tls(&cert, challenging(format!("http://{}/token", token.addr())));
    let output = push_image(home.path(), 3_000, registry.port(), |cmd| {
        cmd.args(["-u", USER, "--password-stdin", "--ca-file"])
            .arg(&cert.trust)
            .write_stdin(format!("{PASS}\n"));
    });
    let all = text(&output);
    assert_eq!(output.status.code(), Some(3), "{all}");
    let error = all
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(error.contains("HTTPS"), "{all}");
    assert!(
        all.contains(&format!("http://{}/token", token.addr())),
        "{all}"
    );
    assert!(
        token.seen().is_empty(),
        "nothing reached the realm: {:?}",
        token.seen()
    );
}

#[test]
fn credentials_never_go_in_clear_text_to_another_hosts_token_realm() {
    let token = Fake::plain(|_, _| Reply::status(200).json(&serde_json::json!({"token": "t"})));
    // The registry is 127.0.0.1, the realm names `localhost`: another host, in clear text.
    let registry = Fake::plain(challenging(format!(
        "http://localhost:{}/token",
        token.port()
    )));
    let home = tempfile::tempdir().expect("home");
    let output = push_image(home.path(), 3_000, registry.port(), |cmd| {
        cmd.args(["--plain-http", "-u", USER, "--password-stdin"])
            .write_stdin(format!("{PASS}\n"));
    });
    let all = text(&output);
    assert_eq!(output.status.code(), Some(3), "{all}");
    assert!(all.contains("not sending"), "{all}");
    assert!(token.authorized().is_empty(), "{:?}", token.seen());
}
