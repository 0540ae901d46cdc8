#![doc = include_str!("../README.md")]
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

/// Whether `pattern` is a topic pattern: a topic name ([`is_valid_topic`]),
/// or a prefix of topic-name bytes followed by one `*` (`chat.*`; `*`
/// alone is every topic). The `*` may only end a pattern.
///
/// ```
/// assert!(tether_topic::is_valid_pattern("chat.*"));
/// assert!(tether_topic::is_valid_pattern("news"));
/// assert!(tether_topic::is_valid_pattern("*"));
/// assert!(!tether_topic::is_valid_pattern("chat.*.x"));
/// assert!(!tether_topic::is_valid_pattern("chat/*"));
/// ```
pub fn is_valid_pattern(pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => is_valid_prefix(prefix),
        None => is_valid_topic(pattern),
    }
}

/// Whether `prefix` may start a prefix pattern: empty (every topic), or
/// bytes of a topic name of at most [`MAX_TOPIC_LEN`] (`.` and `..`, which
/// are no topic, are fine starts of one).
fn is_valid_prefix(prefix: &str) -> bool {
    prefix.len() <= MAX_TOPIC_LEN && prefix.bytes().all(is_name_byte)
}

/// Whether `topic` is in the set that `pattern` names: the topic itself,
/// or every valid topic that starts with the prefix before a final `*`.
/// A pattern that is not one ([`is_valid_pattern`]) matches nothing, and
/// an invalid topic name is in no set. A prefix is plain text: `chat*`
/// matches `chatter` too.
///
/// ```
/// assert!(tether_topic::pattern_matches("chat.*", "chat.lobby"));
/// assert!(!tether_topic::pattern_matches("chat.*", "chat"));
/// assert!(tether_topic::pattern_matches("news", "news"));
/// assert!(!tether_topic::pattern_matches("chat.*.x", "chat.a.x"));
/// ```
pub fn pattern_matches(pattern: &str, topic: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => is_valid_prefix(prefix) && topic.starts_with(prefix) && is_valid_topic(topic),
        None => pattern == topic && is_valid_topic(topic),
    }
}

/// Which of `patterns` governs `topic`: the most specific one that
/// matches it (an exact name before any prefix, a longer prefix before a
/// shorter one, the first of equals), as its index; `None` if none does.
///
/// ```
/// let patterns = ["*", "chat.*", "chat.vip.*", "chat.vip.lounge"];
/// assert_eq!(tether_topic::most_specific(patterns, "news"), Some(0));
/// assert_eq!(tether_topic::most_specific(patterns, "chat.lobby"), Some(1));
/// assert_eq!(tether_topic::most_specific(patterns, "chat.vip.bar"), Some(2));
/// assert_eq!(tether_topic::most_specific(patterns, "chat.vip.lounge"), Some(3));
/// assert_eq!(tether_topic::most_specific(["chat.*"], "news"), None);
/// ```
pub fn most_specific<'a>(patterns: impl IntoIterator<Item = &'a str>, topic: &str) -> Option<usize> {
    // Exact names rank above every prefix: their length plus one more
    // than the longest prefix can be.
    let rank = |pattern: &str| match pattern.strip_suffix('*') {
        Some(prefix) => prefix.len(),
        None => MAX_TOPIC_LEN + 1 + pattern.len(),
    };
    let mut best: Option<(usize, usize)> = None;
    for (index, pattern) in patterns.into_iter().enumerate() {
        if pattern_matches(pattern, topic) && best.is_none_or(|(_, r)| rank(pattern) > r) {
            best = Some((index, rank(pattern)));
        }
    }
    best.map(|(index, _)| index)
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
    fn patterns() {
        for good in ["*", "a*", "chat.*", "..*", "news", "a:b"] {
            assert!(is_valid_pattern(good), "{good:?}");
        }
        for bad in ["", "**", "a*b", "chat/*", ".", "..", "é*"] {
            assert!(!is_valid_pattern(bad), "{bad:?}");
        }
        assert!(pattern_matches("*", "x"));
        assert!(!pattern_matches("*", "a/b"));
        assert!(pattern_matches("chat*", "chatter"));
        assert!(!pattern_matches("..*", ".."));
        assert!(pattern_matches("..*", "..."));
        let long = repeat('x', MAX_TOPIC_LEN);
        assert!(pattern_matches(&long, &long));
        // A prefix may be as long as a topic, not longer.
        assert!(is_valid_pattern(&alloc::format!("{long}*")));
        assert!(!is_valid_pattern(&alloc::format!("{long}x*")));
    }

    #[test]
    fn the_most_specific_pattern_governs() {
        let long_prefix = alloc::format!("{}*", repeat('x', MAX_TOPIC_LEN - 1));
        let exact = "xx";
        // An exact name ranks above the longest prefix.
        assert_eq!(most_specific([long_prefix.as_str(), exact], "xx"), Some(1));
        assert_eq!(most_specific(["a.*", "a.*"], "a.b"), Some(0));
        assert_eq!(most_specific(["b.*", "a.*"], "a.b"), Some(1));
        assert_eq!(most_specific(["a.*", "bad*x"], "a.b"), Some(0));
        assert_eq!(most_specific(core::iter::empty::<&str>(), "a"), None);
    }

    #[test]
    fn every_byte() {
        for b in 0..=u8::MAX {
            let expected = b.is_ascii_alphanumeric() || b"._-:".contains(&b);
            assert_eq!(is_name_byte(b), expected, "{b}");
        }
    }
}
