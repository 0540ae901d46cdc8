//! How the consumer reaches a broker: plain TCP or TLS (rustls with
//! ring; the system's roots and a CA file's), for the fetch client and
//! the coordinator's connection alike.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::KafkaConfig;
use crate::error::Error;
use crate::sasl::Sasl;
use crate::wire::{MAX_RESPONSE, Reader, Request};

/// A connection to a broker, over TCP or TLS.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// What a connection to a broker needs: the TLS client and the SASL
/// credentials, if any.
#[derive(Clone, Default)]
pub(crate) struct Connector {
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) sasl: Option<Sasl>,
}

impl Connector {
    /// The connector `config` asks for, its CA file read.
    pub(crate) fn of(config: &KafkaConfig) -> Result<Connector, Error> {
        let tls = if config.tls {
            Some(client_config(config.ca_file.as_deref())?)
        } else {
            None
        };
        Ok(Connector {
            tls,
            sasl: config.sasl.clone(),
        })
    }

    /// A connection to `addr` (`HOST:PORT`), its TLS handshake done and
    /// authenticated; the last correlation id its requests used.
    pub(crate) async fn connect(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<(Box<dyn Stream>, i32), Error> {
        let mut stream = self.open(addr, timeout).await?;
        let mut correlation = 0;
        if let Some(sasl) = &self.sasl {
            sasl.authenticate(&mut stream, &mut correlation, timeout).await?;
        }
        Ok((stream, correlation))
    }

    async fn open(&self, addr: &str, timeout: Duration) -> Result<Box<dyn Stream>, Error> {
        let connecting = async {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let Some(tls) = &self.tls else {
                return Ok::<Box<dyn Stream>, Error>(Box::new(stream));
            };
            let name = server_name(addr)?;
            let stream = tokio_rustls::TlsConnector::from(tls.clone())
                .connect(name, stream)
                .await
                .map_err(|e| Error::Io(std::io::Error::new(e.kind(), format!("TLS with {addr}: {e}"))))?;
            Ok(Box::new(stream))
        };
        tokio::time::timeout(timeout, connecting).await.map_err(|_| {
            Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{addr}: no connection in time"),
            ))
        })?
    }
}

/// Sends `request` (of id `correlation`) and reads its answer's body
/// (after the correlation id, checked), within `timeout`.
pub(crate) async fn call(
    stream: &mut Box<dyn Stream>,
    request: Request,
    correlation: i32,
    timeout: Duration,
) -> Result<Vec<u8>, Error> {
    let bytes = request.finish();
    let exchange = async {
        stream.write_all(&bytes).await?;
        stream.flush().await?;
        let size = stream.read_i32().await?;
        let size = usize::try_from(size)
            .ok()
            .filter(|&size| (4..=MAX_RESPONSE).contains(&size))
            .ok_or_else(|| Error::Protocol(format!("an answer of {size} bytes")))?;
        let mut body = vec![0; size];
        stream.read_exact(&mut body).await?;
        Ok::<_, Error>(body)
    };
    let body = tokio::time::timeout(timeout, exchange).await.map_err(|_| {
        Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "a broker: no answer in time",
        ))
    })??;
    let mut reader = Reader::new(&body);
    if reader.i32()? != correlation {
        return Err(Error::Protocol("an answer to another request".to_owned()));
    }
    Ok(body.get(4..).unwrap_or_default().to_vec())
}

/// The name the broker's certificate must carry: the host of `addr`
/// (a DNS name, or an IP address in its IP SANs).
fn server_name(addr: &str) -> Result<ServerName<'static>, Error> {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned())
        .map_err(|_| Error::Config(format!("{host:?} is not a host name for TLS")))
}

/// The TLS client: rustls with ring, trusting the system's roots and the
/// certificates of `ca_file`. There is no switch that verifies less.
pub(crate) fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system root rustls cannot read is left out, as curl does.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(Iterator::collect)
            .map_err(|e| Error::Config(format!("the CA file {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(Error::Config(format!(
                "the CA file {} holds no certificate",
                path.display()
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| Error::Config(format!("the CA file {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_is_the_host() {
        assert!(
            matches!(server_name("kafka.example:9093"), Ok(ServerName::DnsName(n)) if n.as_ref() == "kafka.example")
        );
        assert!(matches!(server_name("[::1]:9093"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(
            server_name("127.0.0.1:9093"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(server_name("bad host:9093").is_err());
    }

    #[test]
    fn a_ca_file_without_a_certificate_is_refused() {
        let path = std::env::temp_dir().join(format!("tether-kafka-ca-{}.pem", std::process::id()));
        std::fs::write(&path, "not a certificate\n").unwrap();
        let error = client_config(Some(&path)).err().unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(error.to_string().contains("holds no certificate"), "{error}");
        assert!(client_config(Some(Path::new("/nonexistent/ca.pem"))).is_err());
    }
}
