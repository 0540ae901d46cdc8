//! The coordinator's answers, read from their bytes (after the
//! correlation id): every length checked against what is left, every
//! error code an error. Kept apart from the connection so that they can
//! be fuzzed (`fuzz/fuzz_targets/kafka_answers.rs`).

use std::collections::HashMap;

use crate::error::Error;
use crate::group::Partition;
use crate::wire::Reader;

/// A `FindCoordinator` (v1) answer: the coordinator's host and port.
pub(crate) fn coordinator(body: &[u8]) -> Result<(String, u16), Error> {
    let mut answer = Reader::new(body);
    let _throttle = answer.i32()?;
    let code = answer.i16()?;
    let _message = answer.string()?;
    if code != 0 {
        return Err(Error::Broker {
            request: "FindCoordinator",
            code,
        });
    }
    let _node = answer.i32()?;
    let host = answer.string()?.unwrap_or_default();
    let port = answer.i32()?;
    let port = u16::try_from(port)
        .ok()
        .filter(|&port| port > 0)
        .ok_or_else(|| Error::Protocol(format!("a coordinator on port {port}")))?;
    // A peer's string that goes into an address: a host name or an
    // address, nothing else.
    let plain = |b: u8| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b);
    if host.is_empty() || host.len() > 255 || !host.bytes().all(plain) {
        return Err(Error::Protocol(format!("a coordinator host {host:?}")));
    }
    Ok((host, port))
}

/// An `OffsetFetch` (v1) answer: the committed offset (the next to read)
/// of each partition that has one.
pub(crate) fn committed(body: &[u8]) -> Result<HashMap<Partition, i64>, Error> {
    let mut answer = Reader::new(body);
    let mut committed = HashMap::new();
    for _ in 0..answer.len(6)? {
        let topic = answer.string()?.unwrap_or_default();
        for _ in 0..answer.len(16)? {
            let partition = answer.i32()?;
            let offset = answer.i64()?;
            let _metadata = answer.string()?;
            let code = answer.i16()?;
            if code != 0 {
                return Err(Error::Broker {
                    request: "OffsetFetch",
                    code,
                });
            }
            if offset >= 0 {
                committed.insert((topic.clone(), partition), offset);
            }
        }
    }
    Ok(committed)
}

/// An `OffsetCommit` (v2) answer: every partition's code zero.
pub(crate) fn commit(body: &[u8]) -> Result<(), Error> {
    let mut answer = Reader::new(body);
    for _ in 0..answer.len(6)? {
        let _topic = answer.string()?;
        for _ in 0..answer.len(6)? {
            let _partition = answer.i32()?;
            let code = answer.i16()?;
            if code != 0 {
                return Err(Error::Broker {
                    request: "OffsetCommit",
                    code,
                });
            }
        }
    }
    Ok(())
}

/// A `JoinGroup` (v2) answer.
#[derive(Debug)]
pub(crate) struct Joined {
    /// Zero, or `MEMBER_ID_REQUIRED`: join again with [`Joined::member`].
    pub(crate) code: i16,
    pub(crate) generation: i32,
    pub(crate) protocol: String,
    pub(crate) leader: String,
    /// This member's id.
    pub(crate) member: String,
    /// Every member's id and subscription (to the leader only).
    pub(crate) members: Vec<(String, Vec<u8>)>,
}

/// Kafka's code for "join again with the member id given".
pub(crate) const MEMBER_ID_REQUIRED: i16 = 79;

/// A `JoinGroup` (v2) answer: joined, or told to join again with a
/// member id; any other error code is an error.
pub(crate) fn joined(body: &[u8]) -> Result<Joined, Error> {
    let mut answer = Reader::new(body);
    let _throttle = answer.i32()?;
    let code = answer.i16()?;
    let generation = answer.i32()?;
    let protocol = answer.string()?.unwrap_or_default();
    let leader = answer.string()?.unwrap_or_default();
    let member = answer.string()?.unwrap_or_default();
    if code != 0 && code != MEMBER_ID_REQUIRED {
        return Err(Error::Broker {
            request: "JoinGroup",
            code,
        });
    }
    if member.is_empty() {
        return Err(Error::Protocol("a JoinGroup answer with no member id".to_owned()));
    }
    let mut members = Vec::new();
    for _ in 0..answer.len(6)? {
        let id = answer.string()?.unwrap_or_default();
        let metadata = answer.bytes()?.to_vec();
        members.push((id, metadata));
    }
    Ok(Joined {
        code,
        generation,
        protocol,
        leader,
        member,
        members,
    })
}

