//! Responses: heads and bodies queued on request streams, responses
//! abandoned, GOAWAY, and the bytes to write taken per stream.
//! ([`ServerSession::finish`] stays beside the session's state, since the
//! WebTransport part ends responses with it too.)

use tether_h2::hpack::Field;

use super::{LocalStream, SendError, Sending, ServerSession, Target, Write};
use crate::frame::{self, Frame};
use crate::qpack;
use crate::settings::Settings;

impl ServerSession {
    /// Queues a response head on request stream `stream_id`: `status`,
    /// then `fields` (lowercase names, no pseudo-headers). Informational
    /// (1xx) heads may come before the final one.
    pub fn send_head(&mut self, stream_id: u64, status: u16, fields: &[Field]) -> Result<(), SendError> {
        if !(100..=599).contains(&status) {
            return Err(SendError::InvalidStatus(status));
        }
        let state = self
            .requests
            .get_mut(&stream_id)
            .ok_or(SendError::UnknownStream(stream_id))?;
        if state.sending != Sending::Nothing {
            return Err(SendError::OutOfOrder(stream_id));
        }
        let mut all = Vec::with_capacity(fields.len() + 2);
        all.push(Field::new(":status", status.to_string()));
        all.extend_from_slice(fields);
        self.webtransport_answer(stream_id, status, &mut all);
        let state = self
            .requests
            .get_mut(&stream_id)
            .ok_or(SendError::UnknownStream(stream_id))?;
        let size = qpack::field_section_size(&all);
        let limit = self
            .peer_settings
            .as_ref()
            .map_or(u64::MAX, Settings::max_field_section_size);
        if size > limit {
            return Err(SendError::HeadTooLarge(size));
        }
        if status >= 200 {
            state.sending = Sending::Head;
        }
        let mut section = Vec::new();
        qpack::encode(&all, &mut section);
        let mut bytes = Vec::new();
        Frame::Headers(section).encode(&mut bytes)?;
        self.queue(Target::Request(stream_id), &bytes, false);
        Ok(())
    }

    /// Queues a piece of the response body as one DATA frame.
    pub fn send_data(&mut self, stream_id: u64, data: &[u8]) -> Result<(), SendError> {
        let state = self
            .requests
            .get(&stream_id)
            .ok_or(SendError::UnknownStream(stream_id))?;
        if state.sending != Sending::Head {
            return Err(SendError::OutOfOrder(stream_id));
        }
        if data.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(data.len() + 9);
        frame::encode_data(data, &mut bytes)?;
        self.queue(Target::Request(stream_id), &bytes, false);
        Ok(())
    }

    /// The server resets its response on `stream_id` itself (the caller
    /// sends RESET_STREAM and STOP_SENDING with its code): the session
    /// forgets the stream. A WebTransport session's CONNECT stream ends
    /// the session (its client streams reset with WT_SESSION_GONE, no
    /// [`SessionEvent::WebTransportClosed`]); a WebTransport stream leaves
    /// its session.
    ///
    /// [`SessionEvent::WebTransportClosed`]: crate::session::SessionEvent::WebTransportClosed
    pub fn abandon(&mut self, stream_id: u64) {
        self.webtransport_abandoned(stream_id);
        if let Some(state) = self.requests.remove(&stream_id)
            && state.reading.is_some()
        {
            self.decoder.cancel_stream(stream_id);
        }
        self.writes.remove(&Target::Request(stream_id));
    }

    /// Queues GOAWAY on the control stream (RFC 9114 §5.2): requests on
    /// streams from the first one not yet seen are refused from now on;
    /// the ones already seen are served. Calling it again sends the same
    /// or a lower ID, never a higher one.
    pub fn goaway(&mut self) {
        let id = self
            .goaway
            .map_or(self.request_ids.next(), |old| old.min(self.request_ids.next()));
        self.goaway = Some(id);
        let mut bytes = Vec::new();
        if Frame::Goaway(id).encode(&mut bytes).is_ok() {
            self.queue(Target::Local(LocalStream::Control), &bytes, false);
        }
    }

    /// Whether GOAWAY was sent and every request before it is done: the
    /// connection may be closed with H3_NO_ERROR.
    pub fn is_drained(&self) -> bool {
        self.goaway.is_some() && self.requests.is_empty()
    }

    /// The bytes to write, per stream, since the last call: responses, the
    /// control stream, and the decoder stream's acknowledgments.
    pub fn take_writes(&mut self) -> Vec<Write> {
        let decoder = self.decoder.take_decoder_stream();
        if !decoder.is_empty() {
            let target = Target::Local(LocalStream::QpackDecoder);
            if !self.decoder_stream_open {
                self.decoder_stream_open = true;
                self.queue(target, &[0x03], false);
            }
            self.queue(target, &decoder, false);
        }
        std::mem::take(&mut self.writes)
            .into_iter()
            .map(|(target, (bytes, fin))| Write { target, bytes, fin })
            .collect()
    }
}
