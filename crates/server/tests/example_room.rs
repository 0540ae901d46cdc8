//! The example application (`examples/room.rs`) on a two-loop cluster:
//! what any member says reaches every member and every listener, whichever
//! loop serves them, through the application's own typed posts.

use std::thread;
use std::time::{Duration, Instant};

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

    // From two members, perhaps on two loops: loops order only their own
    // posts, so the second is said once everyone has heard the first.
    members[3].send_text("hello, room");
    for member in &mut members {
        assert_eq!(member.recv_text(), "hello, room");
    }
    members[5].send_text("and again");
    for member in &mut members {
        assert_eq!(member.recv_text(), "and again");
    }
    // The listener's loop may have no member to hold it back: the two may
    // reach it in either order.
    let mut heard: Vec<String> = (0..2)
        .map(|_| {
            let event = listener.next_event();
            assert_eq!(event.event_type(), "said");
            event.data().to_owned()
        })
        .collect();
    heard.sort();
    assert_eq!(heard, ["and again", "hello, room"]);
    // Every loop relays both messages, members or not (a loop without
    // members may read its mailbox a moment later).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut answers = 0;
    while answers < 6 {
        let count = get(addr, "/count");
        assert_eq!(count.status, 200);
        let body = String::from_utf8_lossy(&count.body).into_owned();
        if body == r#"{"relayed":2}"# {
            answers += 1;
        } else {
            assert!(Instant::now() < deadline, "a loop relayed {body}");
            thread::sleep(Duration::from_millis(10));
        }
    }
    assert_eq!(get(addr, "/nowhere").status, 404);

    drop((members, listener));
    handle.shutdown();
    running.join().expect("the loops end").expect("a clean run");
}
