use super::*;
use crate::test_values::{args, bulk, cluster, plain};

fn entry(id: &str, fields: &[&str]) -> Value {
    Value::Array(vec![
        bulk(id),
        Value::Array(fields.iter().map(|f| bulk(f)).collect()),
    ])
}

#[test]
fn keys() {
    let keys = plain("tether:");
    assert_eq!(keys.stream("news"), "tether:news");
    assert_eq!(keys.topic_of(b"tether:news"), Some("news"));
    assert_eq!(keys.topic_of(b"other:news"), None);
    assert_eq!(keys.topic_of(b"tether:"), None);
    assert_eq!(keys.topic_of(b"tether:a b"), None);
    assert_eq!(keys.topic_of(b"tether:{news}"), None);
    assert_eq!(plain("").topic_of(b"news"), Some("news"));
    let wake = wake_key("tether:", 0xabc);
    assert_eq!(wake, "tether:!wake:0000000000000abc");
    assert_eq!(keys.topic_of(wake.as_bytes()), None, "never a topic");
}

#[test]
fn cluster_keys_share_the_topics_slot() {
    let keys = cluster("tether:");
    assert_eq!(keys.stream("news"), "tether:{news}");
    assert_eq!(
        keys.index("news"),
        (
            "tether:!pub:{news}".to_owned(),
            "tether:!pub-ms:{news}".to_owned()
        )
    );
    for topic in ["news", "a.b:c-d_e", "x"] {
        let (index, by_ms) = keys.index(topic);
        for key in [keys.stream(topic), index, by_ms] {
            assert_eq!(hash_tag(&key), topic, "{key}");
        }
    }
    assert_eq!(keys.topic_of(b"tether:{news}"), Some("news"));
    assert_eq!(keys.topic_of(b"tether:news"), None);
    assert_eq!(keys.topic_of(b"tether:{news"), None);
    assert_eq!(keys.topic_of(b"tether:{}"), None);
    assert_eq!(keys.topic_of(b"tether:!pub:{news}"), None);
    let keyed = tether_hub::Publish::new("news", None, "x", &tether_hub::Config::default())
        .unwrap()
        .with_key("k")
        .unwrap();
    assert_eq!(
        args(&crate::publish::publish(
            &keys,
            10,
            99,
            &Default::default(),
            &keyed
        ))[3..6],
        ["tether:{news}", "tether:!pub:{news}", "tether:!pub-ms:{news}"]
    );
}

#[test]
fn slots_are_redis_clusters() {
    // The check value of CRC16/XMODEM (Redis Cluster's specification
    // gives it for its slots), and keys whose slots Redis reports.
    assert_eq!(slot(b"123456789"), 0x31c3);
    assert_eq!(slot(b"foo"), 12_182);
    assert_eq!(slot(b"bar"), 5061);
    assert_eq!(slot(b""), 0);
}

#[test]
fn a_partitioned_cluster_keeps_a_topics_keys_and_its_bus_in_one_slot() {
    for partitions in [1, 3, 16, 1024] {
        let keys = crate::test_values::partitioned("tether:", partitions);
        assert_eq!(keys.buses(), partitions);
        // Each partition's tag is in its own share of the slots.
        for bus in 0..partitions {
            let key = keys.bus(bus);
            let slot = slot(hash_tag(&key).as_bytes());
            assert_eq!(slot * partitions / SLOTS, bus, "{key}");
            assert_eq!(hash_tag(&keys.bus_seq(bus)), hash_tag(&key));
        }
        for topic in ["news", "a.b:c-d_e", "x", "user.42.inbox"] {
            let bus = keys.partition(topic);
            assert_eq!(bus, slot(topic.as_bytes()) * partitions / SLOTS);
            let (index, by_ms) = keys.index(topic);
            let stream = keys.stream(topic);
            assert_eq!(
                usize::from(keys.stream_slot(topic)),
                slot(hash_tag(&stream).as_bytes())
            );
            for key in [&stream, &index, &by_ms] {
                assert_eq!(hash_tag(key), hash_tag(&keys.bus(bus)), "{key}");
            }
            assert!(stream.starts_with("tether:{") && stream.ends_with(&format!("}}{topic}")));
            assert_eq!(keys.topic_of(stream.as_bytes()), Some(topic));
            assert_eq!(keys.topic_of(index.as_bytes()), None);
            assert_eq!(keys.topic_of(keys.bus(bus).as_bytes()), None);
        }
    }
    let keys = crate::test_values::partitioned("tether:", 16);
    // Another partition's tag before a topic's name is no stream.
    let news = keys.partition("news");
    let other = keys.bus((news + 1) % 16).replace("!bus", "news");
    assert_eq!(keys.topic_of(other.as_bytes()), None);
    assert_eq!(keys.topic_of(b"tether:{news}"), None);
    // More partitions than there may be: as many as there may be.
    assert_eq!(
        crate::test_values::partitioned("t:", 5000).buses(),
        MAX_PARTITIONS
    );
    // The scripts name the partition's bus.
    let p = tether_hub::Publish::new("news", None, "x", &tether_hub::Config::default()).unwrap();
    let sent = args(&crate::publish::publish(&keys, 10, 99, &Default::default(), &p));
    assert_eq!(
        sent[2..6],
        [
            "3".to_owned(),
            keys.stream("news"),
            keys.bus(news),
            keys.bus_seq(news)
        ]
    );
    let keyed = p.with_key("k").unwrap();
    let sent = args(&crate::publish::publish(
        &keys,
        10,
        99,
        &Default::default(),
        &keyed,
    ));
    let (index, by_ms) = keys.index("news");
    assert_eq!(
        sent[2..8],
        [
            "5".to_owned(),
            keys.stream("news"),
            index,
            by_ms,
            keys.bus(news),
            keys.bus_seq(news)
        ]
    );
    // The topic, then the data's field (the scripts' last argument).
    assert_eq!(sent[sent.len() - 2..], ["news", "data"]);
}

