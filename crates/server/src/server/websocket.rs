//! A WebSocket session, whatever carries it (an HTTP/1.1 connection after
//! its upgrade, or an HTTP/2 or HTTP/3 stream after an extended CONNECT):
//! opening it from an accepted handshake (an extended CONNECT judged as
//! the upgrade it stands for, [`accept_connect`]), feeding it received
//! bytes, and handing what they hold to the application.
//!
//! Calling contract: the carrier passes the bytes it read (mutable, so
//! that a message whole in them is unmasked and lent in place), the queue
//! its output goes to, the flag that says it is closing, and, where the
//! queue is a socket's own, that socket, so that a message the
//! application echoes in place goes back from where it lies. The carrier
//! then sends what was queued, and ends when the session is closed.

use crate::server::hosted::Hosted;
use std::mem;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use log::debug;
use tether_ws::{CloseCode, Event, Incoming, Limit, MessageKind, MessageRef, Role};

use super::guard::guarded;
use crate::app::{App, CloseReason, ConnId, Ctx, Request, Response};
use crate::app::{Current, InPlace};
use crate::config::Handshake;
use crate::loops::Stats;
use crate::output::{OutQueue, Pool};
use crate::transport::Stream;

/// Any syntactically valid key: RFC 8441 and RFC 9220 have no
/// `Sec-WebSocket-Key`, but the handshake checks (origin policy,
/// subprotocols, extensions) are shared with HTTP/1.1 through an upgrade
/// head built for them.
const PLACEHOLDER_KEY: &[u8] = b"dGhlIHNhbXBsZSBub25jZQ==";

/// Where a session's answers go, as its carrier lends it for one call:
/// the queue its output goes to, the flag that says it is closing, and,
/// where the queue is a socket's own, that socket (for a message echoed
/// in place).
pub(super) struct Output<'o, 's> {
    pub(super) out: &'o mut OutQueue,
    pub(super) closing: &'o mut bool,
    pub(super) socket: Option<&'o mut Stream<'s>>,
}

impl<'o> Output<'o, '_> {
    /// Output to a queue that is not a socket's own (a stream's, on a
    /// connection that multiplexes sessions).
    pub(super) fn queued(out: &'o mut OutQueue, closing: &'o mut bool) -> Self {
        Output {
            out,
            closing,
            socket: None,
        }
    }
}

