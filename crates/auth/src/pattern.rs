//! Topic patterns: an exact topic name, or a prefix followed by `*`.

use std::fmt;

use tether_topic::{is_valid_pattern, is_valid_topic};

use crate::error::Error;

/// A set of topics: an exact topic name (`room.7`), or every topic that
/// starts with a prefix (`chat.*`; `*` alone is every topic).
///
/// The `*` may only end a pattern, and the rest must be made of the
/// characters of a topic name ([`tether_topic::is_valid_topic`]). A prefix is
/// plain text: `chat*` matches `chatter` too, so end a prefix with a
/// separator (`.` or `:`) where that matters.
///
/// ```
/// use tether_auth::TopicPattern;
///
/// let chat = TopicPattern::parse("chat.*")?;
/// assert!(chat.matches("chat.lobby"));
/// assert!(!chat.matches("chat"));
/// let exact = TopicPattern::parse("news")?;
/// assert!(exact.matches("news") && !exact.matches("newsroom"));
/// assert!(TopicPattern::parse("chat.*.x").is_err());
/// # Ok::<(), tether_auth::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TopicPattern {
    /// The topic name, or the prefix without its `*`.
    text: Box<str>,
    prefix: bool,
}

impl TopicPattern {
    /// Parses a pattern.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPattern`] if it is neither a valid topic name nor a
    /// prefix of topic-name characters followed by one `*`.
    pub fn parse(pattern: &str) -> Result<TopicPattern, Error> {
        match pattern.strip_suffix('*') {
            Some(prefix) if is_valid_pattern(pattern) => Ok(TopicPattern {
                text: prefix.into(),
                prefix: true,
            }),
            None if is_valid_topic(pattern) => Ok(TopicPattern {
                text: pattern.into(),
                prefix: false,
            }),
            _ => Err(Error::InvalidPattern(describe(pattern))),
        }
    }

    /// Whether `topic`, a valid topic name, is in this set. An invalid
    /// name is in no set.
    pub fn matches(&self, topic: &str) -> bool {
        if self.prefix {
            topic.starts_with(&*self.text) && is_valid_topic(topic)
        } else {
            *self.text == *topic
        }
    }

    /// Whether this is a prefix pattern (it ended with `*`).
    pub fn is_prefix(&self) -> bool {
        self.prefix
    }
}

/// The pattern for an error message: short, and only printable ASCII.
pub(crate) fn describe(pattern: &str) -> String {
    let mut text: String = pattern
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
        .collect();
    if pattern.chars().nth(64).is_some() {
        text.push_str("...");
    }
    format!("{text:?}")
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        if self.prefix {
            f.write_str("*")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicPattern({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_topic::{MAX_TOPIC_LEN, pattern_matches};

    #[test]
    fn parse_and_match() {
        let all = TopicPattern::parse("*").unwrap();
        assert!(all.is_prefix());
        assert!(all.matches("anything") && all.matches("a.b"));
        assert!(!all.matches(""), "an invalid topic is in no set");
        assert!(!all.matches("a/b"));
        let dots = TopicPattern::parse(".*").unwrap();
        assert!(dots.matches(".x"));
        assert!(TopicPattern::parse("..*").is_ok());
        let exact = TopicPattern::parse("room.7").unwrap();
        assert!(!exact.is_prefix());
        assert!(exact.matches("room.7"));
        assert!(!exact.matches("room.70") && !exact.matches("room."));
        for bad in [
            "", "**", "a*b", "*a", "a**", "a b", "a/*", "{sub}", "..", ".", "é*",
        ] {
            assert!(
                matches!(TopicPattern::parse(bad), Err(Error::InvalidPattern(_))),
                "{bad:?}"
            );
            assert!(!pattern_matches(bad, "a"), "{bad:?}");
        }
        let long = "a".repeat(MAX_TOPIC_LEN);
        assert!(TopicPattern::parse(&long).is_ok());
        assert!(TopicPattern::parse(&format!("{long}*")).is_ok());
        assert!(TopicPattern::parse(&format!("{long}a")).is_err());
        assert!(TopicPattern::parse(&format!("{long}a*")).is_err());
        assert_eq!(all.to_string(), "*");
        assert_eq!(format!("{exact:?}"), "TopicPattern(room.7)");
    }

    #[test]
    fn free_function_agrees() {
        let patterns = ["*", "chat.*", "chat*", "news", "a.b.c", "x:*", "..*", "a*b", ""];
        let topics = [
            "chat",
            "chat.",
            "chat.lobby",
            "chatter",
            "news",
            "newsroom",
            "a.b.c",
            "x:1",
            "...",
            "a/b",
            "",
        ];
        for p in patterns {
            for t in topics {
                let parsed = TopicPattern::parse(p).map(|pat| pat.matches(t)).unwrap_or(false);
                assert_eq!(pattern_matches(p, t), parsed, "{p:?} {t:?}");
            }
        }
    }

    #[test]
    fn describe_is_short_and_printable() {
        assert_eq!(describe("a\nb"), "\"a?b\"");
        let long = describe(&"x".repeat(1000));
        assert!(long.len() < 80 && long.contains("..."));
    }
}
