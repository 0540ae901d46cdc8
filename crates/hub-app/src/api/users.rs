//! The server API's questions and actions that every loop answers:
//! presence, the topics a node knows, and what is done to one user's
//! connections (disconnect, unsubscribe, refresh). The loop that took the
//! request posts to every loop of the node (itself included) and keeps
//! the request here until each has answered.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use tether_hub::{
    ConnectionReport, HistoryAnswer, MAX_LISTED_CONNECTIONS, Members, TopicReport, Transport, json_string,
    merge_topics,
};
use tether_server::{ConnId, Response};

use super::parse::TopicsQuery;
use crate::access::{Access, Credential};

/// What a request waits for from the loops.
#[derive(Debug)]
pub(crate) enum Waiting {
    /// A user action: connections acted on so far; answered
    /// `{"<label>":N}`.
    Act { label: &'static str, total: usize },
    /// `GET /api/topics` (`one`: `None`) or `GET /api/topics/info`
    /// (`one`: the topic): every loop's topics, and who reads them.
    Topics {
        /// Boxed: a token's identity is large beside the other waits.
        reader: Box<Reader>,
        page: TopicsQuery,
        one: Option<Arc<str>>,
        reports: Vec<TopicReport>,
    },
    /// `GET /api/history` where the topic's sequencer holds the backlog
    /// or reads it from the bus: its page.
    History,
    /// `POST /api/presence/counts`: each topic's member count, as its
    /// sequencer answers.
    Counts {
        topics: Vec<Arc<str>>,
        counts: Vec<Option<usize>>,
    },
    /// `GET /api/connections`: each loop's connections of the subject.
    Connections {
        user: Arc<str>,
        found: Vec<ConnectionReport>,
    },
}

/// Which topics a credential may see listed: every one (the publish
/// token), or those a token may read.
#[derive(Debug)]
pub(crate) struct Reader {
    pub(crate) credential: Credential,
    pub(crate) access: Access,
}

impl Reader {
    fn may_read(&self, topic: &str) -> bool {
        self.access.may_read(&self.credential, topic)
    }
}

#[derive(Debug)]
struct GatheringRequest<C> {
    conn: C,
    /// Answers still to come.
    waiting: usize,
    what: Waiting,
}

/// This loop's API requests waiting for every loop's answer, by token.
#[derive(Debug)]
pub(crate) struct GatheringRequests<C = ConnId> {
    next: u64,
    by_token: HashMap<u64, GatheringRequest<C>>,
}

impl<C> Default for GatheringRequests<C> {
    fn default() -> Self {
        GatheringRequests {
            next: 0,
            by_token: HashMap::new(),
        }
    }
}

impl<C: Copy + Eq> GatheringRequests<C> {
    /// A request of `conn`'s that waits for `waiting` answers: its token.
    pub(crate) fn start(&mut self, conn: C, waiting: usize, what: Waiting) -> u64 {
        let token = self.next;
        self.next = self.next.wrapping_add(1);
        self.by_token
            .insert(token, GatheringRequest { conn, waiting, what });
        token
    }

    /// A loop acted on `count` connections: the answer, if it was the
    /// last loop waited for.
    pub(crate) fn done(&mut self, token: u64, count: usize) -> Option<(C, Response)> {
        let gather = self.by_token.get_mut(&token)?;
        if let Waiting::Act { total, .. } = &mut gather.what {
            *total += count;
        }
        self.one_answered(token)
    }

    /// A loop's topics.
    pub(crate) fn topics_of(&mut self, token: u64, topics: Vec<TopicReport>) -> Option<(C, Response)> {
        let gather = self.by_token.get_mut(&token)?;
        if let Waiting::Topics { reports, .. } = &mut gather.what {
            reports.extend(topics);
        }
        self.one_answered(token)
    }

    /// A loop's connections of a subject.
    pub(crate) fn connections_of(
        &mut self,
        token: u64,
        connections: Vec<ConnectionReport>,
    ) -> Option<(C, Response)> {
        let gather = self.by_token.get_mut(&token)?;
        if let Waiting::Connections { found, .. } = &mut gather.what {
            found.extend(connections);
        }
        self.one_answered(token)
    }

