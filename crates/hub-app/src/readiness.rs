//! The hub's checks for `GET /readyz`: its bus, and those the node
//! assembling it adds ([`HubShared::add_readiness_check`](crate::HubShared::add_readiness_check)).
//!
//! The policy, in the words the guide uses: `/readyz` answers whether
//! this node can keep its promises for the work a load balancer sends it.
//! A bus that is away is every node's at once: the node stays in rotation
//! (its subscribers are served from its backlog and resume exactly once
//! the bus is back; publishes are answered 503 with `Retry-After`), and
//! the check is a shared one. A node that has not reached its bus since
//! it started has nothing to serve from, so that one is its own.

use std::sync::atomic::{AtomicBool, Ordering};

use tether_hub::{Broker, BrokerState};
use tether_server::Readiness;

/// One loop's view of its bus, for readiness.
#[derive(Debug, Default)]
pub(crate) struct BusReadiness {
    /// The broker has been up at least once since the loop started.
    reached: AtomicBool,
}

impl BusReadiness {
    /// Notes the broker's state (each tick, and at each probe).
    pub(crate) fn observe(&self, broker: &dyn Broker) -> BrokerState {
        let state = broker.state();
        if state == BrokerState::Up {
            self.reached.store(true, Ordering::Relaxed);
        }
        state
    }

    /// Reports the check `bus`; while the bus is not up, with what its
    /// last failure said (a refused certificate reads differently from a
    /// paused server).
    pub(crate) fn report(&self, broker: &dyn Broker, report: &mut Readiness) {
        let state = self.observe(broker);
        let kind = match broker.detail() {
            Some(detail) => format!("{}: {}", broker.kind(), one_line(&detail)),
            None => broker.kind().to_owned(),
        };
        let why = broker
            .last_error()
            .map_or_else(String::new, |e| format!("; last error: {}", one_line(&e)));
        match state {
            BrokerState::Up => report.check("bus", true, &format!("up ({kind})")),
            BrokerState::Connecting if self.reached.load(Ordering::Relaxed) => report.shared(
                "bus",
                false,
                &format!(
                    "away ({kind}): publishes are answered 503 with Retry-After; \
                     subscribers are served from this node's backlog and get what they \
                     missed once it is back{why}"
                ),
            ),
            BrokerState::Connecting => report.check(
                "bus",
                false,
                &format!("connecting ({kind}): not reached since this node started{why}"),
            ),
            BrokerState::Down => report.check("bus", false, &format!("down ({kind}): shut down")),
            other => report.check("bus", false, &format!("{} ({kind})", other.as_str())),
        }
    }
}

/// `text` on one line of at most [`MAX_ERROR`] bytes: each check is a
/// line of `/readyz`, and an error may carry a server's words.
fn one_line(text: &str) -> String {
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.len() > MAX_ERROR {
        let mut end = MAX_ERROR;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push_str("...");
    }
    line
}

/// The longest error `/readyz` shows, in bytes.
const MAX_ERROR: usize = 400;

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn an_error_is_one_bounded_line() {
        assert_eq!(one_line("a\r\nb\tc"), "a  b c");
        let long = "é".repeat(300);
        let line = one_line(&long);
        assert!(
            line.len() <= super::MAX_ERROR + 3 && line.ends_with("..."),
            "{line}"
        );
    }
}