#[test]
fn previous_ids() {
    assert_eq!(prev_id(EventId::new(5, 7)), Some(EventId::new(5, 6)));
    assert_eq!(prev_id(EventId::new(5, 0)), Some(EventId::new(4, u64::MAX)));
    assert_eq!(prev_id(EventId::new(0, 1)), Some(EventId::ZERO));
    assert_eq!(prev_id(EventId::ZERO), None);
}

#[test]
fn redis_ids_are_event_ids() {
    assert_eq!(
        parse_id(&bulk("1718000000000-42")),
        Some(EventId::new(1_718_000_000_000, 42))
    );
    assert_eq!(
        parse_id(&Value::SimpleString("0-1".into())),
        Some(EventId::new(0, 1))
    );
    assert_eq!(parse_id(&bulk("1718000000000")), None);
    assert_eq!(parse_id(&Value::Int(5)), None);
    assert_eq!(
        EventId::new(1_718_000_000_000, 42).to_string(),
        "1718000000000-42"
    );
}

#[test]
fn command_arguments() {
    assert_eq!(
        args(&wake("tether:!wake:1", 7)),
        ["XADD", "tether:!wake:1", "MAXLEN", "1", "7-0", "w", "1"]
    );
    assert_eq!(args(&wake_expiry("k")), ["PEXPIRE", "k", "600000"]);
    assert_eq!(
        args(&xread(
            &[("t:a", EventId::new(5, 1)), ("t:!wake", EventId::ZERO)],
            256,
            Some(2000)
        )),
        [
            "XREAD", "COUNT", "256", "BLOCK", "2000", "STREAMS", "t:a", "t:!wake", "5-1", "0-0"
        ]
    );
    assert_eq!(
        args(&xread(&[("t:{a}", EventId::new(5, 1))], 256, None)),
        ["XREAD", "COUNT", "256", "STREAMS", "t:{a}", "5-1"]
    );
    assert_eq!(
        args(&xrevrange("t:a", None, 11)),
        ["XREVRANGE", "t:a", "+", "-", "COUNT", "11"]
    );
    assert_eq!(
        args(&xrevrange("t:a", Some(EventId::new(3, 4)), 1)),
        ["XREVRANGE", "t:a", "3-4", "-", "COUNT", "1"]
    );
    assert_eq!(
        args(&xrange_one("t:a", EventId::new(3, 4))),
        ["XRANGE", "t:a", "3-4", "3-4"]
    );
    assert_eq!(args(&xinfo_stream("t:a")), ["XINFO", "STREAM", "t:a"]);
    assert_eq!(
        args(&xrange_from("t:a", EventId::new(3, 4), 9)),
        ["XRANGE", "t:a", "3-4", "+", "COUNT", "9"]
    );
    assert_eq!(
        args(&xrange_from("t:a", EventId::ZERO, 9)),
        ["XRANGE", "t:a", "-", "+", "COUNT", "9"]
    );
}

#[test]
fn entries() {
    let reply = Value::Array(vec![
        entry("5-1", &["event", "update", "data", "one"]),
        entry("5-2", &["data", "two"]),
        entry("6-0", &["event", "gap", "data", "not a gap"]),
        entry("6-1", &["other", "x"]),
        entry("6-2", &["data", "k", "key", "order-1"]),
        entry("6-3", &["data", "k", "key", "not a key"]),
    ]);
    let entries = parse_entries(&reply).unwrap();
    let seen: Vec<(String, &str, &str)> = entries
        .iter()
        .map(|e| (e.id.to_string(), e.event_type.as_str(), e.data.as_text().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("5-1".to_owned(), "update", "one"),
            ("5-2".to_owned(), "message", "two"),
            ("6-0".to_owned(), "message", "not a gap"),
            ("6-1".to_owned(), "message", ""),
            ("6-2".to_owned(), "message", "k"),
            ("6-3".to_owned(), "message", "k"),
        ]
    );
    assert_eq!(entries[4].key.as_deref(), Some("order-1"));
    assert_eq!(entries[5].key, None);
    let keyed = entries[4].to_event(&Arc::from("news")).unwrap();
    assert_eq!(keyed.key(), Some("order-1"));
    assert_eq!(parse_entries(&Value::Array(vec![])).unwrap(), vec![]);
    assert!(parse_entries(&Value::Array(vec![bulk("5-1")])).is_err());
    assert!(parse_entries(&Value::Array(vec![entry("x", &[])])).is_err());
    let event = entries[0].to_event(&Arc::from("news")).unwrap();
    assert_eq!(
        event.json(),
        r#"{"topic":"news","id":"5-1","event":"update","data":"one"}"#
    );
}

