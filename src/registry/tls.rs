//! TLS trust for registry connections: system roots, `--ca-file`, the cluster's idpbuilder
//! certificate, and `--insecure`.
//!
//! idpbuilder's ingress serves one self-signed certificate marked CA:TRUE as its own. webpki
//! refuses a CA certificate as an end entity (`CaUsedAsEndEntity`) even when it is trusted, while
//! curl, Go and skopeo accept it. So a server certificate byte-identical to a trusted self-signed
//! certificate is accepted after checking its host name, its validity period and (as always) the
//! handshake signature; anything else goes through normal chain verification.
//!
//! The cluster's certificate is pinned for the cluster's Gitea host only ([`Trust::pin_for_host`]):
//! accepted as that host's own certificate, never as a CA, so a certificate it signed, or the
//! certificate itself presented for another name, is not trusted. `--ca-file` certificates are
//! trust anchors as well.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, Result};

/// How much the client trusts what the server presents.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Extra PEM certificates (`--ca-file`): trust anchors, and a self-signed one is also
    /// accepted as the server's own certificate for any name it holds.
    pub extra: Vec<CertificateDer<'static>>,
    /// Certificates accepted only as one host's own certificate ([`Trust::pin_for_host`]).
    pub pinned: Vec<HostPin>,
    /// `--insecure`: accept any certificate.
    pub insecure: bool,
}

/// A certificate accepted as the server's own for one host name only, never as a CA.
#[derive(Debug, Clone)]
pub struct HostPin {
    /// Lower case, without port or trailing dot.
    host: String,
    certificate: CertificateDer<'static>,
}

impl HostPin {
    /// Whether `server_name` is this pin's host.
    fn names(&self, server_name: &ServerName<'_>) -> bool {
        match server_name {
            ServerName::DnsName(name) => crate::reference::host_name(name.as_ref()) == self.host,
            ServerName::IpAddress(ip) => self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|host| host == std::net::IpAddr::from(*ip)),
            _ => false,
        }
    }
}

impl Trust {
    /// Accepts each of `certificates` as the server's own certificate of `host` (`name[:port]`,
    /// any port) and of no other host: only when the server presents it byte for byte, for that
    /// host name, within its validity period (and the handshake signature checks, as always).
    /// They are never trust anchors, so a certificate one of them signed is not accepted. This
    /// is how the cluster's idpbuilder certificate is trusted for the cluster's Gitea host.
    pub fn pin_for_host(
        &mut self,
        host: &str,
        certificates: impl IntoIterator<Item = CertificateDer<'static>>,
    ) {
        let host = crate::reference::host_name(host);
        self.pinned
            .extend(certificates.into_iter().map(|certificate| HostPin {
                host: host.clone(),
                certificate,
            }));
    }

    /// Adds every certificate of a PEM bundle; `what` names it in errors.
    pub fn add_pem(&mut self, pem: &[u8], what: &str) -> Result<()> {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| {
                Error::input(format!("{what} is not a valid PEM certificate file"))
                    .with_cause(e)
                    .with_hint("pass a PEM file holding -----BEGIN CERTIFICATE----- blocks")
            })?;
            self.extra.push(cert);
            added += 1;
        }
        if added == 0 {
            return Err(Error::input(format!("{what} holds no PEM certificate"))
                .with_hint("pass a PEM file holding -----BEGIN CERTIFICATE----- blocks"));
        }
        Ok(())
    }
}

/// The process-wide crypto provider: ring, so the binary carries one provider, not two.
pub fn provider() -> Arc<CryptoProvider> {
    match CryptoProvider::get_default() {
        Some(provider) => provider.clone(),
        None => Arc::new(rustls::crypto::ring::default_provider()),
    }
}

/// Makes ring the default for every rustls user in the process (reqwest, and kube later).
pub fn install_default_provider() {
    // An error only means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the rustls client configuration for `trust`.
pub fn client_config(trust: &Trust) -> Result<rustls::ClientConfig> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = Arc::new(Verifier::new(trust, provider.clone())?);
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::tls("cannot set up TLS").with_cause(e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}

fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::debug!("skipping a system certificate store: {error}");
    }
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    tracing::debug!(added, ignored, "loaded system root certificates");
    roots
}

fn is_self_signed(cert: &CertificateDer<'_>) -> bool {
    match x509_parser::parse_x509_certificate(cert.as_ref()) {
        Ok((_, parsed)) => parsed.subject() == parsed.issuer(),
        Err(_) => false,
    }
}

