//! Chat rooms end to end: fan-out over WebSocket and Server-Sent Events,
//! room isolation, and slow consumers that must not hold anyone up.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use tether_testkit as common;

use std::io::{ErrorKind, Write};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{SseClient, TestServer, WsClient, config};
use tether_apps::{Chat, Echo};
use tether_frame::{FrameHeader, OpCode};
use tether_server::{App, CloseReason, ConnId, Ctx, MessageRef, Request, Route};

#[test]
fn a_message_reaches_its_room_over_both_transports_and_nobody_else() {
    let (server, _) = recording_chat(1 << 20);
    let mut a1 = WsClient::connect(server.addr, "/chat?room=a");
    let mut a2 = WsClient::connect(server.addr, "/chat?room=a");
    let mut a_events = SseClient::connect(server.addr, "/chat/events?room=a", "");
    assert_eq!(a_events.response.status, 200);
    let mut b1 = WsClient::connect(server.addr, "/chat?room=b");

    a1.send_text("hello room a");
    assert_eq!(a1.recv_text(), "hello room a", "the sender gets its own message");
    assert_eq!(a2.recv_text(), "hello room a");
    let event = a_events.next_event();
    assert_eq!(event.event_type(), "message");
    assert_eq!(event.data(), "hello room a");
    assert_eq!(event.last_event_id(), "1");

    // Room b did not get it: its first message is its own.
    b1.send_text("hello room b");
    assert_eq!(b1.recv_text(), "hello room b");

    // Nor did room a get b's: the next thing on the a stream is a's next.
    a2.send_text("second in a");
    assert_eq!(a1.recv_text(), "second in a");
    assert_eq!(a2.recv_text(), "second in a");
    let event = a_events.next_event();
    assert_eq!((event.data(), event.last_event_id()), ("second in a", "2"));

    // Binary messages are not chat: ignored, the room goes on.
    a1.send_binary(b"not chat");
    a1.send_text("third");
    assert_eq!(a1.recv_text(), "third");
    assert_eq!(a2.recv_text(), "third");

    // A member that leaves no longer counts; the others carry on.
    a2.close(tether_server::CloseCode::NORMAL, "");
    a2.recv_close();
    a2.expect_eof();
    a1.send_text("after a2 left");
    assert_eq!(a1.recv_text(), "after a2 left");
    assert_eq!(a_events.next_event().data(), "third");
    assert_eq!(a_events.next_event().data(), "after a2 left");

    drop((a1, a2, a_events, b1));
    server.shutdown();
}

/// Shared record of why each session ended.
type Log = Arc<Mutex<Vec<CloseReason>>>;

/// `apps::Chat` on `/chat` and `/chat/events`, recording why connections
/// end so that a test knows when one was cut loose.
struct RecordingChat {
    chat: Chat,
    log: Log,
}

impl App for RecordingChat {
    type Post = ();
    type State = ();

    fn route(&mut self, request: &Request<'_>) -> Route {
        match request.path() {
            "/chat" => Route::WebSocket(()),
            "/chat/events" => Route::EventStream(()),
            _ => Route::NotFound,
        }
    }

    fn on_open(&mut self, _: &mut Ctx<'_>, conn: ConnId, _: &mut (), request: &Request<'_>) {
        self.chat.join(conn, request);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _: &mut (), message: MessageRef<'_>) {
        self.chat.message(ctx, conn, message);
    }

    fn on_close(&mut self, _: &mut Ctx<'_>, conn: ConnId, _: &mut (), reason: CloseReason) {
        self.chat.leave(conn, &reason);
        self.log.lock().unwrap().push(reason);
    }

    fn on_subscribe(
        &mut self,
        _: &mut Ctx<'_>,
        conn: ConnId,
        _: &mut (),
        request: &Request<'_>,
        _: Option<&str>,
    ) {
        self.chat.subscribe(conn, request);
    }

    fn on_unsubscribe(&mut self, _: &mut Ctx<'_>, conn: ConnId, _: &mut (), reason: CloseReason) {
        self.chat.leave(conn, &reason);
        self.log.lock().unwrap().push(reason);
    }
}

