//! The application boundary: a panic that escapes an application callback
//! must not take the loop, and every other connection on it, down with it.

use std::panic::{self, AssertUnwindSafe};

use log::error;

use crate::loops::Stats;

/// Runs one application callback. A panic that escapes it is caught here,
/// counted (`app_panics`), logged once with the callback's name, and
/// `None` is returned: the caller then closes only the connection
/// concerned (`500`, close code 1011) and the loop goes on.
///
/// This is defence in depth, not error handling: the application may have
/// been left half-way through what it was doing, so the cause still has to
/// be fixed. What it prevents is one bad request ending every connection
/// of the process.
pub(crate) fn guarded<R>(stats: &Stats, callback: &str, f: impl FnOnce() -> R) -> Option<R> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => Some(result),
        Err(payload) => {
            Stats::add(&stats.app_panics, 1);
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("a panic without a message");
            error!("the application panicked in {callback} (its connection is closed): {message}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_caught_and_counted() {
        let stats = Stats::default();
        assert_eq!(guarded(&stats, "test", || 7), Some(7));
        let caught: Option<()> = guarded(&stats, "test", || panic!("boom"));
        assert_eq!(caught, None);
        let caught: Option<()> = guarded(&stats, "test", || panic!("{}", String::from("formatted")));
        assert_eq!(caught, None);
        assert_eq!(stats.app_panics.load(std::sync::atomic::Ordering::Relaxed), 2);
    }
}
