//! Arbitrary text as a multiplexed socket's client message (`GET /ws`,
//! `{"type":"subscribe",...}`): a message or an error, never a panic; a
//! message that reads, written again as a client writes it, reads as the
//! same message; an error's answer is the JSON it says it is. The checks
//! are `tether_hub_app::fuzz::mux_message`, beside the reader.
//!
//! Seeds in `seeds/hub_mux_message/` are one message of each type, with
//! escapes, and a few a client gets wrong.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The socket refuses longer messages before reading them (a publish's
/// data at most, escaped); short ones reach every branch of the reader.
const MAX_INPUT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    // A WebSocket text message is UTF-8 by the time the hub reads it.
    if let Ok(text) = std::str::from_utf8(data) {
        tether_hub_app::fuzz::mux_message(text);
    }
});
