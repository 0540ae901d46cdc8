//! Chat rooms: every text message sent over WebSocket goes to everyone in
//! the room, over WebSocket and over Server-Sent Events.

use std::collections::HashMap;

use tether_server::{CloseReason, ConnId, Ctx, Encoded, MessageRef, Request};

/// The room a request names with `?room=`, or "lobby".
fn room_of(request: &Request<'_>) -> String {
    request
        .query_param("room")
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "lobby".to_owned())
}

#[derive(Debug, Default)]
struct Room {
    sockets: Vec<ConnId>,
    streams: Vec<ConnId>,
    /// The id of the last event sent to the room's streams.
    last_id: u64,
}

/// Chat rooms, named by the `room` query parameter (default "lobby").
///
/// A text message from a WebSocket member is sent, encoded once, to every
/// WebSocket member of the room (its sender included, so everyone sees the
/// same order) and, as an SSE `message` event with a per-room id, to every
/// event-stream subscriber. Binary messages are not chat and are ignored.
#[derive(Debug, Default)]
pub struct Chat {
    rooms: HashMap<String, Room>,
    member_of: HashMap<ConnId, String>,
}

impl Chat {
    /// No rooms yet; they are created on first use.
    pub fn new() -> Chat {
        Chat::default()
    }

    /// A WebSocket member joins the room its request names.
    pub fn join(&mut self, conn: ConnId, request: &Request<'_>) {
        let room = room_of(request);
        self.rooms.entry(room.clone()).or_default().sockets.push(conn);
        self.member_of.insert(conn, room);
    }

    /// An event-stream subscriber joins the room its request names.
    pub fn subscribe(&mut self, conn: ConnId, request: &Request<'_>) {
        let room = room_of(request);
        self.rooms.entry(room.clone()).or_default().streams.push(conn);
        self.member_of.insert(conn, room);
    }

    /// A member (of either kind) leaves; an empty room is forgotten.
    pub fn leave(&mut self, conn: ConnId, _reason: &CloseReason) {
        let Some(name) = self.member_of.remove(&conn) else {
            return;
        };
        if let Some(room) = self.rooms.get_mut(&name) {
            room.sockets.retain(|&c| c != conn);
            room.streams.retain(|&c| c != conn);
            if room.sockets.is_empty() && room.streams.is_empty() {
                self.rooms.remove(&name);
            }
        }
    }

    /// Broadcasts a message from `conn` to its room.
    pub fn message<P>(&mut self, ctx: &mut Ctx<'_, P>, conn: ConnId, message: MessageRef<'_>) {
        let Some(text) = message.as_text() else { return };
        let Some(room) = self
            .member_of
            .get(&conn)
            .and_then(|name| self.rooms.get_mut(name))
        else {
            return;
        };
        ctx.send_encoded(room.sockets.iter().copied(), &Encoded::ws(message));
        if !room.streams.is_empty() {
            room.last_id += 1;
            let id = room.last_id.to_string();
            let event = tether_sse::Event::new().id(&id).event("message").data(text);
            if let Ok(encoded) = Encoded::sse(&event) {
                ctx.send_encoded(room.streams.iter().copied(), &encoded);
            }
        }
    }

    /// How many members a room has (WebSocket, event stream).
    pub fn members(&self, room: &str) -> (usize, usize) {
        self.rooms
            .get(room)
            .map_or((0, 0), |r| (r.sockets.len(), r.streams.len()))
    }
}
