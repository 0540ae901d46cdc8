//! Presence: who is subscribed to a topic as what member, the join and
//! leave events its watchers get, and `GET /topics/NAME/presence`.

use std::collections::HashMap;
use std::sync::Arc;

use tether_hub::{
    Broker, Change, ConnectionMember, Member, Members, Presence, PresenceMessage, ReplyTo, Transport,
    is_valid_member,
};
use tether_server::{ConnId, Ctx, Encoded, Message, Response};

use super::broker_view::LoopContext;
use tether_hub::HubMessage;

/// The answer to a presence question, for whoever asked.
#[derive(Debug)]
pub(super) enum Answer {
    /// `GET /topics/NAME/presence`'s answer.
    Page(ConnId, Response),
    /// The members, for the server API.
    Api(Asker, Arc<str>, Members),
    /// The members, for the application that embeds the hub
    /// ([`Asker::Embedder`]).
    Embedder(ConnId, Members),
}

/// Who asked a topic's sequencer who is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Asker {
    /// `GET /topics/NAME/presence`.
    Page(ConnId),
    /// `GET /api/presence`.
    Api(ConnId),
    /// `POST /api/presence/counts`: the request waiting as `token`, for
    /// its topic `index`.
    Count { conn: ConnId, token: u64, index: usize },
    /// The application that embeds the hub, for its request `conn`
    /// (`HubApp::ask_presence`).
    Embedder(ConnId),
}

impl Asker {
    fn conn(self) -> ConnId {
        match self {
            Asker::Page(conn) | Asker::Api(conn) | Asker::Embedder(conn) | Asker::Count { conn, .. } => conn,
        }
    }
}

/// One loop's part of presence: the members of the topics it sequences,
/// the subscribers it has that watch joins and leaves, and the presence
/// queries waiting for a topic's sequencer.
#[derive(Debug)]
pub(super) struct Roster {
    presence: Presence,
    /// Subscribers that get join and leave events, by topic.
    watchers: HashMap<Arc<str>, Vec<(ConnId, Transport)>>,
    /// Presence questions waiting for the sequencer, and who asked.
    queries: HashMap<u64, (Asker, Arc<str>)>,
    next_query: u64,
    /// This loop's index, in its connections' members.
    index: u16,
    /// The number of this loop's last connection made a member of its own.
    next_member: u64,
}

impl Roster {
    pub(super) fn new(node: Arc<str>, index: usize) -> Roster {
        Roster {
            presence: Presence::new(node),
            watchers: HashMap::new(),
            queries: HashMap::new(),
            next_query: 0,
            // Loops are counted in the tens; a server with more than 65 536
            // would name some loops' connections alike.
            index: u16::try_from(index).unwrap_or(u16::MAX),
            next_member: 0,
        }
    }

    /// The member a subscriber is present as: its subject, if it is a
    /// valid member name, else its connection (named `conn-NODE-LOOP-N`
    /// where it is shown).
    fn member(&mut self, subject: Option<&str>) -> Member {
        if let Some(subject) = subject.filter(|s| is_valid_member(s)) {
            return Member::from(subject);
        }
        self.next_member += 1;
        Member::Connection(ConnectionMember::new(self.index, self.next_member))
    }

    /// A subscriber joins `topic` (told to its sequencer), and watches it
    /// if it asked to: the member it is present as.
    pub(super) fn join(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        topic: &Arc<str>,
        (conn, transport): (ConnId, Transport),
        subject: Option<&str>,
        watches: bool,
    ) -> Member {
        let member = self.member(subject);
        Presence::post(&mut LoopContext { ctx }, topic, &member, true);
        if watches {
            self.watchers
                .entry(topic.clone())
                .or_default()
                .push((conn, transport));
        }
        member
    }

    /// A subscriber that joined as `member` leaves.
    pub(super) fn leave(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        topic: &Arc<str>,
        conn: ConnId,
        member: Option<&Member>,
    ) {
        if let Some(member) = member {
            Presence::post(&mut LoopContext { ctx }, topic, member, false);
        }
        if let Some(watchers) = self.watchers.get_mut(topic) {
            watchers.retain(|&(w, _)| w != conn);
            if watchers.is_empty() {
                self.watchers.remove(topic);
            }
        }
    }

