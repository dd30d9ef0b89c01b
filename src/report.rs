//! What the user reads at the end: the result on stdout (text or JSON) and, on failure, the
//! `error:` / `hint:` / `caused by:` lines on stderr.
//!
//! Messages can hold text from elsewhere (a registry's error message, a file name, an
//! underlying error): every line is printed through [`escape_controls`], so no such text can
//! play a terminal escape sequence or start a line of its own (a fake `error:`).
//!
//! The hint is the error's own, or, for a registry's typed [`Cause`], the next step in the
//! command line's words: the flags and environment variables are named here, not in the client.

use std::borrow::Cow;
use std::io::Write;

use crate::cli::OutputFormat;
use crate::credentials::Origin;
use crate::error::Error;
use crate::pull::PullSummary;
use crate::push::Summary;
use crate::registry::{Cause, Role};
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
    if let Some(hint) = hint(error) {
        writeln!(err, "{yellow}hint:{reset} {}", escape_controls(&hint))?;
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

/// The `hint:` line of `error`: its own hint, else the command line's words for its registry
/// cause.
pub fn hint(error: &Error) -> Option<Cow<'_, str>> {
    if let Some(hint) = error.hint() {
        return Some(Cow::Borrowed(hint));
    }
    error
        .reason::<Cause>()
        .map(|cause| Cow::Borrowed(cause_hint(*cause)))
}

const SOURCE_CREDENTIALS: &str = "check the image name, and give credentials for the source with --src-creds USER (the password is asked), IDPBUILDER_SRC_USERNAME and IDPBUILDER_SRC_PASSWORD, or docker login HOST";

/// What to do about a registry's cause, naming this command's flags and variables. The source
/// registry of a `docker://` copy has flags of its own: naming the destination's would send
/// the user the wrong way.
fn cause_hint(cause: Cause) -> &'static str {
    match cause {
        Cause::CredentialsNeeded {
            role: Role::Destination | Role::Pull,
        } => {
            "pass --username and --password-stdin, or set IDPBUILDER_REGISTRY_USERNAME and IDPBUILDER_REGISTRY_PASSWORD"
        }
        Cause::CredentialsNeeded { role: Role::Source } => SOURCE_CREDENTIALS,
        Cause::CredentialsRefused {
            role: Role::Source, ..
        } => {
            "check the source's user name and password (-l debug names where they came from: --src-creds, IDPBUILDER_SRC_USERNAME/PASSWORD, docker's config.json, or the destination's own on the same registry), and that the user may read the repository"
        }
        Cause::CredentialsRefused {
            role: Role::Destination | Role::Pull,
            origin,
        } => match origin {
            Some(Origin::Cluster) => {
                "the cluster's gitea-credential secret was refused: check it (kubectl get secret -n gitea gitea-credential), or pass --username and --password-stdin"
            }
            Some(Origin::Environment) => {
                "check IDPBUILDER_REGISTRY_USERNAME and IDPBUILDER_REGISTRY_PASSWORD"
            }
            Some(Origin::DockerConfig) => {
                "the credentials came from docker's config.json: docker login again, or pass --username and --password-stdin"
            }
            Some(Origin::Flags | Origin::Anonymous) | None => "check --username and the password",
        },
        Cause::ClusterCredentialsInClearText => {
            "push over HTTPS (without --plain-http), or give credentials yourself with --username and --password-stdin"
        }
        Cause::PlainHttpToHttps { role: Role::Source } => {
            "the source registry may speak HTTPS on that port: drop --src-plain-http"
        }
        Cause::PlainHttpToHttps {
            role: Role::Destination,
        } => {
            "the registry may speak HTTPS on that port: drop --plain-http (or http:// in DESTINATION)"
        }
        Cause::PlainHttpToHttps { role: Role::Pull } => {
            "the registry may speak HTTPS on that port: drop --plain-http (or http:// in IMAGE)"
        }
        Cause::UntrustedCertificate { role: Role::Source } => {
            "pass --src-ca-file with the source registry's CA or certificate, or --src-insecure (--ca-file and --insecure are the destination's)"
        }
        Cause::UntrustedCertificate {
            role: Role::Destination | Role::Pull,
        } => {
            "pass --ca-file with the registry's CA or certificate (idpbuilder: kubectl get secret -n default idpbuilder-cert -o jsonpath='{.data.ca\\.crt}' | base64 -d > ca.crt), or --insecure"
        }
        Cause::IdpbuilderUnreachable => {
            "idpbuilder does not seem to be running here: start it with `idpbuilder create`, or pass --kubeconfig for the cluster it runs in"
        }
    }
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
    fn a_registry_cause_gets_its_hint_here_and_an_own_hint_wins() {
        let refused = Cause::CredentialsRefused {
            role: Role::Destination,
            origin: Some(Origin::Environment),
        };
        let e = Error::auth("registry refused the credentials for h/o/n (401 Unauthorized)")
            .with_reason(refused);
        let mut out = Vec::new();
        error(&mut out, &e, false, false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "error: registry refused the credentials for h/o/n (401 Unauthorized)\n\
             hint: check IDPBUILDER_REGISTRY_USERNAME and IDPBUILDER_REGISTRY_PASSWORD\n"
        );
        let own = Error::auth("x").with_reason(refused).with_hint("do this");
        assert_eq!(hint(&own).as_deref(), Some("do this"));
        assert_eq!(hint(&Error::auth("x")), None);
    }

    #[test]
    fn each_role_names_its_own_flags() {
        let source = |cause| cause_hint(cause).contains("--src-");
        for role in [Role::Source, Role::Destination] {
            let wants_src = role == Role::Source;
            assert_eq!(source(Cause::CredentialsNeeded { role }), wants_src);
            let refused = Cause::CredentialsRefused { role, origin: None };
            assert_eq!(source(refused), wants_src);
            assert_eq!(source(Cause::PlainHttpToHttps { role }), wants_src);
            let untrusted = cause_hint(Cause::UntrustedCertificate { role });
            assert!(untrusted.starts_with(if wants_src {
                "pass --src-ca-file"
            } else {
                "pass --ca-file"
            }));
        }
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
