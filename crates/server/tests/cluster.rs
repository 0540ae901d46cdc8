//! Several event loops on one port: connections spread over them, loops
//! talk only through posted messages, and one shutdown stops them all.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use tether_testkit as common;

use std::collections::HashSet;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{WsClient, config};
use tether_server::{App, Cluster, ConnId, Ctx, Encoded, Handshake, Message, MessageRef, Request, Route};

/// A room spread over all loops: a message from any member is posted to
/// every loop, and each loop sends it to its own members. Each member also
/// learns which loop serves it.
struct SpreadRoom {
    members: Vec<ConnId>,
}

impl App for SpreadRoom {
    type Post = Arc<Message>;
    type State = ();

    fn route(&mut self, _: &Request<'_>) -> Route {
        Route::WebSocket(())
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_, Arc<Message>>, conn: ConnId, _: &mut (), _: &Request<'_>) {
        self.members.push(conn);
        let (index, _) = ctx.loop_index();
        ctx.send(conn, &Message::text(format!("loop {index}")));
    }

    fn on_message(
        &mut self,
        ctx: &mut Ctx<'_, Arc<Message>>,
        _: ConnId,
        _: &mut (),
        message: MessageRef<'_>,
    ) {
        let (_, loops) = ctx.loop_index();
        let shared = Arc::new(message.to_owned());
        for to in 0..loops {
            ctx.post(to, shared.clone());
        }
    }

    fn on_close(
        &mut self,
        _: &mut Ctx<'_, Arc<Message>>,
        conn: ConnId,
        _: &mut (),
        _: tether_server::CloseReason,
    ) {
        self.members.retain(|&c| c != conn);
    }

    fn on_post(&mut self, ctx: &mut Ctx<'_, Arc<Message>>, message: Arc<Message>) {
        ctx.send_encoded(self.members.iter().copied(), &Encoded::ws(&*message));
    }
}

#[test]
fn loops_share_the_port_and_deliver_each_others_messages_in_order() {
    const LOOPS: usize = 3;
    let cluster = Cluster::bind(config(), Handshake::new(), LOOPS, |_| SpreadRoom {
        members: Vec::new(),
    })
    .expect("bind");
    let addr = cluster.local_addr();
    let handle = cluster.handle();
    assert_eq!(handle.loops(), LOOPS);
    let server = thread::spawn(move || cluster.run());

    // Enough clients that the kernel spreads them over every loop.
    let mut clients = Vec::new();
    let mut loops_seen = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while loops_seen.len() < LOOPS {
        assert!(
            Instant::now() < deadline,
            "connections reached only loops {loops_seen:?}"
        );
        let mut client = WsClient::connect(addr, "/");
        let hello = client.recv_text();
        loops_seen.insert(hello);
        clients.push(client);
    }
    let stats = handle.stats();
    assert_eq!(stats.accepted as usize, clients.len());
    assert_eq!(stats.open_websocket as usize, clients.len());

    // Two senders on (possibly) different loops, 50 messages each: every
    // member gets all 100, each sender's in its order.
    let count = 50;
    for i in 0..count {
        clients[0].send_text(&format!("a{i}"));
        let last = clients.len() - 1;
        clients[last].send_text(&format!("b{i}"));
    }
    for client in &mut clients {
        let (mut next_a, mut next_b) = (0, 0);
        while next_a < count || next_b < count {
            let text = client.recv_text();
            if let Some(n) = text.strip_prefix('a') {
                assert_eq!(n.parse::<usize>().unwrap(), next_a, "a's order");
                next_a += 1;
            } else if let Some(n) = text.strip_prefix('b') {
                assert_eq!(n.parse::<usize>().unwrap(), next_b, "b's order");
                next_b += 1;
            }
        }
    }
    assert!(handle.stats().messages_in >= 2 * count as u64);

    handle.shutdown();
    for client in &mut clients {
        assert_eq!(client.recv_close().code, tether_server::CloseCode::GOING_AWAY);
    }
    drop(clients);
    server
        .join()
        .expect("no panic")
        .expect("every loop shut down cleanly");
}

/// Answers every request with its loop's index.
struct LoopIndex(&'static str);

impl App for LoopIndex {
    type Post = ();
    type State = ();

    fn route(&mut self, _: &Request<'_>) -> Route {
        Route::Page {
            content_type: "text/plain",
            body: self.0.as_bytes(),
        }
    }
}

#[test]
fn loops_sharing_a_listener_take_its_connections_in_turn() {
    const LOOPS: usize = 3;
    const CONNECTIONS: usize = 60;
    let names = ["0", "1", "2"];
    let server =
        common::TestServer::start_loops(config(), Handshake::new(), LOOPS, |index| LoopIndex(names[index]));
    let mut taken = [0usize; LOOPS];
    for _ in 0..CONNECTIONS {
        let body = common::get(server.addr, "/").body;
        let index: usize = String::from_utf8(body).unwrap().parse().unwrap();
        taken[index] += 1;
    }
    // Whichever loop accepts a connection hands it to the loops in turn,
    // starting with itself: each loop's accepts spread over the loops
    // within one, so with at most LOOPS loops accepting no loop is more
    // than LOOPS connections apart from another, however the accepts
    // fell (the kernel's hash of one socket per loop promises no such
    // bound).
    let (least, most) = (taken.iter().min().unwrap(), taken.iter().max().unwrap());
    assert!(most - least <= LOOPS, "{taken:?}");
    assert_eq!(taken.iter().sum::<usize>(), CONNECTIONS);
}
