//! Upload `Location`s and redirects that name another origin are followed without credentials;
//! a TLS registry is never followed down to plain HTTP.

use super::fake::{Fake, Reply};
use super::support::certs;
use super::{PASS, Scheme, Sessions, USER, anonymous_registry, basic, push_image, registry, text};

/// 1.5 MiB of incompressible bytes: more than one `--chunk-size 1MiB` chunk.
const LARGE: usize = 1_536 * 1024;

/// Pushes an image with a `layer`-byte layer to a registry logging in with `scheme` whose
/// upload `Location`s name another port; returns what that other server saw.
fn push_with_foreign_uploads(scheme: Scheme, layer: usize, extra: &[&str]) {
    let sessions = Sessions::default();
    let foreign = {
        let sessions = sessions.clone();
        Fake::plain(move |seen, me| sessions.answer(seen, me))
    };
    let registry = Fake::plain(registry(scheme, sessions, Some(foreign.addr())));
    let home = tempfile::tempdir().expect("home");
    let output = push_image(home.path(), layer, registry.port(), |cmd| {
        cmd.args([
            "--plain-http",
            "--concurrency",
            "1",
            "-u",
            USER,
            "--password-stdin",
        ])
        .args(extra)
        .write_stdin(format!("{PASS}\n"));
    });
    let case = format!("{scheme:?}, {layer} byte layer, {extra:?}");
    assert_eq!(output.status.code(), Some(0), "{case}: {}", text(&output));

    let seen = foreign.seen();
    let bodies = seen
        .iter()
        .filter(|s| matches!(s.method.as_str(), "PUT" | "PATCH"))
        .map(|s| s.body_len)
        .sum::<usize>();
    assert!(
        bodies > layer,
        "{case}: the blobs went to the upload location: {seen:?}"
    );
    assert_eq!(
        foreign.authorized().len(),
        0,
        "{case}: no credentials reach another port: {seen:?}"
    );
    assert!(
        !registry.authorized().is_empty(),
        "{case}: the registry itself did get them"
    );
}

#[test]
fn credentials_never_follow_an_upload_location_to_another_port() {
    for scheme in [Scheme::Basic, Scheme::Bearer] {
        // One streamed PUT per blob.
        push_with_foreign_uploads(scheme, 3_000, &[]);
        // PATCH chunks, then the commit.
        push_with_foreign_uploads(scheme, LARGE, &["--chunk-size", "1MiB"]);
    }
}

#[test]
fn a_redirect_to_another_origin_is_followed_without_credentials() {
    let sessions = Sessions::default();
    let foreign = Fake::plain(|_, _| Reply::status(404));
    let elsewhere = foreign.addr();
    let inner = registry(Scheme::Basic, sessions, None);
    let registry = Fake::plain(move |seen, me| {
        let checked = seen.method == "HEAD" && seen.target.starts_with("/v2/team/app/blobs/");
        if checked && seen.authorization.is_some() {
            return Reply::status(307).header("Location", &format!("http://{elsewhere}/blob"));
        }
        inner(seen, me)
    });
    let home = tempfile::tempdir().expect("home");
    let output = push_image(home.path(), 3_000, registry.port(), |cmd| {
        cmd.args(["--plain-http", "-u", USER, "--password-stdin"])
            .write_stdin(format!("{PASS}\n"));
    });
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        foreign.seen().iter().any(|s| s.method == "HEAD"),
        "the redirect was followed: {:?}",
        foreign.seen()
    );
    assert_eq!(foreign.authorized().len(), 0, "{:?}", foreign.seen());
    assert!(
        registry
            .authorized()
            .iter()
            .all(|s| s.authorization == Some(basic(USER, PASS)))
    );
}

/// Pushes (with `--retries 2`) to a TLS registry for `team/app` with a CA-signed certificate,
/// taking anyone, whose answer to `method path` is replaced by `reply`, and checks the push
/// exits 1 naming plain HTTP.
fn assert_push_refuses_plain_http(method: &'static str, path: &'static str, reply: Reply) {
    let home = tempfile::tempdir().expect("home");
    let cert = certs::ca_signed(home.path());
    let sessions = Sessions::default();
    let registry = Fake::tls(&cert, move |seen, me| {
        if seen.method == method && seen.target.starts_with(path) {
            return reply.clone();
        }
        anonymous_registry(seen, me, &sessions, me)
    });
    let output = push_image(home.path(), 3_000, registry.port(), |cmd| {
        cmd.args(["--retries", "2", "--ca-file"]).arg(&cert.trust);
    });
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("plain HTTP"), "{all}");
}

#[test]
fn a_tls_registry_is_never_redirected_to_plain_http() {
    let plain = Fake::plain(|_, _| Reply::status(200));
    let down = Reply::status(307).header("Location", &format!("http://{}/v2/", plain.addr()));
    assert_push_refuses_plain_http("GET", "/v2/", down);
    assert!(plain.seen().is_empty(), "{:?}", plain.seen());
}

#[test]
fn an_upload_location_on_plain_http_is_refused_for_a_tls_registry() {
    let plain = Fake::plain(|_, _| Reply::status(201));
    let down = Reply::status(202).header("Location", &format!("http://{}/upload/1", plain.addr()));
    assert_push_refuses_plain_http("POST", "/v2/team/app/blobs/uploads/", down);
    assert!(
        plain.seen().is_empty(),
        "no blob byte left in clear text: {:?}",
        plain.seen()
    );
}
