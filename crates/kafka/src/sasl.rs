//! SASL to the brokers: PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, with a
//! user name and a password. The fetch client (rskafka) authenticates
//! its own connections; the coordinator's connection authenticates here,
//! with `SaslHandshake` (v1) and `SaslAuthenticate` (v1), the mechanism's
//! steps run by `rsasl` (as rskafka's are).

use std::time::Duration;

use rsasl::prelude::{Mechname, SASLClient};

use crate::answers;
use crate::error::Error;
use crate::group::CLIENT_ID;
use crate::transport::{Stream, call};
use crate::wire::Request;

const SASL_HANDSHAKE: i16 = 17;
const SASL_AUTHENTICATE: i16 = 36;

/// The most `SaslAuthenticate` round trips a mechanism may take (SCRAM
/// takes two).
const MAX_STEPS: usize = 8;

/// A SASL mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mechanism {
    /// `PLAIN` (RFC 4616): the password sent as it is; over TLS only, in
    /// earnest.
    Plain,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
}

impl Mechanism {
    /// Its name, as Kafka spells it.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism named `name` (as Kafka spells it, any case).
    ///
    /// # Errors
    ///
    /// Another name.
    pub fn parse(name: &str) -> Result<Mechanism, Error> {
        [Mechanism::Plain, Mechanism::ScramSha256, Mechanism::ScramSha512]
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                Error::Config(format!(
                    "{name:?} is not a SASL mechanism taken here (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
                ))
            })
    }
}

/// A SASL mechanism and its credentials. Its `Debug` shows no password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sasl {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// The user name.
    pub username: String,
    /// The password: never logged.
    pub password: String,
}

impl Sasl {
    /// `mechanism` with these credentials.
    pub fn new(mechanism: Mechanism, username: String, password: String) -> Sasl {
        Sasl {
            mechanism,
            username,
            password,
        }
    }

    /// As rskafka's client takes it.
    pub(crate) fn for_client(&self) -> rskafka::client::SaslConfig {
        let credentials = rskafka::client::Credentials::new(self.username.clone(), self.password.clone());
        match self.mechanism {
            Mechanism::Plain => rskafka::client::SaslConfig::Plain(credentials),
            Mechanism::ScramSha256 => rskafka::client::SaslConfig::ScramSha256(credentials),
            Mechanism::ScramSha512 => rskafka::client::SaslConfig::ScramSha512(credentials),
        }
    }

    /// Authenticates `stream` (a new connection, nothing sent on it yet;
    /// the correlation ids of its requests from `correlation`).
    pub(crate) async fn authenticate(
        &self,
        stream: &mut Box<dyn Stream>,
        correlation: &mut i32,
        timeout: Duration,
    ) -> Result<(), Error> {
        let name = self.mechanism.name();
        let mut request = Request::new(SASL_HANDSHAKE, 1, next(correlation), CLIENT_ID);
        request.string(name);
        let offered = answers::sasl_handshake(&call(stream, request, *correlation, timeout).await?)?;
        if !offered.iter().any(|m| m == name) {
            return Err(Error::Authentication(format!(
                "the broker does not offer {name} (it offers {})",
                offered.join(", ")
            )));
        }
        let failed = |e: &dyn std::fmt::Display| Error::Authentication(format!("{name}: {e}"));
        let config =
            rsasl::config::SASLConfig::with_credentials(None, self.username.clone(), self.password.clone())
                .map_err(|e| failed(&e))?;
        let mechname = Mechname::parse(name.as_bytes()).map_err(|e| failed(&e))?;
        let mut session = SASLClient::new(config)
            .start_suggested(&[mechname])
            .map_err(|e| failed(&e))?;
        let mut received: Option<Vec<u8>> = None;
        for _ in 0..MAX_STEPS {
            let mut out = Vec::new();
            let state = session
                .step(received.as_deref(), &mut out)
                .map_err(|e| failed(&e))?;
            if state.has_sent_message() {
                let mut request = Request::new(SASL_AUTHENTICATE, 1, next(correlation), CLIENT_ID);
                request.bytes(&out);
                let body = call(stream, request, *correlation, timeout).await?;
                received = Some(answers::sasl_authenticate(&body)?);
            }
            if state.is_finished() {
                return Ok(());
            }
        }
        Err(failed(&format!("not done after {MAX_STEPS} steps")))
    }
}

impl std::fmt::Debug for Sasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"(hidden)")
            .finish()
    }
}

fn next(correlation: &mut i32) -> i32 {
    *correlation = correlation.wrapping_add(1);
    *correlation
}

#[cfg(test)]
#[path = "sasl_tests.rs"]
mod tests;
