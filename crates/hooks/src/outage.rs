//! A backend that does not answer is said at warn level, once per hook
//! every [`EVERY`] at most: an outage seen by every worker at once would
//! otherwise write a line per ask. The next line says how many went
//! unsaid; `/metrics` counts them all.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::answer::{Answer, Unavailable};
use crate::protocol::HookKind;

/// At most one line per hook this often.
pub(crate) const EVERY: Duration = Duration::from_secs(10);

/// Each hook's last line and what went unsaid since.
#[derive(Debug, Default)]
pub(crate) struct Outages {
    hooks: [Mutex<Said>; HookKind::ALL.len()],
}

#[derive(Debug, Default)]
struct Said {
    last: Option<Instant>,
    unsaid: u64,
}

/// A line to write: why the hook failed, and how many failures of it went
/// unsaid since the last line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) why: Unavailable,
    pub(crate) unsaid: u64,
}

impl Outages {
    /// Notes `answer` of the `kind` hook at `now`: a line to write if it
    /// is a failure of the backend (it did not answer, in time or at all,
    /// or answered a 5xx) and none was written for this hook within
    /// [`EVERY`].
    pub(crate) fn note(&self, kind: HookKind, answer: &Answer, now: Instant) -> Option<Line> {
        let why = match answer {
            Err(why @ (Unavailable::Down | Unavailable::Timeout)) => *why,
            Err(why @ Unavailable::Status(status)) if *status >= 500 => *why,
            _ => return None,
        };
        let mut said = self
            .hooks
            .get(kind.index())?
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if said
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < EVERY)
        {
            said.unsaid = said.unsaid.saturating_add(1);
            return None;
        }
        said.last = Some(now);
        let unsaid = std::mem::take(&mut said.unsaid);
        Some(Line { why, unsaid })
    }

    /// [`Outages::note`], and the line written, naming the hook and its
    /// URL (as [`Endpoint::redacted`](crate::Endpoint::redacted) shows it).
    pub(crate) fn log(&self, kind: HookKind, url: &dyn Fn() -> String, answer: &Answer) {
        let Some(line) = self.note(kind, answer, Instant::now()) else {
            return;
        };
        let url = url();
        let name = kind.name();
        let what = match line.why {
            Unavailable::Down => "could not be reached".to_owned(),
            Unavailable::Timeout => "did not answer in time".to_owned(),
            other => format!("failed ({other})"),
        };
        match line.unsaid {
            0 => log::warn!(
                hook = name, hook_url = url.as_str(), reason = line.why.name();
                "hooks: the backend's {name} hook {what}"
            ),
            n => log::warn!(
                hook = name, hook_url = url.as_str(), reason = line.why.name(), unsaid = n;
                "hooks: the backend's {name} hook {what} ({n} more failures of it since the last line)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::{Allow, Decision};

    #[test]
    fn one_line_per_hook_per_interval_with_the_count_unsaid() {
        let outages = Outages::default();
        let t0 = Instant::now();
        let down = Err(Unavailable::Down);
        let line = |why, unsaid| Some(Line { why, unsaid });
        assert_eq!(
            outages.note(HookKind::Connect, &down, t0),
            line(Unavailable::Down, 0)
        );
        assert_eq!(
            outages.note(HookKind::Connect, &Err(Unavailable::Timeout), t0),
            None
        );
        assert_eq!(outages.note(HookKind::Connect, &down, t0 + EVERY / 2), None);
        // Another hook has its own interval.
        let bad = Err(Unavailable::Status(502));
        assert_eq!(
            outages.note(HookKind::Publish, &bad, t0),
            line(Unavailable::Status(502), 0)
        );
        // Once the interval is over: a line, with what went unsaid.
        assert_eq!(
            outages.note(HookKind::Connect, &Err(Unavailable::Timeout), t0 + EVERY),
            line(Unavailable::Timeout, 2)
        );
        assert_eq!(outages.note(HookKind::Connect, &down, t0 + EVERY), None);
    }

    #[test]
    fn only_the_backend_failing_is_an_outage() {
        let outages = Outages::default();
        let now = Instant::now();
        for answer in [
            Ok(Decision::Allow(Allow::default())),
            Err(Unavailable::Status(404)),
            Err(Unavailable::Status(429)),
            Err(Unavailable::Malformed),
            Err(Unavailable::Busy),
            Err(Unavailable::ShuttingDown),
        ] {
            assert_eq!(
                outages.note(HookKind::Subscribe, &answer, now),
                None,
                "{answer:?}"
            );
        }
        assert!(
            outages
                .note(HookKind::Subscribe, &Err(Unavailable::Status(503)), now)
                .is_some()
        );
    }
}
