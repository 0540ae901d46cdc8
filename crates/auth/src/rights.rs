//! A token's `tether` claim turned into rights on topics.

use serde::Deserialize;

use crate::error::Error;
use crate::object::Object;
use crate::pattern::{TopicPattern, describe};

/// Patterns in one list of a `tether` claim, at most.
pub const MAX_PATTERNS: usize = 256;

/// Bytes of a subject that `{sub}` stands for, at most.
pub const MAX_SUBJECT_LEN: usize = 64;

/// The `tether` claim of a token: the topics its bearer may subscribe to
/// (`sub`) and publish to (`pub`), as patterns that may use `{sub}`; and
/// the topics a connection that opens with it follows at once (`join`:
/// topic names, not patterns, that may use `{sub}`; each still needs
/// the right to subscribe).
///
/// ```json
/// { "sub": ["room.7", "user.{sub}.*"], "pub": ["room.7"], "join": ["user.{sub}.inbox"] }
/// ```
///
/// Any list may be left out (no rights of that kind, nothing joined).
/// Other members are ignored: they grant nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TetherClaim {
    /// Patterns of the topics that may be subscribed to.
    pub subscribe: Vec<String>,
    /// Patterns of the topics that may be published to.
    pub publish: Vec<String>,
    /// Topics a connection that opens with the token follows at once.
    pub join: Vec<String>,
}

impl<'de> Deserialize<'de> for TetherClaim {
    /// From a JSON object only, of lists of strings.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<TetherClaim, D::Error> {
        #[derive(Deserialize)]
        struct Lists {
            #[serde(default)]
            sub: Vec<String>,
            #[serde(default, rename = "pub")]
            publish: Vec<String>,
            #[serde(default)]
            join: Vec<String>,
        }
        let Object(lists) = Object::<Lists>::deserialize(deserializer)?;
        Ok(TetherClaim {
            subscribe: lists.sub,
            publish: lists.publish,
            join: lists.join,
        })
    }
}

impl TetherClaim {
    /// A claim with these lists.
    pub fn new(subscribe: Vec<String>, publish: Vec<String>) -> TetherClaim {
        TetherClaim {
            subscribe,
            publish,
            join: Vec::new(),
        }
    }

    /// The same claim, joining these topics.
    #[must_use]
    pub fn joining(mut self, join: Vec<String>) -> TetherClaim {
        self.join = join;
        self
    }
}

/// What a token's bearer may do: subscribe to and publish to the topics of
/// two lists of patterns. [`Rights::default`] allows nothing.
///
/// ```
/// use tether_auth::{Rights, TetherClaim};
///
/// let claim = TetherClaim::new(
///     vec!["room.7".into(), "user.{sub}.*".into()],
///     vec!["room.7".into()],
/// );
/// let rights = Rights::from_claim(&claim, Some("alice"))?;
/// assert!(rights.may_subscribe("user.alice.inbox"));
/// assert!(!rights.may_subscribe("user.bob.inbox"));
/// assert!(rights.may_publish("room.7"));
/// assert!(!rights.may_publish("user.alice.inbox"));
///
/// // A subject that would widen the pattern is refused, not substituted.
/// assert!(Rights::from_claim(&claim, Some("*")).is_err());
/// assert!(Rights::from_claim(&claim, Some("alice.x")).is_err());
/// # Ok::<(), tether_auth::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rights {
    subscribe: Vec<TopicPattern>,
    publish: Vec<TopicPattern>,
    /// Topic names, `{sub}` substituted (a boxed slice: an identity is
    /// carried in the state of requests under way, and kept small).
    join: Box<[Box<str>]>,
}

impl Rights {
    /// Rights from patterns already parsed.
    pub fn new(subscribe: Vec<TopicPattern>, publish: Vec<TopicPattern>) -> Rights {
        Rights {
            subscribe,
            publish,
            join: Box::default(),
        }
    }

