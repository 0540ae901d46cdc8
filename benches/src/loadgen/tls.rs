//! TLS for `wss://` and `https://` servers: rustls with its ring provider,
//! the certificate checked against the system's trusted roots and any
//! given with `--ca`.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};

/// What every TLS connection of a run shares.
#[derive(Clone, Debug)]
pub struct Tls {
    /// The client configuration.
    pub config: Arc<rustls::ClientConfig>,
    /// The name the server's certificate must carry (and the SNI, unless
    /// it is an IP address).
    pub name: ServerName<'static>,
}

impl Tls {
    /// A configuration for `host` (a DNS name or an IP address) that
    /// trusts the system's roots and the certificates in the PEM file
    /// `ca`, if any.
    ///
    /// # Errors
    ///
    /// When `host` is not a valid name, `ca` cannot be read or holds no
    /// certificate, or no root is trusted at all.
    pub fn new(host: &str, ca: Option<&Path>) -> io::Result<Tls> {
        let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_owned())
            .map_err(|e| invalid(format!("server name {host:?}: {e}")))?;
        let mut roots = rustls::RootCertStore::empty();
        // Missing system roots are fine when --ca names the server's.
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
        if let Some(path) = ca {
            let pem = std::fs::read(path)
                .map_err(|e| io::Error::new(e.kind(), format!("--ca {}: {e}", path.display())))?;
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| invalid(format!("--ca {}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| invalid(format!("--ca {}: {e}", path.display())))?;
                added += 1;
            }
            if added == 0 {
                return Err(invalid(format!("--ca {}: no certificate", path.display())));
            }
        }
        if roots.is_empty() {
            return Err(invalid(
                "no trusted root: the system has none; name the server's CA with --ca".to_owned(),
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
            name,
        })
    }

    /// A new client connection (its ClientHello already queued).
    ///
    /// # Errors
    ///
    /// When rustls refuses the configuration.
    pub fn connect(&self) -> io::Result<rustls::ClientConnection> {
        rustls::ClientConnection::new(self.config.clone(), self.name.clone()).map_err(io::Error::other)
    }
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why)
}

/// Writes the TLS records rustls has ready until it has none or the socket
/// refuses; true when refused (the rest waits for a writable event).
pub(crate) fn write_records(
    tls: &mut rustls::ClientConnection,
    socket: &mut impl io::Write,
) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(socket) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}
