use super::super::messages::parse_message;
use super::*;

#[test]
fn json_padded_messages_are_exact_readable_and_compressible() {
    let mut out = Vec::new();
    for seq in [1, 2, 1000] {
        write_message(&mut out, seq, 77, 1024, true);
        assert_eq!(out.len(), 1024);
        assert_eq!(parse_message(&out, true), Some((seq, 77)));
        assert!(out[10..].starts_with(b"{\"id\":") || out.contains(&b'{'));
        let frame = tether_deflate::shared_frame(OpCode::Text, &out).expect("compressible");
        assert!(frame.len() < out.len() / 2, "{} of {}", frame.len(), out.len());
    }
    // Messages differ with their number.
    let mut other = Vec::new();
    write_message(&mut other, 3, 77, 1024, true);
    assert_ne!(out[12..], other[12..]);
    // Verified whole: one byte off is unreadable.
    let mut tally = Tally::raw();
    tally.verify = Some((1024, true));
    assert!(tally.deliver(&other).is_some() || tally.out_of_order == 1);
    other[500] ^= 1;
    assert_eq!(tally.deliver(&other), None);
    assert_eq!(tally.garbled, 1);
}

#[test]
fn messages_round_trip() {
    let mut out = Vec::new();
    write_message(&mut out, 42, 123_456, 64, false);
    assert_eq!(out.len(), 64);
    assert!(out.starts_with(b"42 123456 ...."));
    assert_eq!(parse_message(&out, false), Some((42, 123_456)));
    write_message(&mut out, 7, 9, 1, false);
    assert_eq!(parse_message(&out, false), Some((7, 9)));
    assert_eq!(parse_message(b"hello", false), None);
}

#[test]
fn tally_sees_gaps_repeats_and_garbage() {
    let msg = |seq| {
        let mut v = Vec::new();
        write_message(&mut v, seq, 1, 16, false);
        v
    };
    let mut t = Tally::new();
    for seq in 1..=3 {
        t.deliver(&msg(seq));
    }
    assert!(t.complete(3));
    assert!(!t.complete(4));

    let mut gap = Tally::new();
    gap.deliver(&msg(1));
    gap.deliver(&msg(3));
    assert!(!gap.complete(3));
    assert_eq!(gap.out_of_order, 1);

    let mut repeat = Tally::new();
    for seq in [1, 2, 2] {
        repeat.deliver(&msg(seq));
    }
    assert!(!repeat.complete(2));

    let mut garbage = Tally::new();
    garbage.deliver(&msg(1));
    garbage.deliver(b"nonsense");
    assert!(!garbage.complete(1));
}

#[test]
fn raw_subscribers_take_no_envelope() {
    let mut text = Vec::new();
    write_message(&mut text, 1, 345, 40, false);
    let event = format!(
        r#"{{"topic":"chat.t","id":"1-1","event":"message","data":"{}"}}"#,
        String::from_utf8(text.clone()).unwrap()
    );
    let mut raw = Tally::raw();
    raw.deliver(event.as_bytes());
    assert_eq!(raw.garbled, 1);
    let mut raw = Tally::raw();
    raw.deliver(&text);
    assert!(raw.complete(1));
    let mut any = Tally::new();
    any.deliver(event.as_bytes());
    assert!(any.complete(1));
}

#[test]
fn event_ids_must_increase() {
    let mut t = Tally::new();
    t.event_id("1");
    t.event_id("2");
    assert_eq!(t.bad_ids, 0);
    t.event_id("2");
    t.event_id("x");
    assert_eq!(t.bad_ids, 2);

    let mut hub = Tally::new();
    for id in ["1718000000000-9", "1718000000000-10", "1718000000001-1"] {
        hub.event_id(id);
    }
    assert_eq!(hub.bad_ids, 0);
    hub.event_id("1718000000000-11");
    hub.event_id("1718000000001-x");
    assert_eq!(hub.bad_ids, 2);
}

