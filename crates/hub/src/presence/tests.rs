use super::*;

fn name(s: &str) -> Arc<str> {
    Arc::from(s)
}

#[test]
fn two_connections_of_one_member_join_once_and_leave_with_the_last() {
    let mut p = Presence::new("n");
    let (t, a) = (name("t"), Member::from("alice"));
    assert_eq!(
        p.join(&t, &a),
        Outcome {
            here: true,
            changed: true
        }
    );
    assert_eq!(p.join(&t, &a), Outcome::default());
    assert_eq!(p.list("t").count, 1);
    assert_eq!(p.leave(&t, &a), Outcome::default());
    assert_eq!(p.list("t").members, [name("alice")]);
    assert_eq!(
        p.leave(&t, &a),
        Outcome {
            here: true,
            changed: true
        }
    );
    assert_eq!(p.list("t"), Members::default());
    assert!(p.topics.is_empty(), "an empty topic is dropped");
    // A leave of someone who is not here changes nothing.
    assert_eq!(p.leave(&t, &a), Outcome::default());
}

#[test]
fn connections_are_members_of_their_own_named_only_when_shown() {
    let mut p = Presence::new("n1");
    let t = name("t");
    let (one, two) = (
        Member::Connection(ConnectionMember::new(2, 9)),
        Member::Connection(ConnectionMember::new(0, 10)),
    );
    let joined = Outcome {
        here: true,
        changed: true,
    };
    assert_eq!(p.join(&t, &one), joined);
    assert_eq!(p.join(&t, &one), Outcome::default(), "one connection joins once");
    assert_eq!(p.join(&t, &two), joined);
    p.join(&t, &Member::from("zed"));
    // A subject that reads as a connection's name is listed once.
    p.join(&t, &Member::from("conn-n1-2-9"));
    let list = p.list("t");
    assert_eq!(
        list.members,
        [name("conn-n1-0-10"), name("conn-n1-2-9"), name("zed")]
    );
    assert_eq!(list.count, 3);
    let mut local: Vec<Arc<str>> = p.local_members("t").collect();
    local.sort();
    assert_eq!(local.len(), 4);
    assert_eq!(p.leave("t", &one), joined);
    assert_eq!(p.leave("t", &one), Outcome::default(), "gone already");
    assert_eq!(p.count(), 3);
    // Loop and number survive being one number; numbers count modulo 2^48.
    let member = ConnectionMember::new(u16::MAX, (1 << 48) + 5);
    assert_eq!((member.loop_index(), member.number()), (u16::MAX, 5));
    assert_eq!(ConnectionMember::from_bits(member.to_bits()), member);
    assert_eq!(&*Member::Connection(member).name("n1"), "conn-n1-65535-5");
}

#[test]
fn topics_are_apart() {
    let mut p = Presence::new("n");
    let a = Member::from("alice");
    p.join(&name("x"), &a);
    assert!(p.join(&name("y"), &a).changed);
    assert_eq!(p.count(), 2);
    assert!(p.leave("x", &a).changed);
    assert_eq!(p.list("y").count, 1);
}

#[test]
fn members_of_other_nodes_are_merged() {
    let mut p = Presence::new("n");
    let (t, a, b) = (name("t"), name("alice"), name("bob"));
    p.join(&t, &Member::from(a.clone()));
    // Alice elsewhere too, and Bob: only Bob joins.
    let changes = p.set_remote(&t, vec![a.clone(), b.clone(), b.clone(), name("bad\n")], false);
    assert_eq!(
        changes,
        [Change {
            topic: t.clone(),
            member: b.clone(),
            joined: true
        }]
    );
    assert_eq!(p.list("t").members, [a.clone(), b.clone()]);
    // Alice leaves here but is still elsewhere: no leave.
    assert_eq!(
        p.leave(&t, &Member::from(a.clone())),
        Outcome {
            here: true,
            changed: false
        }
    );
    // The other node lost both (it crashed and its entries expired).
    let changes = p.set_remote(&t, Vec::new(), false);
    assert_eq!(changes.len(), 2);
    assert!(changes.iter().all(|c| !c.joined));
    assert_eq!(p.list("t").count, 0);
}

#[test]
fn a_cut_list_of_other_nodes_members_tells_no_joins_or_leaves() {
    let mut p = Presence::new("n");
    let t = name("t");
    let window =
        |from: usize| -> Vec<Arc<str>> { (from..from + 3).map(|i| name(&format!("m{i}"))).collect() };
    // Whole lists: the difference is told.
    assert_eq!(p.set_remote(&t, window(0), false).len(), 3);
    // Cut: the window moves by two with nobody joining or leaving.
    assert!(p.set_remote(&t, window(2), true).is_empty());
    assert_eq!(p.list("t").count, 3);
    assert!(p.set_remote(&t, window(4), true).is_empty());
    // No longer cut: the first whole list after a cut one tells
    // nothing either (the window's difference, not the members').
    assert!(p.set_remote(&t, window(0), false).is_empty());
    // Then whole lists tell again.
    let changes = p.set_remote(&t, window(1), false);
    assert_eq!(changes.len(), 2);
    assert!(changes.iter().any(|c| c.joined && &*c.member == "m3"));
    assert!(changes.iter().any(|c| !c.joined && &*c.member == "m0"));
    // A list longer than the cap is cut here too.
    let many: Vec<Arc<str>> = (0..MAX_REMOTE_MEMBERS + 1)
        .map(|i| name(&format!("n{i}")))
        .collect();
    assert!(p.set_remote(&t, many, false).is_empty());
    assert_eq!(p.list("t").count, MAX_REMOTE_MEMBERS);
}

#[test]
fn listing_is_bounded_and_counts_everyone() {
    let mut p = Presence::new("n");
    let t = name("t");
    let remote: Vec<Arc<str>> = (0..MAX_REMOTE_MEMBERS + 5)
        .map(|i| name(&format!("m{i:06}")))
        .collect();
    p.set_remote(&t, remote, false);
    let list = p.list("t");
    assert_eq!(list.count, MAX_REMOTE_MEMBERS);
    assert_eq!(list.members.len(), MAX_LISTED_MEMBERS);
    assert!(list.members.windows(2).all(|w| w[0] < w[1]), "sorted");
    let json = list.json("t");
    assert!(json.ends_with(&format!(",\"count\":{MAX_REMOTE_MEMBERS},\"truncated\":true}}")));
}

#[test]
fn json_forms() {
    let change = Change {
        topic: name("room"),
        member: name("a\"b"),
        joined: false,
    };
    assert_eq!(change.event_type(), "leave");
    assert_eq!(change.data(), r#"{"member":"a\"b"}"#);
    assert_eq!(
        change.json(),
        r#"{"topic":"room","event":"leave","member":"a\"b"}"#
    );
    let members = Members {
        members: vec![name("a"), name("b")],
        count: 2,
    };
    assert_eq!(
        members.json("room"),
        r#"{"topic":"room","members":["a","b"],"count":2}"#
    );
}
