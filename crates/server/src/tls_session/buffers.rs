//! The bytes a TLS session holds between calls, and the positions of
//! the received bytes during a read: what rustls was given and keeps,
//! and what follows it.

/// Bytes a session holds between calls, each only until used.
#[derive(Default)]
pub(super) struct Held {
    /// Received bytes not done with: first those rustls was given and
    /// keeps (the start of a handshake message whose rest has not come,
    /// which it joins in place), then records given to no one yet (the
    /// start of one whose rest has not come).
    pub(super) incoming: Vec<u8>,
    /// How many bytes at the start of `incoming` rustls was given. It
    /// refers to them by position: every call into it passes them again,
    /// first and unchanged, and passes nothing else but whole records
    /// after them (see `TlsSession::process_rustls`). So they stay after
    /// the peer's end too, for the write or the close that follows it.
    pub(super) incoming_seen: usize,
    /// Decrypted plaintext the caller's buffer had no room for, and how
    /// much of it was read since.
    pub(super) plaintext: Vec<u8>,
    pub(super) plaintext_read: usize,
    /// Encrypted bytes the socket has not taken, and how many of them it
    /// took since.
    pub(super) outgoing: Vec<u8>,
    pub(super) outgoing_sent: usize,
}

impl Held {
    pub(super) fn is_empty(&self) -> bool {
        self.incoming.is_empty() && self.plaintext.is_empty() && self.outgoing.is_empty()
    }
}

/// The session's held bytes, made when first needed.
pub(super) fn held(slot: &mut Option<Box<Held>>) -> &mut Held {
    slot.get_or_insert_with(Box::default)
}

/// Copies decrypted `plaintext` into `buf` after `filled`, and what does
/// not fit into the session's held plaintext.
pub(super) fn deliver(plaintext: &[u8], buf: &mut [u8], filled: &mut usize, slot: &mut Option<Box<Held>>) {
    let room = buf.get_mut(*filled..).unwrap_or_default();
    let now = room.len().min(plaintext.len());
    if let (Some(to), Some(from)) = (room.get_mut(..now), plaintext.get(..now)) {
        to.copy_from_slice(from);
    }
    *filled += now;
    if let Some(rest) = plaintext.get(now..).filter(|rest| !rest.is_empty()) {
        held(slot).plaintext.extend_from_slice(rest);
    }
}

/// A record's header: content type, legacy version, length.
const RECORD_HEADER: usize = 5;

/// Positions in the receive buffer during a read: `start..seen` was given
/// to rustls and is not discarded by it yet; `seen..end` are records given
/// to no one yet, whole ones and perhaps the start of one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    pub(super) start: usize,
    pub(super) seen: usize,
    pub(super) end: usize,
}

impl Window {
    /// `n` more bytes at the start are done with.
    pub(super) fn discard(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
        self.seen = self.seen.max(self.start);
    }
}

/// Received bytes outside a read (see [`Held::incoming`]): what rustls
/// was given, for the calls a write or a close makes into it.
pub(super) struct SeenInput {
    pub(super) bytes: Vec<u8>,
    pub(super) seen: usize,
}

impl SeenInput {
    /// What rustls was given, to give it again.
    pub(super) fn given(&mut self) -> &mut [u8] {
        let seen = self.seen.min(self.bytes.len());
        self.bytes.get_mut(..seen).unwrap_or_default()
    }

    /// rustls is done with `n` bytes at the start.
    pub(super) fn discard(&mut self, n: usize) {
        let n = n.min(self.seen).min(self.bytes.len());
        self.bytes.drain(..n);
        self.seen -= n;
    }
}

/// The end of the first whole record at `from` in `bytes` (with `one`),
/// or of the last of the whole records that follow each other from there;
/// `None` if no whole record starts there.
pub(super) fn whole_records(bytes: &[u8], from: usize, one: bool) -> Option<usize> {
    let mut at = from;
    let mut end = None;
    while let Some(&[_, _, _, high, low]) = bytes.get(at..at.saturating_add(RECORD_HEADER)) {
        let next = at + RECORD_HEADER + usize::from(u16::from_be_bytes([high, low]));
        if next > bytes.len() {
            break;
        }
        end = Some(next);
        at = next;
        if one {
            break;
        }
    }
    end
}
