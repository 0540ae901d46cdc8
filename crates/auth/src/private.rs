//! Which topics need a grant at all: the set that `--private` names.

use crate::error::Error;
use crate::pattern::TopicPattern;
use crate::rights::Rights;

/// The topics that need a grant to be subscribed to (`--private 'user.*'`):
/// anyone may subscribe to any other topic, while a topic of this set
/// needs [`Rights`] that allow it.
///
/// ```
/// use tether_auth::{Private, Rights, TopicPattern};
///
/// let private = Private::new(["user.*", "admin"])?;
/// assert!(private.needs_grant("user.42.inbox"));
/// assert!(!private.needs_grant("news"));
///
/// let rights = Rights::new(vec![TopicPattern::parse("user.42.*")?], vec![]);
/// assert!(private.may_subscribe(None, "news"));
/// assert!(!private.may_subscribe(None, "user.42.inbox"));
/// assert!(private.may_subscribe(Some(&rights), "user.42.inbox"));
/// assert!(!private.may_subscribe(Some(&rights), "user.43.inbox"));
/// # Ok::<(), tether_auth::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Private {
    patterns: Vec<TopicPattern>,
}

impl Private {
    /// The set of topics that `patterns` name.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPattern`] for the first pattern that does not parse.
    pub fn new<I, S>(patterns: I) -> Result<Private, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let patterns = patterns
            .into_iter()
            .map(|p| TopicPattern::parse(p.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Private { patterns })
    }

    /// Whether subscribing to `topic` needs a grant.
    pub fn needs_grant(&self, topic: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(topic))
    }

    /// Whether a subscriber with these rights (`None`: no token) may
    /// subscribe to `topic`: a topic outside the set is open to all, one
    /// inside it to those whose rights allow it.
    pub fn may_subscribe(&self, rights: Option<&Rights>, topic: &str) -> bool {
        !self.needs_grant(topic) || rights.is_some_and(|r| r.may_subscribe(topic))
    }

    /// The patterns, in the order given.
    pub fn patterns(&self) -> &[TopicPattern] {
        &self.patterns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private() {
        let private = Private::new(["user.*", "admin"]).unwrap();
        assert_eq!(private.patterns().len(), 2);
        assert!(private.needs_grant("admin") && !private.needs_grant("administer"));
        assert!(Private::new(["user.*", "bad*pattern"]).is_err());
        let none = Private::default();
        assert!(!none.needs_grant("user.1"));
        assert!(none.may_subscribe(None, "user.1"));
    }
}
