//! The checker of the event sources' fault tests (the outbox, Kafka):
//! what the source committed, against what subscribers saw. Every
//! committed event delivered exactly once, in its topic's order; none of
//! the rolled-back ones; no gap signal; nothing else. One function for
//! every fault ([`check`]), shown to catch each anomaly by its own tests.

#![allow(dead_code)] // each test file uses a part

use std::collections::HashMap;
use std::net::SocketAddr;

use tether_testkit::SseClient;

/// One event as a subscriber saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) id: String,
    pub(crate) event_type: String,
    pub(crate) data: String,
}

/// A subscriber of one topic that, connected again (to the same node
/// after a fault, or to one restarted on the same data), resumes after
/// the last event it saw, as a browser does: its history is what it saw
/// across its connections.
pub(crate) struct Follower {
    pub(crate) topic: String,
    pub(crate) seen: Vec<Seen>,
    client: Option<SseClient>,
}

impl Follower {
    pub(crate) fn new(topic: &str) -> Follower {
        Follower {
            topic: topic.to_owned(),
            seen: Vec::new(),
            client: None,
        }
    }

    /// Subscribes at `node`, after the last event seen, or from the
    /// topic's first event (`0-0`) if none was.
    pub(crate) fn connect(&mut self, node: SocketAddr) {
        let last = self.seen.last().map_or("0-0", |seen| seen.id.as_str());
        let target = format!("/topics/{}/events", self.topic);
        let client = SseClient::connect(node, &target, &format!("Last-Event-ID: {last}\r\n"));
        assert_eq!(client.response.status, 200, "subscribe to {}", self.topic);
        self.client = Some(client);
    }

    /// Reads `n` more events.
    pub(crate) fn read(&mut self, n: usize) {
        for _ in 0..n {
            self.next();
        }
    }

    /// Reads until an event whose data is `data` (a fence the test
    /// commits after the rest: what its topic had before it came first).
    pub(crate) fn read_until(&mut self, data: &str) {
        while self.next().data != data {}
    }

    fn next(&mut self) -> &Seen {
        let client = self.client.as_mut().expect("connected");
        let event = client.next_event();
        self.seen.push(Seen {
            id: event.last_event_id().to_owned(),
            event_type: event.event_type().to_owned(),
            data: event.data().to_owned(),
        });
        self.seen.last().expect("just pushed")
    }
}

/// What a source was given: the data of each event committed, with its
/// topic, in the order of each topic's commits; and the data of those
/// rolled back. Data are unique within a test.
#[derive(Debug, Default)]
pub(crate) struct Expected {
    committed: Vec<(String, String)>,
    rolled_back: Vec<String>,
}

impl Expected {
    pub(crate) fn commit(&mut self, topic: &str, data: &str) {
        self.committed.push((topic.to_owned(), data.to_owned()));
    }

    pub(crate) fn roll_back(&mut self, data: &str) {
        self.rolled_back.push(data.to_owned());
    }

    /// The committed events, in order.
    pub(crate) fn committed(&self) -> &[(String, String)] {
        &self.committed
    }
}

/// Checks `histories` against `expected`: each topic's events as its
/// subscribers saw them, one subscriber after another (of one node, then
/// of the node that took over), must be its committed events, each
/// once, in order, with no gap signal and no rolled-back event; a
/// subscriber's ids must increase. Every anomaly found, one a line.
pub(crate) fn check(expected: &Expected, histories: &[&Follower]) -> Result<(), String> {
    let mut anomalies = Vec::new();
    let mut seen: HashMap<&str, Vec<&str>> = HashMap::new();
    for follower in histories {
        for pair in follower.seen.windows(2) {
            if !before(&pair[0].id, &pair[1].id) {
                anomalies.push(format!(
                    "{}: id {} after {}",
                    follower.topic, pair[1].id, pair[0].id
                ));
            }
        }
        for event in &follower.seen {
            if event.event_type == "gap" {
                anomalies.push(format!("{}: a gap signal: {}", follower.topic, event.data));
            } else {
                seen.entry(&follower.topic).or_default().push(&event.data);
            }
        }
    }
    let mut committed: HashMap<&str, Vec<&str>> = HashMap::new();
    for (topic, data) in &expected.committed {
        committed.entry(topic).or_default().push(data);
    }
    for (topic, got) in &seen {
        if !committed.contains_key(topic) {
            anomalies.push(format!("{topic}: no event was committed to it: {got:?}"));
        }
    }
    for (topic, want) in &committed {
        let got = seen.get(topic).map_or(&[][..], Vec::as_slice);
        for data in got {
            if expected.rolled_back.iter().any(|r| r == data) {
                anomalies.push(format!("{topic}: rolled back, delivered: {data}"));
            } else if !want.contains(data) {
                anomalies.push(format!("{topic}: never committed, delivered: {data}"));
            }
        }
        for data in want {
            match got.iter().filter(|g| *g == data).count() {
                0 => anomalies.push(format!("{topic}: lost: {data}")),
                1 => {}
                n => anomalies.push(format!("{topic}: delivered {n} times: {data}")),
            }
        }
        // The order of the first deliveries of the committed events.
        let mut first: Vec<&str> = Vec::new();
        for data in got {
            if want.contains(data) && !first.contains(data) {
                first.push(data);
            }
        }
        let want_order: Vec<&str> = want.iter().copied().filter(|w| first.contains(w)).collect();
        if first != want_order {
            anomalies.push(format!(
                "{topic}: out of order: {first:?}, committed {want_order:?}"
            ));
        }
    }
    if anomalies.is_empty() {
        Ok(())
    } else {
        Err(anomalies.join("\n"))
    }
}

