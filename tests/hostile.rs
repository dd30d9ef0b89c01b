//! Hostile peers (issue 22): a registry, a token realm, credential helpers and an engine that
//! misbehave on purpose. Each run must end in bounded memory (peak RSS under 64 MiB), bounded
//! time, one `error:` line naming the peer at fault with the SPEC's exit code, and nothing
//! pushed that no manifest names.

mod support;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use support::hostile::{Hostile, assert_refused, endless, measured, respond};
use support::launch::idpbuilder_process;

/// A registry whose every answer is a bearer challenge naming a realm on itself, and whose
/// realm answers `{"token":"aaaa…` without end, as fast as it is read.
#[test]
fn an_endless_token_answer_is_cut_at_64_kib() {
    let port = Arc::new(OnceLock::<String>::new());
    let realm_host = port.clone();
    let peer = Hostile::start(move |request, conn| {
        if request.path.starts_with("/token") {
            return endless(
                conn,
                &[("Content-Type", "application/json")],
                br#"{"token":""#,
                &[b'a'; 64 << 10],
                Duration::ZERO,
            );
        }
        let host = realm_host.get().cloned().unwrap_or_default();
        let challenge = format!(r#"Bearer realm="http://{host}/token",service="hostile""#);
        respond(
            conn,
            "401 Unauthorized",
            &[("WWW-Authenticate", &challenge)],
            b"{}",
        )
    });
    let _ = port.set(peer.host());
    let work = tempfile::tempdir().expect("temp dir");
    let (layout, _) = support::tiny_layout(work.path());
    let run = measured(
        idpbuilder_process()
            .args(["push", "-q", "--plain-http"])
            .arg(&layout)
            .arg(format!("{}/team/app:1.0", peer.host())),
        Duration::from_secs(60),
    );
    assert_refused(&run, 1, "token service", Duration::from_secs(30));
    assert!(
        run.stderr().contains("larger than 64 KiB"),
        "{}",
        run.stderr()
    );
}

/// The realm sends its token one byte every 100 ms: the answer must be whole within the idle
/// time (here 1 s), however steadily it trickles.
#[test]
fn a_trickling_token_answer_ends_at_the_idle_time() {
    let port = Arc::new(OnceLock::<String>::new());
    let realm_host = port.clone();
    let peer = Hostile::start(move |request, conn| {
        if request.path.starts_with("/token") {
            return endless(
                conn,
                &[("Content-Type", "application/json")],
                br#"{"token":""#,
                b"a",
                Duration::from_millis(100),
            );
        }
        let host = realm_host.get().cloned().unwrap_or_default();
        let challenge = format!(r#"Bearer realm="http://{host}/token",service="hostile""#);
        respond(
            conn,
            "401 Unauthorized",
            &[("WWW-Authenticate", &challenge)],
            b"{}",
        )
    });
    let _ = port.set(peer.host());
    let work = tempfile::tempdir().expect("temp dir");
    let (layout, _) = support::tiny_layout(work.path());
    let run = measured(
        idpbuilder_process()
            .env("IDPBUILDER_TEST_READ_TIMEOUT_MS", "1000")
            .args(["push", "-q", "--plain-http"])
            .arg(&layout)
            .arg(format!("{}/team/app:1.0", peer.host())),
        Duration::from_secs(60),
    );
    assert_refused(&run, 1, "token service", Duration::from_secs(30));
    assert!(
        run.stderr().contains("did not send its token within 1s"),
        "{}",
        run.stderr()
    );
}
