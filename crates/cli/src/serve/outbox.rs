//! The outbox options of `tether serve` (`--outbox-url`): the rows of an
//! application's PostgreSQL outbox table published into the hub.

use std::path::PathBuf;
use std::time::Duration;

use tether_node::{OutboxConfig, TableName};

use super::values::Secret;

/// The variable that gives the URL as `--outbox-url` would.
const URL_VARIABLE: &str = "TETHER_OUTBOX_URL";

/// The outbox options (`--app demo` and `--app hub`).
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Outbox (events written in the application's PostgreSQL transactions)")]
pub(crate) struct OutboxArgs {
    /// Publish the rows of the application's outbox table in this
    /// PostgreSQL database (postgres://USER:PASSWORD@HOST:PORT/DB), each
    /// as POST /topics/TOPIC would, deleting each row once the hub has
    /// it; one node at a time per table, the others stand by.
    /// ?sslmode=require: TLS, the server's certificate verified against
    /// the system's roots and --outbox-ca-file. The URL holds a
    /// password: give it in TETHER_OUTBOX_URL or --outbox-url-file, which
    /// other users cannot see in the process list.
    #[arg(long, value_name = "URL")]
    pub(crate) outbox_url: Option<Secret>,
    /// Read --outbox-url from this file (its first line).
    #[arg(long, value_name = "FILE", conflicts_with = "outbox_url")]
    pub(crate) outbox_url_file: Option<PathBuf>,
    /// The outbox table (NAME or SCHEMA.NAME), made with the SQL of the
    /// book's outbox page in the application's migrations.
    #[arg(long, value_name = "NAME", default_value = "tether_outbox")]
    pub(crate) outbox_table: TableName,
    /// Rows published per transaction.
    #[arg(long, value_name = "ROWS", default_value_t = 100,
          value_parser = super::values::whole::<usize>(1, 10_000))]
    pub(crate) outbox_batch: usize,
    /// Seconds between reads of the table when no insert notified (the
    /// table's trigger wakes the consumer at once).
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0,
          value_parser = super::values::seconds_between(0.01, 3600.0))]
    pub(crate) outbox_poll_interval: f64,
    /// PEM certificates to trust for TLS to the database, besides the
    /// system's.
    #[arg(long, value_name = "FILE")]
    pub(crate) outbox_ca_file: Option<PathBuf>,
}

impl OutboxArgs {
    /// The consumer the options ask for, if any.
    pub(crate) fn outbox(&self) -> Result<Option<OutboxConfig>, String> {
        let url = match (&self.outbox_url, &self.outbox_url_file) {
            (Some(url), _) => url.0.clone(),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("--outbox-url-file {}: {e}", path.display()))?;
                let url = text.lines().next().unwrap_or_default().trim().to_owned();
                if url.is_empty() {
                    return Err(format!("--outbox-url-file {}: empty", path.display()));
                }
                url
            }
            (None, None) => return Ok(None),
        };
        let source = match (&self.outbox_url, std::env::var(URL_VARIABLE)) {
            (Some(url), Ok(variable)) if url.0 == variable => URL_VARIABLE,
            (Some(_), _) => "--outbox-url",
            (None, _) => "--outbox-url-file",
        };
        let mut config = OutboxConfig::new(url);
        config.table = self.outbox_table.clone();
        config.batch = self.outbox_batch;
        config.poll_interval = Duration::from_secs_f64(self.outbox_poll_interval);
        config.ca_file.clone_from(&self.outbox_ca_file);
        config.check().map_err(|e| format!("{e} (from {source})"))?;
        Ok(Some(config))
    }
}
