use super::*;

#[test]
fn a_registration_is_small_and_its_size_is_shown() {
    // One per subscriber in a map that keeps room for up to twice its
    // entries: benches/README's fan-out memory breakdown counts it.
    let (registration, slot) = (
        mem::size_of::<Registration>(),
        mem::size_of::<([u32; 4], Registration)>(),
    );
    eprintln!("Registration: {registration} bytes; with a 16-byte id, a map slot: {slot} bytes");
    assert!(registration <= 8, "{registration}");
    assert!(slot <= 24, "{slot}");
    for transport in [
        Transport::WebSocket,
        Transport::RawWebSocket,
        Transport::EventStream,
        Transport::Poll,
    ] {
        let r = Registration::new((1 << 30) - 1, transport, Place::AHEAD);
        assert_eq!(
            (r.topic(), r.transport(), r.place),
            ((1 << 30) - 1, transport, Place::AHEAD)
        );
    }
}

#[test]
fn a_topic_id_is_reused_after_its_topic_goes_and_names_the_right_topic() {
    let mut hub: Hub<u32> = Hub::new(Config::default(), true);
    assert!(hub.subscribe("a", 1, Transport::WebSocket, None).is_ok());
    assert!(hub.subscribe("b", 2, Transport::EventStream, None).is_ok());
    // "a" has no backlog: it goes with its last subscriber.
    assert!(hub.unsubscribe(1).is_some_and(|left| *left.topic == *"a"));
    assert!(hub.backlog("a").is_none());
    assert_eq!(hub.ids.free.len(), 1);
    assert!(hub.subscribe("c", 3, Transport::WebSocket, None).is_ok());
    assert!(hub.ids.free.is_empty(), "the id of a is taken by c");
    let name = |hub: &Hub<u32>, sub| hub.subscription(sub).map(|(t, _)| t.to_string());
    assert_eq!(name(&hub, 2).as_deref(), Some("b"));
    assert_eq!(name(&hub, 3).as_deref(), Some("c"));
    assert_eq!(name(&hub, 1), None);
    assert!(hub.unsubscribe(3).is_some_and(|left| *left.topic == *"c"));
    assert!(hub.unsubscribe(2).is_some_and(|left| *left.topic == *"b"));
    assert_eq!(hub.ids.free.len(), 2);
}

#[test]
fn a_place_keeps_an_index_or_a_marker_and_a_far_index_is_looked_for() {
    assert_eq!(Place::live(7).index(), Some(7));
    assert_eq!(Place::live(0).index(), Some(0));
    for far in [u32::MAX - 2, u32::MAX - 1, u32::MAX] {
        let far = usize::try_from(far).unwrap_or(usize::MAX);
        assert_eq!(Place::live(far), Place::LIVE_FAR);
    }
    assert_eq!(Place::LIVE_FAR.index(), None);
    assert_eq!(Place::PENDING.index(), None);
    assert_eq!(Place::AHEAD.index(), None);
    // A registration whose index is not (or no longer) where it is
    // found is looked for, and the others' indexes stay right.
    let mut hub: Hub<u32> = Hub::new(Config::default(), true);
    for sub in 0..4 {
        assert!(hub.subscribe("t", sub, Transport::WebSocket, None).is_ok());
    }
    if let Some(r) = hub.subs.get_mut(&1) {
        r.place = Place::LIVE_FAR;
    }
    assert!(hub.unsubscribe(1).is_some());
    assert!(hub.unsubscribe(0).is_some());
    assert!(hub.unsubscribe(2).is_some());
    let Ok(event) = Event::new(Arc::from("t"), EventId::new(1, 0), "message", "x") else {
        panic!("an event");
    };
    let Ok(delivery) = hub.deliver(event) else {
        panic!("delivered");
    };
    assert_eq!(delivery.websocket, [3]);
}
