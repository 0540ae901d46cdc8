//! The consumer's configuration, and the connection it makes from it.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tether_backoff::Backoff;

use crate::error::Error;
use crate::table::TableName;

/// How a [`Consumer`](crate::Consumer) reaches its table and reads it.
#[derive(Clone)]
#[non_exhaustive]
pub struct OutboxConfig {
    /// The database: a URL (`postgres://USER:PASSWORD@HOST:PORT/DB`,
    /// `?sslmode=require` for TLS) or `key=value` pairs, as libpq takes
    /// them. Holds the password: never logged.
    pub url: String,
    /// The table (made with [`TableName::schema`]).
    pub table: TableName,
    /// Rows read, published and deleted per transaction.
    pub batch: usize,
    /// How often the table is read without a notification (a lost
    /// connection's notifications, a trigger left out).
    pub poll_interval: Duration,
    /// The waits between attempts after a database error, and between
    /// publishes the hub could not take.
    pub backoff: Backoff,
    /// PEM certificates trusted, besides the system's, for TLS to the
    /// database.
    pub ca_file: Option<PathBuf>,
    /// The largest `data` read, in bytes: a row whose data is larger is
    /// marked failed without being read (the hub's `max_event_size`).
    pub max_data_size: usize,
}

impl std::fmt::Debug for OutboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxConfig")
            .field("url", &"<redacted>")
            .field("table", &self.table)
            .field("batch", &self.batch)
            .field("poll_interval", &self.poll_interval)
            .field("ca_file", &self.ca_file)
            .field("max_data_size", &self.max_data_size)
            .finish_non_exhaustive()
    }
}

impl OutboxConfig {
    /// The table `tether_outbox` of the database at `url`, read 100 rows
    /// at a time, polled every second, database errors retried from half
    /// a second up to 30 s apart, data up to 1 MiB.
    pub fn new(url: impl Into<String>) -> OutboxConfig {
        OutboxConfig {
            url: url.into(),
            table: TableName::default(),
            batch: 100,
            poll_interval: Duration::from_secs(1),
            backoff: Backoff::new(),
            ca_file: None,
            max_data_size: 1 << 20,
        }
    }

    /// Checks the URL (without connecting) and reads the CA file.
    ///
    /// # Errors
    ///
    /// A URL that does not parse, a batch of 0, a CA file that cannot be
    /// read or holds no certificate.
    pub fn check(&self) -> Result<(), Error> {
        self.database()?;
        self.tls()?;
        if self.batch == 0 {
            return Err(Error::Config("the batch must hold at least one row".to_owned()));
        }
        Ok(())
    }

    /// The parsed connection settings; a connect timeout of 10 s unless
    /// the URL sets one.
    fn database(&self) -> Result<postgres::Config, Error> {
        // The parser's error may quote the URL, password and all: not
        // passed on.
        let mut config = postgres::Config::from_str(&self.url)
            .map_err(|_| Error::Config("the database URL does not parse".to_owned()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("tether-outbox");
        Ok(config)
    }

    /// The TLS connector: the system's roots and the CA file's.
    fn tls(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, Error> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            // A system root rustls cannot read is left out, as curl does.
            let _ = roots.add(cert);
        }
        if let Some(path) = &self.ca_file {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(Error::Config(format!("{}: no certificate", path.display())));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }

    /// A connection to the database (over TLS if the URL asks for it, or
    /// prefers it and the server offers it).
    pub(crate) fn connect(&self) -> Result<postgres::Client, Error> {
        let tls = self.tls()?;
        self.database()?.connect(tls).map_err(Error::Database)
    }
}
