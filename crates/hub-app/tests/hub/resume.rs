//! Resuming after an id: exactly what followed it over SSE (by header and
//! by query), and the gap signal, over SSE and WebSocket, for an id the
//! hub no longer holds, never held, or has not reached yet.

use tether_testkit::{HttpConn, SseClient, WsClient};

use crate::helpers::{HubServer, json, publish, settings, ws_json};

#[test]
fn sse_subscribers_resume_exactly_by_header_and_by_query() {
    let server = HubServer::start(settings());
    let mut publisher = HttpConn::connect(server.addr);
    // (id, type, data) of everything published, in order.
    let mut published: Vec<(String, &str, String)> = Vec::new();
    for i in 1..=3 {
        let data = format!("item {i}\nsecond line");
        published.push((
            publish(&mut publisher, "news", Some("update"), &data),
            "update",
            data,
        ));
    }
    // Ids are epoch-seq, increasing.
    let seqs: Vec<u64> = published
        .iter()
        .map(|(id, ..)| id.split_once('-').unwrap().1.parse().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    let first = published[0].0.clone();

    for (target, header) in [
        (
            "/topics/news/events".to_owned(),
            format!("Last-Event-ID: {first}\r\n"),
        ),
        (format!("/topics/news/events?lastEventId={first}"), String::new()),
    ] {
        let mut stream = SseClient::connect(server.addr, &target, &header);
        assert_eq!(stream.response.status, 200);
        assert_eq!(stream.response.header("content-type"), Some("text/event-stream"));
        // Exactly what followed the id, in order...
        for (id, event_type, data) in &published[1..] {
            let event = stream.next_event();
            assert_eq!(
                (event.event_type(), event.data(), event.last_event_id()),
                (*event_type, data.as_str(), id.as_str()),
                "{target}"
            );
        }
        // ...then live, nothing in between.
        let live = publish(&mut publisher, "news", None, "live");
        let event = stream.next_event();
        assert_eq!(
            (event.event_type(), event.data(), event.last_event_id()),
            ("message", "live", live.as_str())
        );
        published.push((live, "message", "live".to_owned()));
    }
    // A fresh subscriber gets only what comes next.
    let mut fresh = SseClient::connect(server.addr, "/topics/news/events", "");
    let next = publish(&mut publisher, "news", None, "next");
    assert_eq!(fresh.next_event().last_event_id(), next);
}

#[test]
fn ids_that_are_too_old_or_unknown_get_the_gap_signal() {
    let mut settings = settings();
    settings.hub.max_backlog_events = 2;
    // The shortest resume wait (one second: one to two ticks), for the
    // id ahead of the topic at the end.
    settings.hub.resume_wait = std::time::Duration::from_secs(1);
    let server = HubServer::start(settings);
    let mut publisher = HttpConn::connect(server.addr);
    let ids: Vec<String> = (1..=5)
        .map(|i| publish(&mut publisher, "g", None, &format!("e{i}")))
        .collect();
    // Held: e4, e5; e3 was the last dropped.
    for requested in [
        ids[0].clone(),
        "0-0".to_owned(),
        "1-1".to_owned(),
        "garbage".to_owned(),
    ] {
        let mut stream = SseClient::connect(
            server.addr,
            "/topics/g/events",
            &format!("Last-Event-ID: {requested}\r\n"),
        );
        let gap = stream.next_event();
        assert_eq!(gap.event_type(), "gap", "for {requested}");
        assert_eq!(
            gap.last_event_id(),
            ids[2],
            "the gap moves the client to the last dropped id"
        );
        let data = json(gap.data().as_bytes());
        assert_eq!(data["requested"], requested.as_str());
        assert_eq!(data["first"], ids[3].as_str());
        assert_eq!(data["resume"], ids[2].as_str());
        assert_eq!(stream.next_event().data(), "e4");
        assert_eq!(stream.next_event().data(), "e5");
    }
    // The last dropped id itself is known: exactly e4 and e5, no gap.
    let mut stream = SseClient::connect(
        server.addr,
        "/topics/g/events",
        &format!("Last-Event-ID: {}\r\n", ids[2]),
    );
    assert_eq!(stream.next_event().data(), "e4");
    // Over WebSocket, a control message.
    let mut ws = WsClient::connect(server.addr, &format!("/topics/g/ws?lastEventId={}", ids[0]));
    let gap = ws_json(&mut ws);
    assert_eq!(gap["control"], "gap");
    assert_eq!(
        (gap["first"].as_str(), gap["resume"].as_str()),
        (Some(ids[3].as_str()), Some(ids[2].as_str()))
    );
    assert_eq!(ws_json(&mut ws)["data"], "e4");
    assert_eq!(ws_json(&mut ws)["data"], "e5");
    // An id ahead of the topic may be an event still on its way from
    // another loop: it is held, and gets the signal after the resume
    // wait (here one to two ticks) when nothing comes.
    let (epoch, _) = ids[4].split_once('-').unwrap();
    let ahead = format!("{epoch}-99");
    let mut ws = WsClient::connect(server.addr, &format!("/topics/g/ws?lastEventId={ahead}"));
    let gap = ws_json(&mut ws);
    assert_eq!(
        (gap["control"].as_str(), gap["requested"].as_str()),
        (Some("gap"), Some(ahead.as_str()))
    );
    assert_eq!(ws_json(&mut ws)["data"], "e4");
}
