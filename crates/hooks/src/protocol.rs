//! The requests sent to the backend, one type per hook, and how each is
//! written as the JSON body of a `POST`.

use std::collections::BTreeMap;

use serde::Serialize;

/// The questions a backend can be asked: four decisions, the client's
/// calls, and a topic's current value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookKind {
    /// Who is this connection: its subject, rights and expiry.
    Connect,
    /// May this subject read this topic.
    Subscribe,
    /// May this subject publish this payload (or a rewritten one).
    Publish,
    /// A later expiry for a connection about to expire.
    Refresh,
    /// A client's call (a method and its data): the answer is the
    /// result, given to the caller alone.
    Rpc,
    /// The current value of a latest-value topic that has no event yet:
    /// the answer's data is published to it.
    Latest,
}

impl HookKind {
    /// All of them, in order.
    pub const ALL: [HookKind; 6] = [
        HookKind::Connect,
        HookKind::Subscribe,
        HookKind::Publish,
        HookKind::Refresh,
        HookKind::Rpc,
        HookKind::Latest,
    ];

    /// The lower-case name (`connect`, ...), as configuration files say it.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Connect => "connect",
            HookKind::Subscribe => "subscribe",
            HookKind::Publish => "publish",
            HookKind::Refresh => "refresh",
            HookKind::Rpc => "rpc",
            HookKind::Latest => "latest",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            HookKind::Connect => 0,
            HookKind::Subscribe => 1,
            HookKind::Publish => 2,
            HookKind::Refresh => 3,
            HookKind::Rpc => 4,
            HookKind::Latest => 5,
        }
    }
}

/// The transport a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// A WebSocket: `"websocket"`.
    #[serde(rename = "websocket")]
    WebSocket,
    /// Server-Sent Events: `"sse"`.
    Sse,
    /// Long polling: `"poll"`.
    Poll,
    /// A plain HTTP request (such as a publish by `POST`): `"http"`.
    Http,
    /// A presence request (who is on a topic): `"presence"`.
    Presence,
}

/// The body of a connect hook: who is this connection?
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectRequest {
    /// How the connection came in.
    pub transport: Transport,
    /// The topic named by the request's path, if any (JSON `null` if not).
    pub topic: Option<String>,
    /// The peer's IP address, as text (`"203.0.113.9"`), when the asker
    /// knows it (JSON `null` if not). The tether hub passes the TCP or
    /// QUIC peer's: behind a proxy, the proxy's (forward its
    /// `x-forwarded-for` header for the client's).
    pub remote: Option<String>,
    /// The forwarded header fields: only those the configuration names,
    /// names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The forwarded cookies: only those the configuration names.
    pub cookies: BTreeMap<String, String>,
}

/// The body of a subscribe hook: may this subject read this topic?
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscribeRequest {
    /// The connection's subject (JSON `null` for an anonymous one).
    pub subject: Option<String>,
    /// The topic.
    pub topic: String,
    /// How the subscriber is connected.
    pub transport: Transport,
}

/// The body of a publish hook: may this subject publish this, and as what?
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishRequest {
    /// The publisher's subject (JSON `null` for an anonymous one).
    pub subject: Option<String>,
    /// The topic.
    pub topic: String,
    /// The payload.
    pub data: String,
    /// The event type, if the publish names one (left out of the JSON if
    /// not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// `Some("base64")` for a binary publish, whose `data` is then its
    /// bytes in standard base64 (an allow's replacement `data` must be
    /// base64 too); left out of the JSON for text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<&'static str>,
}

/// The body of a refresh hook: a later expiry for this subject's
/// connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefreshRequest {
    /// The connection's subject.
    pub subject: String,
    /// How the connection is connected.
    pub transport: Transport,
}

/// The body of an rpc hook: a client calls `method` with `data`; the
/// answer's `data` goes back to that caller alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RpcRequest {
    /// The caller's subject (JSON `null` for an anonymous one).
    pub subject: Option<String>,
    /// How the caller is connected (`websocket` for a multiplexed
    /// socket's call, `http` for `POST /rpc`).
    pub transport: Transport,
    /// The method called: a name the asker bounded.
    pub method: String,
    /// The call's data, any JSON value (`null` when the call had none).
    pub data: serde_json::Value,
}

/// The body of a latest hook: what is this topic's current value? Asked
/// when a subscriber arrives from nowhere at a latest-value topic that
/// has no event; an allow's `data` (and `event`, if it names one) is
/// published to the topic, as the backend's own publish would be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LatestRequest {
    /// The topic.
    pub topic: String,
}

