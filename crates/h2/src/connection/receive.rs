//! Receiving, the server's part: the hooks the shared endpoint calls as
//! frames arrive ([`Side`]), and request header blocks, trailers and
//! bodies checked as they come.

use std::collections::HashMap;

use crate::error::ErrorCode;
use crate::frame::Data;

use super::endpoint::{self, Endpoint, Side};
use super::request;
use super::shared::{Block, StreamFlow};
use super::{Body, ConnectionError, Event, ServerConnection, Stream};

/// How many streams reset by us are remembered, so that frames the client
/// sent before it saw the RST_STREAM are ignored instead of being errors.
const RECENTLY_RESET: usize = 128;

/// How many streams that closed otherwise (both sides ended, or the client
/// reset them) are remembered, so that a HEADERS on one is the closed
/// state's STREAM_CLOSED (§5.1) rather than §5.1.1's PROTOCOL_ERROR for a
/// stream identifier that was never used.
const RECENTLY_CLOSED: usize = 128;

impl Side for ServerConnection {
    type Event = Event;
    type Extra = Body;

    fn parts(&mut self) -> (&mut Endpoint, &mut HashMap<u32, Stream>) {
        (&mut self.ep, &mut self.streams)
    }

    fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    fn on_data(&mut self, d: &Data<'_>, len: i64, out: &mut Vec<u8>, events: &mut Vec<Event>) {
        self.on_body(d, len, out, events);
    }

    fn on_block(&mut self, b: Block<'_>, out: &mut Vec<u8>, events: &mut Vec<Event>) {
        self.on_request_block(b.stream, b.end_stream, b.self_dependent, &b.bytes, out, events);
    }

    /// Client-initiated streams are odd; even ones would be ours, and we
    /// open none.
    fn is_idle(&self, stream: u32) -> bool {
        stream.is_multiple_of(2) || stream > self.last_stream
    }

    fn headers_allowed(&self, stream: u32) -> bool {
        stream % 2 == 1
    }

    fn after_goaway(&mut self, _: u32, _: &mut Vec<Event>) {}

    fn settings_applied(&mut self, _: &mut Vec<Event>) {}

    /// A stream ended both ways gives one unit back to the reset budget.
    fn stream_finished(&mut self) {
        self.reset_budget = (self.reset_budget + 1).min(self.config.max_resets);
    }

    /// Remembered so that frames the client sent before it saw the
    /// RST_STREAM are ignored instead of being errors.
    fn remember_closed(&mut self, stream: u32) {
        if self.recently_closed.len() == RECENTLY_CLOSED {
            self.recently_closed.pop_front();
        }
        self.recently_closed.push_back(stream);
    }

    fn remember_reset(&mut self, stream: u32) {
        if self.recently_reset.len() == RECENTLY_RESET {
            self.recently_reset.pop_front();
        }
        self.recently_reset.push_back(stream);
    }

    /// Every stream the client resets, or we reset because of it, costs
    /// one unit of the rapid-reset budget.
    fn charge_reset(&mut self, out: &mut Vec<u8>, events: &mut Vec<Event>) {
        self.reset_budget = self.reset_budget.saturating_sub(1);
        if self.reset_budget == 0 {
            endpoint::fail(self, ConnectionError::TooManyResets, out, events);
        }
    }

    fn goaway_last_stream(&self) -> u32 {
        self.last_stream
    }

    fn connection_error(error: ConnectionError) -> Event {
        Event::ConnectionError(error)
    }

    fn window_opened(stream: u32) -> Event {
        Event::WindowOpened { stream }
    }

    fn settings_acked() -> Event {
        Event::SettingsAcked
    }

    fn ping_acked(data: [u8; 8]) -> Event {
        Event::PingAck { data }
    }

    fn goaway(last_stream_id: u32, code: ErrorCode, debug_data: Vec<u8>) -> Event {
        Event::GoAway {
            last_stream_id,
            code,
            debug_data,
        }
    }

    fn reset_event(stream: u32, code: ErrorCode, by_peer: bool) -> Event {
        Event::Reset {
            stream,
            code,
            by_peer,
        }
    }

    fn data_event(stream: u32, data: Vec<u8>, end_stream: bool) -> Event {
        Event::Data {
            stream,
            data,
            end_stream,
        }
    }
}

