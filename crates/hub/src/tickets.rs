//! Access control: the publish token and single-use subscription tickets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Error;

/// Compares a secret with a candidate in time that depends only on their
/// lengths, so that timing does not reveal how much of a guess was right.
///
/// ```
/// assert!(tether_hub::secret_matches("s3cret", "s3cret"));
/// assert!(!tether_hub::secret_matches("s3cret", "s3creT"));
/// assert!(!tether_hub::secret_matches("s3cret", "s3cre"));
/// ```
pub fn secret_matches(secret: &str, candidate: &str) -> bool {
    let (a, b) = (secret.as_bytes(), candidate.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a ticket lets its bearer do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grant {
    /// The one topic it is good for; `None`: any topic.
    pub topic: Option<Arc<str>>,
    /// It also lets a WebSocket subscriber publish to its topic.
    pub publish: bool,
}

#[derive(Debug)]
struct Ticket {
    expires: Instant,
    grant: Grant,
}

/// Short-lived, single-use tickets, for clients that cannot send an
/// `Authorization` header (browsers opening a WebSocket or an
/// `EventSource`): a holder of the publish token asks for one, and hands it
/// to the client, which puts it in the URL (`?ticket=...`).
///
/// A ticket is 128 random bits in hex, given by the caller (sans-IO: no
/// randomness or clock is read here). It is good once, until it expires,
/// for its [`Grant`]. Expired tickets are swept as new ones are issued, and
/// at most `max_outstanding` exist at once.
///
/// ```
/// use std::time::{Duration, Instant};
/// use tether_hub::{Error, Grant, Tickets};
///
/// let mut tickets = Tickets::new(Duration::from_secs(30), 1000);
/// let now = Instant::now();
/// let ticket = tickets.issue(now, [7; 16], Grant::default())?;
/// assert_eq!(ticket, "07".repeat(16));
/// assert!(tickets.redeem(now, &ticket, "news").is_ok());
/// assert_eq!(tickets.redeem(now, &ticket, "news"), Err(Error::TicketRefused)); // used
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug)]
pub struct Tickets {
    ttl: Duration,
    max_outstanding: usize,
    tickets: HashMap<String, Ticket>,
    /// The count after the last sweep: sweep again when it doubles.
    swept_at: usize,
}

impl Tickets {
    /// No tickets yet; each will be good for `ttl`.
    pub fn new(ttl: Duration, max_outstanding: usize) -> Tickets {
        Tickets {
            ttl,
            max_outstanding,
            tickets: HashMap::new(),
            swept_at: 0,
        }
    }

    /// How long a ticket is good for.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Tickets issued from now on are good for `ttl` (those outstanding
    /// keep theirs).
    pub fn set_ttl(&mut self, ttl: Duration) {
        self.ttl = ttl;
    }

    /// Issues a ticket made of `random` (16 bytes from a cryptographic
    /// source).
    ///
    /// # Errors
    ///
    /// [`Error::TooManyTickets`] when `max_outstanding` unexpired tickets
    /// exist.
    pub fn issue(&mut self, now: Instant, random: [u8; 16], grant: Grant) -> Result<String, Error> {
        if self.tickets.len() >= self.max_outstanding || self.tickets.len() >= 2 * self.swept_at.max(64) {
            self.tickets.retain(|_, t| t.expires > now);
            self.swept_at = self.tickets.len();
        }
        if self.tickets.len() >= self.max_outstanding {
            return Err(Error::TooManyTickets);
        }
        let mut text = String::with_capacity(32);
        for b in random {
            for nibble in [b >> 4, b & 15] {
                text.extend(char::from_digit(u32::from(nibble), 16));
            }
        }
        self.tickets.insert(
            text.clone(),
            Ticket {
                expires: now + self.ttl,
                grant,
            },
        );
        Ok(text)
    }

    /// Uses a ticket for `topic`. Whatever the outcome, the ticket is gone
    /// afterwards.
    ///
    /// # Errors
    ///
    /// [`Error::TicketRefused`]: unknown, used, expired, or for another
    /// topic.
    pub fn redeem(&mut self, now: Instant, ticket: &str, topic: &str) -> Result<Grant, Error> {
        let ticket = self.tickets.remove(ticket).ok_or(Error::TicketRefused)?;
        if now >= ticket.expires {
            return Err(Error::TicketRefused);
        }
        match &ticket.grant.topic {
            Some(only) if &**only != topic => Err(Error::TicketRefused),
            _ => Ok(ticket.grant),
        }
    }

