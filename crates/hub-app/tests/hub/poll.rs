//! Long polls: answered at once when events are there, else held until
//! one comes or the timeout.

use tether_testkit::HttpConn;

use crate::helpers::{HubServer, json, publish, request, settings};

#[test]
fn long_polls_answer_at_once_or_when_an_event_arrives() {
    let server = HubServer::start(settings());
    let mut publisher = HttpConn::connect(server.addr);
    // Nothing yet: held until the next event, published from elsewhere.
    let mut poll = HttpConn::connect(server.addr);
    poll.request("GET", "/topics/p/poll?since=0-0", "");
    let first = publish(&mut publisher, "p", None, "first");
    let answer = poll.response();
    assert_eq!(answer.status, 200);
    let body = json(&answer.body);
    assert_eq!(body["topic"], "p");
    assert_eq!(body["events"][0]["data"], "first");
    assert_eq!(body["events"][0]["id"], first.as_str());
    assert_eq!(body["next"], first.as_str());
    assert!(body["gap"].is_null());
    // Events already there are answered at once, on the same connection.
    let second = publish(&mut publisher, "p", None, "second");
    let third = publish(&mut publisher, "p", None, "third");
    poll.request("GET", &format!("/topics/p/poll?since={first}"), "");
    let body = json(&poll.response().body);
    let ids: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second.as_str(), third.as_str()]);
    assert_eq!(body["next"], third.as_str());
    // Up to date and nothing comes: the timeout answers, next unchanged.
    poll.request("GET", &format!("/topics/p/poll?since={third}&timeout=0.2"), "");
    let body = json(&poll.response().body);
    assert_eq!(body["events"].as_array().unwrap().len(), 0);
    assert_eq!(body["next"], third.as_str());
    // No since: the timeout's next is the topic's head.
    poll.request("GET", "/topics/p/poll?timeout=0", "");
    assert_eq!(json(&poll.response().body)["next"], third.as_str());
    // An unknown id: the gap field, and everything held.
    poll.request("GET", "/topics/p/poll?since=7-7", "");
    let body = json(&poll.response().body);
    assert_eq!(body["gap"]["requested"], "7-7");
    assert_eq!(body["gap"]["resume"], "0-0");
    assert_eq!(body["events"].as_array().unwrap().len(), 3);
    // A poller that goes away is forgotten; the next one still works.
    let mut gone = HttpConn::connect(server.addr);
    gone.request("GET", &format!("/topics/p/poll?since={third}"), "");
    drop(gone);
    poll.request("GET", &format!("/topics/p/poll?since={third}"), "");
    let fourth = publish(&mut publisher, "p", None, "fourth");
    assert_eq!(json(&poll.response().body)["next"], fourth.as_str());
    // Only GET.
    let refused = request(
        &mut HttpConn::connect(server.addr),
        "POST",
        "/topics/p/poll",
        "",
        b"",
    );
    assert_eq!(refused.status, 405);
}
