//! One test for each way the record layer ends a connection: each alert
//! it sends, for each reason it has to send it, the fatal alert and the
//! `close_notify` it reads, and what the peer gets of its own alerts.
//! Each test names the part of RFC 8446 it follows.

use std::io::Read;

use super::*;

/// What opening `wire` with a fresh connection's server ends in: the
/// client's records of `content` and `plaintext`, sealed with its keys.
fn refusal_of(content: u8, plaintext: &[u8]) -> RecordError {
    let (client, mut records) = connected(SUITES[0]);
    let mut wire = Forger::new(client).record(content, plaintext);
    refused(&mut wire, &mut records)
}

fn sent(alert: Alert) -> RecordError {
    RecordError::Send(alert)
}

/// §5: after the handshake every record is protected (its outer type is
/// application_data); a change_cipher_spec, a handshake or alert record
/// in the clear, or an unknown type is unexpected_message.
#[test]
fn a_record_not_protected_is_unexpected_message() {
    for content in [20, 21, 22, 24, 0, 255] {
        let (_, mut records) = connected(SUITES[0]);
        let mut wire = [content, 3, 3, 0, 2, 1, 0];
        assert_eq!(
            refused(&mut wire, &mut records),
            sent(Alert::UnexpectedMessage),
            "{content}"
        );
    }
}

/// §5.2: a TLSCiphertext longer than 2^14 + 256 is record_overflow, as
/// soon as its header says so.
#[test]
fn a_ciphertext_over_2_14_plus_256_is_record_overflow() {
    let (_, mut records) = connected(SUITES[0]);
    let [h, l] = u16::try_from(MAX_BODY + 1).unwrap().to_be_bytes();
    assert_eq!(
        refused(&mut [23, 3, 3, h, l], &mut records),
        sent(Alert::RecordOverflow)
    );
    // At the limit, the record is waited for.
    let (_, mut records) = connected(SUITES[0]);
    let [h, l] = u16::try_from(MAX_BODY).unwrap().to_be_bytes();
    let (_, opened) = open_all(&mut records, &mut [23, 3, 3, h, l]).unwrap();
    assert_eq!(opened.used, 0);
}

/// §5.2: a record too short to hold the AEAD's tag cannot be authentic:
/// bad_record_mac (as rustls answers it).
#[test]
fn a_record_too_short_for_a_tag_is_bad_record_mac() {
    for short in [0, 1, TAG - 1] {
        let (_, mut records) = connected(SUITES[0]);
        let mut wire = vec![23, 3, 3, 0, u8::try_from(short).unwrap()];
        wire.extend(std::iter::repeat_n(0, short));
        assert_eq!(
            refused(&mut wire, &mut records),
            sent(Alert::BadRecordMac),
            "{short} bytes"
        );
    }
}

/// §5.2: a record that does not open is bad_record_mac: a bit flipped in
/// its tag, its ciphertext or its header (the additional data).
#[test]
fn a_tampered_record_is_bad_record_mac() {
    for suite in SUITES {
        let (mut client, _) = connected(suite);
        let wire = from_client(&mut client, b"hello");
        for at in [wire.len() - 1, HEADER + 1, 1] {
            let (mut client, mut records) = connected(suite);
            let mut wire = from_client(&mut client, b"hello");
            wire[at] ^= 1;
            assert_eq!(
                refused(&mut wire, &mut records),
                sent(Alert::BadRecordMac),
                "{suite:?} byte {at}"
            );
        }
    }
}

/// §4.6.3, §5.3: once the peer's KeyUpdate is read, its records are read
/// under its next key; a record still sealed under the old one does not
/// open: bad_record_mac.
#[test]
fn a_record_under_the_key_before_an_update_is_bad_record_mac() {
    let (client, mut records) = connected(SUITES[0]);
    let mut forger = Forger::new(client);
    let mut wire = forger.record(CONTENT_HANDSHAKE, &[HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0]);
    wire.extend(forger.record(CONTENT_APPLICATION_DATA, b"under the old key"));
    assert_eq!(refused(&mut wire, &mut records), sent(Alert::BadRecordMac));
}

