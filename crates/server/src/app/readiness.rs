//! What `GET /readyz` answers: each check by name, what it found, and
//! whether it takes the node out of a load balancer's rotation.

use std::fmt::Write as _;

/// The checks behind one answer to `GET /readyz`, as the server and the
/// application ([`App::readiness`](crate::App::readiness)) report them.
///
/// Readiness answers one question: can this node keep its promises for
/// the work a load balancer sends it? So a check is one of two kinds:
///
/// - [`Readiness::check`]: a condition of this node alone (it drains
///   after SIGTERM, it has not reached its bus since it started, its
///   configuration requires what its bus does not have). A failed one
///   makes `/readyz` answer 503.
/// - [`Readiness::shared`]: a condition every node sees at once (the bus
///   they share is away). Taking this node out would take every node
///   out, and a client answered by a load balancer with no node left
///   gets an error where the node would have served it (an
///   `EventSource` answered anything but 200 gives up for good). A failed
///   one is reported and counts only when the probe asks for it
///   (`/readyz?shared=1`): for a load balancer that has somewhere else to
///   send clients when every node fails it.
///
/// The body names every check, one a line, so an operator sees why:
///
/// ```text
/// not ready: replicas
/// [+] draining: no
/// [+] bus: up (redis)
/// [-] replicas: 0 online, 1 required
/// ```
///
/// The first line is `ready`, or `not ready: ` and the failed checks that
/// count; each check's line starts with `[+]` (passed), `[-]` (failed,
/// counted) or `[~]` (failed, shared: not counted).
#[derive(Debug)]
pub struct Readiness {
    /// The checks' lines, each ending in `\n`.
    lines: String,
    /// The names of the failed checks that count.
    failed: Vec<String>,
    /// Whether the probe asked for the shared checks to count.
    shared_count: bool,
}

impl Readiness {
    /// An empty report; `shared_count` when the probe asked for the
    /// shared checks to count (`?shared=1`). The server makes one for
    /// each probe; an application makes one to ask itself
    /// ([`App::ready`](crate::App::ready) from its checks, say).
    pub fn new(shared_count: bool) -> Readiness {
        Readiness {
            lines: String::new(),
            failed: Vec::new(),
            shared_count,
        }
    }

    /// Reports a condition of this node alone: `name` (a word), whether
    /// it passes, and what it found (one line; line breaks are made
    /// spaces). A failed one makes `/readyz` answer 503.
    pub fn check(&mut self, name: &str, ok: bool, found: &str) {
        self.report(name, ok, true, found);
    }

    /// Reports a condition every node sees at once (the shared bus away):
    /// as [`Readiness::check`], but a failed one counts only when the
    /// probe asks for it (`/readyz?shared=1`).
    pub fn shared(&mut self, name: &str, ok: bool, found: &str) {
        let counts = self.shared_count;
        self.report(name, ok, counts, found);
    }

    fn report(&mut self, name: &str, ok: bool, counts: bool, found: &str) {
        let mark = match (ok, counts) {
            (true, _) => "[+]",
            (false, true) => "[-]",
            (false, false) => "[~]",
        };
        let one_line = |s: &str| s.replace(|c: char| c.is_control(), " ");
        let _ = writeln!(self.lines, "{mark} {}: {}", one_line(name), one_line(found));
        if !ok && counts {
            self.failed.push(one_line(name));
        }
    }

    /// Whether every check that counts passed.
    pub fn ready(&self) -> bool {
        self.failed.is_empty()
    }

    /// Whether a check of this name failed and counts.
    pub fn failed(&self, name: &str) -> bool {
        self.failed.iter().any(|failed| failed == name)
    }

    /// The body `/readyz` answers with.
    pub fn body(&self) -> String {
        let mut body = if self.ready() {
            "ready\n".to_owned()
        } else {
            format!("not ready: {}\n", self.failed.join(", "))
        };
        body.push_str(&self.lines);
        body
    }
}

/// Whether a `/readyz` query asks for the shared checks to count
/// (`shared=1` among its parameters).
pub(crate) fn shared_asked(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|param| param == "shared=1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_is_named_and_only_those_that_count_fail_it() {
        let mut report = Readiness::new(false);
        report.check("draining", true, "no");
        report.shared("bus", false, "away (redis)");
        assert!(report.ready());
        assert_eq!(report.body(), "ready\n[+] draining: no\n[~] bus: away (redis)\n");
        report.check("replicas", false, "0 online,\n1 required");
        assert!(!report.ready());
        assert!(report.failed("replicas") && !report.failed("bus"));
        assert_eq!(
            report.body(),
            "not ready: replicas\n[+] draining: no\n[~] bus: away (redis)\n[-] replicas: 0 online, 1 required\n"
        );
    }

    #[test]
    fn asked_for_shared_checks_they_count() {
        let mut report = Readiness::new(true);
        report.shared("bus", false, "away");
        report.check("draining", false, "yes");
        assert_eq!(
            report.body(),
            "not ready: bus, draining\n[-] bus: away\n[-] draining: yes\n"
        );
    }

    #[test]
    fn the_query_asks_for_shared_checks_by_one_parameter() {
        assert!(!shared_asked(None));
        assert!(!shared_asked(Some("")));
        assert!(shared_asked(Some("shared=1")));
        assert!(shared_asked(Some("verbose&shared=1")));
        assert!(!shared_asked(Some("shared=0")));
        assert!(!shared_asked(Some("notshared=1")));
    }
}
