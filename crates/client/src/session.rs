//! The client's protocol state, without I/O: the opening handshake, then a
//! tether-ws connection. Both the blocking and the non-blocking client
//! drive one of these.

use std::collections::VecDeque;
use std::time::Instant;

use tether_client_core::url::Url;
use tether_handshake::{ClientHandshake, ClientRequest, Status};
use tether_ws::{CloseCode, Connection, MaskSource, Message, Role, State};

use crate::builder::WebSocketBuilder;
use crate::error::Error;
use crate::event::Event;

/// The largest response head accepted during the opening handshake (the
/// clients' shared limit, as tether-tokio's).
const MAX_RESPONSE_HEAD: usize = tether_client_core::limits::MAX_RESPONSE_HEAD;

enum Phase {
    Handshake {
        handshake: ClientHandshake,
        masks: MaskSource,
        deadline: Instant,
    },
    Open(Box<Connection>),
    /// Failed or lost; nothing more happens.
    Done,
}

pub(crate) struct Session {
    phase: Phase,
    /// Bytes received but not processed yet: the response head as it
    /// arrives, then frames. Input is processed only up to the next event,
    /// and only once the caller has taken the events before it, so that a
    /// reply to a message (say, an echo) goes out before the close frame
    /// of a protocol error that arrived after the message.
    input: Vec<u8>,
    /// How much of `input` is processed.
    consumed: usize,
    /// The transport ended or failed: reported once `input` is used up.
    terminal: Option<Error>,
    /// Bytes to write to the transport.
    pub(crate) out: Vec<u8>,
    /// How much of `out` is (at most) answers the server has not read.
    answers: usize,
    /// The output that the answers to the server's frames (pongs, the
    /// close echo) may keep queued unwritten
    /// ([`WebSocketBuilder::max_queued_answers`]): a server that sends
    /// pings and never reads the pongs fails the connection with 1008
    /// there, rather than growing the queue for ever.
    max_answers: usize,
    events: VecDeque<Result<Event, Error>>,
    config: tether_ws::Config,
    protocol: Option<String>,
    extensions: Option<String>,
    /// The opening handshake completed at some point.
    opened: bool,
    #[cfg(feature = "deflate")]
    offers: Vec<tether_deflate::ClientOffer>,
}

impl Session {
    /// Writes the upgrade request for `url` to `out`.
    pub(crate) fn new(options: &WebSocketBuilder, url: &Url, now: Instant) -> Result<Session, Error> {
        let nonce = crate::rng::nonce().map_err(|e| Error::io("random nonce", e))?;
        let masks = crate::rng::mask_source().map_err(|e| Error::io("random masks", e))?;
        let protocols: Vec<&str> = options.protocols.iter().map(String::as_str).collect();
        let headers: Vec<(&str, &str)> = options
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        #[cfg(feature = "deflate")]
        let offers = if options.compression {
            vec![options.deflate_offer]
        } else {
            Vec::new()
        };
        #[cfg(feature = "deflate")]
        let offer = (!offers.is_empty()).then(|| tether_deflate::offer_header(&offers));
        #[cfg(not(feature = "deflate"))]
        let offer: Option<String> = None;

        let host = url.host_header();
        let mut request = ClientRequest::new(&host, url.target(), nonce)
            .protocols(&protocols)
            .headers(&headers);
        if let Some(offer) = &offer {
            request = request.extensions(offer);
        }
        if let Some(origin) = &options.origin {
            request = request.origin(origin);
        }
        let mut out = Vec::new();
        let handshake = request.write(&mut out)?;
        Ok(Session {
            phase: Phase::Handshake {
                handshake,
                masks,
                deadline: now + options.handshake_timeout,
            },
            input: Vec::new(),
            consumed: 0,
            terminal: None,
            out,
            answers: 0,
            max_answers: options.max_queued_answers,
            events: VecDeque::new(),
            config: options.ws,
            protocol: None,
            extensions: None,
            opened: false,
            #[cfg(feature = "deflate")]
            offers,
        })
    }