/// §5.2, §5.4: the inner plaintext (content, content type and padding)
/// is 2^14 + 1 bytes at most: over it is record_overflow, whether the
/// content or the padding makes it too long; at it, the record opens.
#[test]
fn an_inner_plaintext_over_2_14_plus_1_is_record_overflow() {
    assert_eq!(
        refusal_of(CONTENT_APPLICATION_DATA, &[1; MAX_PLAINTEXT + 1]),
        sent(Alert::RecordOverflow)
    );
    // Sealed as content type 0, so that the real type and the zeros
    // after it are part of the plaintext given: padding that counts.
    let mut overpadded = vec![b'x', CONTENT_APPLICATION_DATA];
    overpadded.extend_from_slice(&[0; MAX_PLAINTEXT - 1]);
    assert_eq!(overpadded.len() + 1, MAX_INNER + 1);
    assert_eq!(refusal_of(0, &overpadded), sent(Alert::RecordOverflow));

    overpadded.pop();
    for (content, plaintext) in [
        (0, overpadded),
        (CONTENT_APPLICATION_DATA, vec![1; MAX_PLAINTEXT]),
    ] {
        let (client, mut records) = connected(SUITES[0]);
        let mut wire = Forger::new(client).record(content, &plaintext);
        let (got, opened) = open_all(&mut records, &mut wire).unwrap();
        assert_eq!(opened.used, wire.len());
        assert_eq!(got.len(), if content == 0 { 1 } else { MAX_PLAINTEXT });
    }
}

/// §5.4: an inner plaintext of zeros only has no content type:
/// unexpected_message.
#[test]
fn an_inner_plaintext_of_padding_only_is_unexpected_message() {
    for zeros in [0, 1, 100] {
        assert_eq!(
            refusal_of(0, &vec![0; zeros]),
            sent(Alert::UnexpectedMessage),
            "{zeros}"
        );
    }
}

/// §5: a protected record of a type the layer does not take after the
/// handshake (change_cipher_spec, heartbeat, an unknown one) is
/// unexpected_message.
#[test]
fn an_inner_content_type_not_expected_is_unexpected_message() {
    for content in [20, 24, 1, 255] {
        assert_eq!(
            refusal_of(content, &[1]),
            sent(Alert::UnexpectedMessage),
            "{content}"
        );
    }
}

/// §5.1: a record with the Alert type holds exactly one alert; none is
/// unexpected_message.
#[test]
fn an_empty_alert_record_is_unexpected_message() {
    assert_eq!(refusal_of(CONTENT_ALERT, &[]), sent(Alert::UnexpectedMessage));
}

/// §5.1, §6: part of an alert, or more than one, cannot be decoded:
/// decode_error.
#[test]
fn an_alert_record_of_other_than_two_bytes_is_decode_error() {
    for alert in [&[2][..], &[2, 40, 0], &[2, 40, 0, 1], &[1, 0, 1, 0]] {
        assert_eq!(
            refusal_of(CONTENT_ALERT, alert),
            sent(Alert::DecodeError),
            "{alert:?}"
        );
    }
}

/// §6.2: the peer's fatal alert ends the connection, and no alert is
/// sent back; the records before it were read.
#[test]
fn the_peers_fatal_alert_is_received_not_answered() {
    let (client, mut records) = connected(SUITES[0]);
    let mut forger = Forger::new(client);
    let mut wire = forger.record(CONTENT_APPLICATION_DATA, b"before");
    wire.extend(forger.record(CONTENT_ALERT, &[2, 40]));
    let mut got = Vec::new();
    let result = records.open(&mut wire, |d| got.extend_from_slice(d));
    assert_eq!(result.unwrap_err(), RecordError::Received(40));
    assert_eq!(got, b"before");
    // A warning other than user_canceled or close_notify too (§6: the
    // level is not what decides).
    assert_eq!(refusal_of(CONTENT_ALERT, &[1, 42]), RecordError::Received(42));
}

