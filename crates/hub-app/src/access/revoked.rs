//! Revoked tokens: by their id (`jti`), or every token of a subject
//! issued before a time (`iat`). Each entry is kept until a time of its
//! own (after which the tokens it names have expired anyway), and the list
//! is bounded. Sans-IO: the caller gives the time.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tether_hub::json_string;

/// How long an entry is kept when the request does not say: a day.
pub const DEFAULT_REVOCATION_TTL: Duration = Duration::from_secs(24 * 3600);

/// The most entries the list holds; past it, a revocation is refused
/// until entries expire.
pub const MAX_REVOCATIONS: usize = 100_000;

/// What is revoked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Revoked {
    /// The token whose `jti` is this.
    Token(String),
    /// Every token of `subject` (its `sub`) issued before `before` (its
    /// `iat`, Unix seconds); a token of the subject without `iat` too.
    Subject {
        /// The subject.
        subject: String,
        /// Unix seconds.
        before: u64,
    },
}

/// One entry of the list: what is revoked, and until when (Unix seconds)
/// it is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// What is revoked.
    pub what: Revoked,
    /// Unix seconds; the entry is forgotten from then on.
    pub until: u64,
}

impl Revocation {
    /// What it revokes as text, for sharing between nodes: `jti:ID` or
    /// `sub:BEFORE:SUBJECT`.
    pub fn entry(&self) -> String {
        match &self.what {
            Revoked::Token(id) => format!("jti:{id}"),
            Revoked::Subject { subject, before } => format!("sub:{before}:{subject}"),
        }
    }

    /// The revocation an [`Revocation::entry`] names, kept until `until`
    /// (Unix seconds); `None` for text that is not one.
    pub fn from_entry(entry: &str, until: u64) -> Option<Revocation> {
        let what = match entry.split_once(':')? {
            ("jti", id) if !id.is_empty() => Revoked::Token(id.to_owned()),
            ("sub", rest) => {
                let (before, subject) = rest.split_once(':')?;
                if subject.is_empty() {
                    return None;
                }
                Revoked::Subject {
                    subject: subject.to_owned(),
                    before: before.parse().ok()?,
                }
            }
            _ => return None,
        };
        Some(Revocation { what, until })
    }
}

/// The list is full: [`MAX_REVOCATIONS`] entries that have not expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListFull;

/// The entries, by token id and by subject.
#[derive(Debug, Default)]
pub(super) struct RevocationList {
    /// `jti` → until.
    tokens: HashMap<String, u64>,
    /// `sub` → (before, until).
    subjects: HashMap<String, (u64, u64)>,
}

impl RevocationList {
    pub(super) fn len(&self) -> usize {
        self.tokens.len() + self.subjects.len()
    }

    /// Adds `revocation` at `now` (Unix seconds): an entry that names what
    /// another names already widens it (the later `before`, the later
    /// `until`). One that has expired already changes nothing. Whether it
    /// changed the list.
    pub(crate) fn add(&mut self, revocation: &Revocation, now: u64) -> Result<bool, ListFull> {
        if revocation.until <= now {
            return Ok(false);
        }
        let known = match &revocation.what {
            Revoked::Token(id) => self.tokens.contains_key(id),
            Revoked::Subject { subject, .. } => self.subjects.contains_key(subject),
        };
        if !known && self.len() >= MAX_REVOCATIONS {
            self.prune(now);
            if self.len() >= MAX_REVOCATIONS {
                return Err(ListFull);
            }
        }
        Ok(match &revocation.what {
            Revoked::Token(id) => {
                let until = self.tokens.entry(id.clone()).or_insert(0);
                let changed = *until < revocation.until;
                *until = (*until).max(revocation.until);
                changed
            }
            Revoked::Subject { subject, before } => {
                let (old_before, old_until) = self.subjects.entry(subject.clone()).or_insert((0, 0));
                let changed = *old_before < *before || *old_until < revocation.until;
                *old_before = (*old_before).max(*before);
                *old_until = (*old_until).max(revocation.until);
                changed
            }
        })
    }

