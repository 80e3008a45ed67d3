//! The TLS material of a target's settings: every PEM block checked, and put in the form the
//! HTTP client takes.

use super::connection::ConnectionSettings;
#[cfg(feature = "tls")]
use super::connection::Secret;
use crate::transport::TlsConfig;
use crate::InitError;

/// Without the `tls` feature, TLS settings are refused.
#[cfg(not(feature = "tls"))]
pub(super) fn tls_config(
    s: &ConnectionSettings,
    accept_invalid_certs: bool,
) -> Result<TlsConfig, InitError> {
    if !s.ca_pem.is_empty() || s.client_identity.is_some() || accept_invalid_certs {
        return Err(InitError::InvalidTls {
            what: "settings",
            reason: "TLS needs the crate's `tls` feature".into(),
        });
    }
    Ok(TlsConfig::default())
}

/// Checks the TLS material of `s` (every PEM block parses, CA certificates are X.509) and
/// puts it in the form the HTTP client takes.
#[cfg(feature = "tls")]
pub(super) fn tls_config(
    s: &ConnectionSettings,
    accept_invalid_certs: bool,
) -> Result<TlsConfig, InitError> {
    let invalid = |what| move |reason| InitError::InvalidTls { what, reason };
    if !s.ca_pem.is_empty() {
        check_ca_certificates(&s.ca_pem).map_err(invalid("CA certificate"))?;
    }
    let mut identity_pem = None;
    if let Some(id) = &s.client_identity {
        let (cert, Secret(key)) = (&id.cert, &id.key);
        check_certificates(cert).map_err(invalid("client certificate"))?;
        check_private_key(key).map_err(invalid("client key"))?;
        let mut pem = key.clone();
        pem.push(b'\n');
        pem.extend_from_slice(cert);
        identity_pem = Some(pem);
    }
    Ok(TlsConfig {
        ca_pem: s.ca_pem.clone(),
        identity_pem,
        accept_invalid_certs,
    })
}

/// Every PEM block of `pem` parses and there is at least one certificate.
#[cfg(feature = "tls")]
pub(super) fn check_certificates(
    pem: &[u8],
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject as _;
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no -----BEGIN CERTIFICATE----- block found".into());
    }
    Ok(certs)
}

/// [`check_certificates`], and each certificate can be a trust anchor (X.509 that parses).
#[cfg(feature = "tls")]
pub(super) fn check_ca_certificates(pem: &[u8]) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in check_certificates(pem)? {
        roots.add(cert).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `pem` holds a private key.
#[cfg(feature = "tls")]
pub(super) fn check_private_key(pem: &[u8]) -> Result<(), String> {
    use rustls_pki_types::pem::PemObject as _;
    rustls_pki_types::PrivateKeyDer::from_pem_slice(pem)
        .map(drop)
        .map_err(|e| format!("no PKCS#8, PKCS#1 or SEC1 private key found in PEM: {e}"))
}
