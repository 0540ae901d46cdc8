//! Event ids: `(ms, seq)` pairs, written `ms-seq`.

use core::fmt;

/// The id of an event within its topic: a `(ms, seq)` pair, ordered by
/// `ms` then `seq`, written `ms-seq` (`1718000000000-42`).
///
/// The shape is that of a Redis stream id, so that a broker backed by Redis
/// streams can hand its own ids through unchanged. The in-process broker
/// ([`crate::LocalBroker`]) puts the topic's creation time (Unix
/// milliseconds, an *epoch*) in `ms` and counts `seq` from 1, so that the
/// ids of one run of the server never match those of an earlier run: a
/// client that comes back after a restart with an old id gets a gap signal
/// rather than the wrong events.
///
/// Ids are compared as numbers, and only canonical text parses (decimal
/// digits without leading zeros, one `-`), so each id has one spelling.
///
/// ```
/// use tether_hub::EventId;
///
/// let id: EventId = "1718000000000-42".parse()?;
/// assert_eq!((id.ms(), id.seq()), (1_718_000_000_000, 42));
/// assert_eq!(id.to_string(), "1718000000000-42");
/// assert!(id < EventId::new(1_718_000_000_000, 43));
/// assert!("42".parse::<EventId>().is_err());
/// assert!("01-2".parse::<EventId>().is_err());
/// # Ok::<(), tether_hub::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventId {
    ms: u64,
    seq: u64,
}

impl EventId {
    /// `0-0`, before every event: a client that has seen nothing of a topic
    /// may resume from it, and gets every event since the topic began (or a
    /// gap, when some of them were already dropped from the backlog).
    pub const ZERO: EventId = EventId { ms: 0, seq: 0 };

    /// The id `ms-seq`.
    pub const fn new(ms: u64, seq: u64) -> EventId {
        EventId { ms, seq }
    }

    /// The first part: milliseconds (a Redis stream's entry time, or the
    /// in-process broker's topic epoch).
    pub const fn ms(self) -> u64 {
        self.ms
    }

    /// The second part: the sequence number within `ms`.
    pub const fn seq(self) -> u64 {
        self.seq
    }

    /// Parses canonical `ms-seq` text; `None` for anything else.
    pub fn parse(text: &str) -> Option<EventId> {
        let (ms, seq) = text.split_once('-')?;
        Some(EventId {
            ms: canonical_u64(ms)?,
            seq: canonical_u64(seq)?,
        })
    }
}

/// Decimal digits without a sign or leading zeros, within `u64`.
fn canonical_u64(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    if bytes.is_empty()
        || !bytes.iter().all(u8::is_ascii_digit)
        || (bytes.len() > 1 && bytes.first() == Some(&b'0'))
    {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::EventId;

    #[test]
    fn parses_canonical_text_only() {
        assert_eq!(EventId::parse("0-0"), Some(EventId::ZERO));
        assert_eq!(EventId::parse("5-7"), Some(EventId::new(5, 7)));
        assert_eq!(
            EventId::parse("18446744073709551615-18446744073709551615"),
            Some(EventId::new(u64::MAX, u64::MAX))
        );
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "1",
            "1-2-3",
            "01-1",
            "1-01",
            "+1-1",
            "1-+1",
            " 1-1",
            "1-1 ",
            "a-1",
            "18446744073709551616-0",
            "1_0-1",
            "١-١",
        ] {
            assert_eq!(EventId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn orders_by_ms_then_seq() {
        assert!(EventId::new(1, 9) < EventId::new(2, 0));
        assert!(EventId::new(2, 0) < EventId::new(2, 1));
        assert!(EventId::ZERO < EventId::new(0, 1));
    }
}
