//! Topics as NATS subjects, and publish keys as `Nats-Msg-Id`s.

use std::borrow::Cow;

/// A topic's subject: `PREFIX.topic.NAME`, with each `.` of the name made
/// `~` so that the name is one token (a topic name never holds `~`, and
/// `...` is a valid topic but `a...b` no valid subject).
///
/// ```
/// assert_eq!(tether_nats::subject_of("tether", "chat.lobby"), "tether.topic.chat~lobby");
/// ```
pub fn subject_of(prefix: &str, topic: &str) -> String {
    let mut subject = String::with_capacity(prefix.len() + 7 + topic.len());
    subject.push_str(prefix);
    subject.push_str(".topic.");
    subject.extend(topic.chars().map(|c| if c == '.' { '~' } else { c }));
    subject
}

/// The topic of a subject [`subject_of`] made under `prefix`; `None` for
/// a subject that is not one.
pub(crate) fn topic_of<'a>(prefix: &str, subject: &'a str) -> Option<Cow<'a, str>> {
    let name = subject.strip_prefix(prefix)?.strip_prefix(".topic.")?;
    if name.is_empty() || name.contains('.') {
        return None;
    }
    Some(if name.contains('~') {
        Cow::Owned(name.replace('~', "."))
    } else {
        Cow::Borrowed(name)
    })
}

/// The subjects of every topic under `prefix`: the stream's subject
/// filter.
pub(crate) fn all_topics(prefix: &str) -> String {
    format!("{prefix}.topic.*")
}

/// The `Nats-Msg-Id` of a publish key: JetStream's deduplication is per
/// stream, the hub's keys are per topic, so the id names both.
pub(crate) fn message_id(topic: &str, key: &str) -> String {
    format!("{topic} {key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for topic in ["news", "chat.lobby", "...", "..", "a:b-c_d", "x.y.z", "x:y.z"] {
            let subject = subject_of("p.q", topic);
            // The prefix's two tokens, `topic`, and the name as one token.
            assert_eq!(subject.matches('.').count(), 3, "{subject}");
            assert!(seen.insert(subject.clone()), "{subject} twice");
            assert_eq!(topic_of("p.q", &subject).as_deref(), Some(topic));
        }
        assert_eq!(subject_of("p", "a.b"), "p.topic.a~b");
        for other in [
            "p.topic.",
            "p.topic.a.b",
            "p.other.a",
            "q.topic.a",
            "p.topica",
            "p",
        ] {
            assert_eq!(topic_of("p", other), None, "{other}");
        }
    }

    #[test]
    fn message_ids_are_per_topic() {
        assert_ne!(message_id("a", "k"), message_id("b", "k"));
        // Neither a topic nor a key holds a space, so the id splits back
        // into one pair only.
        assert_eq!(message_id("a.b", "k-1").split_once(' '), Some(("a.b", "k-1")));
    }
}
