//! Arbitrary statuses and bodies as a hook backend's answer to each kind
//! of hook: a decision or Unavailable, never a panic; an allow only from a
//! 200, a deny's status always 400..=499 and its reason within the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_hooks::{Decision, HookKind, MAX_REASON_LEN, MAX_SUBJECT_LEN, parse_answer};

fuzz_target!(|data: &[u8]| {
    let Some((&[kind, high, low], body)) = data.split_first_chunk::<3>() else {
        return;
    };
    let kind = HookKind::ALL[usize::from(kind) % HookKind::ALL.len()];
    // Mostly 200, so the JSON paths are reached.
    let status = if high & 0x80 == 0 {
        200
    } else {
        u16::from_be_bytes([high & 0x7f, low])
    };
    match parse_answer(kind, status, body) {
        Ok(Decision::Allow(allow)) => {
            assert_eq!(status, 200);
            if kind == HookKind::Connect {
                let subject = allow.subject.expect("a connect allow has a subject");
                assert!(!subject.is_empty() && subject.len() <= MAX_SUBJECT_LEN);
            }
            if kind == HookKind::Refresh {
                assert!(allow.exp.is_some());
            }
        }
        Ok(Decision::Deny(deny)) => {
            assert_eq!(status, 200);
            assert!((400..=499).contains(&deny.status));
            assert!(deny.reason.len() <= MAX_REASON_LEN);
        }
        Err(_) => {}
    }
});