fn recording_chat(max_output: usize) -> (TestServer, Log) {
    let log = Log::default();
    let mut config = config();
    config.max_output = max_output;
    let app = RecordingChat {
        chat: Chat::new(),
        log: log.clone(),
    };
    (TestServer::start(config, app), log)
}

#[test]
fn a_member_that_vanishes_without_closing_leaves_the_room_at_once() {
    let (server, log) = recording_chat(1 << 20);
    let mut stays = WsClient::connect(server.addr, "/chat?room=v");
    let mut vanishes = WsClient::connect(server.addr, "/chat?room=v");
    // The message and the end of the stream arrive together.
    vanishes.send_text("last words");
    common::shutdown_write(&vanishes.stream);
    assert_eq!(stays.recv_text(), "last words");
    // The server notices the end now, not at the idle timeout (a minute
    // away), and drops the connection: its own copy may or may not have
    // gone out first.
    loop {
        match vanishes.next_event() {
            Some(tether_ws::Event::Message(m)) => assert_eq!(m.as_text(), Some("last words")),
            None => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(*log.lock().unwrap(), [CloseReason::Dropped]);
    stays.send_text("still here");
    assert_eq!(stays.recv_text(), "still here");
    drop((stays, vanishes));
    server.shutdown();
}

/// Chat message number `i`, `len` bytes long.
fn numbered(i: usize, len: usize) -> String {
    let mut text = format!("message {i:06} ");
    while text.len() < len {
        text.push(char::from(b'a' + (i % 26) as u8));
    }
    text
}

#[test]
fn a_member_that_never_reads_is_cut_loose_and_the_others_get_everything() {
    const SIZE: usize = 16 * 1024;
    let (server, log) = recording_chat(64 * 1024);
    let mut sender = WsClient::connect(server.addr, "/chat?room=r");
    let mut reader = WsClient::connect(server.addr, "/chat?room=r");
    let mut events = SseClient::connect(server.addr, "/chat/events?room=r", "");
    // These two never read a byte.
    let mut stuck_ws = WsClient::connect(server.addr, "/chat?room=r");
    let mut stuck_sse = SseClient::connect(server.addr, "/chat/events?room=r", "");

    // Lock step: each message is read by every healthy member before the
    // next is sent, so they never have more than one message pending. The
    // stuck members' socket buffers fill, then their queues pass the limit.
    let cut_loose = |log: &Log| {
        let log = log.lock().unwrap();
        log.iter().filter(|r| **r == CloseReason::SlowConsumer).count()
    };
    let mut sent = 0;
    let mut extra = 20;
    while extra > 0 {
        assert!(
            sent < 4000,
            "64 MiB went out and the stuck members are still there"
        );
        let text = numbered(sent, SIZE);
        sender.send_text(&text);
        assert!(sender.recv_text() == text, "sender, message {sent}");
        assert!(reader.recv_text() == text, "reader, message {sent}");
        let event = events.next_event();
        assert!(event.data() == text, "event stream, message {sent}");
        assert_eq!(event.last_event_id(), (sent + 1).to_string());
        sent += 1;
        if cut_loose(&log) == 2 {
            extra -= 1;
        }
    }
    assert_eq!(
        *log.lock().unwrap(),
        [CloseReason::SlowConsumer, CloseReason::SlowConsumer]
    );

    // What the stuck members got is a prefix, in order, then the end: for
    // the WebSocket a close frame with 1008 (what was queued and not begun
    // was dropped, so the close comes right after the last whole message).
    let mut got = 0;
    let mut closed_with = None;
    loop {
        match stuck_ws.next_event() {
            Some(tether_ws::Event::Message(m)) => {
                assert!(closed_with.is_none(), "a message after the close frame");
                assert!(
                    m.as_text() == Some(&numbered(got, SIZE)),
                    "stuck member, message {got}"
                );
                got += 1;
            }
            Some(tether_ws::Event::Close(frame)) => closed_with = Some(frame.code),
            None => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(closed_with, Some(tether_ws::CloseCode::POLICY));
    assert!(got < sent, "the stuck member got all {sent} messages");
    let events_got = stuck_sse.read_to_end();
    assert!(events_got.len() < sent);
    for (i, event) in events_got.iter().enumerate() {
        assert!(event.data() == numbered(i, SIZE), "stuck stream, event {i}");
    }

    drop((sender, reader, events, stuck_ws, stuck_sse));
    server.shutdown();
}

#[test]
fn a_burst_from_one_member_does_not_cut_loose_members_that_read() {
    // Far more than the output limit arrives in one write, so the server
    // reads it all before it next writes to anyone. Members that read
    // promptly must not pay for that.
    const COUNT: usize = 96;
    const SIZE: usize = 1000;
    let (server, log) = recording_chat(16 * 1024);
    let mut sender = WsClient::connect(server.addr, "/chat?room=burst");
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let mut reader = WsClient::connect(server.addr, "/chat?room=burst");
            thread::spawn(move || {
                for i in 0..COUNT {
                    assert!(reader.recv_text() == numbered(i, SIZE), "reader, message {i}");
                }
                reader
            })
        })
        .collect();
    let mut events = SseClient::connect(server.addr, "/chat/events?room=burst", "");

    let mut burst = Vec::new();
    for i in 0..COUNT {
        sender.conn.send_text(&numbered(i, SIZE), &mut burst).unwrap();
    }
    sender.send_raw(&burst);
    for i in 0..COUNT {
        assert!(sender.recv_text() == numbered(i, SIZE), "sender, message {i}");
        assert!(
            events.next_event().data() == numbered(i, SIZE),
            "stream, event {i}"
        );
    }
    let readers: Vec<WsClient> = readers
        .into_iter()
        .map(|t| t.join().expect("every reader got every message"))
        .collect();
    assert_eq!(*log.lock().unwrap(), []);
    drop((sender, readers, events));
    server.shutdown();
}

const ECHO_SIZE: usize = 16 * 1024;

/// Binary message `i`: its number, then a pattern that depends on it.
fn payload(i: u64) -> Vec<u8> {
    let mut data = i.to_be_bytes().to_vec();
    data.extend((0..ECHO_SIZE - 8).map(|j| (j as u64 ^ i) as u8));
    data
}

/// Message `i` as a client frame, masked with a zero key: legal, and no
/// masking work for the test.
fn frame(i: u64) -> Vec<u8> {
    let header = FrameHeader::new(true, OpCode::Binary, ECHO_SIZE as u64).with_mask([0; 4]);
    let mut wire = header.to_bytes().as_slice().to_vec();
    wire.extend(payload(i));
    wire
}

#[test]
fn an_echo_client_that_does_not_read_is_paused_not_buffered() {
    let mut config = config();
    config.max_output = 64 * 1024;
    let server = TestServer::start(config, Echo::everywhere());
    let mut client = WsClient::connect(server.addr, "/");

    // Write without reading until the writes stall. If the server kept
    // reading (and queueing the echoes) they never would.
    const LIMIT: usize = 64 << 20;
    client
        .stream
        .set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut written = 0;
    let mut sent = 0u64;
    let mut pending = frame(0);
    let mut offset = 0;
    let stalled = loop {
        if written >= LIMIT {
            break false;
        }
        match client.stream.write(&pending[offset..]) {
            Ok(n) => {
                written += n;
                offset += n;
                if offset == pending.len() {
                    sent += 1;
                    pending = frame(sent);
                    offset = 0;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break true,
            Err(e) => panic!("write failed: {e}"),
        }
    };
    assert!(stalled, "the server read {written} bytes without pausing");

    // Now read: everything sent so far comes back, in order, and the rest
    // (the partly written frame and a few more) goes through as well.
    client.stream.set_write_timeout(Some(common::IO_TIMEOUT)).unwrap();
    let total = sent + 10;
    let mut writer = client.stream.try_clone().unwrap();
    let rest = thread::spawn(move || {
        writer.write_all(&pending[offset..]).unwrap();
        for i in sent + 1..total {
            writer.write_all(&frame(i)).unwrap();
        }
    });
    for i in 0..total {
        let message = client.recv();
        assert!(message.as_bytes() == payload(i), "echo {i} differs");
    }
    rest.join().unwrap();
    // The socket stays usable after the backlog.
    client.send_text("done");
    assert_eq!(client.recv_text(), "done");
    drop(client);
    server.shutdown();
}