/// A `SyncGroup` (v1) answer: this member's assignment's bytes.
pub(crate) fn synced(body: &[u8]) -> Result<Vec<u8>, Error> {
    let mut answer = Reader::new(body);
    let _throttle = answer.i32()?;
    let code = answer.i16()?;
    if code != 0 {
        return Err(Error::Broker {
            request: "SyncGroup",
            code,
        });
    }
    Ok(answer.bytes()?.to_vec())
}

/// A `Heartbeat` (v1) or `LeaveGroup` (v1) answer: its code zero.
pub(crate) fn acknowledged(body: &[u8], request: &'static str) -> Result<(), Error> {
    let mut answer = Reader::new(body);
    let _throttle = answer.i32()?;
    match answer.i16()? {
        0 => Ok(()),
        code => Err(Error::Broker { request, code }),
    }
}

/// A member's subscription (the `consumer` protocol's metadata, any
/// version: the fields after the topics are not read): its topics.
pub(crate) fn subscription(metadata: &[u8]) -> Result<Vec<String>, Error> {
    let mut answer = Reader::new(metadata);
    let _version = answer.i16()?;
    let mut topics = Vec::new();
    for _ in 0..answer.len(2)? {
        topics.push(answer.string()?.unwrap_or_default());
    }
    Ok(topics)
}

/// A member's assignment (the `consumer` protocol's, any version): its
/// partitions. Empty bytes are no partition.
pub(crate) fn assignment(bytes: &[u8]) -> Result<Vec<Partition>, Error> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut answer = Reader::new(bytes);
    let _version = answer.i16()?;
    let mut partitions = Vec::new();
    for _ in 0..answer.len(6)? {
        let topic = answer.string()?.unwrap_or_default();
        for _ in 0..answer.len(4)? {
            let partition = answer.i32()?;
            if partition < 0 {
                return Err(Error::Protocol(format!("an assigned partition {partition}")));
            }
            partitions.push((topic.clone(), partition));
        }
    }
    Ok(partitions)
}

/// A `SaslHandshake` (v1) answer: the mechanisms the broker offers
/// (its code is `UNSUPPORTED_SASL_MECHANISM` when ours is not one).
pub(crate) fn sasl_handshake(body: &[u8]) -> Result<Vec<String>, Error> {
    let mut answer = Reader::new(body);
    let code = answer.i16()?;
    let mut offered = Vec::new();
    for _ in 0..answer.len(2)? {
        offered.push(answer.string()?.unwrap_or_default());
    }
    match code {
        0 => Ok(offered),
        33 => Err(Error::Authentication(format!(
            "the broker offers only {}",
            offered.join(", ")
        ))),
        code => Err(Error::Broker {
            request: "SaslHandshake",
            code,
        }),
    }
}