    /// The rights a `tether` claim grants to `subject` (the token's `sub`):
    /// every `{sub}` in a pattern is replaced by the subject, then the
    /// pattern is parsed.
    ///
    /// # Errors
    ///
    /// [`Error::Grant`] if a list has more than [`MAX_PATTERNS`] patterns,
    /// a pattern (or a `join` topic) does not parse (after substitution),
    /// or a pattern uses
    /// `{sub}` and the subject is missing or is not 1 to
    /// [`MAX_SUBJECT_LEN`] ASCII letters, digits, `_` and `-`. The subject
    /// may not hold `*` (it would turn a name into a prefix) nor `.` or `:`
    /// (`user.{sub}.*` for the subject `a` would then take in the topics of
    /// the subject `a.b`): such a token is refused whole rather than given
    /// narrower rights than its issuer meant.
    pub fn from_claim(claim: &TetherClaim, subject: Option<&str>) -> Result<Rights, Error> {
        if claim.join.len() > MAX_PATTERNS {
            return Err(Error::Grant(format!("more than {MAX_PATTERNS} topics to join")));
        }
        Ok(Rights {
            subscribe: expand_all(&claim.subscribe, subject)?,
            publish: expand_all(&claim.publish, subject)?,
            join: (claim.join.iter())
                .map(|topic| expand_topic(topic, subject))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The topics a connection that opens with these rights follows at
    /// once (the claim's `join`, `{sub}` substituted), in order.
    pub fn join_topics(&self) -> impl Iterator<Item = &str> {
        self.join.iter().map(|topic| &**topic)
    }

    /// Whether the bearer may subscribe to `topic`.
    pub fn may_subscribe(&self, topic: &str) -> bool {
        self.subscribe.iter().any(|p| p.matches(topic))
    }

    /// Whether the bearer may publish to `topic`.
    pub fn may_publish(&self, topic: &str) -> bool {
        self.publish.iter().any(|p| p.matches(topic))
    }

    /// The subscribe patterns, `{sub}` substituted.
    pub fn subscribe_patterns(&self) -> &[TopicPattern] {
        &self.subscribe
    }

    /// The publish patterns, `{sub}` substituted.
    pub fn publish_patterns(&self) -> &[TopicPattern] {
        &self.publish
    }
}

const SUB: &str = "{sub}";

fn expand_all(patterns: &[String], subject: Option<&str>) -> Result<Vec<TopicPattern>, Error> {
    if patterns.len() > MAX_PATTERNS {
        return Err(Error::Grant(format!("more than {MAX_PATTERNS} patterns")));
    }
    patterns.iter().map(|p| expand(p, subject)).collect()
}

fn expand(pattern: &str, subject: Option<&str>) -> Result<TopicPattern, Error> {
    let text = substitute(pattern, subject)?;
    TopicPattern::parse(&text).map_err(|_| Error::Grant(format!("pattern {}", describe(pattern))))
}

/// A `join` topic with `{sub}` substituted: a topic name.
fn expand_topic(topic: &str, subject: Option<&str>) -> Result<Box<str>, Error> {
    let text = substitute(topic, subject)?;
    if !tether_topic::is_valid_topic(&text) {
        return Err(Error::Grant(format!("join topic {}", describe(topic))));
    }
    Ok(text.into())
}

/// `text` with every `{sub}` replaced by `subject`, which must be one that
/// cannot widen what it stands in.
fn substitute(text: &str, subject: Option<&str>) -> Result<String, Error> {
    if !text.contains(SUB) {
        return Ok(text.to_owned());
    }
    let subject = match subject {
        Some(s) if is_substitutable(s) => s,
        Some(s) => {
            return Err(Error::Grant(format!(
                "subject {} cannot stand for {{sub}}",
                describe(s)
            )));
        }
        None => return Err(Error::Grant("{sub} in a pattern of a token without sub".into())),
    };
    // The subject has no braces, so replacing cannot form a new `{sub}`.
    Ok(text.replace(SUB, subject))
}

fn is_substitutable(subject: &str) -> bool {
    (1..=MAX_SUBJECT_LEN).contains(&subject.len())
        && subject
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(sub: &[&str], publ: &[&str]) -> TetherClaim {
        TetherClaim::new(
            sub.iter().map(|s| s.to_string()).collect(),
            publ.iter().map(|s| s.to_string()).collect(),
        )
    }

    #[test]
    fn templating() {
        let c = claim(&["user.{sub}.*", "dm.{sub}-{sub}"], &["user.{sub}.out"]);
        let r = Rights::from_claim(&c, Some("u-1_A")).unwrap();
        assert!(r.may_subscribe("user.u-1_A.x"));
        assert!(r.may_subscribe("dm.u-1_A-u-1_A"));
        assert!(!r.may_subscribe("user.u-1_B.x"));
        assert!(!r.may_subscribe("user.{sub}.x"));
        assert!(r.may_publish("user.u-1_A.out"));
        assert!(!r.may_publish("user.u-1_A.in"));
        assert_eq!(r.subscribe_patterns()[0].to_string(), "user.u-1_A.*");
        assert_eq!(r.publish_patterns().len(), 1);
    }

    #[test]
    fn join_topics_are_names_with_the_subject_substituted() {
        let c = claim(&["user.{sub}.*"], &[]).joining(vec!["user.{sub}.inbox".into(), "lobby".into()]);
        let r = Rights::from_claim(&c, Some("ann")).unwrap();
        assert_eq!(r.join_topics().collect::<Vec<_>>(), ["user.ann.inbox", "lobby"]);
        assert_eq!(
            Rights::from_claim(&claim(&[], &[]), None)
                .unwrap()
                .join_topics()
                .count(),
            0
        );
        for bad in ["room.*", "a b", "", "{sub}.x"] {
            let c = claim(&[], &[]).joining(vec![bad.into()]);
            assert!(
                matches!(Rights::from_claim(&c, None), Err(Error::Grant(_))),
                "{bad:?}"
            );
        }
        let many = claim(&[], &[]).joining(vec!["t".into(); MAX_PATTERNS + 1]);
        assert!(matches!(Rights::from_claim(&many, None), Err(Error::Grant(_))));
        let parsed: TetherClaim = serde_json::from_str(r#"{"sub":[],"join":["a"]}"#).unwrap();
        assert_eq!(parsed.join, ["a"]);
    }

    #[test]
    fn subjects_that_would_widen_are_refused() {
        let c = claim(&["user.{sub}"], &[]);
        let long = "a".repeat(MAX_SUBJECT_LEN + 1);
        for bad in [
            "*",
            "a*",
            "",
            "a.b",
            "a:b",
            "..",
            "a/b",
            "a b",
            "{sub}",
            "é",
            long.as_str(),
        ] {
            assert!(
                matches!(Rights::from_claim(&c, Some(bad)), Err(Error::Grant(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(Rights::from_claim(&c, None), Err(Error::Grant(_))));
        assert!(Rights::from_claim(&c, Some(&"a".repeat(MAX_SUBJECT_LEN))).is_ok());
        // Without a template, the subject does not matter.
        let plain = claim(&["news"], &[]);
        assert!(
            Rights::from_claim(&plain, Some("a*b"))
                .unwrap()
                .may_subscribe("news")
        );
        assert!(Rights::from_claim(&plain, None).is_ok());
    }

    #[test]
    fn bad_patterns_and_limits() {
        for bad in ["a*b", "{user}", "{sub", "user.{sub}x*y", ""] {
            let c = claim(&[], &[bad]);
            assert!(
                matches!(Rights::from_claim(&c, Some("u")), Err(Error::Grant(_))),
                "{bad:?}"
            );
        }
        // {sub} substituted into a topic name too long to be one.
        let c = claim(&[&format!("{}{{sub}}", "a".repeat(100))], &[]);
        assert!(Rights::from_claim(&c, Some(&"b".repeat(28))).is_ok());
        assert!(Rights::from_claim(&c, Some(&"b".repeat(29))).is_err());
        let many: Vec<String> = (0..=MAX_PATTERNS).map(|i| format!("t{i}")).collect();
        let c = TetherClaim::new(many.clone(), vec![]);
        assert!(Rights::from_claim(&c, None).is_err());
        let c = TetherClaim::new(many[..MAX_PATTERNS].to_vec(), vec![]);
        assert!(Rights::from_claim(&c, None).is_ok());
    }

    #[test]
    fn claim_json() {
        let c: TetherClaim = serde_json::from_str(r#"{"sub":["a"],"pub":["b"],"other":1}"#).unwrap();
        assert_eq!(c, claim(&["a"], &["b"]));
        let c: TetherClaim = serde_json::from_str("{}").unwrap();
        assert_eq!(c, TetherClaim::default());
        assert!(serde_json::from_str::<TetherClaim>(r#"{"sub":"a"}"#).is_err());
        assert!(serde_json::from_str::<TetherClaim>(r#"{"sub":[1]}"#).is_err());
        assert!(serde_json::from_str::<TetherClaim>(r#"{"sub":[],"sub":["x"]}"#).is_err());
        assert!(serde_json::from_str::<TetherClaim>(r#"[["a"],["b"]]"#).is_err());
        assert!(serde_json::from_str::<TetherClaim>("null").is_err());
        let none = Rights::default();
        assert!(!none.may_subscribe("a") && !none.may_publish("a"));
    }
}
