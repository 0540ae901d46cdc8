//! WebSockets on an HTTP/2 connection (RFC 8441): the options, the
//! extended CONNECT that opens one, and the handle that reads and writes
//! WebSocket frames in the stream's DATA.

use std::time::Instant;

use tether_h2::hpack::Field;
use tether_ws::{CloseCode, CloseFrame, Connection, Message, Role, State};

use super::{H2Connection, MAX_PENDING, field, push_headers};
use crate::error::Error;
use crate::event::Event;

impl H2Connection {
    /// Opens a WebSocket with an extended CONNECT (RFC 8441), offering
    /// permessage-deflate (feature `deflate`).
    pub fn websocket(&self, path: &str) -> Result<H2WebSocket, Error> {
        self.websocket_with(path, &WsOptions::default())
    }

    /// [`websocket`](Self::websocket) with subprotocols, headers and the
    /// compression offer of one's choosing.
    pub fn websocket_with(&self, path: &str, options: &WsOptions) -> Result<H2WebSocket, Error> {
        let mut fields = self.pseudo("CONNECT", path, true)?;
        fields.push(Field::new("sec-websocket-version", "13"));
        if !options.protocols.is_empty() {
            fields.push(Field::new("sec-websocket-protocol", options.protocols.join(", ")));
        }
        #[cfg(feature = "deflate")]
        let offers = if options.compression {
            vec![options.deflate_offer]
        } else {
            Vec::new()
        };
        #[cfg(feature = "deflate")]
        if !offers.is_empty() {
            fields.push(Field::new(
                "sec-websocket-extensions",
                tether_deflate::offer_header(&offers),
            ));
        }
        let headers: Vec<(&str, &str)> = options
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        push_headers(&mut fields, &headers)?;
        let stream = self.open(&fields, false)?;
        let accepted = self.response(stream).and_then(|(status, head)| {
            if status != 200 {
                return Err(Error::Refused {
                    status,
                    reason: String::new(),
                });
            }
            let masks = crate::rng::mask_source().map_err(|e| Error::io("random masks", e))?;
            let ws = Connection::new(Role::Client(masks), self.options.ws, Instant::now());
            let extensions = field(&head, "sec-websocket-extensions");
            #[cfg(feature = "deflate")]
            let ws = {
                let parsed = match &extensions {
                    Some(value) => tether_handshake::parse_extensions(value)?,
                    None => Vec::new(),
                };
                match (
                    tether_deflate::accept_response(&offers, &parsed).map_err(Error::Deflate)?,
                    offers.first(),
                ) {
                    (Some(params), Some(offer)) => ws.with_extension(Box::new(offer.extension(params))),
                    _ => ws,
                }
            };
            #[cfg(not(feature = "deflate"))]
            if extensions.is_some() {
                return Err(Error::Handshake(tether_handshake::Error::UnexpectedExtension));
            }
            let protocol = field(&head, "sec-websocket-protocol");
            if protocol
                .as_ref()
                .is_some_and(|p| !options.protocols.iter().any(|o| o == p))
            {
                return Err(Error::Handshake(tether_handshake::Error::UnexpectedProtocol));
            }
            Ok((ws, protocol, extensions))
        });
        let (ws, protocol, extensions) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                self.forget(stream);
                return Err(e);
            }
        };
        Ok(H2WebSocket {
            conn: self.clone(),
            stream,
            ws,
            input: Vec::new(),
            consumed: 0,
            out: Vec::new(),
            protocol,
            extensions,
            ended: false,
        })
    }
}

/// What may be chosen for one WebSocket on an [`H2Connection`].
#[derive(Debug, Clone)]
pub struct WsOptions {
    /// Subprotocols offered, most preferred first.
    pub protocols: Vec<String>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Whether to offer permessage-deflate (on by default with the
    /// feature `deflate`).
    pub compression: bool,
    /// The offer made when `compression` is on.
    #[cfg(feature = "deflate")]
    pub deflate_offer: tether_deflate::ClientOffer,
}

#[cfg_attr(not(feature = "deflate"), allow(clippy::derivable_impls))]
impl Default for WsOptions {
    fn default() -> Self {
        WsOptions {
            protocols: Vec::new(),
            headers: Vec::new(),
            compression: cfg!(feature = "deflate"),
            #[cfg(feature = "deflate")]
            deflate_offer: tether_deflate::ClientOffer::new(),
        }
    }
}

/// A WebSocket on an [`H2Connection`] (RFC 8441): WebSocket frames in the
/// DATA of one stream. Pongs to the server's pings and the echo of its
/// close frame are sent while [`recv`](Self::recv) reads. After the close
/// handshake the stream is ended; dropping it earlier resets the stream.
pub struct H2WebSocket {
    conn: H2Connection,
    stream: u32,
    ws: Connection,
    /// Received, not yet taken by the WebSocket.
    input: Vec<u8>,
    consumed: usize,
    out: Vec<u8>,
    protocol: Option<String>,
    extensions: Option<String>,
    /// The stream ended (or was ended by us).
    ended: bool,
}

impl std::fmt::Debug for H2WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2WebSocket")
            .field("stream", &self.stream)
            .field("state", &self.ws.state())
            .finish_non_exhaustive()
    }
}

impl H2WebSocket {
    /// The HTTP/2 stream identifier.
    pub fn stream_id(&self) -> u32 {
        self.stream
    }

    /// The subprotocol the server selected.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The `sec-websocket-extensions` the server answered with.
    pub fn extensions(&self) -> Option<&str> {
        self.extensions.as_deref()
    }