impl ServerConnection {
    fn on_body(&mut self, d: &Data<'_>, len: i64, out: &mut Vec<u8>, events: &mut Vec<Event>) {
        let stream = d.stream_id;
        let state = self
            .streams
            .get(&stream)
            .map(|s| (s.remote_open, s.flow.recv_window));
        match state {
            None => {
                self.ep.flow.give_back(len, out);
                if !self.recently_reset.contains(&stream) {
                    self.reset_for_fault(stream, ErrorCode::STREAM_CLOSED, out, events);
                }
            }
            Some((false, _)) => {
                self.ep.flow.give_back(len, out);
                self.reset_for_fault(stream, ErrorCode::STREAM_CLOSED, out, events);
            }
            Some((true, window)) if len > window => {
                self.ep.flow.give_back(len, out);
                self.reset_for_fault(stream, ErrorCode::FLOW_CONTROL_ERROR, out, events);
            }
            Some(_) if !self.body_length_ok(stream, d) => {
                // §8.1.1: a body that does not match content-length.
                self.ep.flow.give_back(len, out);
                self.reset_for_fault(stream, ErrorCode::PROTOCOL_ERROR, out, events);
            }
            Some(_) => endpoint::deliver(self, d, len, out, events),
        }
    }

    /// Counts DATA against the request's content-length: false if the body
    /// goes past it, or ends short of it.
    fn body_length_ok(&mut self, stream: u32, d: &Data<'_>) -> bool {
        let Some(s) = self.streams.get_mut(&stream) else {
            return true;
        };
        s.extra.received = s.extra.received.saturating_add(d.data.len() as u64);
        match s.extra.content_length {
            Some(n) => s.extra.received <= n && (!d.end_stream || s.extra.received == n),
            None => true,
        }
    }

    fn on_request_block(
        &mut self,
        stream: u32,
        end_stream: bool,
        self_dependent: bool,
        block: &[u8],
        out: &mut Vec<u8>,
        events: &mut Vec<Event>,
    ) {
        let Some(fields) = endpoint::decode_block(self, block, out, events) else {
            return;
        };
        if let Some(s) = self.streams.get_mut(&stream) {
            // Trailers.
            let code = if !s.remote_open {
                Some(ErrorCode::STREAM_CLOSED)
            } else if !end_stream
                || self_dependent
                || request::check_trailers(&fields).is_err()
                || s.extra.content_length.is_some_and(|n| n != s.extra.received)
            {
                Some(ErrorCode::PROTOCOL_ERROR)
            } else {
                None
            };
            match code {
                Some(code) => self.reset_for_fault(stream, code, out, events),
                None => {
                    s.remote_open = false;
                    events.push(Event::Trailers { stream, fields });
                    self.maybe_remove(stream);
                }
            }
            return;
        }
        if stream <= self.last_stream {
            if self.recently_closed.contains(&stream) {
                endpoint::fail(self, ConnectionError::StreamClosed(stream), out, events);
            } else if !self.recently_reset.contains(&stream) {
                endpoint::fail(self, ConnectionError::StreamId(stream), out, events);
            }
            return;
        }
        self.last_stream = stream;
        if self.ep.goaway_sent {
            // Above the GOAWAY's last stream: not processed (§6.8).
            self.remember_reset(stream);
            return;
        }
        if self_dependent {
            return self.reset_for_fault(stream, ErrorCode::PROTOCOL_ERROR, out, events);
        }
        if self.streams.len() >= self.config.max_concurrent_streams as usize {
            return self.reset_for_fault(stream, ErrorCode::REFUSED_STREAM, out, events);
        }
        let Ok(content_length) = request::content_length(&fields) else {
            return self.reset_for_fault(stream, ErrorCode::PROTOCOL_ERROR, out, events);
        };
        let Ok(request) = request::parse_request(fields, true) else {
            return self.reset_for_fault(stream, ErrorCode::PROTOCOL_ERROR, out, events);
        };
        if end_stream && content_length.is_some_and(|n| n != 0) {
            return self.reset_for_fault(stream, ErrorCode::PROTOCOL_ERROR, out, events);
        }
        self.streams.insert(
            stream,
            Stream {
                remote_open: !end_stream,
                local_open: true,
                flow: StreamFlow::new(self.ep.peer.initial_window_size, self.ep.local_initial_window),
                extra: Body {
                    content_length,
                    received: 0,
                },
            },
        );
        events.push(Event::Request {
            stream,
            request,
            end_stream,
        });
        if stream >= self.config.goaway_stream_id {
            self.ep.write_goaway(self.last_stream, ErrorCode::NO_ERROR, out);
        }
    }
}
