//! The loop's QUIC endpoint (HTTP/3) as its connections see it: bound,
//! handed the socket's readiness and the datagrams other loops forward,
//! given its turn at the end of each loop turn and its deadline, closed as
//! the loop exits; after the work that runs the application's callbacks,
//! the actions they asked are applied.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use mio::Token;

use super::Connections;
use crate::app::App;
use crate::server::h3::H3Endpoint;

impl<A: App> Connections<A> {
    /// Serves the loop's QUIC endpoint (HTTP/3) on its handle of the
    /// server's UDP socket (`shared` with the other loops, or its own),
    /// registered under `token`; its address.
    pub(in crate::server) fn bind_quic(
        &mut self,
        tls: &rustls::ServerConfig,
        socket: std::net::UdpSocket,
        shared: bool,
        token: Token,
    ) -> io::Result<SocketAddr> {
        let endpoint = H3Endpoint::bind(&self.env, tls, socket, shared, &self.registry, token)?;
        let addr = endpoint.local_addr()?;
        self.quic = Some(Box::new(endpoint));
        Ok(addr)
    }

    /// The QUIC socket is readable (and, with `writable`, takes datagrams
    /// again).
    pub(in crate::server) fn quic_ready(&mut self, readable: bool, writable: bool, now: Instant) {
        let Some(quic) = self.quic.as_deref_mut() else {
            return;
        };
        if writable {
            quic.writable(&mut self.app, &mut self.env, &self.registry, now);
        }
        if readable {
            quic.readable(&mut self.app, &mut self.env, now);
            self.apply_actions(now);
        }
    }

    /// A QUIC datagram another loop received for a connection of this
    /// one (or, on a shared socket, one this loop is to hold).
    pub(in crate::server) fn quic_forwarded(
        &mut self,
        from: SocketAddr,
        to: Option<IpAddr>,
        datagram: &[u8],
        now: Instant,
    ) {
        let Some(quic) = self.quic.as_deref_mut() else {
            return;
        };
        quic.forwarded(&mut self.app, &mut self.env, from, to, datagram, now);
        self.apply_actions(now);
    }

    /// The end of a loop turn for the QUIC endpoint: its timers, and what
    /// it has to send.
    pub(in crate::server) fn quic_turn(&mut self, now: Instant) {
        let Some(quic) = self.quic.as_deref_mut() else {
            return;
        };
        quic.turn(&mut self.app, &mut self.env, &self.registry, now);
        self.apply_actions(now);
        if let Some(quic) = self.quic.as_deref_mut() {
            // What the actions queued goes out this turn too.
            quic.writable(&mut self.app, &mut self.env, &self.registry, now);
        }
    }

    /// The loop is exiting: QUIC connections are closed, so that their
    /// clients learn it now rather than at their idle timeout.
    pub(in crate::server) fn quic_close(&mut self, now: Instant) {
        if let Some(quic) = self.quic.as_deref_mut() {
            quic.close_all(&mut self.app, &mut self.env, &self.registry, now);
        }
    }

    /// When the QUIC endpoint next has something to do (now, if it left
    /// datagrams unread).
    pub(in crate::server) fn quic_deadline(&mut self, now: Instant) -> Option<Instant> {
        let quic = self.quic.as_deref_mut()?;
        if quic.busy() {
            return Some(now);
        }
        quic.next_deadline()
    }
}
