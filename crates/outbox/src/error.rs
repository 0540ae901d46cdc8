//! The crate's error.

use std::fmt;

/// Why the consumer could not do its work (it says so in the log and on
/// [`Health`](crate::Health), and tries again after a backoff).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The configuration does not hold (a URL that does not parse, a CA
    /// file that cannot be read).
    Config(String),
    /// The database refused or failed a statement, or the connection to
    /// it failed.
    Database(postgres::Error),
    /// The table is not there (create it with
    /// [`TableName::schema`](crate::TableName::schema)).
    NoTable(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => write!(f, "outbox configuration: {e}"),
            Error::Database(e) => match e.as_db_error() {
                Some(db) => write!(f, "database: {} ({})", db.message(), db.code().code()),
                None => {
                    // The client's own words leave out the cause (a TLS
                    // certificate refused, a connection refused): said too.
                    write!(f, "database: {e}")?;
                    let mut cause = std::error::Error::source(e);
                    while let Some(c) = cause {
                        let text = c.to_string();
                        if !e.to_string().contains(&text) {
                            write!(f, ": {text}")?;
                        }
                        cause = c.source();
                    }
                    Ok(())
                }
            },
            Error::NoTable(table) => write!(f, "the table {table} does not exist"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Database(e) => Some(e),
            Error::Config(_) | Error::NoTable(_) => None,
        }
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Error {
        Error::Database(e)
    }
}
