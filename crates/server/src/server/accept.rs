//! The loop's listeners and what it does when descriptors run short.
//!
//! When the process runs out of descriptors (`EMFILE`, `ENFILE`, or the
//! kernel out of memory for a socket: `ENOBUFS`, `ENOMEM`), the clients in
//! the listen queue are not lost but not served either, and no new
//! readiness event comes for them. The policy:
//!
//! - `accept` is retried every [`ACCEPT_RETRY`] (100 ms, in the loop's
//!   poll timeout), and at once when a connection of this loop closes, so
//!   queued clients are served as soon as descriptors are freed: a short
//!   shortage only delays them.
//! - Once descriptors have been short continuously for longer than
//!   [`crate::Config::accept_patience`] (1 s), queued clients are shed: the
//!   loop closes its reserve descriptor, accepts one client into it,
//!   answers `503` with `Retry-After`, closes it and reopens the reserve
//!   (the trick of libuv and nginx), until the queue is empty. Later
//!   clients are shed at once, for as long as the shortage lasts, so that
//!   nobody hangs on a server that cannot take them. Shed clients count in
//!   `refused_busy`.
//! - The shortage is logged once when it starts and once when it ends (the
//!   first accept that succeeds), never per attempt.
//!
//! Calling contract: the loop asks [`Listeners::accept`] for the next
//! client of a listener until it says there is none, and calls it again
//! for every listener once [`Listeners::retry_at`] has passed.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::Poll;
use mio::net::{TcpListener, TcpStream};

use super::listen::{open_reserve, out_of_descriptors, refuse_busy};
use crate::loops::Stats;

/// How soon `accept` is tried again after the process ran out of
/// descriptors: readiness is edge-triggered, so without a timer the
/// clients already queued would wait for the next one to connect.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The listener a connection came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Entry {
    /// `Config::addr`: TLS if the configuration has TLS and no listener of
    /// its own for it, else plain TCP.
    Main,
    /// `Config::tls_addr`: TLS.
    Tls,
    /// `Config::admin_addr`: plain TCP, on the first loop.
    Admin,
}

/// The listeners of one loop, while they are open.
pub(super) struct Listeners {
    pub(super) main: Option<TcpListener>,
    pub(super) tls: Option<TcpListener>,
    pub(super) admin: Option<TcpListener>,
    /// The main listener speaks TLS.
    pub(super) main_is_tls: bool,
    /// A descriptor held back (an open `/dev/null`) so that a client can
    /// still be told 503 when the process has no other.
    reserve: Option<std::fs::File>,
    /// Out of descriptors since then, as far as `accept` knows.
    exhausted_since: Option<Instant>,
    /// When to try `accept` again, while clients may be queued that could
    /// not be accepted.
    pub(super) retry_at: Option<Instant>,
}

impl Listeners {
    pub(super) fn new(
        main: TcpListener,
        tls: Option<TcpListener>,
        admin: Option<TcpListener>,
        main_is_tls: bool,
    ) -> Listeners {
        Listeners {
            main: Some(main),
            tls,
            admin,
            main_is_tls,
            reserve: open_reserve(),
            exhausted_since: None,
            retry_at: None,
        }
    }

    /// The listener of `entry`, while it is open.
    fn listener(&self, entry: Entry) -> Option<&TcpListener> {
        match entry {
            Entry::Main => self.main.as_ref(),
            Entry::Tls => self.tls.as_ref(),
            Entry::Admin => self.admin.as_ref(),
        }
    }

    /// Whether connections through `entry` speak TLS.
    pub(super) fn serves_tls(&self, entry: Entry) -> bool {
        match entry {
            Entry::Tls => true,
            Entry::Admin => false,
            Entry::Main => self.main_is_tls,
        }
    }

    /// Closes every listener (a graceful shutdown takes no new client).
    pub(super) fn close(&mut self, poll: &Poll) {
        for mut listener in [self.main.take(), self.tls.take(), self.admin.take()]
            .into_iter()
            .flatten()
        {
            let _ = poll.registry().deregister(&mut listener);
        }
    }

    /// A connection was dropped and its descriptor freed: a client queued
    /// for lack of one can be accepted now rather than at the next retry.
    pub(super) fn descriptor_freed(&mut self, now: Instant) {
        if self.retry_at.is_some() {
            self.retry_at = Some(now);
        }
    }

    /// The next client queued on `entry`'s listener, if there is one that
    /// can be accepted now (see the module's docs for what happens when
    /// descriptors run short).
    pub(super) fn accept(
        &mut self,
        entry: Entry,
        now: Instant,
        patience: Duration,
        stats: &Stats,
    ) -> Option<(TcpStream, SocketAddr)> {
        loop {
            let accepted = match self.listener(entry)?.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A client that reset before it was accepted: the next one
                // may be fine.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    continue;
                }
                Err(e) if out_of_descriptors(&e) => {
                    self.short_of_descriptors(now, &e, entry, patience, stats);
                    return None;
                }
                Err(e) => {
                    warn!("accept failed: {e}");
                    self.retry_at = Some(now + ACCEPT_RETRY);
                    return None;
                }
            };
            if let Some(since) = self.exhausted_since.take() {
                info!(
                    "descriptors available again after {:.1} s; accepting",
                    now.saturating_duration_since(since).as_secs_f64()
                );
            }
            if self.reserve.is_none() {
                self.reserve = open_reserve();
            }
            return Some(accepted);
        }
    }

    /// `accept` failed for lack of descriptors: retry soon, and shed the
    /// queue once the shortage has lasted beyond the patience.
    fn short_of_descriptors(
        &mut self,
        now: Instant,
        error: &io::Error,
        entry: Entry,
        patience: Duration,
        stats: &Stats,
    ) {
        let since = *self.exhausted_since.get_or_insert_with(|| {
            warn!(
                "out of descriptors ({error}): queued clients wait, and get 503 if this lasts {:.1} s",
                patience.as_secs_f64()
            );
            now
        });
        self.retry_at = Some(now + ACCEPT_RETRY);
        if now.saturating_duration_since(since) >= patience {
            self.shed(now, entry, stats);
        }
    }

    /// Answers queued clients 503 through the reserve descriptor until the
    /// queue is empty (or the reserve cannot be had back).
    fn shed(&mut self, now: Instant, entry: Entry, stats: &Stats) {
        loop {
            if self.listener(entry).is_none() {
                return;
            }
            // Closing the reserve frees the one descriptor the accept below
            // needs.
            if self.reserve.take().is_none() {
                self.reserve = open_reserve();
                if self.reserve.is_none() {
                    // Another loop of the process may have taken it: the
                    // retry timer comes back.
                    return;
                }
                continue;
            }
            let Some(accepted) = self.listener(entry).map(TcpListener::accept) else {
                return;
            };
            self.reserve = open_reserve();
            match accepted {
                Ok((socket, peer)) => {
                    debug!("{peer}: out of descriptors, 503");
                    Stats::add(&stats.refused_busy, 1);
                    refuse_busy(socket, self.serves_tls(entry));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.retry_at = None;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                    ) => {}
                // ENFILE (the system's table is full) and the like: freeing
                // our one descriptor did not help; the retry timer comes
                // back.
                Err(_) => {
                    self.retry_at = Some(now + ACCEPT_RETRY);
                    return;
                }
            }
        }
    }
}