    /// The next event: from what is queued, else by processing received
    /// input up to the next event, else the transport's end. `None` when
    /// more input is needed.
    pub(crate) fn next_event(&mut self, now: Instant) -> Option<Result<Event, Error>> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        self.process(now);
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        if self.consumed == self.input.len()
            && let Some(error) = self.terminal.take()
        {
            self.phase = Phase::Done;
            return Some(Err(error));
        }
        None
    }

    /// The subprotocol the server selected.
    pub(crate) fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The `Sec-WebSocket-Extensions` the server answered with.
    pub(crate) fn extensions(&self) -> Option<&str> {
        self.extensions.as_deref()
    }

    /// Whether the opening handshake completed at some point.
    pub(crate) fn was_opened(&self) -> bool {
        self.opened
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        matches!(self.phase, Phase::Handshake { .. })
    }

    /// Whether messages can be sent.
    pub(crate) fn is_open(&self) -> bool {
        matches!(&self.phase, Phase::Open(conn) if conn.state() == State::Open)
    }

    /// The tether-ws state (`Closed` before the handshake completes and
    /// after a failure).
    pub(crate) fn state(&self) -> State {
        match &self.phase {
            Phase::Open(conn) => conn.state(),
            Phase::Handshake { .. } | Phase::Done => State::Closed,
        }
    }

    /// Whether everything is over: nothing more will be read, written or
    /// reported (output aside).
    pub(crate) fn is_done(&self) -> bool {
        let over = match &self.phase {
            Phase::Open(conn) => conn.state() == State::Closed,
            Phase::Handshake { .. } => false,
            Phase::Done => true,
        };
        over && self.events.is_empty() && self.terminal.is_none()
    }

    /// The transport failed (or ended, [`Error::ConnectionLost`]):
    /// reported after the events of the input already received. Nothing
    /// more is accepted.
    pub(crate) fn fail(&mut self, error: Error) {
        let over = match &self.phase {
            Phase::Open(conn) => conn.state() == State::Closed,
            Phase::Handshake { .. } => false,
            Phase::Done => true,
        };
        if !over && self.terminal.is_none() {
            self.terminal = Some(error);
        }
    }

    /// Marks the session done without reporting anything more.
    pub(crate) fn abandon(&mut self) {
        self.phase = Phase::Done;
        self.events.clear();
        self.terminal = None;
        self.input.clear();
        self.consumed = 0;
    }

    /// The transport reached its end.
    pub(crate) fn on_eof(&mut self) {
        self.fail(Error::ConnectionLost);
    }

    /// Stores bytes read from the transport, for [`next_event`](Self::next_event).
    pub(crate) fn receive(&mut self, data: &[u8]) {
        if self.terminal.is_some() || matches!(self.phase, Phase::Done) {
            return;
        }
        if self.consumed == self.input.len() {
            self.input.clear();
            self.consumed = 0;
        } else if self.consumed > 64 * 1024 {
            self.input.drain(..self.consumed);
            self.consumed = 0;
        }
        self.input.extend_from_slice(data);
    }

    /// The driver wrote part of `out`: `pending` bytes are left, so at
    /// most that many answers wait.
    pub(crate) fn written(&mut self, pending: usize) {
        self.answers = self.answers.min(pending);
    }

    /// Processes input until an event is queued or the input is used up.
    fn process(&mut self, now: Instant) {
        if self.out.is_empty() {
            self.answers = 0;
        }
        if let Phase::Handshake { .. } = self.phase {
            if self.consumed == self.input.len() {
                return;
            }
            match self.on_head(now) {
                Ok(false) => return,
                Ok(true) => return, // `Open` is queued
                Err(e) => {
                    self.phase = Phase::Done;
                    self.terminal = None;
                    self.events.push_back(Err(e));
                    return;
                }
            }
        }
        let Phase::Open(conn) = &mut self.phase else {
            return;
        };
        while self.consumed < self.input.len() {
            let before = self.out.len();
            let (used, event) = conn.receive(
                self.input.get(self.consumed..).unwrap_or_default(),
                now,
                &mut self.out,
            );
            self.consumed += used;
            self.answers = self.answers.saturating_add(self.out.len().saturating_sub(before));
            let Some(mut event) = event else {
                continue;
            };
            if self.answers > self.max_answers && conn.state() != State::Closed {
                event = conn.fail_over_limit(
                    tether_ws::Limit::UnreadAnswers,
                    self.max_answers as u64,
                    &mut self.out,
                );
            }
            let event = match event {
                tether_ws::Event::Message(m) => Ok(Event::Message(m)),
                tether_ws::Event::Ping(p) => Ok(Event::Ping(p)),
                tether_ws::Event::Pong(p) => Ok(Event::Pong(p)),
                tether_ws::Event::Close(frame) => Ok(Event::Closed(frame)),
                tether_ws::Event::Failed(e) => Err(ws_failure(e)),
            };
            if conn.state() == State::Closed {
                // Whatever follows the end is ignored, a lost transport too.
                self.consumed = self.input.len();
                self.terminal = None;
            }
            self.events.push_back(event);
            return;
        }
    }

    /// Checks the response head once complete; true when the connection
    /// is open, with the head consumed from the input.
    fn on_head(&mut self, now: Instant) -> Result<bool, Error> {
        let Phase::Handshake { handshake, .. } = &self.phase else {
            return Ok(true);
        };
        let head = self.input.get(self.consumed..).unwrap_or_default();
        let (used, protocol, extensions) = match handshake.validate_response(head) {
            Ok(Status::Partial) if head.len() > MAX_RESPONSE_HEAD => {
                return Err(Error::Http(format!(
                    "response head over {MAX_RESPONSE_HEAD} bytes"
                )));
            }
            Ok(Status::Partial) => return Ok(false),
            Err(tether_handshake::Error::UnexpectedStatus(status)) => {
                return Err(Error::Refused {
                    status,
                    reason: reason_phrase(head),
                });
            }
            Err(e) => return Err(e.into()),
            Ok(Status::Complete((response, used))) => {
                let extensions = response
                    .header("Sec-WebSocket-Extensions")
                    .map(|v| String::from_utf8_lossy(v).into_owned());
                #[cfg(feature = "deflate")]
                let negotiated = tether_deflate::accept_response(&self.offers, response.extensions())
                    .map_err(Error::Deflate)?;
                #[cfg(feature = "deflate")]
                let extension = negotiated.zip(self.offers.first()).map(|(params, offer)| {
                    Box::new(offer.extension(params)) as Box<dyn tether_ws::Extension>
                });
                #[cfg(not(feature = "deflate"))]
                let extension: Option<Box<dyn tether_ws::Extension>> = None;
                (
                    used,
                    response.protocol().map(str::to_owned),
                    (extensions, extension),
                )
            }
        };
        let Phase::Handshake { masks, .. } = std::mem::replace(&mut self.phase, Phase::Done) else {
            unreachable!("checked above");
        };
        let (extension_header, extension) = extensions;
        let mut conn = Connection::new(Role::Client(masks), self.config, now);
        if let Some(extension) = extension {
            conn = conn.with_extension(extension);
        }
        self.phase = Phase::Open(Box::new(conn));
        self.opened = true;
        self.protocol = protocol;
        self.extensions = extension_header;
        self.consumed += used;
        self.events.push_back(Ok(Event::Open));
        Ok(true)
    }

    fn conn(&mut self) -> Result<&mut Connection, Error> {
        match &mut self.phase {
            Phase::Open(conn) => Ok(conn),
            Phase::Handshake { .. } => Err(Error::NotOpen),
            Phase::Done => Err(Error::Closed),
        }
    }

    pub(crate) fn send(&mut self, message: &Message) -> Result<(), Error> {
        let out = &mut self.out;
        match &mut self.phase {
            Phase::Open(conn) => conn.send(message, out).map_err(usage),
            Phase::Handshake { .. } => Err(Error::NotOpen),
            Phase::Done => Err(Error::Closed),
        }
    }

    pub(crate) fn send_text(&mut self, text: &str) -> Result<(), Error> {
        let out = &mut self.out;
        match &mut self.phase {
            Phase::Open(conn) => conn.send_text(text, out).map_err(usage),
            Phase::Handshake { .. } => Err(Error::NotOpen),
            Phase::Done => Err(Error::Closed),
        }
    }

    pub(crate) fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        let out = &mut self.out;
        match &mut self.phase {
            Phase::Open(conn) => conn.send_binary(data, out).map_err(usage),
            Phase::Handshake { .. } => Err(Error::NotOpen),
            Phase::Done => Err(Error::Closed),
        }
    }

    pub(crate) fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        let mut out = std::mem::take(&mut self.out);
        let result = self.conn().and_then(|c| c.ping(payload, &mut out).map_err(usage));
        self.out = out;
        result
    }

    pub(crate) fn pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        let mut out = std::mem::take(&mut self.out);
        let result = self.conn().and_then(|c| c.pong(payload, &mut out).map_err(usage));
        self.out = out;
        result
    }

    pub(crate) fn close(&mut self, code: CloseCode, reason: &str, now: Instant) -> Result<(), Error> {
        let mut out = std::mem::take(&mut self.out);
        let result = self
            .conn()
            .and_then(|c| c.close(code, reason, now, &mut out).map_err(usage));
        self.out = out;
        result
    }

    /// The next deadline: the handshake's, or the connection's timers.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Handshake { deadline, .. } => Some(*deadline),
            Phase::Open(conn) => conn.poll_timeout(),
            Phase::Done => None,
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        match &mut self.phase {
            Phase::Handshake { deadline, .. } => {
                if now >= *deadline {
                    self.phase = Phase::Done;
                    self.terminal = None;
                    self.events.push_back(Err(Error::Timeout("opening handshake")));
                }
            }
            Phase::Open(conn) => {
                if let Some(tether_ws::Event::Failed(e)) = conn.handle_timeout(now, &mut self.out) {
                    self.events.push_back(Err(ws_failure(e)));
                }
            }
            Phase::Done => {}
        }
    }
}

/// A tether-ws send error: the caller's (closing, bad argument) or an
/// extension's refusal.
fn usage(e: tether_ws::Error) -> Error {
    match e {
        tether_ws::Error::AlreadyClosing => Error::Closed,
        e if e.is_usage_error() => Error::InvalidArgument(e.to_string()),
        e => Error::Protocol(e),
    }
}

/// A failure reported by the connection.
fn ws_failure(e: tether_ws::Error) -> Error {
    match e {
        tether_ws::Error::IdleTimeout => Error::Timeout("idle timeout: nothing from the server"),
        tether_ws::Error::CloseTimeout => Error::Timeout("close handshake: no close frame from the server"),
        e => Error::Protocol(e),
    }
}

/// The reason phrase of a response head's status line.
pub(crate) fn reason_phrase(head: &[u8]) -> String {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    // "HTTP/1.1 403 Forbidden\r"
    line.trim_end()
        .splitn(3, ' ')
        .nth(2)
        .unwrap_or_default()
        .to_owned()
}