/// What the server's certificate must be. The handshake signature is checked in every case.
#[derive(Debug)]
enum Policy {
    /// `--insecure`: any certificate.
    AcceptAny,
    /// A trusted self-signed certificate presented as-is, or a chain to a trusted root.
    PinnedOrChain {
        pinned: Vec<CertificateDer<'static>>,
        /// Accepted only for their one host, and not offered as roots.
        host_pins: Vec<HostPin>,
        /// The extra certificates, also offered as roots next to the system's.
        extra: Vec<CertificateDer<'static>>,
        /// Built on the first certificate that needs a chain: reading the system's roots costs
        /// more than a whole re-push, and a pinned idpbuilder certificate never needs them.
        chain: OnceLock<std::result::Result<Arc<WebPkiServerVerifier>, String>>,
    },
}

#[derive(Debug)]
struct Verifier {
    policy: Policy,
    provider: Arc<CryptoProvider>,
}

impl Verifier {
    fn new(trust: &Trust, provider: Arc<CryptoProvider>) -> Result<Self> {
        let policy = if trust.insecure {
            Policy::AcceptAny
        } else {
            Policy::PinnedOrChain {
                pinned: trust
                    .extra
                    .iter()
                    .filter(|c| is_self_signed(c))
                    .cloned()
                    .collect(),
                host_pins: trust.pinned.clone(),
                extra: trust.extra.clone(),
                chain: OnceLock::new(),
            }
        };
        Ok(Verifier { policy, provider })
    }

