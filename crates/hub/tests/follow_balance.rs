//! A topic followed on demand: whatever its subscribers, long polls,
//! backlogs and deliveries do, the hub asks the broker to follow it
//! exactly when it makes the topic, and to unfollow it exactly when it
//! drops it. A hub that dropped a topic without saying so asked for a
//! second follow of a topic the broker still followed, which a broker may
//! take for a repeat, and the topic's new subscribers waited for ever.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use std::collections::HashSet;
use std::sync::Arc;

use proptest::prelude::*;
use tether_hub::{Config, Event, EventId, Hub, Polled, Start, Subscribed, Transport};

const TOPIC: &str = "t";

fn event(seq: u64) -> Arc<Event> {
    Event::new(
        Arc::from(TOPIC),
        EventId::new(10, seq),
        "message",
        &format!("e{seq}"),
    )
    .unwrap()
}

/// An id the subscriber resumes from: none (from the next event, or from
/// the latest), one of the events so far (by a fraction of the count), or
/// one not seen yet.
#[derive(Debug, Clone, Copy)]
enum From {
    Nothing,
    Latest,
    Seen(u8),
    Ahead,
}

#[derive(Debug, Clone)]
enum Op {
    Subscribe(u32, bool, From),
    Poll(u32, From),
    Unsubscribe(u32),
    /// The broker answers the follow it owes with the backlog.
    Ready,
    /// The broker delivers the next event (when the topic is ready).
    Deliver,
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    let from = prop_oneof![
        Just(From::Nothing),
        Just(From::Latest),
        any::<u8>().prop_map(From::Seen),
        Just(From::Ahead),
    ];
    prop_oneof![
        3 => (0..6u32, any::<bool>(), from.clone()).prop_map(|(s, ws, f)| Op::Subscribe(s, ws, f)),
        3 => (0..6u32, from).prop_map(|(s, f)| Op::Poll(s, f)),
        3 => (0..6u32).prop_map(Op::Unsubscribe),
        2 => Just(Op::Ready),
        3 => Just(Op::Deliver),
        1 => Just(Op::Tick),
    ]
}

/// The broker's side, as the hub's requests leave it.
#[derive(Default)]
struct Ledger {
    followed: bool,
    /// A follow not yet answered with the backlog.
    owed: bool,
    /// Ready given since the last follow: deliveries may go.
    ready: bool,
}

impl Ledger {
    fn follow(&mut self, asked: bool) -> Result<(), TestCaseError> {
        if asked {
            prop_assert!(!self.followed, "a second follow without an unfollow between");
            *self = Ledger {
                followed: true,
                owed: true,
                ready: false,
            };
        }
        Ok(())
    }

    fn unfollow(&mut self, asked: bool) -> Result<(), TestCaseError> {
        if asked {
            prop_assert!(self.followed, "an unfollow of a topic not followed");
            *self = Ledger::default();
        }
        Ok(())
    }
}

fn id_of(from: From, seq: u64) -> Option<String> {
    match from {
        From::Nothing | From::Latest => None,
        From::Seen(part) => Some(EventId::new(10, seq * u64::from(part) / 255).to_string()),
        From::Ahead => Some(EventId::new(10, seq + 3).to_string()),
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut config = Config::default();
    config.max_backlog_events = 4;
    let mut hub: Hub<u32> = Hub::new(config, false);
    let mut ledger = Ledger::default();
    let mut registered: HashSet<u32> = HashSet::new();
    let mut seq = 0u64;
    for op in ops {
        match op {
            Op::Subscribe(sub, websocket, from) => {
                let transport = if websocket {
                    Transport::WebSocket
                } else {
                    Transport::EventStream
                };
                let last = id_of(from, seq);
                let start = Start::from_last_id(last.as_deref(), matches!(from, From::Latest));
                match hub.subscribe_at(TOPIC, sub, transport, start) {
                    Ok(Subscribed::Held { follow }) => {
                        ledger.follow(follow)?;
                        registered.insert(sub);
                    }
                    Ok(Subscribed::Live(_)) => {
                        registered.insert(sub);
                    }
                    Err(_) => prop_assert!(registered.contains(&sub)),
                }
            }
            Op::Poll(sub, from) => {
                let since = id_of(from, seq);
                let start = Start::from_last_id(since.as_deref(), matches!(from, From::Latest));
                match hub.poll_at(TOPIC, sub, start) {
                    Ok(Polled::Held { follow }) => {
                        ledger.follow(follow)?;
                        registered.insert(sub);
                    }
                    Ok(Polled::Wait) => {
                        registered.insert(sub);
                    }
                    Ok(Polled::Now { unfollow, .. }) => ledger.unfollow(unfollow)?,
                    Err(_) => prop_assert!(registered.contains(&sub)),
                }
            }
            Op::Unsubscribe(sub) => {
                registered.remove(&sub);
                if let Some(left) = hub.unsubscribe(sub) {
                    ledger.unfollow(left.unfollow)?;
                }
            }
            Op::Ready => {
                if ledger.owed {
                    let first = seq.saturating_sub(3).max(1);
                    let history = (first..=seq).map(event).collect();
                    let dropped = (first > 1).then(|| EventId::new(10, first - 1));
                    let readied = hub.ready(TOPIC, history, dropped).unwrap();
                    for resumed in readied.resumed {
                        if resumed.transport == Transport::Poll {
                            // Answered: no longer registered.
                            registered.remove(&resumed.sub);
                        }
                    }
                    ledger.owed = false;
                    ledger.ready = true;
                }
            }
            Op::Deliver => {
                seq += 1;
                if ledger.ready {
                    let delivery = hub.deliver(event(seq)).unwrap();
                    for waiter in delivery.waiters.clone() {
                        registered.remove(&waiter);
                    }
                    for resumed in delivery.resumed {
                        if resumed.transport == Transport::Poll {
                            registered.remove(&resumed.sub);
                        }
                    }
                }
            }
            Op::Tick => {
                for resumed in hub.tick() {
                    if resumed.transport == Transport::Poll {
                        registered.remove(&resumed.sub);
                    }
                }
            }
        }
        // The hub holds the topic exactly while the broker follows it.
        prop_assert_eq!(hub.backlog(TOPIC).is_some(), ledger.followed);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn follows_and_unfollows_alternate(ops in proptest::collection::vec(op(), 0..80)) {
        run(ops)?;
    }
}

/// The case the network fault runs found, spelled out: a long poll
/// answered at once by a topic nobody else watched dropped the topic
/// without an unfollow.
#[test]
fn a_poll_answered_at_once_unfollows_the_topic_it_drops() {
    let mut hub: Hub<u32> = Hub::new(Config::default(), false);
    assert!(matches!(
        hub.poll(TOPIC, 1, Some("10-0")),
        Ok(Polled::Held { follow: true })
    ));
    // The backlog answers the poll: the topic is ready, and unwatched.
    let readied = hub.ready(TOPIC, vec![event(1)], None).unwrap();
    assert_eq!(readied.resumed.len(), 1);
    match hub.poll(TOPIC, 2, Some("10-0")) {
        Ok(Polled::Now { events, unfollow, .. }) => {
            assert_eq!(events.len(), 1);
            assert!(unfollow, "the topic was dropped: it must be unfollowed");
        }
        other => panic!("{other:?}"),
    }
    assert!(hub.backlog(TOPIC).is_none());
    // The next subscriber follows it anew.
    assert!(matches!(
        hub.subscribe(TOPIC, 3, Transport::EventStream, None),
        Ok(Subscribed::Held { follow: true })
    ));
}