/// The fields of the 200 that opens a WebSocket over an extended CONNECT
/// (besides `:status`).
pub(super) type OpeningFields = Vec<(&'static str, String)>;

/// An extended CONNECT for a WebSocket (RFC 8441 over HTTP/2, RFC 9220
/// over HTTP/3; or a WebTransport session served as one) judged like the
/// HTTP/1.1 upgrade it stands for (the
/// handshake's policy, subprotocols and extensions): the session for the
/// route's `tag` and the fields of the 200 that opens it
/// (`sec-websocket-protocol`, `sec-websocket-extensions`), or the refusal
/// to answer with.
pub(super) fn accept_connect(
    handshake: &Handshake,
    ws_config: &tether_ws::SharedConfig,
    connect: &tether_h2::connection::Request,
    request: &Request<'_>,
    tag: u32,
    now: Instant,
) -> Result<(Session, OpeningFields), Response> {
    let target = connect.path.as_deref().unwrap_or("/");
    let authority = connect.authority.as_deref().unwrap_or_default();
    let mut head_fields = vec![
        httparse::Header {
            name: "Host",
            value: authority.as_bytes(),
        },
        httparse::Header {
            name: "Upgrade",
            value: b"websocket",
        },
        httparse::Header {
            name: "Connection",
            value: b"Upgrade",
        },
        httparse::Header {
            name: "Sec-WebSocket-Key",
            value: PLACEHOLDER_KEY,
        },
    ];
    // A WebTransport session (served as a WebSocket) has no WebSocket
    // version, subprotocol or extension to offer: the version the
    // handshake needs is implied, and any such field is not its.
    let webtransport = connect.is_extended_connect("webtransport");
    if webtransport {
        head_fields.push(httparse::Header {
            name: "Sec-WebSocket-Version",
            value: b"13",
        });
    }
    head_fields.extend(request.headers.iter().copied().filter(|h| {
        let replaced = ["host", "sec-websocket-key", "upgrade", "connection"]
            .iter()
            .any(|n| h.name.eq_ignore_ascii_case(n));
        let not_its = webtransport && h.name.to_ascii_lowercase().starts_with("sec-websocket-");
        !replaced && !not_its
    }));
    let head = tether_handshake::RequestHead::new("GET", target, 1, &head_fields);
    let accepted = handshake.accept(head).map_err(|rejection| {
        debug!(
            "WebSocket over an extended CONNECT refused: {} {}",
            rejection.status(),
            rejection.reason()
        );
        Response::text(rejection.status(), format!("{}\n", rejection.reason()))
    })?;
    let mut fields = Vec::new();
    if let Some(protocol) = accepted.protocol() {
        fields.push(("sec-websocket-protocol", protocol.to_owned()));
    }
    let extensions = accepted
        .extensions()
        .iter()
        .map(|e| e.element())
        .collect::<Vec<_>>()
        .join(", ");
    if !extensions.is_empty() {
        fields.push(("sec-websocket-extensions", extensions));
    }
    Ok((Session::accepted(accepted, tag, ws_config, now), fields))
}

/// A WebSocket session and what the application gave it.
pub(super) struct Session {
    pub(super) ws: tether_ws::Connection,
    pub(super) tag: u32,
    /// The application has been told the session ended.
    pub(super) notified: bool,
    /// The largest window of the shared compressed frames this session
    /// takes ([`crate::app::Encoded`]): its `server_max_window_bits` when it
    /// negotiated permessage-deflate without server context takeover, 0
    /// when it takes none.
    pub(super) deflate_window: u8,
}

impl Session {
    /// The session a handshake accepted, for a route's `tag`, with the
    /// extension it negotiated.
    pub(super) fn accepted(
        accepted: tether_handshake::Accepted<'_, Box<dyn tether_ws::Extension>>,
        tag: u32,
        config: &tether_ws::SharedConfig,
        now: Instant,
    ) -> Session {
        let deflate_window = deflate_window(accepted.extensions().first().map(|e| e.element()));
        let mut ws = tether_ws::Connection::with_shared(Role::Server, config, now);
        if let Some(extension) = accepted.into_extension_values().into_iter().next() {
            ws = ws.with_extension(extension);
        }
        Session {
            ws,
            tag,
            notified: false,
            deflate_window,
        }
    }

    /// What this session is sent of `encoded`: the shared compressed twin
    /// when it takes it (counted in `stats`), else the plain frame.
    pub(super) fn frame_of<'e>(&self, encoded: &'e crate::app::Encoded, stats: &Stats) -> &'e Arc<[u8]> {
        let (bytes, deflated) = encoded.for_session(self.deflate_window);
        if deflated {
            Stats::add(&stats.deflated_out, 1);
        }
        bytes
    }

    /// Whether the close handshake is over (or the session failed).
    pub(super) fn is_closed(&self) -> bool {
        self.ws.state() == tether_ws::State::Closed
    }

    /// The bytes this session holds of the message it is receiving: what
    /// the sessions of one HTTP/2 or HTTP/3 connection hold together is
    /// kept to one message's limit ([`over_shared_budget`]).
    pub(super) fn held(&self) -> usize {
        self.ws.receiving_len()
    }

    /// Fails the session because the messages in progress on its
    /// connection went past `budget` together: 1009 to the client, the
    /// message dropped, and the application told (unless it was already),
    /// as for a message over the limit.
    pub(super) fn fail_over_budget<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        base: &mut Ctx<'_, A::Post>,
        id: ConnId,
        budget: usize,
        output: Output<'_, '_>,
    ) {
        let Output { out, closing, .. } = output;
        let event = out.write_with(base.pool, |out| {
            self.ws.fail_over_limit(Limit::SharedMessages, budget as u64, out)
        });
        if self.notified {
            return;
        }
        let peers = base.peers;
        let tag = self.tag;
        let mut ctx = base.with_current(Current {
            id,
            ws: Some(&mut self.ws),
            deflate_window: self.deflate_window,
            sse: None,
            out,
            closing,
            in_place: InPlace::No,
        });
        let stats = &peers.own().stats;
        let _ = to_app(
            app,
            &mut ctx,
            stats,
            id,
            tag,
            &mut self.notified,
            Incoming::Event(event),
        );
    }

    /// Runs `f`, an application callback for this session as `id`, with a
    /// context whose current connection is this session (what it sends
    /// the session is encoded here, compressed if negotiated) and a
    /// scratch queue for the bytes that makes: the queue, for the caller
    /// to put on its stream, and `None` if the callback panicked.
    pub(super) fn call<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        base: &mut Ctx<'_, A::Post>,
        id: ConnId,
        f: impl FnOnce(&mut Hosted<A>, &mut Ctx<'_, A::Post>, ConnId, &mut u32),
    ) -> (Box<OutQueue>, Option<()>) {
        let mut scratch = base.pool.queue();
        let mut closing = false;
        let tag = &mut self.tag;
        let peers = base.peers;
        let mut ctx = base.with_current(Current {
            id,
            ws: Some(&mut self.ws),
            deflate_window: self.deflate_window,
            sse: None,
            out: &mut scratch,
            closing: &mut closing,
            in_place: InPlace::No,
        });
        let result = guarded(&peers.own().stats, "a WebSocket callback", || {
            f(app, &mut ctx, id, tag)
        });
        (scratch, result)
    }

    /// Receives `data`: every message and event in it goes to the
    /// application (as session `id`), what the session answers goes to
    /// `output`. With the socket the output queue belongs to, the last
    /// message of `data` may be echoed in place from where it lies. A
    /// callback that panics closes the session with 1011, and the
    /// application is not told of its end.
    pub(super) fn receive<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        base: &mut Ctx<'_, A::Post>,
        id: ConnId,
        data: &mut [u8],
        output: Output<'_, '_>,
    ) {
        let Output {
            out,
            closing,
            mut socket,
        } = output;
        let now = base.now;
        // A recycled buffer for the next message, taken back below if no
        // message started in it: an idle connection keeps none.
        if let Some(unused) = self.ws.lend_buffer(base.pool.buffer()) {
            base.pool.give_back(unused);
        }
        let peers = base.peers;
        let stats = &peers.own().stats;
        let mut input = data;
        while !input.is_empty() && !self.is_closed() {
            let current = mem::take(&mut input);
            let (start, len) = (current.as_ptr() as usize, current.len());
            let (used, incoming) = {
                let (ws, lent) = (&mut self.ws, &mut *current);
                out.write_with(base.pool, move |out| ws.receive_in_place(lent, now, out))
            };
            let Some(incoming) = incoming else {
                input = current.get_mut(used..).unwrap_or_default();
                continue;
            };
            // Only the last message of what was read may go back in place:
            // an echo of each of several would cost a write each, where
            // copied they go out in one.
            let in_place = match incoming {
                Incoming::Borrowed(message) if used == len && socket.is_some() => {
                    (message.as_bytes().as_ptr() as usize)
                        .checked_sub(start)
                        .map_or(InPlace::No, |at| InPlace::Lent(message, at))
                }
                _ => InPlace::No,
            };
            let tag = self.tag;
            let mut ctx = base.with_current(Current {
                id,
                ws: Some(&mut self.ws),
                deflate_window: self.deflate_window,
                sse: None,
                out,
                closing,
                in_place,
            });
            let handled = to_app(app, &mut ctx, stats, id, tag, &mut self.notified, incoming);
            if let Some((payload, kind)) = ctx.current.as_ref().and_then(|c| c.echoed())
                && let Some(stream) = socket.as_deref_mut()
            {
                let written = echo_in_place(&mut self.ws, current, payload, kind, stream, out, base.pool);
                Stats::add(&stats.bytes_out, written as u64);
                if let Some(access) = &peers.own().access {
                    access.count(id, written, 0);
                }
            }
            input = current.get_mut(used..).unwrap_or_default();
            if handled.is_none() {
                // The application's state for this session is unknown:
                // close it (1011), without telling the application again.
                self.notified = true;
                let _ = out.write_with(base.pool, |out| {
                    self.ws
                        .close(CloseCode::INTERNAL_ERROR, "internal error", now, out)
                });
                break;
            }
        }
        if let Some(spare) = self.ws.reclaim_buffer() {
            base.pool.give_back(spare);
        }
    }
}

