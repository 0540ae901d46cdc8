//! A subscription's key: the connection that holds it and its number on
//! that connection. The loop's replica of the topics ([`tether_hub::Hub`])
//! registers subscriptions, not connections, so that one connection may
//! hold many; a one-topic connection (`/topics/NAME/ws`, `/events`,
//! `/poll`, `/wt`) holds one, number 0, and a multiplexed socket (`GET
//! /ws`) numbers its own from 1.

use tether_server::ConnId;

/// One subscription of one connection: what the hub's replica registers
/// and delivers to. A delivery is sent to its connection: what it costs
/// does not depend on what else the connection follows.
///
/// Packed to 14 bytes (a 12-byte connection id and the number, aligned
/// to 2): the replica keeps one in its topic's list for every live
/// subscriber, so each byte counts once per subscriber (beside its
/// 8-byte registration, a map slot is 24 bytes, as with a bare
/// connection id). Its fields are read by value only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(C, packed(2))]
pub(crate) struct SubKey {
    /// The connection it is delivered on.
    pub(crate) conn: ConnId,
    /// Its number on the connection: 0 for a one-topic connection's only
    /// subscription.
    pub(crate) number: u16,
}

impl SubKey {
    /// The only subscription of a one-topic connection.
    pub(crate) fn whole(conn: ConnId) -> SubKey {
        SubKey { conn, number: 0 }
    }

    /// Subscription `number` of a multiplexed connection (1 and up).
    pub(crate) fn multiplexed(conn: ConnId, number: u16) -> SubKey {
        SubKey { conn, number }
    }

    /// Whether it is a one-topic connection's subscription.
    pub(crate) fn is_whole(self) -> bool {
        self.number == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_key_is_a_connection_id_and_two_bytes() {
        assert_eq!(std::mem::size_of::<SubKey>(), 14);
        // In the replica's map beside an 8-byte registration: 24 bytes.
        assert_eq!(std::mem::size_of::<(SubKey, [u32; 2])>(), 24);
    }
}
