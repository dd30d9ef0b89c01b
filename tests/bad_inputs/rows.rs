//! The registry, network and cluster faults of the table: each needs a registry, a fault
//! proxy or a fake cluster, and names the test that proves it.

/// A fault with the test that proves it.
pub struct RegistryRow {
    pub what: &'static str,
    pub code: i32,
    pub file: &'static str,
    pub test: &'static str,
    pub outcome: &'static str,
}

const fn row(
    what: &'static str,
    code: i32,
    file: &'static str,
    test: &'static str,
    outcome: &'static str,
) -> RegistryRow {
    RegistryRow {
        what,
        code,
        file,
        test,
        outcome,
    }
}

const PUSH: &str = "tests/push.rs";
const FAULTS: &str = "tests/faults.rs";
const HERE: &str = "tests/bad_inputs/registry_faults.rs";
const CLUSTER: &str = "tests/cluster/bad_data.rs";
const ZERO_CONFIG: &str = "tests/cluster/zero_config.rs";
const DOCKER: &str = "tests/docker_config.rs";
const ONCE: &str = "each_transient_fault_once_is_retried_and_the_digests_match";
const PERSISTENT: &str = "persistent_faults_exit_1_with_one_error_line_and_no_tag";

/// Every registry, network and cluster fault, in the order of the table: what, exit code, the
/// file and test proving it, what happens.
#[rustfmt::skip]
pub const REGISTRY_ROWS: &[RegistryRow] = &[
    // The image turns out bad while it is uploaded.
    row("layer bytes do not match the layer's digest", 2, PUSH,
        "a_blob_whose_bytes_do_not_match_its_digest_aborts_before_any_tag",
        "`does not match its digest`; no manifest, no tag"),
    // Credentials.
    row("wrong password, Basic auth", 3, PUSH,
        "wrong_password_exits_3_and_creates_no_tag",
        "`registry refused the credentials for HOST/REPO (401 Unauthorized)`; no tag"),
    row("wrong password, Bearer token auth", 3, PUSH,
        "token_auth_runs_the_bearer_flow_for_real",
        "`error:` line, exit 3"),
    row("registry asks for credentials, none given", 3, HERE,
        "a_registry_that_wants_credentials_and_gets_none_exits_3",
        "`HOST requires credentials to push to REPO`"),
    row("challenge in a scheme the tool does not speak", 3, HERE,
        "an_unknown_auth_scheme_is_refused_with_exit_3",
        "`registry refused the credentials for HOST/REPO (401 Unauthorized)`"),
    row("403 Forbidden to the upload", 3, HERE,
        "a_403_to_the_upload_exits_3_without_retrying",
        "`registry denied the push to HOST/REPO (403 Forbidden)`, not retried"),
    row("cluster's `gitea-credential` Secret missing", 3, CLUSTER,
        "a_missing_secret_is_passed_over_with_a_debug_line",
        "passed over with a debug line; the registry refuses the anonymous push"),
    row("cluster's Secret without the `username` key", 3, CLUSTER,
        "a_secret_without_the_keys_is_passed_over_with_a_debug_line",
        "passed over with a debug line; the registry refuses the anonymous push"),
    row("cluster's Secret forbidden to the kubeconfig's user", 3, CLUSTER,
        "a_forbidden_secret_is_passed_over_with_a_debug_line",
        "passed over, the debug line names `403 Forbidden`; the anonymous push is refused"),
    row("malformed kubeconfig found through `$KUBECONFIG`", 3, CLUSTER,
        "a_malformed_kubeconfig_is_an_error_when_named_and_passed_over_when_found",
        "passed over with a debug line; the registry refuses the anonymous push"),
    row("missing or malformed docker `config.json`", 3, DOCKER,
        "a_missing_or_malformed_config_is_passed_over_and_the_push_is_refused",
        "passed over; the registry refuses the anonymous push"),
    // TLS.
    row("certificate from an unknown CA", 4, PUSH,
        "an_untrusted_certificate_exits_4_and_names_the_flags",
        "`the TLS certificate of HOST is not trusted: it is signed by an unknown authority`"),
    row("idpbuilder's self-signed CA certificate, not trusted", 4, PUSH,
        "an_untrusted_certificate_exits_4_and_names_the_flags",
        "`the TLS certificate of HOST is not trusted`"),
    row("expired certificate, even one trusted with `--ca-file`", 4, HERE,
        "an_expired_certificate_exits_4_even_when_trusted",
        "`the TLS certificate of HOST is not trusted: it has expired`"),
    row("cluster unreachable, registry certificate not trusted", 4, ZERO_CONFIG,
        "an_unreachable_cluster_is_passed_over_and_the_untrusted_certificate_exits_4_in_time",
        "cluster passed over within 5 s; `the TLS certificate of HOST is not trusted`"),
    row("garbage where the cluster's certificate should be", 4, CLUSTER,
        "a_configmap_holding_garbage_is_passed_over_and_tls_fails_with_exit_4",
        "passed over; the push then fails TLS"),
    // The network.
    row("registry not listening", 1, PUSH,
        "a_registry_that_is_not_listening_exits_1",
        "`cannot connect to HOST` after `--retries` attempts"),
    row("404 to the upload (a 4xx other than 408/429)", 1, HERE,
        "a_404_to_the_upload_exits_1_without_retrying",
        "`HOST answered 404 Not Found to PATH`, not retried"),
    row("503 to every blob PUT", 1, FAULTS,
        PERSISTENT,
        "`HOST answered 503 ...`, one `error:` line, no tag"),
    row("connection reset in every large blob body", 1, FAULTS,
        PERSISTENT,
        "`error:` line naming the connection, no tag"),
    row("no answer to the manifest, ever", 1, FAULTS,
        PERSISTENT,
        "`HOST did not answer in time`, no tag"),
    row("429 to every blob check", 1, FAULTS,
        PERSISTENT,
        "`HOST answered 429 ...`, no tag"),
    row("500 to starting an upload, once", 0, FAULTS,
        ONCE,
        "retried; pushed with the source's digests"),
    row("502 to a blob PUT, once", 0, FAULTS,
        ONCE,
        "retried; pushed"),
    row("503 to a blob check, once", 0, FAULTS,
        ONCE,
        "retried; pushed"),
    row("429 with `Retry-After: 1` to the manifest, once", 0, FAULTS,
        ONCE,
        "waits at least 1 s, retried; pushed"),
    row("connection reset inside a blob body, once", 0, FAULTS,
        ONCE,
        "upload restarted; pushed"),
    row("connection reset inside the second `PATCH` chunk", 0, FAULTS,
        ONCE,
        "upload restarted; pushed"),
    row("no answer to the version check, once", 0, FAULTS,
        ONCE,
        "timed out, retried; pushed"),
    row("no answer to the manifest, once", 0, FAULTS,
        ONCE,
        "timed out, retried; pushed"),
    row("truncated answer to a blob commit", 0, FAULTS,
        ONCE,
        "retried; pushed"),
    row("20 mixed faults (5xx, 429, resets, truncation, silence) in one push", 0, FAULTS,
        "twenty_faults_spread_over_one_push_are_all_survived",
        "all survived; pushed with the source's digests"),
    row("reset after 1 byte, half-way and 1 byte short of a blob's end", 0, FAULTS,
        "a_blob_reset_mid_body_never_leaves_a_wrong_or_partial_blob",
        "no wrong or partial blob, no upload left open; pushed"),
    row("slow but steady upload, longer than the idle timeout", 0, FAULTS,
        "a_slow_but_steady_upload_outlives_the_idle_timeout",
        "not cut off, not retried; pushed"),
    row("413 from a proxy capping request bodies", 0, FAULTS,
        "an_early_413_from_a_proxy_shrinks_the_chunks_even_when_the_write_fails",
        "one `warning:` line, blob sent in smaller `PATCH` chunks; pushed"),
    row("Ctrl-C (SIGINT) during an upload", 130, FAULTS,
        "ctrl_c_stops_a_push_at_once_with_exit_130_and_no_tag",
        "`error: interrupted` within 1 s, no manifest, no tag"),
    row("SIGTERM during an upload", 130, FAULTS,
        "sigterm_stops_a_push_at_once_with_exit_130_and_no_tag",
        "`error: interrupted` within 1 s, no manifest, no tag"),
];