/// Whether the messages in progress on one HTTP/2 or HTTP/3 connection,
/// `held` by each of its sessions, are together past `budget` (the
/// WebSocket message limit: a connection that multiplexes sessions holds
/// no more of them than one WebSocket connection may). Summed only when
/// `latest`, the session that just received, holds part of a message:
/// whole messages, the common case, are handed on where they lie.
pub(super) fn over_shared_budget(latest: usize, held: impl Iterator<Item = usize>, budget: usize) -> bool {
    latest > 0 && held.fold(0usize, usize::saturating_add) > budget
}

/// A WebSocket's timer (ping, idle, close handshake), handled inside a
/// callback context of its session ([`Session::call`]): what the session
/// writes goes to the context's queue; the failure it reports, if any.
pub(super) fn handle_timer<P>(ctx: &mut Ctx<'_, P>, now: Instant) -> Option<tether_ws::Error> {
    let Some(Current {
        ws: Some(ws), out, ..
    }) = ctx.current.as_mut()
    else {
        return None;
    };
    match out.write_with(ctx.pool, |o| ws.handle_timeout(now, o)) {
        Some(Event::Failed(error)) => Some(error),
        _ => None,
    }
}

/// How a session whose timer failed with `error` ends: an idle one is
/// closed with 1001, any other is dropped.
pub(super) fn timer_close_reason(error: &tether_ws::Error) -> CloseReason {
    match error {
        tether_ws::Error::IdleTimeout => CloseReason::Failed(CloseCode::GOING_AWAY),
        _ => CloseReason::Dropped,
    }
}