    /// Whether a token with this id, subject and `iat` is revoked at
    /// `now` (Unix seconds).
    pub(crate) fn is_revoked(
        &self,
        token_id: Option<&str>,
        subject: Option<&str>,
        issued_at: Option<u64>,
        now: u64,
    ) -> bool {
        let by_id = token_id
            .and_then(|id| self.tokens.get(id))
            .is_some_and(|&until| until > now);
        by_id
            || subject
                .and_then(|s| self.subjects.get(s))
                .is_some_and(|&(before, until)| until > now && issued_at.is_none_or(|iat| iat < before))
    }

    /// Forgets the entries that have expired by `now`.
    pub(super) fn prune(&mut self, now: u64) {
        self.tokens.retain(|_, until| *until > now);
        self.subjects.retain(|_, (_, until)| *until > now);
    }

    /// Every entry not expired by `now`.
    pub(crate) fn entries(&self, now: u64) -> Vec<Revocation> {
        let tokens = self
            .tokens
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(id, until)| Revocation {
                what: Revoked::Token(id.clone()),
                until: *until,
            });
        let subjects =
            self.subjects
                .iter()
                .filter(|(_, (_, until))| *until > now)
                .map(|(subject, (before, until))| Revocation {
                    what: Revoked::Subject {
                        subject: subject.clone(),
                        before: *before,
                    },
                    until: *until,
                });
        tokens.chain(subjects).collect()
    }
}

/// The list shared by every loop, and how many times it changed: a loop
/// that sees a new generation looks for its connections it now revokes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Revocations {
    list: Arc<RwLock<RevocationList>>,
    generation: Arc<AtomicU64>,
    /// Entries held: with none, nothing is read under the lock.
    held: Arc<AtomicUsize>,
}

impl Revocations {
    /// Adds the entries (see [`RevocationList::add`]); the generation
    /// moves if one changed the list.
    pub(crate) fn add(&self, revocations: &[Revocation], now: u64) -> Result<(), ListFull> {
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        let mut changed = false;
        let mut full = Ok(());
        for revocation in revocations {
            match list.add(revocation, now) {
                Ok(added) => changed |= added,
                Err(e) => full = Err(e),
            }
        }
        self.held.store(list.len(), Ordering::Release);
        if changed {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        full
    }

    /// Whether a token with this id, subject and `iat` is revoked at `now`.
    pub(crate) fn is_revoked(
        &self,
        token_id: Option<&str>,
        subject: Option<&str>,
        issued_at: Option<u64>,
        now: u64,
    ) -> bool {
        if self.held.load(Ordering::Acquire) == 0 || (token_id.is_none() && subject.is_none()) {
            return false;
        }
        self.list
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_revoked(token_id, subject, issued_at, now)
    }

    /// How many times the list changed.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Every entry not expired by `now`, the expired ones forgotten.
    pub(crate) fn entries(&self, now: u64) -> Vec<Revocation> {
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        list.prune(now);
        self.held.store(list.len(), Ordering::Release);
        list.entries(now)
    }
}

/// `{"revoked":[{"jti":"..","until":T}|{"subject":"..","before":T,"until":T},...]}`.
pub(crate) fn entries_json(entries: &[Revocation]) -> String {
    let mut out = String::from("{\"revoked\":[");
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match &entry.what {
            Revoked::Token(id) => {
                let _ = write!(out, "{{\"jti\":{},\"until\":{}}}", json_string(id), entry.until);
            }
            Revoked::Subject { subject, before } => {
                let _ = write!(
                    out,
                    "{{\"subject\":{},\"before\":{before},\"until\":{}}}",
                    json_string(subject),
                    entry.until
                );
            }
        }
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: &str, until: u64) -> Revocation {
        Revocation {
            what: Revoked::Token(id.to_owned()),
            until,
        }
    }

    fn subject(name: &str, before: u64, until: u64) -> Revocation {
        Revocation {
            what: Revoked::Subject {
                subject: name.to_owned(),
                before,
            },
            until,
        }
    }

