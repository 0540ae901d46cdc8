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
}