    /// The WebSocket state.
    pub fn state(&self) -> State {
        self.ws.state()
    }

    /// Sends a message.
    pub fn send(&mut self, message: &Message) -> Result<(), Error> {
        let sent = self.ws.send(message, &mut self.out);
        self.finish_send(sent)
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        let sent = self.ws.send_text(text, &mut self.out);
        self.finish_send(sent)
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        let sent = self.ws.send_binary(data, &mut self.out);
        self.finish_send(sent)
    }

    /// Sends a ping (at most 125 bytes); its pong comes from
    /// [`recv`](Self::recv) as [`Event::Pong`].
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        let sent = self.ws.ping(payload, &mut self.out);
        self.finish_send(sent)
    }

    /// The next message or control frame, waiting for it.
    /// [`Event::Closed`] ends the WebSocket (the stream is ended too).
    pub fn recv(&mut self) -> Result<Event, Error> {
        let deadline = self.conn.read_deadline();
        loop {
            if self.ws.state() == State::Closed && self.consumed == self.input.len() {
                return Err(Error::Closed);
            }
            let now = Instant::now();
            while self.consumed < self.input.len() {
                let before = self.out.len();
                let (used, event) = self.ws.receive(
                    self.input.get(self.consumed..).unwrap_or_default(),
                    now,
                    &mut self.out,
                );
                self.consumed += used;
                if self.out.len() > before
                    && self.ws.state() != State::Closed
                    && self.conn.pending(self.stream).saturating_add(self.out.len()) > MAX_PENDING
                {
                    // Answers (pongs) the server does not read: fail with
                    // 1008 and reset the stream, whose queue cannot drain.
                    self.out.clear();
                    let failed = self.ws.fail_over_limit(
                        tether_ws::Limit::UnreadAnswers,
                        MAX_PENDING as u64,
                        &mut self.out,
                    );
                    self.out.clear();
                    self.consumed = self.input.len();
                    self.ended = true;
                    self.conn.forget(self.stream);
                    return match failed {
                        tether_ws::Event::Failed(e) => Err(Error::Protocol(e)),
                        _ => Err(Error::Closed),
                    };
                }
                if let Some(event) = event {
                    return self.deliver(event);
                }
                if used == 0 {
                    break;
                }
            }
            if self.ws.poll_timeout().is_some_and(|t| t <= now)
                && let Some(event) = self.ws.handle_timeout(now, &mut self.out)
            {
                return self.deliver(event);
            }
            self.flush()?;
            if self.ended {
                return Err(Error::ConnectionLost);
            }
            let timer = self.ws.poll_timeout();
            let stream = self.stream;
            let got = self.conn.wait(deadline, "read", |inner| {
                if timer.is_some_and(|t| t <= Instant::now()) {
                    return Some(Ok(None));
                }
                let taken = inner.take(stream);
                let Some((data, ended, reset)) = &taken else {
                    return Some(Err(Error::Closed));
                };
                (!data.is_empty() || *ended || reset.is_some()).then_some(Ok(taken))
            })?;
            let Some((data, ended, reset)) = got else {
                continue;
            };
            if self.consumed == self.input.len() {
                self.input.clear();
                self.consumed = 0;
            }
            self.input.extend_from_slice(&data);
            if let Some(code) = reset {
                self.ended = true;
                self.conn.forget(self.stream);
                return Err(Error::StreamReset(code));
            }
            self.ended |= ended;
        }
    }

    /// Starts the close handshake and reads until the server's close
    /// frame, which is returned (messages that arrive meanwhile are
    /// dropped).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<CloseFrame, Error> {
        let sent = self.ws.close(code, reason, Instant::now(), &mut self.out);
        self.finish_send(sent)?;
        loop {
            if let Event::Closed(frame) = self.recv()? {
                return Ok(frame);
            }
        }
    }

    fn deliver(&mut self, event: tether_ws::Event) -> Result<Event, Error> {
        self.flush()?;
        let event = match event {
            tether_ws::Event::Message(m) => Event::Message(m),
            tether_ws::Event::Ping(p) => Event::Ping(p),
            tether_ws::Event::Pong(p) => Event::Pong(p),
            tether_ws::Event::Close(frame) => Event::Closed(frame),
            tether_ws::Event::Failed(e) => {
                self.end_stream();
                return Err(Error::Protocol(e));
            }
        };
        if self.ws.state() == State::Closed {
            self.end_stream();
        }
        Ok(event)
    }

    fn finish_send(&mut self, sent: Result<(), tether_ws::Error>) -> Result<(), Error> {
        match sent {
            Ok(()) => {
                let out = std::mem::take(&mut self.out);
                self.conn.send_with_room(self.stream, &out, false)
            }
            Err(tether_ws::Error::AlreadyClosing) => Err(Error::Closed),
            Err(e) if e.is_usage_error() => Err(Error::InvalidArgument(e.to_string())),
            Err(e) => Err(Error::Protocol(e)),
        }
    }

    fn flush(&mut self) -> Result<(), Error> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        self.conn.send(self.stream, &out, false)
    }

    /// The WebSocket is closed: END_STREAM after what is queued.
    fn end_stream(&mut self) {
        let _ = self.flush();
        let _ = self.conn.send(self.stream, &[], true);
    }
}

impl Drop for H2WebSocket {
    fn drop(&mut self) {
        self.conn.forget(self.stream);
    }
}