/// One question for the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookRequest {
    /// See [`ConnectRequest`].
    Connect(ConnectRequest),
    /// See [`SubscribeRequest`].
    Subscribe(SubscribeRequest),
    /// See [`PublishRequest`].
    Publish(PublishRequest),
    /// See [`RefreshRequest`].
    Refresh(RefreshRequest),
    /// See [`RpcRequest`].
    Rpc(RpcRequest),
    /// See [`LatestRequest`].
    Latest(LatestRequest),
}

/// A request with the `"id"` member every body carries.
#[derive(Serialize)]
struct WithId<'a, T> {
    id: &'a str,
    #[serde(flatten)]
    request: &'a T,
}

impl HookRequest {
    /// Which hook answers it.
    pub fn kind(&self) -> HookKind {
        match self {
            HookRequest::Connect(_) => HookKind::Connect,
            HookRequest::Subscribe(_) => HookKind::Subscribe,
            HookRequest::Publish(_) => HookKind::Publish,
            HookRequest::Refresh(_) => HookKind::Refresh,
            HookRequest::Rpc(_) => HookKind::Rpc,
            HookRequest::Latest(_) => HookKind::Latest,
        }
    }

    /// The JSON body, with `"id": "<id>"` first.
    pub fn to_json(&self, id: u64) -> Vec<u8> {
        let id = id.to_string();
        let written = match self {
            HookRequest::Connect(r) => serde_json::to_vec(&WithId { id: &id, request: r }),
            HookRequest::Subscribe(r) => serde_json::to_vec(&WithId { id: &id, request: r }),
            HookRequest::Publish(r) => serde_json::to_vec(&WithId { id: &id, request: r }),
            HookRequest::Refresh(r) => serde_json::to_vec(&WithId { id: &id, request: r }),
            HookRequest::Rpc(r) => serde_json::to_vec(&WithId { id: &id, request: r }),
            HookRequest::Latest(r) => serde_json::to_vec(&WithId { id: &id, request: r }),
        };
        // Strings, maps of strings and enums of unit variants always
        // serialize; an empty body would be answered Malformed anyway.
        written.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_the_id_and_the_documented_members() {
        let connect = HookRequest::Connect(ConnectRequest {
            transport: Transport::WebSocket,
            topic: None,
            remote: Some("203.0.113.9".into()),
            headers: [("x-user".to_string(), "7".to_string())].into(),
            cookies: BTreeMap::new(),
        });
        assert_eq!(
            String::from_utf8(connect.to_json(12)).unwrap(),
            r#"{"id":"12","transport":"websocket","topic":null,"remote":"203.0.113.9","headers":{"x-user":"7"},"cookies":{}}"#
        );
        let publish = HookRequest::Publish(PublishRequest {
            subject: Some("u1".into()),
            topic: "chat.7".into(),
            data: "hi".into(),
            event: None,
            encoding: None,
        });
        assert_eq!(
            String::from_utf8(publish.to_json(3)).unwrap(),
            r#"{"id":"3","subject":"u1","topic":"chat.7","data":"hi"}"#
        );
        let binary = HookRequest::Publish(PublishRequest {
            subject: None,
            topic: "pix".into(),
            data: "AP8=".into(),
            event: None,
            encoding: Some("base64"),
        });
        assert_eq!(
            String::from_utf8(binary.to_json(4)).unwrap(),
            r#"{"id":"4","subject":null,"topic":"pix","data":"AP8=","encoding":"base64"}"#
        );
        let refresh = HookRequest::Refresh(RefreshRequest {
            subject: "u1".into(),
            transport: Transport::Sse,
        });
        assert_eq!(
            String::from_utf8(refresh.to_json(4)).unwrap(),
            r#"{"id":"4","subject":"u1","transport":"sse"}"#
        );
        assert_eq!(refresh.kind(), HookKind::Refresh);
        let rpc = HookRequest::Rpc(RpcRequest {
            subject: None,
            transport: Transport::WebSocket,
            method: "cart.add".into(),
            data: serde_json::json!({"sku": 7}),
        });
        assert_eq!(
            String::from_utf8(rpc.to_json(5)).unwrap(),
            r#"{"id":"5","subject":null,"transport":"websocket","method":"cart.add","data":{"sku":7}}"#
        );
        assert_eq!(rpc.kind(), HookKind::Rpc);
        let latest = HookRequest::Latest(LatestRequest {
            topic: "score.cup".into(),
        });
        assert_eq!(
            String::from_utf8(latest.to_json(6)).unwrap(),
            r#"{"id":"6","topic":"score.cup"}"#
        );
        assert_eq!(latest.kind(), HookKind::Latest);
    }
}
