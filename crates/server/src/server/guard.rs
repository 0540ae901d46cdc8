//! Containment: a fault costs one connection at most. The work a loop
//! does for one connection (its transport, its protocol session, the
//! application's callbacks for it) runs under [`catch`]; a panic there is
//! caught, logged once with its backtrace, counted in
//! `tether_panics_total{where}`, and only the connection concerned is
//! closed. The loop, and every other connection on it, goes on.
//!
//! Two layers use it. [`guarded`] wraps one application callback
//! (`where="app"`): the session answers 500 or closes with 1011 and stays
//! sound, since the panic did not unwind through it. The loop's own
//! guards wrap everything it does for one connection
//! (`super::connections::Connections::contained`, and the QUIC
//! endpoint's per connection, `super::h3`): a panic there unwound through
//! the connection's transport or session, so their state is not trusted
//! and the connection is dropped whole (`where="connection"` or
//! `where="quic"`).
//!
//! # Why the loop's tables stay consistent after an unwind
//!
//! An unwind can stop the loop's work anywhere inside a guard. What it
//! leaves behind is safe because of four rules, which every change to the
//! loop must keep:
//!
//! 1. **Whatever one connection owns is discarded whole.** After a panic
//!    in its work, the connection (its slab entry, its TLS session, its
//!    output queue, its protocol state) is removed without being used
//!    again for anything but telling the application the session ended
//!    (itself guarded); its output queue is dropped, not given back to
//!    the pool, so that a queue left half-updated never serves another.
//! 2. **Everything shared names a connection by an id that is checked.**
//!    The dirty list, the backlog, the pending actions and the fan-out
//!    targets hold [`crate::app::ConnId`]s, which carry a generation and
//!    are looked up through `super::conn::live`; a timer entry fires only
//!    if it is the slot's current one. An entry for the dropped connection
//!    that an unwind left behind addresses nobody, or (a reused slot) a
//!    later connection that then does one needless check.
//! 3. **What the loop takes out of a shared place for the duration of a
//!    call is put back whatever happens.** The read buffer is taken by
//!    `read_from` and restored before the fault is handled (an empty
//!    read buffer would read as end of stream for every later
//!    connection); a batch of actions is applied each target under its
//!    own guard, and a fan-out resumes after the target that panicked, so
//!    no other connection's message is lost; the loop's lists are taken
//!    only by code that cannot unwind (every call made for an entry is
//!    guarded).
//! 4. **Shared structures are left sound by any unwind.** The pool, the
//!    timer heap, the slab and the standard collections are only ever in
//!    a valid state between two of their own method calls; a buffer taken
//!    from the pool and lost to an unwind is simply not recycled. Gauges
//!    change beside the connection kind they mirror with nothing between
//!    them that can panic, so removing the connection keeps them right.
//!
//! The QUIC endpoint keeps the same rules in its own tables
//! (`tether_quic::QuicServer::recover`).
//!
//! # Logged once
//!
//! Rust's default panic hook prints every panic to stderr, and a guard
//! would log it again. [`install_hook`] (run when a loop starts) chains a
//! hook that, on a thread inside one of these guards, captures the
//! message, location and a backtrace instead of printing; the guard that
//! catches the panic logs it once, at error level, with where it happened
//! and which connection. Outside a guard the previous hook runs as before:
//! a loop that dies anyway says so the usual way.

use std::any::Any;
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use log::{error, warn};

use crate::app::ConnId;
use crate::loops::Stats;

thread_local! {
    /// How many guards the current thread is inside.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The connection whose work the current thread is doing, for the log.
    static SERVING: Cell<Option<ConnId>> = const { Cell::new(None) };
    /// What the hook captured of the last panic inside a guard, for the
    /// guard that catches it.
    static CAPTURED: Cell<Option<Box<Captured>>> = const { Cell::new(None) };
}

/// What the hook keeps of a panic.
struct Captured {
    message: String,
    location: String,
    backtrace: Backtrace,
}

/// A panic caught by a guard: its message, and, when the hook was
/// installed, where it happened and the backtrace.
pub(crate) struct Panic {
    message: String,
    location: Option<String>,
    backtrace: Option<Backtrace>,
}

impl Panic {
    fn new(payload: &(dyn Any + Send), captured: Option<Box<Captured>>) -> Panic {
        match captured {
            Some(captured) => Panic {
                message: captured.message,
                location: Some(captured.location),
                backtrace: Some(captured.backtrace),
            },
            None => Panic {
                message: message(payload).to_owned(),
                location: None,
                backtrace: None,
            },
        }
    }

    /// What the panic said.
    #[cfg(test)]
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(location) = &self.location {
            write!(f, " (at {location})")?;
        }
        if let Some(backtrace) = &self.backtrace {
            write!(f, "\nbacktrace:\n{backtrace}")?;
        }
        Ok(())
    }
}

/// The message a panic's payload carries.
pub(crate) fn message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

/// Installs, once per process, the hook that lets a guard log a panic
/// once (see the module's documentation); the hook found in place is
/// kept and runs for every panic outside a guard.
pub(crate) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let inside = DEPTH.try_with(Cell::get).unwrap_or(0) > 0;
            if !inside {
                return previous(info);
            }
            let captured = Captured {
                message: message(info.payload()).to_owned(),
                location: info
                    .location()
                    .map_or_else(|| "an unknown place".to_owned(), ToString::to_string),
                backtrace: Backtrace::force_capture(),
            };
            let _ = CAPTURED.try_with(|c| c.set(Some(Box::new(captured))));
        }));
    });
}

