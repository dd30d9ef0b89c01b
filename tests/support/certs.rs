//! Test certificates, made at test time with the `openssl` CLI.
//!
//! Three shapes are needed by the end-to-end tests:
//! - a CA and a server certificate it signed (the ordinary, strict-verifier-friendly case);
//! - an idpbuilder-shaped certificate: one self-signed ECDSA P-256 certificate that is at once a
//!   CA (`CA:TRUE`, `keyCertSign`) and the server's own (`serverAuth`, host names in the SAN),
//!   as idpbuilder's ingress serves it;
//! - an RSA key and self-signed certificate that signs the token server's JWTs.
//!
//! Also the `openssl` steps tests use to make other shapes (a P-256 key and request, a request
//! signed by a CA), and the rustls configuration a test server presents a certificate with.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A server certificate and key, plus the PEM file a client must trust to accept it.
#[derive(Clone, Debug)]
pub struct ServerCert {
    /// The certificate the server presents (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// What a client trusts: the CA for a CA-signed certificate, the certificate itself for an
    /// idpbuilder-shaped one.
    pub trust: PathBuf,
}

/// The token issuer's RSA key and self-signed certificate (PEM files).
#[derive(Clone, Debug)]
pub struct IssuerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Host names every test server certificate covers.
pub const SERVER_SAN: &str = "DNS:localhost,IP:127.0.0.1";

/// Host names of idpbuilder's own certificate (plus the loopback names tests connect to).
pub const IDPBUILDER_SAN: &str =
    "DNS:localhost,DNS:gitea.cnoe.localtest.me,DNS:cnoe.localtest.me,IP:127.0.0.1";

/// Makes a test CA and a server certificate for `localhost` / `127.0.0.1` signed by it, in `dir`.
pub fn ca_signed(dir: &Path) -> ServerCert {
    let ca_cnf = write(
        dir,
        "ca.cnf",
        "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3\n\
         [dn]\nCN = idpbuilder-push test CA\n\
         [v3]\nbasicConstraints = critical,CA:TRUE\n\
         keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n",
    );
    let (ca_key, ca_crt) = (dir.join("ca.key"), dir.join("ca.crt"));
    self_signed(&ca_cnf, P256, &ca_key, &ca_crt);

    let csr_cnf = write(
        dir,
        "server.cnf",
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = localhost\n",
    );
    let ext = write(
        dir,
        "server.ext",
        &format!(
            "basicConstraints = critical,CA:FALSE\n\
             keyUsage = critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage = serverAuth\nsubjectAltName = {SERVER_SAN}\n\
             subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
        ),
    );
    let (key, csr, crt) = (
        dir.join("server.key"),
        dir.join("server.csr"),
        dir.join("server.crt"),
    );
    p256_request(&key, &csr, &["-config", &s(&csr_cnf)]);
    sign_request(
        &csr,
        Signer {
            cert: &ca_crt,
            key: &ca_key,
        },
        "2",
        &ext,
        &crt,
    );
    ServerCert {
        cert: crt,
        key,
        trust: ca_crt,
    }
}

/// Makes a certificate shaped like idpbuilder's in `dir`: self-signed ECDSA P-256,
/// basicConstraints critical CA:TRUE, keyUsage digitalSignature + keyCertSign, extendedKeyUsage
/// serverAuth, SAN [`IDPBUILDER_SAN`]. The server presents it as its own; clients trust it as is.
pub fn idpbuilder_shaped(dir: &Path) -> ServerCert {
    let cnf = write(
        dir,
        "idpbuilder.cnf",
        &format!(
            "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3\n\
             [dn]\nO = cnoe.io\nCN = cnoe.localtest.me\n\
             [v3]\nbasicConstraints = critical,CA:TRUE\n\
             keyUsage = critical,digitalSignature,keyCertSign\n\
             extendedKeyUsage = serverAuth\nsubjectAltName = {IDPBUILDER_SAN}\n\
             subjectKeyIdentifier = hash\n"
        ),
    );
    let (key, crt) = (dir.join("idpbuilder.key"), dir.join("idpbuilder.crt"));
    self_signed(&cnf, P256, &key, &crt);
    ServerCert {
        cert: crt.clone(),
        key,
        trust: crt,
    }
}

