//! Tokens verified by one callback of a request and kept for the next
//! callback of the same request: the server gives an application no
//! request identity across its callbacks (a publish's head is checked in
//! `refuse_before_body`, its body answered in `on_request`; a stream is
//! routed in `route`, started in `on_subscribe`), so the verification is
//! carried by the token's own bytes.
//!
//! Bounded: a few entries, each taken by the first later verification of
//! the same bytes (a hit is not kept), the oldest replaced when full. A
//! hostile client can only push entries out, which costs a verification,
//! never a wrong answer: an entry is the result of verifying exactly
//! these bytes with exactly the keys in force, and it is not used once
//! the keys change or the token expires. Revocation is the caller's to
//! check at every use, as for a token verified afresh.

use std::sync::{Arc, Mutex};

use tether_auth::{Identity, Keys};

/// How many verified tokens one loop keeps for the next callback of
/// their request. A request's callbacks follow each other within a turn
/// or two of the loop, so a handful covers the requests in between.
const KEPT: usize = 8;

/// One token as it was verified.
struct Kept {
    token: Box<str>,
    /// The keys it verified with: another set (rotated) verifies it
    /// afresh.
    keys: Arc<Keys>,
    who: Identity,
}

/// Verified tokens kept for the next callback of their request (one
/// loop's: a clone starts empty).
#[derive(Default)]
pub(super) struct VerifiedTokens {
    kept: Mutex<Ring>,
}

#[derive(Default)]
struct Ring {
    entries: [Option<Kept>; KEPT],
    /// Where the next entry goes.
    next: usize,
}

impl Clone for VerifiedTokens {
    fn clone(&self) -> VerifiedTokens {
        VerifiedTokens::default()
    }
}

impl std::fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ring = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let kept = ring.entries.iter().filter(|e| e.is_some()).count();
        f.debug_struct("VerifiedTokens").field("kept", &kept).finish()
    }
}

impl VerifiedTokens {
    /// Keeps `who`, what `token` verified to with `keys`, for the next
    /// callback of its request.
    pub(super) fn keep(&self, token: &str, keys: Arc<Keys>, who: Identity) {
        let mut ring = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let next = ring.next;
        if let Some(slot) = ring.entries.get_mut(next) {
            *slot = Some(Kept {
                token: token.into(),
                keys,
                who,
            });
        }
        ring.next = (next + 1) % KEPT;
    }

    /// What `token` verified to with `keys`, if it was kept and has not
    /// expired (`expired` says, of its `exp`): taken, so that it serves
    /// one later callback only.
    pub(super) fn take(
        &self,
        token: &str,
        keys: &Arc<Keys>,
        expired: impl Fn(u64) -> bool,
    ) -> Option<Identity> {
        let mut ring = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let slot = ring
            .entries
            .iter_mut()
            .find(|e| e.as_ref().is_some_and(|kept| &*kept.token == token))?;
        let kept = slot.take()?;
        let good = Arc::ptr_eq(&kept.keys, keys) && !kept.who.expires_at.is_some_and(expired);
        good.then_some(kept.who)
    }

    /// Forgets every token kept (the keys or the settings changed).
    pub(super) fn clear(&self) {
        let mut ring = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        *ring = Ring::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Arc<Keys> {
        Arc::new(Keys::from_secret(&[b'k'; 40]).unwrap())
    }

    fn who(exp: Option<u64>) -> Identity {
        Identity::new(Some("alice".into()), tether_auth::Rights::default(), exp)
    }

    #[test]
    fn a_kept_token_serves_one_later_callback() {
        let (kept, keys) = (VerifiedTokens::default(), keys());
        kept.keep("a.b.c", Arc::clone(&keys), who(None));
        assert_eq!(kept.take("a.b.x", &keys, |_| false), None);
        assert_eq!(kept.take("a.b.c", &keys, |_| false), Some(who(None)));
        assert_eq!(kept.take("a.b.c", &keys, |_| false), None, "taken");
    }

    #[test]
    fn an_expired_token_or_other_keys_verify_afresh() {
        let (kept, keys) = (VerifiedTokens::default(), keys());
        kept.keep("a.b.c", Arc::clone(&keys), who(Some(100)));
        assert_eq!(kept.take("a.b.c", &keys, |exp| exp <= 100), None);
        kept.keep("a.b.c", Arc::clone(&keys), who(None));
        let rotated = Arc::new(Keys::from_secret(&[b'k'; 40]).unwrap());
        assert_eq!(kept.take("a.b.c", &rotated, |_| false), None);
        kept.keep("a.b.c", Arc::clone(&keys), who(None));
        kept.clear();
        assert_eq!(kept.take("a.b.c", &keys, |_| false), None);
        assert!(kept.clone().take("a.b.c", &keys, |_| false).is_none());
    }

    #[test]
    fn hostile_tokens_push_out_the_oldest_and_never_grow_it() {
        let (kept, keys) = (VerifiedTokens::default(), keys());
        kept.keep("first", Arc::clone(&keys), who(None));
        for i in 0..10 * KEPT {
            kept.keep(&format!("t{i}"), Arc::clone(&keys), who(None));
        }
        assert_eq!(kept.take("first", &keys, |_| false), None);
        let ring = kept.kept.lock().unwrap();
        assert_eq!(ring.entries.len(), KEPT);
    }
}