/// Runs `work`, done for connection `serving` if it is for one, and
/// catches a panic that escapes it. Costs nothing more than two
/// thread-local counters when nothing panics.
pub(crate) fn catch<R>(serving: Option<ConnId>, work: impl FnOnce() -> R) -> Result<R, Panic> {
    DEPTH.with(|d| d.set(d.get().saturating_add(1)));
    let outer = serving.map(|id| SERVING.with(|s| s.replace(Some(id))));
    let result = panic::catch_unwind(AssertUnwindSafe(work));
    if let Some(outer) = outer {
        SERVING.with(|s| s.set(outer));
    }
    DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    let captured = CAPTURED.with(Cell::take);
    match result {
        Ok(result) => {
            if let Some(captured) = captured {
                // A panic inside that code inside caught itself (an
                // application's own `catch_unwind`): the hook kept it from
                // stderr, so it is said here.
                warn!(
                    "a panic was caught by the code it happened in: {} (at {})",
                    captured.message, captured.location
                );
            }
            Ok(result)
        }
        Err(payload) => Err(Panic::new(&*payload, captured)),
    }
}

/// The connection whose work the current thread is doing, if any, for a
/// log line: `connection 12#3` (its slot and generation), or a QUIC one.
pub(crate) fn serving() -> Option<ConnId> {
    SERVING.with(Cell::get)
}

/// A connection id as the log shows it.
pub(crate) struct Named(pub(crate) ConnId);

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.0;
        if id.is_quic() {
            #[cfg(feature = "tls")]
            write!(f, "QUIC connection {}#{}", id.quic_index(), id.generation())?;
        } else {
            write!(f, "connection {}#{}", id.index(), id.generation())?;
        }
        match id.stream() {
            0 => Ok(()),
            stream => write!(f, " stream {stream}"),
        }
    }
}

/// Runs one application callback. A panic that escapes it is caught here,
/// counted (`app_panics`, `tether_panics_total{where="app"}`), logged once
/// with the callback's name, the connection and the backtrace, and `None`
/// is returned: the caller then closes only the connection concerned
/// (`500`, close code 1011) and the loop goes on.
///
/// This is defence in depth, not error handling: the application may have
/// been left half-way through what it was doing, so the cause still has to
/// be fixed. What it prevents is one bad request ending every connection
/// of the process.
pub(crate) fn guarded<R>(stats: &Stats, callback: &str, f: impl FnOnce() -> R) -> Option<R> {
    match catch(None, f) {
        Ok(result) => Some(result),
        Err(panic) => {
            Stats::add(&stats.app_panics, 1);
            match serving() {
                Some(id) => error!(
                    "the application panicked in {callback} for {} (closed with 500 or 1011): {panic}",
                    Named(id)
                ),
                None => error!("the application panicked in {callback}: {panic}"),
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    #[test]
    fn a_panic_is_caught_and_counted() {
        let stats = Stats::default();
        assert_eq!(guarded(&stats, "test", || 7), Some(7));
        let caught: Option<()> = guarded(&stats, "test", || panic!("boom"));
        assert_eq!(caught, None);
        let caught: Option<()> = guarded(&stats, "test", || panic!("{}", String::from("formatted")));
        assert_eq!(caught, None);
        assert_eq!(stats.app_panics.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn with_the_hook_a_caught_panic_carries_its_location_and_backtrace() {
        install_hook();
        let line = line!() + 1;
        let caught = catch(Some(ConnId::new(4, 9)), || -> () { panic!("on purpose") });
        let Err(panic) = caught else {
            panic!("the panic was not caught");
        };
        assert_eq!(panic.message(), "on purpose");
        let location = panic.location.as_deref().unwrap_or_default();
        assert!(location.contains(&format!("guard.rs:{line}")), "{location}");
        assert!(panic.backtrace.is_some());
        let logged = panic.to_string();
        assert!(logged.contains("backtrace:"), "{logged}");
        // Left as it was found: no guard, no connection.
        assert_eq!(DEPTH.with(Cell::get), 0);
        assert_eq!(serving(), None);
        assert!(CAPTURED.with(Cell::take).is_none());
    }

    #[test]
    fn nested_guards_each_catch_their_own_and_name_their_connection() {
        install_hook();
        let outer = catch(Some(ConnId::new(1, 1)), || {
            let inner = catch(Some(ConnId::new(2, 2)), || {
                assert_eq!(serving(), Some(ConnId::new(2, 2)));
                panic!("inner")
            });
            assert_eq!(serving(), Some(ConnId::new(1, 1)));
            let message = inner.err().map(|p| p.message().to_owned());
            assert_eq!(message.as_deref(), Some("inner"));
            panic!("outer")
        });
        assert_eq!(
            outer.err().map(|p| p.message().to_owned()).as_deref(),
            Some("outer")
        );
        assert_eq!(serving(), None);
        assert_eq!(
            Named(ConnId::new(2, 5).with_stream(3)).to_string(),
            "connection 2#5 stream 3"
        );
    }
}