/// Makes the token issuer's RSA 2048 key and self-signed certificate in `dir` (for RS256 JWTs).
pub fn token_issuer(dir: &Path) -> IssuerCert {
    let cnf = write(
        dir,
        "issuer.cnf",
        "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3\n\
         [dn]\nCN = idpbuilder-push test token issuer\n\
         [v3]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n",
    );
    let (key, crt) = (dir.join("issuer.key"), dir.join("issuer.crt"));
    self_signed(&cnf, &["-newkey", "rsa:2048"], &key, &crt);
    IssuerCert { cert: crt, key }
}

/// `openssl req` arguments for a new ECDSA P-256 key.
const P256: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

/// A self-signed certificate valid for 2 days at `crt`, with its subject and extensions from
/// the `openssl req` config `cnf` and a new key (made with `new_key`, unencrypted) at `key`.
fn self_signed(cnf: &Path, new_key: &[&str], key: &Path, crt: &Path) {
    let (cnf, key, crt) = (s(cnf), s(key), s(crt));
    let mut args = vec!["req", "-x509", "-new", "-config", &cnf];
    args.extend_from_slice(new_key);
    args.extend_from_slice(&["-nodes", "-days", "2", "-keyout", &key, "-out", &crt]);
    openssl(&args);
}

/// `openssl req -new`: a new ECDSA P-256 key (unencrypted) at `key` and a signing request for
/// it at `csr`; `subject` gives what it asks for (`-subj NAME` or `-config FILE`, any
/// `-addext`).
pub fn p256_request(key: &Path, csr: &Path, subject: &[&str]) {
    let (key, csr) = (s(key), s(csr));
    let mut args = vec!["req", "-new"];
    args.extend_from_slice(P256);
    args.push("-nodes");
    args.extend_from_slice(subject);
    args.extend_from_slice(&["-keyout", &key, "-out", &csr]);
    openssl(&args);
}

/// The certificate and key that sign a request (PEM files).
#[derive(Clone, Copy)]
pub struct Signer<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
}

/// `openssl x509 -req`: the request `csr` signed by `by`, valid for 2 days, with serial
/// `serial` and the extensions in the file `ext`, into `crt`.
pub fn sign_request(csr: &Path, by: Signer, serial: &str, ext: &Path, crt: &Path) {
    openssl(&[
        "x509",
        "-req",
        "-days",
        "2",
        "-set_serial",
        serial,
        "-in",
        &s(csr),
        "-CA",
        &s(by.cert),
        "-CAkey",
        &s(by.key),
        "-extfile",
        &s(ext),
        "-out",
        &s(crt),
    ]);
}

/// The certificate chain and private key a server presents with `cert`, read for rustls.
pub fn rustls_identity(
    cert: &ServerCert,
) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let chain = CertificateDer::pem_file_iter(&cert.cert)
        .unwrap_or_else(|e| panic!("cannot read certificate {}: {e}", cert.cert.display()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("cannot parse certificate {}: {e}", cert.cert.display()));
    let key = PrivateKeyDer::from_pem_file(&cert.key)
        .unwrap_or_else(|e| panic!("cannot read key {}: {e}", cert.key.display()));
    (chain, key)
}

/// A rustls server configuration (ring, safe default protocol versions) presenting `cert`,
/// asking no client certificate.
pub fn rustls_server_config(cert: &ServerCert) -> Arc<rustls::ServerConfig> {
    let (chain, key) = rustls_identity(cert);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server TLS config");
    Arc::new(config)
}

/// The base64 DER body of the first certificate in a PEM file (the form JWT `x5c` wants).
pub fn pem_body_base64(pem: &Path) -> String {
    let text = std::fs::read_to_string(pem)
        .unwrap_or_else(|e| panic!("cannot read certificate {}: {e}", pem.display()));
    text.lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .map(str::trim)
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// A path as an argument string (temp dirs are UTF-8).
fn s(path: &Path) -> String {
    path.to_str()
        .unwrap_or_else(|| panic!("non UTF-8 path {}", path.display()))
        .to_owned()
}

/// Runs `openssl ARGS`; panics with openssl's stderr when it fails.
pub fn openssl(args: &[&str]) {
    openssl_in(Path::new("."), args);
}

/// Runs `openssl ARGS` in `dir` (for `openssl ca`, which writes next to its config).
pub fn openssl_in(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run `openssl`: install it (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
