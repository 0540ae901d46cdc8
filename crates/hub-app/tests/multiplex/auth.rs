//! What belongs to the connection: its credential. A token sent later
//! replaces the one held and ends only the subscriptions it no longer
//! grants; a token that does not verify changes nothing; one of another
//! subject, a token that expires or one that is revoked ends the
//! connection (1008), as on a per-topic socket.

use serde_json::json;
use tether_server::CloseCode;

use crate::helpers::{Hub, settings, token, token_expiring};
use crate::support::jwt::unix_now;

fn auth(token: &str) -> serde_json::Value {
    json!({ "type": "auth", "token": token })
}

#[test]
fn a_new_token_ends_only_what_it_no_longer_grants() {
    let hub = Hub::start(settings(), 2);
    let mut socket = hub.socket_with(&token("ann", &["room.1", "room.2"], &[]));
    socket.follow(&["room.1", "room.2", "open"]);
    socket.send(&auth(&token("ann", &["room.1"], &[])));
    assert_eq!(
        socket.next(),
        json!({ "control": "unsubscribed", "topic": "room.2", "reason": "topic no longer granted" })
    );
    assert_eq!(socket.next()["type"], "auth-ok");
    hub.publish("room.2", "not for ann");
    hub.publish("room.1", "for ann");
    assert_eq!(socket.event(), ("room.1".to_owned(), "for ann".to_owned()));
    // And what it grants now is what a subscribe is decided by.
    socket.subscribe("room.2");
    assert_eq!(socket.refused("room.2").0, 403);
    // A token that does not verify is an error; nothing changes.
    socket.send(&auth("not.a.token"));
    let answer = socket.next();
    assert_eq!(answer["control"], "error", "{answer}");
    hub.publish("open", "still");
    assert_eq!(socket.event(), ("open".to_owned(), "still".to_owned()));
    // Another subject's token closes the connection.
    socket.send(&auth(&token("bob", &["room.1"], &[])));
    let (_, code, reason) = socket.closed();
    assert_eq!(
        (code, reason.as_str()),
        (CloseCode::POLICY, "the token names another subject")
    );
}

#[test]
fn a_socket_without_a_credential_takes_a_token_later() {
    let hub = Hub::start(settings(), 1);
    let mut socket = hub.socket();
    socket.follow(&["open"]);
    socket.subscribe("room.9");
    assert_eq!(socket.refused("room.9").0, 401);
    socket.send(&auth(&token("cy", &["room.*"], &[])));
    assert_eq!(socket.next()["type"], "auth-ok");
    socket.follow(&["room.9"]);
    hub.publish("room.9", "private");
    assert_eq!(socket.event(), ("room.9".to_owned(), "private".to_owned()));
}

#[test]
fn an_expired_token_ends_the_connection_and_every_subscription() {
    let hub = Hub::start(settings(), 1);
    let mut socket = hub.socket_with(&token_expiring("dee", &["room.*"], 3));
    socket.follow(&["room.1", "open"]);
    let (texts, code, reason) = socket.closed();
    assert_eq!((code, reason.as_str()), (CloseCode::POLICY, "token expired"));
    // Warned first, as a per-topic socket is.
    assert!(texts.iter().any(|t| t.contains("auth-expiring")), "{texts:?}");
    // Its subscriptions are gone: the topics have no subscriber left.
    let (_, info) = hub.api_get("/api/topics/info?topic=room.1");
    assert_eq!(info["websocket"].as_u64().unwrap_or(0), 0, "{info}");
}

#[test]
fn a_revoked_token_ends_the_connection() {
    let hub = Hub::start(settings(), 2);
    let mut socket = hub.socket_with(&token("eve", &["room.*"], &[]));
    socket.follow(&["room.1", "open"]);
    let (status, _) = hub.api("revoke", &json!({ "subject": "eve", "before": unix_now() + 5 }));
    assert_eq!(status, 200);
    let (_, code, reason) = socket.closed();
    assert_eq!((code, reason.as_str()), (CloseCode::POLICY, "token revoked"));
}

#[test]
fn the_token_s_join_claim_subscribes_as_the_socket_opens_with_its_rights() {
    let hub = Hub::start(settings(), 1);
    let joining = crate::support::jwt::sign(
        crate::helpers::SECRET,
        &json!({ "sub": "fay", "exp": unix_now() + 600,
                 "tether": { "sub": ["user.{sub}.*"], "join": ["user.{sub}.inbox", "room.2"] } }),
    );
    let mut socket = hub.socket_with(&joining);
    assert_eq!(
        socket.next(),
        json!({ "control": "subscribed", "topic": "user.fay.inbox", "by": "server" })
    );
    // Joined as if asked: a topic the token does not grant is refused.
    assert_eq!(socket.refused("room.2").0, 403);
    hub.publish("user.fay.inbox", "welcome");
    assert_eq!(
        socket.event(),
        ("user.fay.inbox".to_owned(), "welcome".to_owned())
    );
}