/// [`Session::deflate_window`] for a session whose handshake response
/// carried `element` as its first (installed) extension.
fn deflate_window(element: Option<&str>) -> u8 {
    #[cfg(feature = "deflate")]
    if let Some(element) = element
        && let Ok(extensions) = tether_handshake::parse_extensions(element)
        && let Some(first) = extensions.first()
        && let Ok(params) = tether_deflate::Params::from_response(first)
        && params.server_no_context_takeover
    {
        return params.server_max_window_bits;
    }
    let _ = element;
    0
}

/// Hands a received WebSocket message, or the end of the session, to the
/// application. `notified` is set once the application was told that the
/// session ended. `None` when the application panicked.
fn to_app<A: App>(
    app: &mut Hosted<A>,
    ctx: &mut Ctx<'_, A::Post>,
    stats: &Stats,
    id: ConnId,
    tag: u32,
    notified: &mut bool,
    incoming: Incoming<'_>,
) -> Option<()> {
    match incoming {
        Incoming::Borrowed(message) => {
            Stats::add(&stats.messages_in, 1);
            guarded(stats, "on_message", || app.on_message(ctx, id, tag, message))
        }
        Incoming::Event(Event::Message(message)) => {
            Stats::add(&stats.messages_in, 1);
            let handled = guarded(stats, "on_message", || {
                app.on_message(ctx, id, tag, message.as_ref())
            });
            // The buffer it was assembled in serves the next one.
            ctx.pool.give_back(message.into_bytes());
            handled
        }
        Incoming::Event(Event::Ping(_) | Event::Pong(_)) => Some(()),
        Incoming::Event(Event::Close(frame)) => {
            *notified = true;
            guarded(stats, "on_close", || {
                app.on_close(ctx, id, tag, CloseReason::Closed(frame.code))
            })
        }
        Incoming::Event(Event::Failed(error)) => {
            debug!("websocket failed: {error}");
            *notified = true;
            let reason = error
                .close_code()
                .map_or(CloseReason::Dropped, CloseReason::Failed);
            guarded(stats, "on_close", || app.on_close(ctx, id, tag, reason))
        }
    }
}

/// Writes a message the application echoed in place: the frame is made
/// where the payload lies in the bytes read and written from there at
/// once; only what the socket does not take is copied (queued). Returns
/// the bytes written. Where the session cannot frame it there (its
/// header came in an earlier read and left no room before it, or an
/// extension transforms what is sent), it is sent as any message.
fn echo_in_place(
    ws: &mut tether_ws::Connection,
    data: &mut [u8],
    payload: Range<usize>,
    kind: MessageKind,
    stream: &mut Stream<'_>,
    out: &mut OutQueue,
    pool: &mut Pool,
) -> usize {
    match ws.frame_in_place(kind, data, payload.clone()) {
        Some(start) => out.write_through(stream, data.get(start..payload.end).unwrap_or_default(), pool),
        None => {
            let bytes = data.get(payload).unwrap_or_default();
            let message = match kind {
                MessageKind::Binary => Some(MessageRef::Binary(bytes)),
                // Validated when it was received.
                MessageKind::Text => std::str::from_utf8(bytes).ok().map(MessageRef::Text),
            };
            if let Some(message) = message {
                let _ = out.write_with(pool, |out| ws.send(message, out));
            }
            0
        }
    }
}
