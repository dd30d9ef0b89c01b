//! Test certificates, made at test time with the `openssl` CLI.
//!
//! Three shapes are needed by the end-to-end tests:
//! - a CA and a server certificate it signed (the ordinary, strict-verifier-friendly case);
//! - an idpbuilder-shaped certificate: one self-signed ECDSA P-256 certificate that is at once a
//!   CA (`CA:TRUE`, `keyCertSign`) and the server's own (`serverAuth`, host names in the SAN),
//!   as idpbuilder's ingress serves it;
//! - an RSA key and self-signed certificate that signs the token server's JWTs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-config",
        &s(&ca_cnf),
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        &s(&ca_key),
        "-out",
        &s(&ca_crt),
    ]);

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
    openssl(&[
        "req",
        "-new",
        "-config",
        &s(&csr_cnf),
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &s(&key),
        "-out",
        &s(&csr),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-days",
        "2",
        "-set_serial",
        "2",
        "-in",
        &s(&csr),
        "-CA",
        &s(&ca_crt),
        "-CAkey",
        &s(&ca_key),
        "-extfile",
        &s(&ext),
        "-out",
        &s(&crt),
    ]);
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
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-config",
        &s(&cnf),
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        &s(&key),
        "-out",
        &s(&crt),
    ]);
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
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-config",
        &s(&cnf),
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        &s(&key),
        "-out",
        &s(&crt),
    ]);
    IssuerCert { cert: crt, key }
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