    /// Topic `index`'s members were counted.
    pub(crate) fn counted(&mut self, token: u64, index: usize, members: &Members) -> Option<(C, Response)> {
        let gather = self.by_token.get_mut(&token)?;
        if let Waiting::Counts { counts, .. } = &mut gather.what
            && let Some(slot @ None) = counts.get_mut(index)
        {
            *slot = Some(members.count);
            return self.one_answered(token);
        }
        None
    }

    /// The history page a sequencer wrote or its bus read, or why there
    /// is none.
    pub(crate) fn history_of(&mut self, token: u64, answer: HistoryAnswer) -> Option<(C, Response)> {
        let gather = self.by_token.remove(&token)?;
        let response = match answer {
            HistoryAnswer::Page(json) => super::history::history_response(json),
            HistoryAnswer::Unavailable => super::ApiError::new(
                503,
                "unavailable",
                "the bus that holds the topic's history cannot be read now",
            )
            .response(),
            _ => super::ApiError::new(
                501,
                "not_implemented",
                "this node's broker keeps no history of its topics",
            )
            .response(),
        };
        Some((gather.conn, response))
    }

    fn one_answered(&mut self, token: u64) -> Option<(C, Response)> {
        let gather = self.by_token.get_mut(&token)?;
        gather.waiting = gather.waiting.saturating_sub(1);
        if gather.waiting > 0 {
            return None;
        }
        let gather = self.by_token.remove(&token)?;
        Some((gather.conn, answer(gather.what)))
    }

    /// `conn` went away, or its request timed out: what it waited for,
    /// if it had a request waiting.
    pub(crate) fn forget(&mut self, conn: C) -> Option<Waiting> {
        let tokens: Vec<u64> = (self.by_token.iter())
            .filter(|(_, g)| g.conn == conn)
            .map(|(t, _)| *t)
            .collect();
        tokens
            .into_iter()
            .filter_map(|token| self.by_token.remove(&token))
            .map(|g| g.what)
            .last()
    }
}

/// The answer once every loop has answered.
fn answer(what: Waiting) -> Response {
    let body = match what {
        // Answered by `history_of`, never by a count of answers.
        Waiting::History => return super::ApiError::new(500, "internal", "no history page").response(),
        Waiting::Act { label, total } => format!("{{\"{label}\":{total}}}"),
        Waiting::Counts { topics, counts } => {
            let mut out = String::from("{\"counts\":{");
            for (i, (topic, count)) in topics.iter().zip(&counts).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}:{}", json_string(topic), count.unwrap_or(0));
            }
            out.push_str("}}");
            out
        }
        Waiting::Connections { user, found } => connections_json(&user, found),
        Waiting::Topics {
            reader,
            page,
            one,
            reports,
        } => {
            let merged = merge_topics(reports);
            if let Some(one) = one {
                return match merged.iter().find(|r| r.topic == one) {
                    Some(report) => Response::json(200, topic_json(report)),
                    None => {
                        super::ApiError::new(404, "unknown_topic", "this node has no such topic").response()
                    }
                };
            }
            return topics_page(&merged, &reader, &page);
        }
    };
    Response::json(200, body).header("Cache-Control", "no-store")
}

/// `{"user","connections":[{"loop","transport","topic","since",
/// "multiplexed"}],"count","truncated"}`: the oldest first, at most
/// [`MAX_LISTED_CONNECTIONS`] listed; `count` is how many there are.
fn connections_json(user: &str, mut found: Vec<ConnectionReport>) -> String {
    found.sort_by(|a, b| (a.since, a.loop_index, &a.topic).cmp(&(b.since, b.loop_index, &b.topic)));
    let count = found.len();
    let mut out = format!("{{\"user\":{},\"connections\":[", json_string(user));
    for (i, c) in found.iter().take(MAX_LISTED_CONNECTIONS).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let transport = match c.transport {
            Transport::WebSocket => "websocket",
            Transport::RawWebSocket => "websocket_raw",
            Transport::EventStream => "sse",
            Transport::Poll => "long_poll",
        };
        let since = c.since.map_or_else(|| "null".to_owned(), |s| s.to_string());
        let _ = write!(
            out,
            "{{\"loop\":{},\"transport\":\"{transport}\",\"topic\":{},\"since\":{since},\"multiplexed\":{}}}",
            c.loop_index,
            json_string(&c.topic),
            c.multiplexed
        );
    }
    let truncated = count > MAX_LISTED_CONNECTIONS;
    let _ = write!(out, "],\"count\":{count},\"truncated\":{truncated}}}");
    out
}