    /// Asks the sequencer of `topic` who is present, for a request.
    pub(super) fn ask(&mut self, ctx: &mut Ctx<'_, HubMessage>, asker: Asker, topic: &str) {
        let token = self.next_query;
        self.next_query += 1;
        let topic: Arc<str> = Arc::from(topic);
        self.queries.insert(token, (asker, topic.clone()));
        let reply = ReplyTo {
            loop_index: ctx.loop_index().0,
            token,
        };
        Presence::query(&mut LoopContext { ctx }, &topic, reply);
    }

    /// `conn`'s query is answered otherwise, or abandoned.
    pub(super) fn forget(&mut self, conn: ConnId) {
        self.queries.retain(|_, (asker, _)| asker.conn() != conn);
    }

    /// A presence message from a loop: kept, a join or leave sent to this
    /// loop's watchers, or the answer to one of its queries returned for
    /// its request.
    pub(super) fn receive(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        broker: &mut dyn Broker,
        message: PresenceMessage,
    ) -> Option<Answer> {
        match self.presence.receive(message, broker, &mut LoopContext { ctx })? {
            PresenceMessage::Changed(change) => self.changed(ctx, &change),
            PresenceMessage::Members { token, members } => return self.answer(token, &members),
            other => log::debug!("hub: unexpected {other:?}"),
        }
        None
    }

    pub(super) fn tick(&mut self, ctx: &mut Ctx<'_, HubMessage>, broker: &mut dyn Broker) {
        self.presence.tick(broker, &mut LoopContext { ctx });
    }

    /// Members present on the topics this loop sequences.
    pub(super) fn count(&self) -> usize {
        self.presence.count()
    }

    /// A join or leave: to this loop's watchers of the topic, encoded once
    /// per transport. Held subscribers get it too (waiting for the
    /// topic's backlog): these events carry no id and are no part of the
    /// topic's order.
    fn changed(&self, ctx: &mut Ctx<'_, HubMessage>, change: &Change) {
        let Some(watchers) = self.watchers.get(&change.topic) else {
            return;
        };
        let (mut websocket, mut event_stream) = (Vec::new(), Vec::new());
        for &(conn, transport) in watchers {
            match transport {
                Transport::WebSocket => websocket.push(conn),
                Transport::EventStream => event_stream.push(conn),
                _ => {}
            }
        }
        if !websocket.is_empty() {
            ctx.send_encoded(websocket, &Encoded::ws(&Message::text(change.json())));
        }
        if !event_stream.is_empty() {
            let data = change.data();
            let event = tether_sse::Event::new().event(change.event_type()).data(&data);
            match Encoded::sse(&event) {
                Ok(encoded) => ctx.send_encoded(event_stream, &encoded),
                Err(e) => log::debug!("hub: a presence event was not encoded: {e}"),
            }
        }
    }

    fn answer(&mut self, token: u64, members: &Members) -> Option<Answer> {
        let (asker, topic) = self.queries.remove(&token)?;
        Some(match asker {
            Asker::Page(conn) => {
                let response = Response::json(200, members.json(&topic)).header("Cache-Control", "no-store");
                Answer::Page(conn, response)
            }
            Asker::Embedder(conn) => Answer::Embedder(conn, members.clone()),
            other => Answer::Api(other, topic, members.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_subjects_or_named_for_their_connection() {
        let node = "0a1b2c3d";
        let mut roster = Roster::new(Arc::from(node), 2);
        assert_eq!(roster.member(Some("alice")), Member::from("alice"));
        assert_eq!(&*roster.member(None).name(node), "conn-0a1b2c3d-2-1");
        assert_eq!(&*roster.member(Some("")).name(node), "conn-0a1b2c3d-2-2");
        assert_eq!(
            &*roster.member(Some("not a member\n")).name(node),
            "conn-0a1b2c3d-2-3"
        );
    }

    #[test]
    fn answers_go_to_the_query_that_asked_once() {
        let mut roster = Roster::new(Arc::from("n"), 0);
        assert!(roster.answer(0, &Presence::new("n").list("a")).is_none());
    }
}