/// §6.1: close_notify ends what is read: nothing after it is looked at;
/// this side's own reaches the peer.
#[test]
fn close_notify_ends_what_is_read() {
    let (mut client, mut records) = connected(SUITES[2]);
    let mut wire = from_client(&mut client, b"last words");
    client.send_close_notify();
    while client.wants_write() {
        client.write_tls(&mut wire).unwrap();
    }
    wire.extend_from_slice(b"ignored after close_notify");
    let (got, opened) = open_all(&mut records, &mut wire).unwrap();
    assert_eq!(got, b"last words");
    assert!(opened.closed);
    assert_eq!(opened.used, wire.len() - b"ignored after close_notify".len());
    // And the server's own close_notify reaches the client.
    let mut out = Vec::new();
    records.seal_close_notify(&mut out).unwrap();
    to_client(&mut client, &out);
    let mut buf = [0; 8];
    assert_eq!(client.reader().read(&mut buf).unwrap(), 0, "close_notify seen");
}

/// §6.1: user_canceled is a warning the peer follows with close_notify;
/// more than a few of them without data between is unexpected_message
/// (each costs this side a record's work).
#[test]
fn user_canceled_without_end_is_unexpected_message() {
    let (client, mut records) = connected(SUITES[0]);
    let mut forger = Forger::new(client);
    for round in 0..3 {
        for _ in 0..WARNINGS_WITHOUT_DATA {
            let mut wire = forger.record(CONTENT_ALERT, &[ALERT_LEVEL_WARNING, ALERT_USER_CANCELED]);
            open_all(&mut records, &mut wire).unwrap();
        }
        if round < 2 {
            // Data between makes room again.
            let mut wire = forger.record(CONTENT_APPLICATION_DATA, b"data");
            open_all(&mut records, &mut wire).unwrap();
        }
    }
    let mut wire = forger.record(CONTENT_ALERT, &[ALERT_LEVEL_WARNING, ALERT_USER_CANCELED]);
    assert_eq!(refused(&mut wire, &mut records), sent(Alert::UnexpectedMessage));
}

/// §5.1: no zero-length fragments of a handshake message:
/// unexpected_message.
#[test]
fn an_empty_handshake_record_is_unexpected_message() {
    assert_eq!(refusal_of(CONTENT_HANDSHAKE, &[]), sent(Alert::UnexpectedMessage));
}

/// §4.1.2, §4: after the handshake a client may send a server that asked
/// for no certificate a KeyUpdate and nothing else: a new ClientHello
/// (no renegotiation), a Finished, a Certificate are unexpected_message,
/// from their first byte.
#[test]
fn a_handshake_message_other_than_key_update_is_unexpected_message() {
    for message in [&[1, 0, 0, 0][..], &[20], &[11, 0, 0, 0], &[4, 0, 0, 1, 0]] {
        assert_eq!(
            refusal_of(CONTENT_HANDSHAKE, message),
            sent(Alert::UnexpectedMessage),
            "{message:?}"
        );
    }
}

/// §4.6.3, §6.2: a KeyUpdate's body is one byte; another length is
/// decode_error, whole in one record or told in fragments.
#[test]
fn a_key_update_of_another_length_is_decode_error() {
    for message in [
        &[HANDSHAKE_KEY_UPDATE, 0, 0, 2, 0, 0][..],
        &[HANDSHAKE_KEY_UPDATE, 0, 0, 0],
    ] {
        assert_eq!(
            refusal_of(CONTENT_HANDSHAKE, message),
            sent(Alert::DecodeError),
            "{message:?}"
        );
    }
    let (client, mut records) = connected(SUITES[0]);
    let mut forger = Forger::new(client);
    let mut wire = forger.record(CONTENT_HANDSHAKE, &[HANDSHAKE_KEY_UPDATE, 0]);
    wire.extend(forger.record(CONTENT_HANDSHAKE, &[1, 0]));
    assert_eq!(refused(&mut wire, &mut records), sent(Alert::DecodeError));
}

/// §4.6.3: request_update is update_not_requested (0) or
/// update_requested (1); another value is illegal_parameter.
#[test]
fn a_key_update_asking_neither_yes_nor_no_is_illegal_parameter() {
    for request in [2, 255] {
        assert_eq!(
            refusal_of(CONTENT_HANDSHAKE, &[HANDSHAKE_KEY_UPDATE, 0, 0, 1, request]),
            sent(Alert::IllegalParameter),
            "{request}"
        );
    }
}