    /// Whether `ticket` is good for `topic` now, without using it: one
    /// that is stays, for [`Tickets::redeem`]; one that is not is gone
    /// afterwards, as a refused redemption's is.
    ///
    /// # Errors
    ///
    /// [`Error::TicketRefused`]: unknown, used, expired, or for another
    /// topic.
    pub fn check(&mut self, now: Instant, ticket: &str, topic: &str) -> Result<Grant, Error> {
        let good = self
            .tickets
            .get(ticket)
            .filter(|t| now < t.expires && t.grant.topic.as_deref().is_none_or(|only| only == topic))
            .map(|t| t.grant.clone());
        if good.is_none() {
            self.tickets.remove(ticket);
        }
        good.ok_or(Error::TicketRefused)
    }

    /// The topic `ticket` is for, without using it or dropping it (a
    /// request listing several topics finds each one's ticket so):
    /// `Some(None)` for a ticket good for any topic, `None` for one that
    /// is unknown, used or expired.
    pub fn topic_of(&self, now: Instant, ticket: &str) -> Option<Option<&str>> {
        let ticket = self.tickets.get(ticket).filter(|t| now < t.expires)?;
        Some(ticket.grant.topic.as_deref())
    }

    /// Tickets issued and not yet used (some may have expired).
    pub fn outstanding(&self) -> usize {
        self.tickets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_use_expiring_and_scoped() {
        let mut t = Tickets::new(Duration::from_secs(10), 100);
        let t0 = Instant::now();
        let a = t.issue(t0, [1; 16], Grant::default()).unwrap();
        let b = t
            .issue(
                t0,
                [2; 16],
                Grant {
                    topic: Some(Arc::from("x")),
                    publish: true,
                },
            )
            .unwrap();
        let c = t.issue(t0, [3; 16], Grant::default()).unwrap();
        assert_eq!(t.outstanding(), 3);
        // Looked at, a ticket stays: its topic, or any.
        assert_eq!(t.topic_of(t0, &b), Some(Some("x")));
        assert_eq!(t.topic_of(t0, &a), Some(None));
        assert_eq!(t.topic_of(t0 + Duration::from_secs(10), &a), None);
        assert_eq!(t.topic_of(t0, "unknown"), None);
        assert_eq!(t.outstanding(), 3);
        assert_eq!(
            t.redeem(t0 + Duration::from_secs(9), &a, "any"),
            Ok(Grant::default())
        );
        assert_eq!(t.redeem(t0, &a, "any"), Err(Error::TicketRefused));
        // For another topic: refused, and used up all the same.
        assert_eq!(t.redeem(t0, &b, "y"), Err(Error::TicketRefused));
        assert_eq!(t.redeem(t0, &b, "x"), Err(Error::TicketRefused));
        assert_eq!(
            t.redeem(t0 + Duration::from_secs(10), &c, "any"),
            Err(Error::TicketRefused)
        );
        assert_eq!(t.redeem(t0, "", "any"), Err(Error::TicketRefused));
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn checked_without_being_used() {
        let mut t = Tickets::new(Duration::from_secs(10), 100);
        let t0 = Instant::now();
        let scoped = Grant {
            topic: Some(Arc::from("x")),
            publish: true,
        };
        let a = t.issue(t0, [1; 16], scoped.clone()).unwrap();
        assert_eq!(t.check(t0, &a, "x"), Ok(scoped.clone()));
        assert_eq!(t.check(t0, &a, "x"), Ok(scoped.clone()), "still there");
        assert_eq!(t.redeem(t0, &a, "x"), Ok(scoped.clone()));
        assert_eq!(t.check(t0, &a, "x"), Err(Error::TicketRefused), "used");
        // Refused: gone, as a refused redemption's.
        let b = t.issue(t0, [2; 16], scoped.clone()).unwrap();
        assert_eq!(t.check(t0, &b, "y"), Err(Error::TicketRefused));
        assert_eq!(t.redeem(t0, &b, "x"), Err(Error::TicketRefused));
        let c = t.issue(t0, [3; 16], Grant::default()).unwrap();
        assert_eq!(
            t.check(t0 + Duration::from_secs(10), &c, "any"),
            Err(Error::TicketRefused)
        );
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn bounded_and_swept() {
        let mut t = Tickets::new(Duration::from_secs(1), 2);
        let t0 = Instant::now();
        t.issue(t0, [1; 16], Grant::default()).unwrap();
        t.issue(t0, [2; 16], Grant::default()).unwrap();
        assert_eq!(t.issue(t0, [3; 16], Grant::default()), Err(Error::TooManyTickets));
        // Once they expire, they make room.
        let later = t0 + Duration::from_secs(1);
        assert!(t.issue(later, [3; 16], Grant::default()).is_ok());
        assert_eq!(t.outstanding(), 1);
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(secret_matches("", ""));
        assert!(!secret_matches("a", ""));
        assert!(!secret_matches("abc", "abd"));
    }
}