/// `{"topics":[...],"next":NAME|null}`: the topics after `page.after`
/// the reader may read, by name; `next` is the `after` of the next page.
fn topics_page(merged: &[TopicReport], reader: &Reader, page: &TopicsQuery) -> Response {
    let mut listed = merged
        .iter()
        .filter(|r| page.after.as_deref().is_none_or(|after| &*r.topic > after))
        .filter(|r| reader.may_read(&r.topic));
    let mut out = String::from("{\"topics\":[");
    let mut last = None;
    for (i, report) in listed.by_ref().take(page.limit).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&topic_json(report));
        last = Some(report.topic.clone());
    }
    out.push_str("],\"next\":");
    match (listed.next(), last) {
        (Some(_), Some(last)) => out.push_str(&json_string(&last)),
        _ => out.push_str("null"),
    }
    out.push('}');
    Response::json(200, out).header("Cache-Control", "no-store")
}

/// One topic: `{"topic","subscribers","websocket","event_stream",
/// "long_polls","backlog_events","backlog_bytes","last_id"}`.
fn topic_json(report: &TopicReport) -> String {
    let info = &report.info;
    format!(
        "{{\"topic\":{},\"subscribers\":{},\"websocket\":{},\"event_stream\":{},\"long_polls\":{},\
         \"backlog_events\":{},\"backlog_bytes\":{},\"last_id\":\"{}\"}}",
        json_string(&report.topic),
        info.websocket + info.event_stream + info.waiting + info.held,
        info.websocket,
        info.event_stream,
        info.waiting,
        info.events,
        info.bytes,
        info.head
    )
}