/// §5.1: handshake messages must not span a key change: a KeyUpdate ends
/// its record, and anything after it in the record (another KeyUpdate,
/// the start of one) is unexpected_message.
#[test]
fn a_message_after_a_key_update_in_its_record_is_unexpected_message() {
    let two = [HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0, HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0];
    for message in [&two[..], &two[..6]] {
        assert_eq!(
            refusal_of(CONTENT_HANDSHAKE, message),
            sent(Alert::UnexpectedMessage),
            "{message:?}"
        );
    }
}

/// §5.1: a handshake message's fragments must not be interleaved with
/// other records: data, or an alert, between them is unexpected_message.
#[test]
fn a_record_between_a_key_updates_fragments_is_unexpected_message() {
    for (content, between) in [
        (CONTENT_APPLICATION_DATA, &b"between"[..]),
        (CONTENT_ALERT, &[1, 90]),
    ] {
        let (client, mut records) = connected(SUITES[0]);
        let mut forger = Forger::new(client);
        let mut wire = forger.record(CONTENT_HANDSHAKE, &[HANDSHAKE_KEY_UPDATE, 0]);
        wire.extend(forger.record(content, between));
        assert_eq!(
            refused(&mut wire, &mut records),
            sent(Alert::UnexpectedMessage),
            "{content}"
        );
    }
}

/// Not the RFC's (§4.6.3 sets no bound): each KeyUpdate costs a key
/// derivation, so, as rustls does, more than 32 in a row without data
/// between them are unexpected_message.
#[test]
fn key_updates_without_data_between_are_refused_after_32() {
    let (client, mut records) = connected(SUITES[0]);
    let mut forger = Forger::new(client);
    for round in 0..2 {
        for _ in 0..KEY_UPDATES_WITHOUT_DATA {
            let mut wire = forger.record(CONTENT_HANDSHAKE, &[HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0]);
            let (_, opened) = open_all(&mut records, &mut wire).unwrap();
            // The server reads under its next key now; so does the forger.
            forger.0 = records.rx.clone();
            assert!(!opened.update_requested);
            assert_eq!(opened.key_updates, 1);
        }
        if round == 0 {
            let mut wire = forger.record(CONTENT_APPLICATION_DATA, b"data");
            open_all(&mut records, &mut wire).unwrap();
        }
    }
    let mut wire = forger.record(CONTENT_HANDSHAKE, &[HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0]);
    assert_eq!(refused(&mut wire, &mut records), sent(Alert::UnexpectedMessage));
}

/// §5.3: a sequence number must not wrap; a record that would need it to
/// is refused with internal_error (this side's limit, not the peer's
/// fault, and out of reach: 2^64 records).
#[test]
fn a_sequence_number_that_would_wrap_is_internal_error() {
    let (client, mut records) = connected(SUITES[0]);
    let mut wire = Forger::new(client).record(CONTENT_APPLICATION_DATA, b"the last");
    records.rx.seq = u64::MAX;
    assert_eq!(refused(&mut wire, &mut records), sent(Alert::InternalError));
    // Sealing stops there too, with nothing appended.
    let (_, mut records) = connected(SUITES[0]);
    records.tx.seq = u64::MAX;
    records.tx_limit = u64::MAX;
    let mut out = vec![1, 2, 3];
    assert_eq!(
        records.seal_close_notify(&mut out),
        Err(sent(Alert::InternalError))
    );
    assert_eq!(out, [1, 2, 3]);
}

/// §6: each alert this side sends reaches a rustls client as that fatal
/// alert, and ends its connection.
#[test]
fn each_alert_sent_is_read_by_the_peer_as_that_alert() {
    use Alert::*;
    for alert in [
        UnexpectedMessage,
        BadRecordMac,
        RecordOverflow,
        IllegalParameter,
        DecodeError,
        InternalError,
    ] {
        let (mut client, mut records) = connected(SUITES[1]);
        let mut out = Vec::new();
        records.seal_alert(alert, &mut out).unwrap();
        client.read_tls(&mut &out[..]).unwrap();
        let error = client.process_new_packets().unwrap_err();
        assert_eq!(
            error,
            rustls::Error::AlertReceived(rustls::AlertDescription::from(alert as u8)),
            "{alert:?}"
        );
    }
}