    fn chain_verifier(
        &self,
        extra: &[CertificateDer<'static>],
    ) -> std::result::Result<Arc<WebPkiServerVerifier>, String> {
        let mut roots = system_roots();
        for cert in extra {
            // A certificate webpki cannot use as a trust anchor may still be pinned.
            if let Err(e) = roots.add(cert.clone()) {
                tracing::debug!("extra certificate is not usable as a CA: {e}");
            }
        }
        if roots.is_empty() {
            return Err("no trusted root certificates were found".into());
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| format!("cannot load the trusted certificates: {e}"))
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Policy::PinnedOrChain {
            pinned,
            host_pins,
            extra,
            chain,
        } = &self.policy
        else {
            return Ok(ServerCertVerified::assertion());
        };
        let pinned_here = host_pins
            .iter()
            .any(|p| p.certificate.as_ref() == end_entity.as_ref() && p.names(server_name));
        if pinned_here || pinned.iter().any(|p| p.as_ref() == end_entity.as_ref()) {
            let parsed = ParsedCertificate::try_from(end_entity)?;
            verify_server_name(&parsed, server_name)?;
            check_validity(end_entity, now)?;
            return Ok(ServerCertVerified::assertion());
        }
        match chain.get_or_init(|| self.chain_verifier(extra)) {
            Ok(chain) => {
                chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            Err(reason) => {
                tracing::debug!("{reason}");
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer,
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn check_validity(
    cert: &CertificateDer<'_>,
    now: UnixTime,
) -> std::result::Result<(), rustls::Error> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let now = now.as_secs() as i64;
    let validity = parsed.validity();
    if now < validity.not_before.timestamp() {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet,
        ));
    }
    if now > validity.not_after.timestamp() {
        return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_without_certificates_is_an_input_error() {
        let mut trust = Trust::default();
        let err = trust.add_pem(b"not a certificate", "ca.pem").unwrap_err();
        assert_eq!(err.kind(), crate::error::Kind::Input);
        assert!(err.message().contains("ca.pem"));
    }

    /// idpbuilder's shape: one self-signed P-256 certificate, CA:TRUE, served as the server's own.
    fn idpbuilder_certificate(dir: &std::path::Path) -> CertificateDer<'static> {
        let out = dir.join("cert.der");
        let status = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args([
                "-nodes",
                "-days",
                "30",
                "-subj",
                "/CN=cnoe.localtest.me",
                "-outform",
                "DER",
            ])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=digitalSignature,keyCertSign"])
            .args(["-addext", "extendedKeyUsage=serverAuth"])
            .args([
                "-addext",
                "subjectAltName=DNS:gitea.cnoe.localtest.me,DNS:localhost",
            ])
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(&out)
            .output()
            .expect("run openssl");
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        CertificateDer::from(std::fs::read(out).expect("read cert"))
    }

    fn verify(
        verifier: &Verifier,
        cert: &CertificateDer<'_>,
        name: &str,
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let name = ServerName::try_from(name.to_string()).expect("server name");
        verifier.verify_server_cert(cert, &[], &name, &[], now)
    }

    #[test]
    fn a_pinned_self_signed_ca_is_accepted_only_for_its_names_and_validity() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cert = idpbuilder_certificate(dir.path());
        let pinned = Verifier::new(
            &Trust {
                extra: vec![cert.clone()],
                insecure: false,
                ..Trust::default()
            },
            provider(),
        )
        .expect("verifier");
        let now = UnixTime::now();
        assert!(verify(&pinned, &cert, "gitea.cnoe.localtest.me", now).is_ok());
        assert!(matches!(
            verify(&pinned, &cert, "registry.example.com", now),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForNameContext { .. } | CertificateError::NotValidForName
            ))
        ));
        let next_year = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            now.as_secs() + 365 * 86_400,
        ));
        assert_eq!(
            verify(&pinned, &cert, "localhost", next_year).err(),
            Some(rustls::Error::InvalidCertificate(CertificateError::Expired))
        );

        let unpinned = Verifier::new(&Trust::default(), provider()).expect("verifier");
        assert!(
            verify(&unpinned, &cert, "localhost", now).is_err(),
            "not trusted without --ca-file"
        );
        let insecure = Verifier::new(
            &Trust {
                extra: vec![],
                insecure: true,
                ..Trust::default()
            },
            provider(),
        )
        .expect("verifier");
        assert!(verify(&insecure, &cert, "anything.example", now).is_ok());
    }

    /// A server certificate for gitea.cnoe.localtest.me and localhost, signed by the
    /// idpbuilder-shaped certificate [`idpbuilder_certificate`] left in `dir`.
    fn leaf_signed_by_idpbuilder_certificate(dir: &std::path::Path) -> CertificateDer<'static> {
        std::fs::write(
            dir.join("leaf.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\n\
             subjectAltName=DNS:gitea.cnoe.localtest.me,DNS:localhost\n",
        )
        .expect("write leaf.ext");
        let openssl = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .current_dir(dir)
                .args(args)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-subj",
            "/CN=gitea.cnoe.localtest.me",
            "-out",
            "leaf.csr",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "cert.der",
            "-CAform",
            "DER",
            "-CAkey",
            "key.pem",
            "-set_serial",
            "7",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-outform",
            "DER",
            "-out",
            "leaf.der",
        ]);
        CertificateDer::from(std::fs::read(dir.join("leaf.der")).expect("read leaf"))
    }

    #[test]
    fn a_certificate_pinned_for_a_host_is_accepted_only_as_that_hosts_own_never_as_a_ca() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cert = idpbuilder_certificate(dir.path());
        let leaf = leaf_signed_by_idpbuilder_certificate(dir.path());
        let now = UnixTime::now();
        let mut trust = Trust::default();
        trust.pin_for_host("gitea.cnoe.localtest.me:8443", vec![cert.clone()]);
        let pinned = Verifier::new(&trust, provider()).expect("verifier");

        assert!(verify(&pinned, &cert, "gitea.cnoe.localtest.me", now).is_ok());
        assert!(
            verify(&pinned, &cert, "localhost", now).is_err(),
            "its SAN names localhost, but it is pinned for the Gitea host only"
        );
        assert!(
            verify(&pinned, &leaf, "gitea.cnoe.localtest.me", now).is_err(),
            "a certificate it signed is not trusted: it is no trust anchor"
        );
        let name = ServerName::try_from("gitea.cnoe.localtest.me").expect("server name");
        assert!(
            pinned
                .verify_server_cert(&leaf, std::slice::from_ref(&cert), &name, &[], now)
                .is_err(),
            "not even with the pinned certificate sent as an intermediate"
        );
        let next_year = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            now.as_secs() + 365 * 86_400,
        ));
        assert_eq!(
            verify(&pinned, &cert, "gitea.cnoe.localtest.me", next_year).err(),
            Some(rustls::Error::InvalidCertificate(CertificateError::Expired))
        );

        // --ca-file keeps its meaning: anchors, and a self-signed certificate as it is.
        let ca_file = Verifier::new(
            &Trust {
                extra: vec![cert.clone()],
                ..Trust::default()
            },
            provider(),
        )
        .expect("verifier");
        assert!(verify(&ca_file, &leaf, "gitea.cnoe.localtest.me", now).is_ok());
        assert!(verify(&ca_file, &cert, "localhost", now).is_ok());
    }

    #[test]
    fn default_and_insecure_configs_build() {
        assert!(client_config(&Trust::default()).is_ok());
        let insecure = Trust {
            insecure: true,
            ..Trust::default()
        };
        assert!(client_config(&insecure).is_ok());
    }
}