/// `GET /api/presence`'s answer: `{"topic","members","count","truncated"}`.
pub(crate) fn presence_json(topic: &str, members: &Members) -> Response {
    let mut out = format!("{{\"topic\":{},\"members\":[", json_string(topic));
    for (i, member) in members.members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(member));
    }
    let truncated = members.count > members.members.len();
    let _ = write!(out, "],\"count\":{},\"truncated\":{truncated}}}", members.count);
    Response::json(200, out).header("Cache-Control", "no-store")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc as StdArc;

    use super::*;
    use crate::settings::HubSettings;
    use tether_hub::{EventId, Presence};

    fn body(response: &Response) -> serde_json::Value {
        serde_json::from_slice(&response.body).unwrap()
    }

    #[test]
    fn an_action_is_answered_once_every_loop_has_counted() {
        let mut gathering = GatheringRequests::<u32>::default();
        let token = gathering.start(
            7,
            3,
            Waiting::Act {
                label: "closed",
                total: 0,
            },
        );
        assert!(gathering.done(token, 2).is_none());
        assert!(gathering.done(token, 0).is_none());
        let (conn, answer) = gathering.done(token, 1).unwrap();
        assert_eq!((conn, body(&answer)), (7, serde_json::json!({ "closed": 3 })));
        // Late or unknown answers are dropped.
        assert!(gathering.done(token, 1).is_none());
        // A request forgotten (timed out, or its client gone).
        let token = gathering.start(
            8,
            2,
            Waiting::Act {
                label: "refreshed",
                total: 0,
            },
        );
        assert!(gathering.forget(8).is_some());
        assert!(gathering.forget(8).is_none());
        assert!(gathering.done(token, 1).is_none());
    }

    #[test]
    fn counts_come_topic_by_topic() {
        let mut gathering = GatheringRequests::<u32>::default();
        let topics: Vec<Arc<str>> = vec![Arc::from("a"), Arc::from("b")];
        let waiting = Waiting::Counts {
            counts: vec![None; 2],
            topics,
        };
        let token = gathering.start(1, 2, waiting);
        let mut presence = Presence::new("n");
        presence.join(&Arc::from("b"), &tether_hub::Member::from("alice"));
        let members = presence.list("b");
        assert!(gathering.counted(token, 1, &members).is_none());
        // The same topic answered twice counts once.
        assert!(gathering.counted(token, 1, &members).is_none());
        let (_, answer) = gathering.counted(token, 0, &presence.list("a")).unwrap();
        assert_eq!(body(&answer), serde_json::json!({ "counts": { "a": 0, "b": 1 } }));
    }

    fn report(topic: &str, websocket: u32) -> TopicReport {
        let mut hub = tether_hub::Hub::<u32>::new(tether_hub::Config::default(), true);
        for conn in 0..websocket {
            let _ = hub.subscribe(topic, conn, tether_hub::Transport::WebSocket, None);
        }
        let (name, info) = hub.topics().next().unwrap();
        TopicReport {
            topic: name.clone(),
            info,
        }
    }

    #[test]
    fn topics_are_merged_paged_and_filtered() {
        let mut settings = HubSettings::default();
        let mut auth = crate::HubAuth::new(tether_auth::Keys::from_secret(&[7; 32]).unwrap());
        auth.private = tether_auth::Private::new(["room.*"]).unwrap();
        settings.auth = Some(auth);
        let access = Access::new(StdArc::new(settings));
        let topics = |credential, after: Option<&str>, limit| {
            let mut gathering = GatheringRequests::<u32>::default();
            let waiting = Waiting::Topics {
                reader: Box::new(Reader {
                    credential,
                    access: access.clone(),
                }),
                page: TopicsQuery {
                    after: after.map(str::to_owned),
                    limit,
                },
                one: None,
                reports: Vec::new(),
            };
            let token = gathering.start(1, 2, waiting);
            assert!(
                gathering
                    .topics_of(token, vec![report("b", 1), report("room.1", 1)])
                    .is_none()
            );
            let (_, answer) = gathering
                .topics_of(token, vec![report("b", 2), report("a", 1)])
                .unwrap();
            body(&answer)
        };
        let all = topics(Credential::Admin, None, 10);
        let names: Vec<&str> = all["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["topic"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "room.1"]);
        assert_eq!(all["topics"][1]["subscribers"], 3);
        assert_eq!(all["topics"][1]["websocket"], 3);
        assert_eq!(all["topics"][1]["last_id"], EventId::ZERO.to_string());
        assert_eq!(all["next"], serde_json::Value::Null);
        let first = topics(Credential::Admin, None, 2);
        assert_eq!(first["next"], "b");
        let rest = topics(Credential::Admin, Some("b"), 2);
        assert_eq!(rest["topics"].as_array().unwrap().len(), 1);
        assert_eq!(rest["next"], serde_json::Value::Null);
        // Nobody's credential reads nothing; the private topic is not
        // listed to a token that does not grant it.
        assert_eq!(
            topics(Credential::None, None, 10)["topics"],
            serde_json::json!([])
        );
        let token = |rights: &str| {
            let claims = format!(r#"{{"sub":"x","exp":4000000000,"tether":{rights}}}"#);
            Credential::Token(Box::new(tether_auth::identity_from_claims(&claims, 0).unwrap()))
        };
        let listed = |body: serde_json::Value| -> Vec<String> {
            body["topics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["topic"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(listed(topics(token(r#"{"sub":[]}"#), None, 10)), ["a", "b"]);
        assert_eq!(
            listed(topics(token(r#"{"sub":["room.*"]}"#), None, 10)),
            ["a", "b", "room.1"]
        );
    }

    #[test]
    fn presence_says_when_it_is_truncated() {
        let members = Members {
            members: vec![Arc::from("a")],
            count: 2,
        };
        let answer = body(&presence_json("t", &members));
        assert_eq!(
            answer,
            serde_json::json!({ "topic": "t", "members": ["a"], "count": 2, "truncated": true })
        );
    }
}