/// A `SaslAuthenticate` (v1) answer: the broker's bytes for the
/// mechanism's next step; a refusal is an error with the broker's
/// message (cut short).
pub(crate) fn sasl_authenticate(body: &[u8]) -> Result<Vec<u8>, Error> {
    let mut answer = Reader::new(body);
    let code = answer.i16()?;
    let message = answer.string()?.unwrap_or_default();
    if code != 0 {
        let message: String = message.chars().take(200).collect();
        return Err(Error::Authentication(format!(
            "refused (error code {code}): {message:?}"
        )));
    }
    Ok(answer.bytes()?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `FindCoordinator` answer naming `host:port`.
    fn found(host: &str, port: i32) -> Vec<u8> {
        let mut body = vec![0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 1];
        body.extend_from_slice(&u16::try_from(host.len()).unwrap().to_be_bytes());
        body.extend_from_slice(host.as_bytes());
        body.extend_from_slice(&port.to_be_bytes());
        body
    }

    #[test]
    fn a_coordinator_is_a_host_and_a_port() {
        assert_eq!(
            coordinator(&found("broker-1", 9092)).unwrap(),
            ("broker-1".to_owned(), 9092)
        );
        for (host, port) in [
            ("", 9092),
            ("a/b", 9092),
            ("a b", 9092),
            ("ok", 0),
            ("ok", 70000),
            ("ok", -1),
        ] {
            assert!(coordinator(&found(host, port)).is_err(), "{host:?} {port}");
        }
        // An error code, with its message.
        let mut refused = vec![0, 0, 0, 0, 0, 15, 0, 2, b'n', b'o'];
        refused.extend_from_slice(&[0; 8]);
        assert!(matches!(
            coordinator(&refused),
            Err(Error::Broker { code: 15, .. })
        ));
    }

    #[test]
    fn offsets_are_read_per_partition_and_a_negative_one_is_none() {
        let mut body = vec![0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2];
        for (partition, offset) in [(0i32, 5i64), (1, -1)] {
            body.extend_from_slice(&partition.to_be_bytes());
            body.extend_from_slice(&offset.to_be_bytes());
            body.extend_from_slice(&[0xff, 0xff, 0, 0]);
        }
        let offsets = committed(&body).unwrap();
        assert_eq!(offsets.len(), 1);
        assert_eq!(offsets[&("t".to_owned(), 0)], 5);
        // Cut anywhere, it is an error, never a panic.
        for end in 0..body.len() {
            if end != 4 {
                let _ = committed(&body[..end]);
            }
        }
        assert!(committed(&body[..body.len() - 1]).is_err());
    }

    #[test]
    fn a_commit_with_a_partitions_error_is_refused() {
        let ok = [0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        assert!(commit(&ok).is_ok());
        let mut refused = ok;
        refused[16] = 27;
        assert!(matches!(commit(&refused), Err(Error::Broker { code: 27, .. })));
    }

    /// A `JoinGroup` answer: `code`, generation 3, the range assignor,
    /// leader "m1", this member "m2", and `members`.
    pub(crate) fn join_answer(code: i16, members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut body = vec![0, 0, 0, 0];
        body.extend_from_slice(&code.to_be_bytes());
        body.extend_from_slice(&3i32.to_be_bytes());
        for s in ["range", "m1", "m2"] {
            body.extend_from_slice(&u16::try_from(s.len()).unwrap().to_be_bytes());
            body.extend_from_slice(s.as_bytes());
        }
        body.extend_from_slice(&u32::try_from(members.len()).unwrap().to_be_bytes());
        for (id, metadata) in members {
            body.extend_from_slice(&u16::try_from(id.len()).unwrap().to_be_bytes());
            body.extend_from_slice(id.as_bytes());
            body.extend_from_slice(&u32::try_from(metadata.len()).unwrap().to_be_bytes());
            body.extend_from_slice(metadata);
        }
        body
    }

    #[test]
    fn a_join_names_the_leader_the_member_and_the_members() {
        let body = join_answer(0, &[("m1", b"x"), ("m2", b"")]);
        let answer = joined(&body).unwrap();
        assert_eq!((answer.code, answer.generation), (0, 3));
        assert_eq!(
            (
                answer.protocol.as_str(),
                answer.leader.as_str(),
                answer.member.as_str()
            ),
            ("range", "m1", "m2")
        );
        assert_eq!(
            answer.members,
            [("m1".to_owned(), b"x".to_vec()), ("m2".to_owned(), Vec::new())]
        );
        // Told to join again with its id: taken, not an error.
        assert_eq!(
            joined(&join_answer(MEMBER_ID_REQUIRED, &[])).unwrap().member,
            "m2"
        );
        assert!(matches!(
            joined(&join_answer(27, &[])),
            Err(Error::Broker { code: 27, .. })
        ));
        for end in 0..body.len() {
            assert!(joined(&body[..end]).is_err(), "cut at {end}");
        }
        // A member count far past the bytes.
        let mut lying = join_answer(0, &[]);
        let at = lying.len() - 4;
        lying[at..].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(joined(&lying).is_err());
    }

    #[test]
    fn sync_heartbeat_and_leave_answers() {
        let mut synced_body = vec![0, 0, 0, 0, 0, 0];
        synced_body.extend_from_slice(&3u32.to_be_bytes());
        synced_body.extend_from_slice(b"abc");
        assert_eq!(synced(&synced_body).unwrap(), b"abc");
        assert!(synced(&synced_body[..synced_body.len() - 1]).is_err());
        assert!(matches!(
            synced(&[0, 0, 0, 0, 0, 22, 0xff, 0xff, 0xff, 0xff]),
            Err(Error::Broker { code: 22, .. })
        ));
        assert!(acknowledged(&[0, 0, 0, 0, 0, 0], "Heartbeat").is_ok());
        let refused = acknowledged(&[0, 0, 0, 0, 0, 27], "Heartbeat").unwrap_err();
        assert!(refused.rebalancing(), "{refused}");
        assert!(acknowledged(&[0, 0, 0, 0, 0], "LeaveGroup").is_err());
    }

    #[test]
    fn subscriptions_and_assignments_of_later_versions_are_read() {
        // Version 1 appends owned partitions after the user data: not read.
        let mut v1 = vec![0, 1, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff];
        v1.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(subscription(&v1).unwrap(), ["t"]);
        let assigned = [0, 1, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 7];
        assert_eq!(
            assignment(&assigned).unwrap(),
            [("t".to_owned(), 4), ("t".to_owned(), 7)]
        );
        let mut negative = assigned;
        negative[17..].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(assignment(&negative).is_err());
        for end in 1..assigned.len() {
            assert!(assignment(&assigned[..end]).is_err(), "cut at {end}");
        }
    }
}
