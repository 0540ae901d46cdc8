//! The contract of a bus (what a bridge to Redis, NATS... does across
//! nodes) and the one per-loop broker every bus is driven through.

use std::fmt;
use std::sync::Arc;

use tether_hub::{
    Broker, BrokerState, Context, ControlMessage, Error as HubError, HistoryAnswer, HistoryQuery, HubMessage,
    Publish, ReplyTo, UserAction,
};

use crate::control::Control;
use crate::counters::{Counters, add};

/// What a bus does for the hub across nodes, as its event loops see it:
/// it **sequences** publishes (each gets its id and its place in the
/// topic's order from the bus, the same on every node), **replays** a
/// followed topic's backlog (`HubMessage::Ready`) and then delivers its
/// events in order (`HubMessage::Deliver`), answers each publisher
/// (`HubMessage::Published` or `Duplicate`), shares **presence**
/// (`Control::Member`, `Control::Watch`, then
/// `PresenceMessage::Remote` to the topic's sequencer), the hub's
/// **limits** (`Control::Limits`, `Control::Revoke`) and **user actions**
/// (`Control::UserAction`, relayed on the other nodes as
/// `ControlMessage::Relay`), and reads a topic's **history** for the
/// server API (`Control::History`). The work is the bus's threads'; this is
/// the side the loops reach, which must never block.
///
/// [`BusBroker`] is the one [`Broker`] over any bus: the refusals, the
/// counting and the hub's contract are written there once.
pub trait Bus: Send + Sync + 'static {
    /// The bus's name, for the metrics ([`Broker::kind`]: `redis`,
    /// `nats`).
    const KIND: &'static str;

    /// The bus's connections and counters at one moment.
    type Status: fmt::Debug;

    /// The counters every bus keeps.
    fn counters(&self) -> &Counters;

    /// Whether every connection the bus needs is up ([`BrokerState::Up`]
    /// unless it was shut down).
    fn connected(&self) -> bool;

    /// Whether a publish may be handed over now (the connection that adds
    /// events is up).
    fn publishing(&self) -> bool;

    /// Hands a publish to the thread that adds it to the bus, without
    /// waiting; false (the publish dropped) when its queue is full or
    /// closed.
    fn try_publish(&self, publish: Publish) -> bool;

    /// Hands a message to the thread that acts on it, without waiting.
    fn control(&self, message: Control);

    /// The connections and counters now.
    fn status(&self) -> Self::Status;

    /// Appends the bus's own metrics in the Prometheus text format.
    fn write_metrics(&self, out: &mut String);

    /// What the last failure to reach the bus said
    /// ([`Broker::last_error`]); `None` by default.
    fn last_error(&self) -> Option<String> {
        None
    }

    /// Which bus this is beyond its kind ([`Broker::detail`]); `None` by
    /// default.
    fn detail(&self) -> Option<String> {
        None
    }
}

/// One event loop's [`Broker`] over a bus (a bridge makes one per loop).
///
/// It never blocks the loop: publishes go to the bus's threads over a
/// bounded queue (refused, 503, while the bus is not connected or is
/// behind), follows, unfollows, presence and user actions as
/// [`Control`] messages. Topics are followed on demand
/// ([`Broker::complete`] is false): a loop gets a topic's events only
/// while it has subscribers of it.
pub struct BusBroker<B: Bus> {
    bus: Arc<B>,
    /// Its loop is shutting down: publishes are refused. (What the bus
    /// acknowledged before is in it, where resuming subscribers find it.)
    shutting_down: bool,
}

impl<B: Bus> BusBroker<B> {
    /// A broker for one loop of the bus.
    pub fn new(bus: Arc<B>) -> BusBroker<B> {
        BusBroker {
            bus,
            shutting_down: false,
        }
    }

    /// The bus's connections and counters now.
    pub fn status(&self) -> B::Status {
        self.bus.status()
    }

    fn refuse(&self, error: HubError) -> Result<(), HubError> {
        add(&self.bus.counters().refused, 1);
        Err(error)
    }
}