    #[test]
    fn a_token_is_revoked_by_its_id_until_the_entry_expires() {
        let mut list = RevocationList::default();
        assert_eq!(list.add(&token("t1", 200), 100), Ok(true));
        assert!(list.is_revoked(Some("t1"), Some("alice"), Some(50), 150));
        assert!(!list.is_revoked(Some("t2"), Some("alice"), Some(50), 150));
        assert!(!list.is_revoked(None, Some("alice"), None, 150));
        // Expired: forgotten.
        assert!(!list.is_revoked(Some("t1"), None, None, 200));
        list.prune(200);
        assert_eq!(list.len(), 0);
        // One expired already is not added.
        assert_eq!(list.add(&token("t3", 100), 100), Ok(false));
        assert_eq!(list.len(), 0);
    }

    #[test]
    fn a_subjects_tokens_issued_before_a_time_are_revoked() {
        let mut list = RevocationList::default();
        assert_eq!(list.add(&subject("alice", 1_000, 5_000), 900), Ok(true));
        assert!(list.is_revoked(None, Some("alice"), Some(999), 1_100));
        // Issued at or after `before`: good; another subject: good.
        assert!(!list.is_revoked(None, Some("alice"), Some(1_000), 1_100));
        assert!(!list.is_revoked(Some("x"), Some("bob"), Some(10), 1_100));
        // Without `iat`, it cannot be told apart from an old one.
        assert!(list.is_revoked(None, Some("alice"), None, 1_100));
        // A second entry widens the first; an older one changes nothing.
        assert_eq!(list.add(&subject("alice", 2_000, 3_000), 900), Ok(true));
        assert!(list.is_revoked(None, Some("alice"), Some(1_500), 1_100));
        assert_eq!(list.add(&subject("alice", 10, 20), 0), Ok(false));
        assert_eq!(list.entries(1_100), [subject("alice", 2_000, 5_000)]);
    }

    #[test]
    fn the_list_is_bounded_and_makes_room_from_expired_entries() {
        let mut list = RevocationList::default();
        for n in 0..MAX_REVOCATIONS {
            let until = if n % 2 == 0 { 200 } else { 1_000 };
            assert_eq!(list.add(&token(&n.to_string(), until), 100), Ok(true));
        }
        // Full of live entries: refused; one it has already: taken.
        assert_eq!(list.add(&subject("alice", 100, 1_000), 150), Err(ListFull));
        assert_eq!(list.add(&token("1", 2_000), 150), Ok(true));
        // Later, half of them expired: room again.
        assert_eq!(list.add(&subject("alice", 100, 1_000), 300), Ok(true));
        assert_eq!(list.len(), MAX_REVOCATIONS / 2 + 1);
    }

    #[test]
    fn the_shared_list_moves_its_generation_only_on_change() {
        let revocations = Revocations::default();
        assert!(!revocations.is_revoked(Some("t"), None, None, 0));
        revocations.add(&[token("t", 100)], 0).unwrap();
        assert_eq!(revocations.generation(), 1);
        revocations.add(&[token("t", 100)], 0).unwrap();
        assert_eq!(revocations.generation(), 1);
        assert!(revocations.is_revoked(Some("t"), None, None, 50));
        assert_eq!(revocations.entries(100), []);
        assert!(!revocations.is_revoked(Some("t"), None, None, 50));
    }

    #[test]
    fn entries_round_trip_as_text() {
        for revocation in [token("a:b", 9), subject("al:ice", 5, 7)] {
            let entry = revocation.entry();
            assert_eq!(Revocation::from_entry(&entry, revocation.until), Some(revocation));
        }
        for bad in ["", "jti:", "sub:x:al", "sub:5:", "sub:5", "other:1"] {
            assert_eq!(Revocation::from_entry(bad, 1), None, "{bad}");
        }
    }

    #[test]
    fn entries_are_listed_as_json() {
        let json = entries_json(&[token("a\"b", 9), subject("al", 5, 7)]);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"revoked": [
                {"jti": "a\"b", "until": 9},
                {"subject": "al", "before": 5, "until": 7}
            ]})
        );
    }
}
