//! Whatever a peer sends, sealed with its keys or not: the records
//! are opened, or refused with an alert; never a panic, never data
//! that was not sent. And whatever one side seals, the other opens.

use proptest::prelude::*;

use super::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_content_sealed_by_the_peer_opens_or_is_refused(
        records in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)), 1..6),
        suite in 0..3usize,
    ) {
        let (client, mut server) = connected(SUITES[suite]);
        let mut forger = forger(client);
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        let mut clean = true;
        for (content, plaintext) in &records {
            wire.extend(forger.record(*content, plaintext));
            // What a record of application data carries: its bytes
            // up to the padding (trailing zeros are padding).
            if clean {
                match content {
                    &CONTENT_APPLICATION_DATA => expected.extend_from_slice(plaintext),
                    _ => clean = false,
                }
            }
        }
        let mut got = Vec::new();
        let result = server.open(&mut wire, |d| got.extend_from_slice(d));
        if clean {
            let opened = result.unwrap();
            prop_assert_eq!(opened.used, wire.len());
            prop_assert_eq!(got, expected);
        } else {
            // Data before the first other record came through as it
            // was sent; nothing else did.
            prop_assert!(expected.starts_with(&got) || got.starts_with(&expected));
        }
    }

    #[test]
    fn any_bytes_on_the_wire_never_panic(wire in proptest::collection::vec(any::<u8>(), 0..300)) {
        let (_, mut server) = connected(SUITES[0]);
        let mut wire = wire;
        let mut got = Vec::new();
        if let Ok(opened) = server.open(&mut wire, |d| got.extend_from_slice(d)) {
            // Nothing can open without the peer's key.
            prop_assert_eq!(opened.used, 0);
            prop_assert!(got.is_empty());
        }
    }

    #[test]
    fn what_one_side_seals_the_other_opens(
        writes in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..20_000), 0..4u8), 1..6),
        suite in 0..3usize,
        piece in 1..5000usize,
    ) {
        // Plaintext of any length sealed by the server, with its key
        // updated when the writes say so, and opened by its client from
        // pieces of any size: what was sealed, in order, and every
        // KeyUpdate seen.
        let (mut server, mut client) = pair(OWN_SUITES[suite]);
        let mut wire = Vec::new();
        let mut sent = Vec::new();
        let mut updates = 0;
        for (plaintext, update) in &writes {
            if *update == 0 {
                server.seal_key_update(&mut wire).unwrap();
                updates += 1;
            }
            server.seal(plaintext, &mut wire).unwrap();
            sent.extend_from_slice(plaintext);
        }
        let (mut buffer, mut got, mut seen) = (Vec::new(), Vec::new(), 0);
        for chunk in wire.chunks(piece) {
            buffer.extend_from_slice(chunk);
            let opened = client.open(&mut buffer, |d| got.extend_from_slice(d)).unwrap();
            prop_assert!(!opened.closed && !opened.update_requested);
            seen += opened.key_updates;
            buffer.drain(..opened.used);
        }
        prop_assert!(buffer.is_empty());
        prop_assert_eq!(got, sent);
        prop_assert_eq!(seen, updates);
    }
}