#[test]
fn hub_events_in_json_carry_the_message() {
    let mut text = Vec::new();
    write_message(&mut text, 12, 345, 40, false);
    let event = format!(
        r#"{{"topic":"chat.t","id":"1-12","event":"message","data":"{}"}}"#,
        String::from_utf8(text).unwrap()
    );
    assert_eq!(parse_message(event.as_bytes(), false), Some((12, 345)));
    let gap = br#"{"control":"gap","topic":"chat.t","requested":"1-1","first":null,"resume":"0-0"}"#;
    assert_eq!(parse_message(gap, false), None);
    let mut t = Tally::new();
    t.deliver(gap);
    assert_eq!(
        t.first_garbled.as_deref(),
        Some(std::str::from_utf8(gap).unwrap())
    );
}

#[test]
fn envelopes_carry_the_message_as_data() {
    let mut out = Vec::new();
    write_envelope(&mut out, 9, 1234, 64);
    let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let data = value["data"].as_str().unwrap();
    assert_eq!(data.len(), 64);
    assert_eq!(parse_message(data.as_bytes(), true), Some((9, 1234)));
    assert_eq!(value.as_object().unwrap().len(), 1);
}

#[test]
fn acks_are_timed_in_order_and_their_ids_checked() {
    let mut acks = Acks::new();
    acks.sent(1_000);
    acks.sent(2_000);
    assert_eq!(acks.in_flight(), 2);
    assert!(!acks.take(
        br#"{"topic":"t","id":"5-1","event":"message","data":"1 1 ."}"#,
        9_000
    ));
    assert!(!acks.take(br#"{"control":"error","error":"no"}"#, 9_000));
    assert!(acks.take(br#"{"control":"published","id":"5-1"}"#, 11_000));
    assert!(acks.take(br#"{"control":"published","id":"5-2"}"#, 32_000));
    assert_eq!((acks.count, acks.bad, acks.in_flight()), (2, 0, 0));
    assert_eq!(acks.hist.len(), 2);
    // 10 µs and 30 µs.
    assert!(
        acks.hist.min() >= 9_990 && acks.hist.max() <= 30_100,
        "{:?}",
        acks.hist
    );
    assert_eq!(acks.last_ns, 32_000);
    // One with no publish waiting, one going back, one unreadable.
    assert!(acks.take(br#"{"control":"published","id":"5-3"}"#, 40_000));
    acks.sent(50_000);
    acks.sent(50_000);
    assert!(acks.take(br#"{"control":"published","id":"5-2"}"#, 60_000));
    assert!(acks.take(br#"{"control":"published","id":"x"}"#, 60_000));
    assert_eq!((acks.count, acks.bad), (5, 3));
}

#[test]
fn the_publisher_takes_acks_apart_from_its_own_events() {
    let mut wire = Vec::new();
    let mut push = |text: &[u8]| {
        tether_frame::encode_frame(
            &mut wire,
            tether_frame::FrameHeader::new(true, OpCode::Text, 0),
            text,
        )
        .unwrap();
    };
    push(br#"{"control":"published","id":"7-1"}"#);
    push(br#"{"topic":"chat.t","id":"7-1","event":"message","data":"1 5 ...."}"#);
    push(br#"{"control":"published","id":"7-2"}"#);
    for step in [1, 9, wire.len()] {
        let mut sub = Sub::new(Kind::WebSocket, false);
        let mut acks = Acks::new();
        acks.sent(0);
        acks.sent(0);
        sub.acks = Some(acks);
        assert_eq!(feed_in_steps(&mut sub, &wire, step), 1, "step {step}");
        assert!(sub.tally.complete(1));
        let acks = sub.acks.unwrap();
        assert_eq!((acks.count, acks.bad, acks.in_flight()), (2, 0, 0));
    }
    // Without acks asked for, an acknowledgement is unreadable.
    let mut sub = Sub::new(Kind::WebSocket, false);
    assert_eq!(feed_in_steps(&mut sub, &wire, wire.len()), 3);
    assert_eq!(sub.tally.garbled, 2);
}

fn ws_stream(seqs: &[u64]) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut text = Vec::new();
    for &seq in seqs {
        write_message(&mut text, seq, 5, 300, false);
        tether_frame::encode_frame(
            &mut wire,
            tether_frame::FrameHeader::new(true, OpCode::Text, 0),
            &text,
        )
        .unwrap();
    }
    wire
}

fn feed_in_steps(sub: &mut Sub, bytes: &[u8], step: usize) -> u64 {
    feed_deflated(sub, bytes, step, None).unwrap()
}

fn feed_deflated(
    sub: &mut Sub,
    bytes: &[u8],
    step: usize,
    mut deflate: Option<tether_deflate::Deflate>,
) -> io::Result<u64> {
    let mut ws = wire::EventReader::new();
    let mut pong = Vec::new();
    let mut hist = report::latency_histogram();
    let mut delivered = 0;
    let start = Instant::now();
    let clock = Clock { start, base_ns: 0 };
    for piece in bytes.chunks(step) {
        consume(
            piece,
            sub,
            &mut ws,
            deflate.as_mut(),
            &mut pong,
            &mut hist,
            clock,
            start,
            &mut delivered,
        )?;
    }
    Ok(delivered)
}

#[test]
fn compressed_messages_are_inflated_and_checked_whole() {
    let mut wire = Vec::new();
    let mut text = Vec::new();
    for seq in 1..=4 {
        write_message(&mut text, seq, 5, 1024, true);
        wire.extend(tether_deflate::shared_frame(OpCode::Text, &text).expect("compressible"));
    }
    let params = tether_deflate::Params {
        server_no_context_takeover: true,
        ..tether_deflate::Params::default()
    };
    let new_sub = || {
        let mut sub = Sub::new(Kind::WebSocket, true);
        sub.tally.verify = Some((1024, true));
        sub
    };
    for step in [1, 100, 333, wire.len()] {
        let mut sub = new_sub();
        let deflate = tether_deflate::ClientOffer::new().extension(params);
        assert_eq!(feed_deflated(&mut sub, &wire, step, Some(deflate)).unwrap(), 4);
        assert!(sub.tally.complete(4), "step {step}: {:?}", sub.tally);
        assert_eq!(sub.compressed, 4);
    }
    // Without permessage-deflate, a compressed message is an error.
    assert!(feed_deflated(&mut new_sub(), &wire, wire.len(), None).is_err());
}

#[test]
fn websocket_subscriber_reads_messages_split_anywhere() {
    let wire = ws_stream(&[1, 2, 3, 4]);
    for step in [1, 7, 150, 302, 1000, wire.len()] {
        let mut sub = Sub::new(Kind::WebSocket, false);
        assert_eq!(feed_in_steps(&mut sub, &wire, step), 4, "step {step}");
        assert!(sub.tally.complete(4), "step {step}: {:?}", sub.tally);
    }
}

#[test]
fn event_stream_subscriber_checks_order_and_ids() {
    let stream = b": hi\n\nid: 1\nevent: message\ndata: 1 5 ..\n\nid: 2\nevent: message\ndata: 2 6 ..\n\n";
    for step in [1, 5, stream.len()] {
        let mut sub = Sub::new(Kind::EventStream, false);
        assert_eq!(feed_in_steps(&mut sub, stream, step), 2);
        assert!(sub.tally.complete(2), "{:?}", sub.tally);
    }
    let skipped = b"id: 1\ndata: 1 5\n\nid: 3\ndata: 3 6\n\n";
    let mut sub = Sub::new(Kind::EventStream, false);
    feed_in_steps(&mut sub, skipped, 4);
    assert!(!sub.tally.complete(2));
}

#[test]
fn a_counting_process_woken_after_the_end_counts_what_was_due() {
    let start = Instant::now();
    let at = |ms: u64| start + Duration::from_millis(ms);
    let end = at(3000);
    // Woken after the end: the publisher publishes no more; a process
    // that only counts still counts the messages due at 1 s and 2 s,
    // not one due at or after the end.
    assert!(!is_due(at(2000), at(9000), end, false));
    assert!(is_due(at(2000), at(9000), end, true));
    assert!(!is_due(at(3000), at(9000), end, true));
    // Before the end the two agree: what is due, not what is to come.
    for counting_only in [false, true] {
        assert!(is_due(at(1000), at(1500), end, counting_only));
        assert!(!is_due(at(2000), at(1500), end, counting_only));
    }
}