impl<B: Bus> fmt::Debug for BusBroker<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusBroker")
            .field("kind", &B::KIND)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl<B: Bus> Broker for BusBroker<B> {
    fn publish(&mut self, publish: Publish, _cx: &mut dyn Context) -> Result<(), HubError> {
        if self.shutting_down {
            return self.refuse(HubError::ShuttingDown);
        }
        if self.bus.counters().stopped() || !self.bus.publishing() {
            return self.refuse(HubError::BrokerUnavailable);
        }
        if self.bus.try_publish(publish) {
            Ok(())
        } else {
            self.refuse(HubError::BrokerUnavailable)
        }
    }

    fn complete(&self) -> bool {
        false
    }

    /// A bus numbers each topic's events itself, in one sequence that
    /// only grows: a Redis stream's entry ids (the server clock's
    /// milliseconds and a counter, never below the stream's last id; a
    /// Redis restarted empty starts again from its clock, after the old
    /// ids), a JetStream stream's creation epoch and sequence. An id a
    /// node has not seen is one it has not read yet. (A failover to a
    /// Redis replica whose clock is behind the lost primary's could number
    /// new events below ids the lost primary gave: the network fault
    /// guide says what that costs.)
    fn ids_one_sequence(&self) -> bool {
        true
    }

    fn shutdown(&mut self, _cx: &mut dyn Context) {
        self.shutting_down = true;
    }

    fn follow(&mut self, topic: &Arc<str>, cx: &mut dyn Context) {
        self.bus.control(Control::Follow {
            topic: topic.clone(),
            loop_index: cx.this_loop(),
            follow: true,
        });
    }

    fn unfollow(&mut self, topic: &Arc<str>, cx: &mut dyn Context) {
        self.bus.control(Control::Follow {
            topic: topic.clone(),
            loop_index: cx.this_loop(),
            follow: false,
        });
    }

    fn state(&self) -> BrokerState {
        self.bus.counters().state(self.bus.connected())
    }

    fn shares_presence(&self) -> bool {
        true
    }

    fn presence(&mut self, topic: &Arc<str>, member: &Arc<str>, present: bool, _cx: &mut dyn Context) {
        self.bus.control(Control::Member {
            topic: topic.clone(),
            member: member.clone(),
            present,
        });
    }

    fn watch_presence(&mut self, topic: &Arc<str>, watch: bool, cx: &mut dyn Context) {
        self.bus.control(Control::Watch {
            topic: topic.clone(),
            loop_index: cx.this_loop(),
            watch,
        });
    }

    /// Read by the bus's thread; refused at once while the bus is not
    /// connected (it could only answer once its timeout passed).
    fn history(&mut self, query: &HistoryQuery, reply: ReplyTo, cx: &mut dyn Context) -> bool {
        if self.bus.connected() {
            self.bus.control(Control::History {
                query: query.clone(),
                reply,
            });
        } else {
            let answer = ControlMessage::HistoryOf {
                token: reply.token,
                answer: HistoryAnswer::Unavailable,
            };
            cx.post(reply.loop_index, HubMessage::Control(answer));
        }
        true
    }

    fn shares_user_actions(&self) -> bool {
        true
    }

    fn user_action(&mut self, action: &UserAction, _cx: &mut dyn Context) {
        self.bus.control(Control::UserAction(action.clone()));
    }

    fn kind(&self) -> &'static str {
        B::KIND
    }

    fn last_error(&self) -> Option<String> {
        self.bus.last_error()
    }

    fn detail(&self) -> Option<String> {
        self.bus.detail()
    }

    fn round_trip(&self) -> Option<&tether_hub::histogram::Histogram> {
        Some(&self.bus.counters().round_trip)
    }

    fn write_metrics(&self, out: &mut String) {
        self.bus.write_metrics(out);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use tether_hub::EventId;

    use super::*;

    /// A bus whose thread keeps what it is handed.
    #[derive(Default)]
    struct Kept {
        counters: Counters,
        up: AtomicBool,
        controls: Mutex<Vec<Control>>,
    }

    impl Bus for Kept {
        const KIND: &'static str = "kept";
        type Status = ();
        fn counters(&self) -> &Counters {
            &self.counters
        }
        fn connected(&self) -> bool {
            self.up.load(Ordering::Relaxed)
        }
        fn publishing(&self) -> bool {
            true
        }
        fn try_publish(&self, _publish: Publish) -> bool {
            true
        }
        fn control(&self, message: Control) {
            self.controls.lock().unwrap().push(message);
        }
        fn status(&self) {}
        fn write_metrics(&self, _out: &mut String) {}
    }

    /// One loop, keeping what is posted to it.
    #[derive(Default)]
    struct Posted(Vec<(usize, HubMessage)>);

    impl Context for Posted {
        fn loops(&self) -> usize {
            2
        }
        fn this_loop(&self) -> usize {
            0
        }
        fn post(&mut self, to_loop: usize, message: HubMessage) {
            self.0.push((to_loop, message));
        }
        fn unix_ms(&self) -> u64 {
            0
        }
    }

    #[test]
    fn history_goes_to_the_bus_or_is_refused_at_once_while_it_is_down() {
        let bus = Arc::new(Kept::default());
        let mut broker = BusBroker::new(bus.clone());
        let query = HistoryQuery {
            topic: Arc::from("news"),
            since: Some(EventId::new(1, 2)),
            limit: 10,
            reverse: false,
        };
        let reply = ReplyTo {
            loop_index: 1,
            token: 7,
        };
        let mut cx = Posted::default();
        // Down: nothing for the bus, the asker told at once.
        assert!(broker.history(&query, reply, &mut cx));
        assert!(bus.controls.lock().unwrap().is_empty());
        let [(1, HubMessage::Control(ControlMessage::HistoryOf { token: 7, answer }))] = &cx.0[..] else {
            panic!("{:?}", cx.0);
        };
        assert_eq!(*answer, HistoryAnswer::Unavailable);
        // Up: the bus's thread reads it, nothing posted from the loop.
        bus.up.store(true, Ordering::Relaxed);
        let mut cx = Posted::default();
        assert!(broker.history(&query, reply, &mut cx));
        assert!(cx.0.is_empty());
        let controls = bus.controls.lock().unwrap();
        let [
            Control::History {
                query: asked,
                reply: to,
            },
        ] = &controls[..]
        else {
            panic!("{controls:?}");
        };
        assert_eq!((asked, *to), (&query, reply));
    }
}
