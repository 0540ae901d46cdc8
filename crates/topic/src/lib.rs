//! Topic names, as the hub accepts them and as authorization matches them.
//!
//! A crate of its own so that whatever checks a topic name (the hub, a
//! token's topic patterns) agrees on one rule without depending on the hub.
//!
//! ```
//! assert!(tether_topic::is_valid_topic("chat.lobby"));
//! assert!(!tether_topic::is_valid_topic("chat/lobby"));
//! ```
//!
//! `no_std`, no dependencies, no `unsafe`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The longest topic name, in bytes.
pub const MAX_TOPIC_LEN: usize = 128;

/// Whether `name` is a valid topic name: 1 to [`MAX_TOPIC_LEN`] bytes of
/// ASCII letters, digits, `.`, `_`, `-` and `:`, and not `.` or `..`.
/// Such a name needs no escaping in a URL path, a JSON string or a
/// Prometheus label; `.` and `..` are refused because clients remove them
/// from URL paths (RFC 3986 dot-segment removal), so no URL could address
/// them.
///
/// ```
/// assert!(tether_topic::is_valid_topic("chat.lobby"));
/// assert!(tether_topic::is_valid_topic("..."));
/// assert!(!tether_topic::is_valid_topic("chat/lobby"));
/// assert!(!tether_topic::is_valid_topic(""));
/// assert!(!tether_topic::is_valid_topic(".."));
/// ```
pub fn is_valid_topic(name: &str) -> bool {
    is_valid_name(name, MAX_TOPIC_LEN) && name != "." && name != ".."
}

/// Whether `name` is 1 to `max` bytes of the characters of a topic name
/// ([`is_name_byte`]), with no other rule: for names that share the
/// topic's alphabet under another limit, such as the hub's event types.
///
/// ```
/// assert!(tether_topic::is_valid_name("tick", 64));
/// assert!(tether_topic::is_valid_name("..", 64));
/// assert!(!tether_topic::is_valid_name("tick", 3));
/// ```
pub fn is_valid_name(name: &str, max: usize) -> bool {
    !name.is_empty() && name.len() <= max && name.bytes().all(is_name_byte)
}

/// Whether `b` may appear in a topic name: an ASCII letter or digit, `.`,
/// `_`, `-` or `:`.
///
/// ```
/// assert!(tether_topic::is_name_byte(b':'));
/// assert!(!tether_topic::is_name_byte(b'/'));
/// ```
pub fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':')
}

#[cfg(test)]
mod tests {
    extern crate alloc;
    use super::*;
    use alloc::string::String;

    fn repeat(c: char, n: usize) -> String {
        core::iter::repeat_n(c, n).collect()
    }

    #[test]
    fn names() {
        assert!(is_valid_topic("a"));
        assert!(is_valid_topic(&repeat('x', MAX_TOPIC_LEN)));
        assert!(!is_valid_topic(&repeat('x', MAX_TOPIC_LEN + 1)));
        for bad in ["", "a b", "a/b", "é", "a?b", "a\"b", "a\nb", ".", ".."] {
            assert!(!is_valid_topic(bad), "{bad:?}");
        }
        for good in ["...", "a.b", "A-z_0:9", "."] {
            assert!(is_valid_name(good, MAX_TOPIC_LEN), "{good:?}");
        }
        assert!(!is_valid_name("", MAX_TOPIC_LEN));
    }

    #[test]
    fn every_byte() {
        for b in 0..=u8::MAX {
            let expected = b.is_ascii_alphanumeric() || b"._-:".contains(&b);
            assert_eq!(is_name_byte(b), expected, "{b}");
        }
    }
}
