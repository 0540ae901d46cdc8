//! The example application (`examples/room.rs`) on a two-loop cluster:
//! what any member says reaches every member and every listener, whichever
//! loop serves them, through the application's own typed posts.

use std::thread;

use tether_server::{Cluster, Handshake};
use tether_testkit::{SseClient, WsClient, config, get};

#[path = "../examples/room.rs"]
mod room;

#[test]
fn the_room_example_relays_across_loops() {
    let cluster = Cluster::bind(config(), Handshake::new(), 2, |_| room::Room::default()).expect("bind");
    let (addr, handle) = (cluster.local_addr(), cluster.handle());
    let running = thread::spawn(move || cluster.run());

    let page = get(addr, "/");
    assert_eq!(page.status, 200);
    // Enough members that the kernel puts some on each loop.
    let mut members: Vec<WsClient> = (0..8).map(|_| WsClient::connect(addr, "/ws")).collect();
    let mut listener = SseClient::connect(addr, "/events", "");
    assert_eq!(listener.response.status, 200);

    members[3].send_text("hello, room");
    members[5].send_text("and again");
    for member in &mut members {
        assert_eq!(member.recv_text(), "hello, room");
        assert_eq!(member.recv_text(), "and again");
    }
    for data in ["hello, room", "and again"] {
        let event = listener.next_event();
        assert_eq!((event.event_type(), event.data()), ("said", data));
    }
    // Each loop relayed both messages.
    for _ in 0..4 {
        let count = get(addr, "/count");
        assert_eq!(count.status, 200);
        assert_eq!(String::from_utf8_lossy(&count.body), r#"{"relayed":2}"#);
    }
    assert_eq!(get(addr, "/nowhere").status, 404);

    drop((members, listener));
    handle.shutdown();
    running.join().expect("the loops end").expect("a clean run");
}