#[test]
fn binary_entries_keep_their_bytes() {
    let all: Vec<u8> = (0..=255).collect();
    let reply = Value::Array(vec![Value::Array(vec![
        bulk("7-1"),
        Value::Array(vec![
            bulk("event"),
            bulk("blob"),
            bulk(FIELD_BINARY),
            Value::BulkString(all.clone()),
        ]),
    ])]);
    let entries = parse_entries(&reply).unwrap();
    assert_eq!(entries[0].data, Payload::Binary(all.clone()));
    let event = entries[0].to_event(&Arc::from("pix")).unwrap();
    assert!(event.is_binary());
    assert_eq!((event.data_bytes(), event.event_type()), (&all[..], "blob"));
}

#[test]
fn xread_replies() {
    assert!(parse_xread(&Value::Nil).unwrap().is_empty());
    let resp2 = Value::Array(vec![
        Value::Array(vec![
            bulk("t:a"),
            Value::Array(vec![entry("1-1", &["data", "x"])]),
        ]),
        Value::Array(vec![
            bulk("t:!wake"),
            Value::Array(vec![entry("3-0", &["w", "1"])]),
        ]),
    ]);
    let streams = parse_xread(&resp2).unwrap();
    assert_eq!(streams.len(), 2);
    assert_eq!(streams[0].0, b"t:a");
    assert_eq!(streams[0].1[0].data, "x");
    assert_eq!(streams[1].1[0].id, EventId::new(3, 0));
    let resp3 = Value::Map(vec![(
        bulk("t:a"),
        Value::Array(vec![entry("1-2", &["data", "y"])]),
    )]);
    assert_eq!(parse_xread(&resp3).unwrap()[0].1[0].id, EventId::new(1, 2));
    assert!(parse_xread(&Value::Int(1)).is_err());
}

#[test]
fn xinfo_and_info() {
    let info = |fields: &[(&str, Value)]| {
        parse_stream_info(&Value::Array(
            fields.iter().flat_map(|(k, v)| [bulk(k), v.clone()]).collect(),
        ))
    };
    let trimmed = info(&[
        ("length", Value::Int(2)),
        ("last-generated-id", bulk("9-1")),
        ("max-deleted-entry-id", bulk("0-0")),
        ("entries-added", Value::Int(6)),
    ])
    .unwrap();
    assert_eq!(
        trimmed,
        StreamInfo {
            length: 2,
            entries_added: Some(6),
            max_deleted: Some(EventId::ZERO),
            last_generated: Some(EventId::new(9, 1)),
        }
    );
    assert!(trimmed.lost_entries());
    let whole = info(&[("length", Value::Int(6)), ("entries-added", Value::Int(6))]).unwrap();
    assert!(!whole.lost_entries());
    let deleted = info(&[
        ("length", Value::Int(6)),
        ("entries-added", Value::Int(6)),
        ("max-deleted-entry-id", bulk("3-0")),
    ]);
    assert!(deleted.unwrap().lost_entries());
    let old_redis = info(&[("length", Value::Int(6))]).unwrap();
    assert!(old_redis.lost_entries(), "unknown: assume the worst");
    assert_eq!(info(&[("groups", Value::Int(0))]), None);
    let resp3 = Value::Map(vec![
        (bulk("length"), Value::Int(1)),
        (bulk("entries-added"), Value::Int(1)),
    ]);
    assert!(!parse_stream_info(&resp3).unwrap().lost_entries());
    let info = bulk("# Server\r\nredis_version:7.0.15\r\nrun_id:abc123\r\ntcp_port:6379\r\n");
    assert_eq!(parse_run_id(&info).as_deref(), Some("abc123"));
    assert_eq!(parse_run_id(&bulk("# Server\r\n")), None);
}

#[test]
fn which_errors_are_the_commands() {
    let server = |line: &str| {
        let reply = redis::parse_redis_value(format!("-{line}\r\n").as_bytes()).unwrap();
        let Value::ServerError(e) = reply else {
            panic!("{reply:?}")
        };
        RedisError::from(e)
    };
    assert!(is_server_error(&server(
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    )));
    assert!(is_server_error(&server("ERR unknown command")));
    for transient in [
        "MOVED 3999 127.0.0.1:6381",
        "ASK 3999 127.0.0.1:6381",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "CLUSTERDOWN The cluster is down",
        "READONLY You can't write against a read only replica.",
        "LOADING Redis is loading the dataset in memory",
    ] {
        assert!(!is_server_error(&server(transient)), "{transient}");
    }
    assert!(!is_server_error(&RedisError::from(std::io::Error::from(
        std::io::ErrorKind::ConnectionReset
    ))));
}
