//! Writing: plaintext sealed into records and sent, what the socket did
//! not take held until the next flush, and the closing alert.

use std::io::{self, IoSlice, Write};

use super::{Engine, JOINED, SEALED, TlsSession, WRITE_LIMIT, encode_into, encrypt, held};

impl TlsSession {
    /// Sends what the session holds encrypted: `Ok(true)` once nothing is
    /// left (and the buffer is released).
    pub(crate) fn flush<S: Write>(&mut self, socket: &mut S) -> io::Result<bool> {
        let Some(h) = self.held.as_deref_mut() else {
            return Ok(true);
        };
        while let Some(pending) = h.outgoing.get(h.outgoing_sent..).filter(|p| !p.is_empty()) {
            match socket.write(pending) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => h.outgoing_sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        h.outgoing = Vec::new();
        h.outgoing_sent = 0;
        self.release();
        Ok(true)
    }

    /// Encrypts and sends plaintext: how much of it was taken (at most
    /// [`WRITE_LIMIT`]). It takes more only once what it holds is sent,
    /// and says `WouldBlock` meanwhile (and during the handshake): the
    /// output queue above keeps the backpressure it has with plain TCP.
    pub(crate) fn write<S: Write>(&mut self, socket: &mut S, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if !self.flush(socket)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let total = bufs.iter().map(|b| b.len()).sum::<usize>().min(WRITE_LIMIT);
        if total == 0 {
            return Ok(0);
        }
        SEALED.with_borrow_mut(|sealed| {
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
            let len = match first.get(..total) {
                Some(whole) => self.seal(socket, whole, sealed)?,
                None => JOINED.with_borrow_mut(|joined| {
                    joined.clear();
                    for b in bufs {
                        let room = total - joined.len();
                        joined.extend_from_slice(b.get(..room.min(b.len())).unwrap_or_default());
                    }
                    self.seal(socket, joined, sealed)
                })?,
            };
            self.send(socket, sealed.get(..len).unwrap_or_default())?;
            Ok(total)
        })
    }

    /// Encrypts `plaintext` into `sealed`, once the session may send
    /// application data.
    /// Returns how many bytes of `sealed` it wrote; `sealed` only grows.
    fn seal<S: Write>(
        &mut self,
        socket: &mut S,
        plaintext: &[u8],
        sealed: &mut Vec<u8>,
    ) -> io::Result<usize> {
        match &mut self.engine {
            // The records are taken from rustls by the read that ends the
            // handshake; until then, and on TLS 1.2, rustls seals.
            Engine::Records(records) => {
                // Nothing goes after close_notify.
                if self.sent_close {
                    return Err(io::ErrorKind::BrokenPipe.into());
                }
                sealed.clear();
                records.seal(plaintext, sealed)?;
                Ok(sealed.len())
            }
            Engine::Rustls(_) => {
                let written = self.with_seen_input(|session, input| {
                    session.settle_rustls(socket, input, |mut traffic, _| {
                        encrypt(&mut traffic, plaintext, sealed)
                    })
                })?;
                // The handshake is not done: the bytes cannot go yet.
                written.ok_or_else(|| io::ErrorKind::WouldBlock.into())
            }
            Engine::Failed => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Sends `sealed` as far as the socket takes it, after what the
    /// session holds; the session keeps the rest.
    fn send<S: Write>(&mut self, socket: &mut S, sealed: &[u8]) -> io::Result<()> {
        if self.wants_write() {
            held(&mut self.held).outgoing.extend_from_slice(sealed);
            self.flush(socket)?;
            return Ok(());
        }
        let mut sent = 0;
        while let Some(rest) = sealed.get(sent..).filter(|r| !r.is_empty()) {
            match socket.write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(rest) = sealed.get(sent..).filter(|rest| !rest.is_empty()) {
            held(&mut self.held).outgoing.extend_from_slice(rest);
        }
        Ok(())
    }

    /// Sends `close_notify` (when the handshake is done) and what is
    /// still held, as far as the socket takes it.
    pub(crate) fn close<S: Write>(&mut self, socket: &mut S) {
        match &mut self.engine {
            Engine::Records(records) => {
                if !self.sent_close {
                    self.sent_close = true;
                    let _ = records.seal_close_notify(&mut held(&mut self.held).outgoing);
                }
            }
            Engine::Rustls(_) => {
                // What rustls still has to say first, then the alert.
                let _ = self.with_seen_input(|session, input| {
                    session.settle_rustls(socket, input, |mut traffic, held_slot| {
                        encode_into(&mut held(held_slot).outgoing, |out| {
                            traffic.queue_close_notify(out)
                        })
                    })
                });
            }
            Engine::Failed => {}
        }
        let _ = self.flush(socket);
    }
}
