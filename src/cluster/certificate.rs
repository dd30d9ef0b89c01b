//! idpbuilder's own TLS certificate as the cluster keeps it, in the SPEC's order: Secret
//! `idpbuilder-cert` key `ca.crt` in `default` (current idpbuilder), else ConfigMap
//! `idpbuilder-cert` key `ca.crt` in `default` (older releases), else Secret `idpbuilder-cert`
//! key `tls.crt` in `ingress-nginx`. A place that holds no usable PEM is passed over.

use std::fmt;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The object name in every place.
pub const NAME: &str = "idpbuilder-cert";

/// Where the certificate was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    DefaultSecret,
    DefaultConfigMap,
    IngressNginxSecret,
}

impl Place {
    /// The SPEC's order.
    pub const ORDER: [Place; 3] = [
        Place::DefaultSecret,
        Place::DefaultConfigMap,
        Place::IngressNginxSecret,
    ];

    pub fn namespace(self) -> &'static str {
        match self {
            Place::DefaultSecret | Place::DefaultConfigMap => "default",
            Place::IngressNginxSecret => "ingress-nginx",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Place::DefaultSecret | Place::DefaultConfigMap => "ca.crt",
            Place::IngressNginxSecret => "tls.crt",
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Place::DefaultConfigMap => "ConfigMap",
            Place::DefaultSecret | Place::IngressNginxSecret => "Secret",
        };
        write!(f, "{kind} {}/{NAME} key {}", self.namespace(), self.key())
    }
}

/// The certificates of idpbuilder's PEM and where they came from.
#[derive(Debug, Clone)]
pub struct ClusterCertificate {
    pub certificates: Vec<CertificateDer<'static>>,
    pub place: Place,
}

/// The first place (in [`Place::ORDER`]) whose content is a PEM holding at least one X.509
/// certificate. `found` gives each place's raw key content, or why there is none.
pub fn pick(
    found: impl IntoIterator<Item = (Place, Result<Vec<u8>, String>)>,
) -> Option<ClusterCertificate> {
    let mut found: Vec<_> = found.into_iter().collect();
    found.sort_by_key(|(place, _)| Place::ORDER.iter().position(|p| p == place));
    for (place, content) in found {
        match content.and_then(|pem| parse(&pem)) {
            Ok(certificates) => {
                return Some(ClusterCertificate {
                    certificates,
                    place,
                });
            }
            Err(why) => tracing::debug!("cluster certificate: passing over {place}: {why}"),
        }
    }
    None
}

/// Every certificate of a PEM bundle, each checked to be X.509.
fn parse(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut certificates = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        let certificate = item.map_err(|e| format!("it is not valid PEM ({e})"))?;
        x509_parser::parse_x509_certificate(certificate.as_ref())
            .map_err(|e| format!("it holds a PEM block that is not an X.509 certificate ({e})"))?;
        certificates.push(certificate);
    }
    if certificates.is_empty() {
        return Err("it holds no PEM certificate".into());
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A self-signed ECDSA P-256 certificate shaped like idpbuilder's (CA:TRUE, serverAuth).
    const PEM: &str = "-----BEGIN CERTIFICATE-----
MIIB7zCCAZSgAwIBAgIUIz4ENTH0IsY2diIa2kytvdH5rfUwCgYIKoZIzj0EAwIw
LjEQMA4GA1UECgwHY25vZS5pbzEaMBgGA1UEAwwRY25vZS5sb2NhbHRlc3QubWUw
HhcNMjYxMTI1MjIwNjEzWhcNMzYxMTIyMjIwNjEzWjAuMRAwDgYDVQQKDAdjbm9l
LmlvMRowGAYDVQQDDBFjbm9lLmxvY2FsdGVzdC5tZTBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABDSkADQH7C/RF6a5olxYqyFTEkr2SzP90IW256fc9FsIUsPYa62E
P3r16iuBVNCybo+NGX3pNyPOQHWo2zt2usGjgY8wgYwwDwYDVR0TAQH/BAUwAwEB
/zAOBgNVHQ8BAf8EBAMCAoQwEwYDVR0lBAwwCgYIKwYBBQUHAwEwNQYDVR0RBC4w
LIIXZ2l0ZWEuY25vZS5sb2NhbHRlc3QubWWCEWNub2UubG9jYWx0ZXN0Lm1lMB0G
A1UdDgQWBBQPqcCAj4jOlvnHLj6C2/Q34sEPhjAKBggqhkjOPQQDAgNJADBGAiEA
gHeyG2kr2FUnCWC5/C6ReUziso881d01CbGzClodNfECIQDdwjCTFUD8W3B1wrr0
1uXjsJRjki8OFa6qur3DnZOfXw==
-----END CERTIFICATE-----
";

    fn ok(pem: &str) -> Result<Vec<u8>, String> {
        Ok(pem.as_bytes().to_vec())
    }

    #[test]
    fn the_first_usable_place_in_spec_order_wins() {
        let picked = pick([
            (Place::IngressNginxSecret, ok(PEM)),
            (Place::DefaultConfigMap, ok(PEM)),
            (Place::DefaultSecret, Err("not found".into())),
        ])
        .unwrap();
        assert_eq!(picked.place, Place::DefaultConfigMap);
        assert_eq!(picked.certificates.len(), 1);
    }

    #[test]
    fn garbage_is_passed_over() {
        let picked = pick([
            (Place::DefaultSecret, ok("not a certificate")),
            (
                Place::DefaultConfigMap,
                ok("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            ),
            (Place::IngressNginxSecret, ok(PEM)),
        ])
        .unwrap();
        assert_eq!(picked.place, Place::IngressNginxSecret);
        assert!(pick([(Place::DefaultSecret, ok("garbage"))]).is_none());
        assert!(pick([]).is_none());
    }

    #[test]
    fn places_name_kind_namespace_and_key() {
        assert_eq!(
            Place::DefaultSecret.to_string(),
            "Secret default/idpbuilder-cert key ca.crt"
        );
        assert_eq!(
            Place::IngressNginxSecret.to_string(),
            "Secret ingress-nginx/idpbuilder-cert key tls.crt"
        );
        assert_eq!(
            Place::DefaultConfigMap.to_string(),
            "ConfigMap default/idpbuilder-cert key ca.crt"
        );
    }
}
