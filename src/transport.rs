//! What the HTTP transport takes from the configuration: the TLS material of a client.

/// TLS settings of the HTTP client.
#[derive(Clone, Default)]
pub(crate) struct TlsConfig {
    /// Extra trusted CA certificates, PEM.
    pub(crate) ca_pem: Vec<u8>,
    /// The client identity as reqwest takes it: private key and certificate chain, PEM.
    pub(crate) identity_pem: Option<Vec<u8>>,
    pub(crate) accept_invalid_certs: bool,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_certificates", &!self.ca_pem.is_empty())
            .field("client_identity", &self.identity_pem.is_some())
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .finish()
    }
}