/// [`check`], failing the test with every anomaly.
pub(crate) fn assert_delivered_once(expected: &Expected, histories: &[&Follower]) {
    if let Err(anomalies) = check(expected, histories) {
        panic!("the subscribers' history breaks the promise:\n{anomalies}");
    }
}

/// Whether event id `a` (`ms-seq`) comes before `b`.
fn before(a: &str, b: &str) -> bool {
    let parse = |id: &str| {
        let (ms, seq) = id.split_once('-')?;
        Some((ms.parse::<u64>().ok()?, seq.parse::<u64>().ok()?))
    };
    matches!((parse(a), parse(b)), (Some(a), Some(b)) if a < b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follower(topic: &str, events: &[(&str, &str)]) -> Follower {
        let mut follower = Follower::new(topic);
        for (i, (event_type, data)) in events.iter().enumerate() {
            follower.seen.push(Seen {
                id: format!("1000-{}", i + 1),
                event_type: (*event_type).to_owned(),
                data: (*data).to_owned(),
            });
        }
        follower
    }

    fn expected() -> Expected {
        let mut expected = Expected::default();
        for (topic, data) in [("a", "1"), ("b", "2"), ("a", "3"), ("b", "4")] {
            expected.commit(topic, data);
        }
        expected.roll_back("r");
        expected
    }

    fn m(data: &str) -> (&str, &str) {
        ("message", data)
    }

    #[test]
    fn the_checker_takes_each_event_once_in_order_across_subscribers() {
        let a = follower("a", &[m("1"), m("3")]);
        let (b1, b2) = (follower("b", &[m("2")]), follower("b", &[m("4")]));
        assert_eq!(check(&expected(), &[&a, &b1, &b2]), Ok(()));
    }

    #[test]
    fn the_checker_finds_each_anomaly() {
        let b = follower("b", &[m("2"), m("4")]);
        for (a, said) in [
            (follower("a", &[m("1")]), "a: lost: 3"),
            (
                follower("a", &[m("1"), m("1"), m("3")]),
                "a: delivered 2 times: 1",
            ),
            (follower("a", &[m("3"), m("1")]), "a: out of order"),
            (
                follower("a", &[m("1"), m("r"), m("3")]),
                "a: rolled back, delivered: r",
            ),
            (
                follower("a", &[m("1"), m("x"), m("3")]),
                "a: never committed, delivered: x",
            ),
            (follower("a", &[m("1"), ("gap", "{}"), m("3")]), "a: a gap signal"),
        ] {
            let found = check(&expected(), &[&a, &b]).unwrap_err();
            assert!(found.contains(said), "{said}: {found}");
        }
        let mut late = follower("a", &[m("1"), m("3")]);
        late.seen[1].id = "999-9".to_owned();
        let found = check(&expected(), &[&late, &b]).unwrap_err();
        assert!(found.contains("a: id 999-9 after 1000-1"), "{found}");
        let stray = follower("c", &[m("5")]);
        let a = follower("a", &[m("1"), m("3")]);
        let found = check(&expected(), &[&a, &b, &stray]).unwrap_err();
        assert!(found.contains("c: no event was committed to it"), "{found}");
    }
}
