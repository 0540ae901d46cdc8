//! TLS for the server (`https://`, `wss://`): a rustls configuration from
//! a certificate chain and private key in PEM, for [`crate::Config::tls`].
//! rustls with its `ring` provider; TLS 1.3 and 1.2 with rustls' safe
//! defaults, no client certificates, ALPN `http/1.1`.
//!
//! ```no_run
//! use std::path::Path;
//! use tether_server::{apps::Echo, tls, Config, Handshake, Server};
//!
//! let mut config = Config::new("127.0.0.1:8443".parse().unwrap());
//! config.tls = Some(tls::server_config_from_files(Path::new("cert.pem"), Path::new("key.pem"))?);
//! Server::bind(config, Handshake::new(), Echo::everywhere())?.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// rustls itself, for a configuration of one's own.
pub use rustls;

/// A server configuration from PEM text: the certificate chain (leaf
/// first) and its private key (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
///
/// `InvalidData` when the PEM holds no certificate or no key, or rustls
/// refuses them (a key that does not match the certificate, say).
pub fn server_config_from_pem(cert_chain: &[u8], key: &[u8]) -> io::Result<Arc<rustls::ServerConfig>> {
    let certs = CertificateDer::pem_slice_iter(cert_chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("the certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("no certificate in the certificate PEM".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| invalid(format!("the private key: {e}")))?;
    server_config(certs, key)
}

/// A server configuration from PEM files (see
/// [`server_config_from_pem`]); errors name the file.
///
/// # Errors
///
/// A file that cannot be read, or what [`server_config_from_pem`]
/// refuses.
pub fn server_config_from_files(cert_chain: &Path, key: &Path) -> io::Result<Arc<rustls::ServerConfig>> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    };
    server_config_from_pem(&read(cert_chain)?, &read(key)?)
        .map_err(|e| invalid(format!("{} and {}: {e}", cert_chain.display(), key.display())))
}

fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> io::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
