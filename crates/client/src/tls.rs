//! TLS for `wss://` and `https://` (feature `tls`, on by default): rustls
//! with its ring provider, TLS 1.3 and 1.2, the certificate checked
//! against the operating system's trusted roots, or against roots of
//! one's own ([`roots_from_pem`]).

#[cfg(feature = "tls")]
use std::sync::Arc;

#[cfg(feature = "tls")]
use crate::error::Error;

/// Which TLS configuration a client uses: the system's roots (made on
/// first use), or one given.
#[derive(Debug, Clone, Default)]
pub(crate) enum TlsChoice {
    #[default]
    System,
    #[cfg(feature = "tls")]
    Given(std::sync::Arc<rustls::ClientConfig>),
}

#[cfg(feature = "tls")]
impl TlsChoice {
    pub(crate) fn config(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        match self {
            TlsChoice::Given(config) => Ok(config.clone()),
            TlsChoice::System => system_roots(),
        }
    }
}

/// rustls itself, for a configuration of one's own.
#[cfg(feature = "tls")]
pub use rustls;

/// A client configuration that trusts the operating system's roots (read
/// from its certificate store at each call).
///
/// # Errors
///
/// [`Error::Io`] when the store cannot be read or holds no usable root.
#[cfg(feature = "tls")]
pub fn system_roots() -> Result<Arc<rustls::ClientConfig>, Error> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map_or_else(|| "no certificate found".to_owned(), ToString::to_string);
        return Err(Error::io(
            "load the system's trusted roots",
            std::io::Error::new(std::io::ErrorKind::NotFound, why),
        ));
    }
    config(roots)
}

/// A client configuration that trusts the certificates in `pem` (a CA, or
/// a server's self-signed certificate), and no others.
///
/// # Errors
///
/// [`Error::InvalidArgument`] when the PEM holds no usable certificate.
#[cfg(feature = "tls")]
pub fn roots_from_pem(pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, Error> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| Error::InvalidArgument(format!("the roots' PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| Error::InvalidArgument(format!("a root certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(Error::InvalidArgument(
            "no certificate in the roots' PEM".to_owned(),
        ));
    }
    config(roots)
}

#[cfg(feature = "tls")]
fn config(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidArgument(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
