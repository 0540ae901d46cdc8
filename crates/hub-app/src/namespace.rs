//! Namespaces: the topics a pattern names (`chat.*`, `user.*`), each with
//! its own rules for who subscribes, who publishes and whether presence
//! is kept. The most specific pattern that matches a topic governs it;
//! what a namespace leaves unsaid, the hub-wide settings decide.

use std::fmt;
use std::str::FromStr;

/// Who may subscribe to a namespace's topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhoSubscribes {
    /// Anyone who may use the hub (tickets when they are required).
    Anyone,
    /// A credential that grants the topic: the publish token, a ticket, or
    /// a JSON Web Token whose rights name it (a private topic).
    Token,
    /// Whoever the application's backend lets subscribe, asked for each
    /// subscription (the subscribe hook; the publish token is not asked).
    Hook,
}

/// Who may publish to a namespace's topics, over any route (`POST
/// /topics/NAME`, the server API, a WebSocket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhoPublishes {
    /// The publish token, and JSON Web Tokens whose rights name the topic.
    Token,
    /// As `Token`, and every WebSocket subscriber of the topic.
    Subscribers,
    /// The publish token alone (the application's backend); a JSON Web
    /// Token's rights do not count.
    Backend,
    /// No one: the namespace's topics get events only from the server
    /// itself (an application's own publishes).
    Nobody,
    /// As `Subscribers`, and each publish but the publish token's put to
    /// the application's backend (the publish hook), which allows it,
    /// refuses it, or gives other data to publish instead.
    Hook,
}

/// What a topic outside every namespace gets, once there are namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownNamespace {
    /// The hub-wide settings, as if there were no namespaces (the default).
    #[default]
    Default,
    /// Refused: subscribing and publishing answer 404 (`no_namespace` in
    /// the server API).
    Refuse,
}

/// The rules of the topics that [`Namespace::pattern`] names.
///
/// ```
/// use tether_hub_app::{Namespace, WhoPublishes};
///
/// let chat: Namespace = "chat.* publish=subscribers join-leave=off".parse()?;
/// assert_eq!(chat.pattern, "chat.*");
/// assert_eq!(chat.publish, Some(WhoPublishes::Subscribers));
/// assert!(chat.presence && !chat.join_leave);
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Namespace {
    /// A topic name, or a prefix followed by `*`.
    pub pattern: String,
    /// Who may subscribe; `None`: as the hub-wide settings say (a private
    /// pattern of [`crate::HubAuth`], tickets when required).
    pub subscribe: Option<WhoSubscribes>,
    /// Who may publish; `None`: the publish token and tokens' rights, and
    /// WebSocket subscribers where [`crate::HubSettings::ws_publish`] says.
    pub publish: Option<WhoPublishes>,
    /// Subscribers are members of their topic (`/topics/NAME/presence`).
    /// On by default; off, the topic has no members and its presence is
    /// answered 404.
    pub presence: bool,
    /// Subscribers may ask for join and leave events (`?presence=1`). On
    /// by default (and only with `presence`).
    pub join_leave: bool,
    /// A subscriber from nowhere (no `Last-Event-ID`, `lastEventId` or
    /// `since`) is sent the topic's latest event at once, as its replay,
    /// then the live ones; a long poll from nowhere is answered with it.
    /// One that resumes from an id is not changed. Off by default.
    pub latest: bool,
    /// Subscribers that ask for deltas (a multiplexed socket's
    /// `"delta":true`, `?delta=1` on a stream or socket) get each event
    /// that directly follows the one they last got on the topic as a
    /// Fossil delta against it; the first, and any after a resume or a
    /// gap, whole. Off by default.
    pub delta: bool,
    /// Event streams of its topics are sent compressed to clients that
    /// accept it, where the server compresses event streams. On by
    /// default; off, for data that must not share a compressed stream
    /// with what an attacker can choose (CRIME/BREACH-style guessing of a
    /// secret by the compressed length), or that does not compress.
    pub compress: bool,
}

impl Namespace {
    /// The topics of `pattern`, with every rule left to the hub-wide
    /// settings.
    ///
    /// # Errors
    ///
    /// If `pattern` is not a topic pattern.
    pub fn new(pattern: impl Into<String>) -> Result<Namespace, String> {
        let pattern = pattern.into();
        if !tether_topic::is_valid_pattern(&pattern) {
            return Err(format!(
                "{pattern:?} is not a topic pattern (a topic name, or a prefix of topic-name characters and a final *)"
            ));
        }
        Ok(Namespace {
            pattern,
            subscribe: None,
            publish: None,
            presence: true,
            join_leave: true,
            latest: false,
            delta: false,
            compress: true,
        })
    }

    /// Sets one rule from its text form: `subscribe=anyone|token|hook`,
    /// `private=true|false` (`subscribe=token`), `publish=token|subscribers|backend|hook|nobody`,
    /// `presence=on|off`, `join-leave=on|off`, `latest=on|off`,
    /// `delta=on|off`, `compress=on|off`.
    ///
    /// # Errors
    ///
    /// An unknown key or a value it does not take.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let bad = |what: &str| format!("{key}: expected {what}, found {value:?}");
        match key {
            "subscribe" => {
                self.subscribe = Some(match value {
                    "anyone" => WhoSubscribes::Anyone,
                    "token" => WhoSubscribes::Token,
                    "hook" => WhoSubscribes::Hook,
                    _ => return Err(bad("anyone, token or hook")),
                });
            }
            "private" => {
                self.subscribe = Some(if switch(value).ok_or_else(|| bad("true or false"))? {
                    WhoSubscribes::Token
                } else {
                    WhoSubscribes::Anyone
                });
            }
            "publish" => {
                self.publish = Some(match value {
                    "token" => WhoPublishes::Token,
                    "subscribers" => WhoPublishes::Subscribers,
                    "backend" => WhoPublishes::Backend,
                    "nobody" => WhoPublishes::Nobody,
                    "hook" => WhoPublishes::Hook,
                    _ => return Err(bad("token, subscribers, backend, hook or nobody")),
                });
            }
            "presence" => self.presence = switch(value).ok_or_else(|| bad("on or off"))?,
            "join-leave" => self.join_leave = switch(value).ok_or_else(|| bad("on or off"))?,
            "latest" => self.latest = switch(value).ok_or_else(|| bad("on or off"))?,
            "delta" => self.delta = switch(value).ok_or_else(|| bad("on or off"))?,
            "compress" => self.compress = switch(value).ok_or_else(|| bad("on or off"))?,
            _ => {
                return Err(format!(
                    "{key}: not a namespace rule (subscribe, private, publish, presence, join-leave, latest, delta, compress)"
                ));
            }
        }
        Ok(())
    }
}

/// `on`/`off`, `true`/`false`.
fn switch(value: &str) -> Option<bool> {
    match value {
        "on" | "true" => Some(true),
        "off" | "false" => Some(false),
        _ => None,
    }
}

/// `PATTERN key=value ...`, whitespace between (see [`Namespace::set`]).
impl FromStr for Namespace {
    type Err = String;

    fn from_str(text: &str) -> Result<Namespace, String> {
        let mut words = text.split_whitespace();
        let mut namespace = Namespace::new(words.next().unwrap_or_default())?;
        for word in words {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| format!("{word:?}: expected key=value"))?;
            namespace.set(key, value)?;
        }
        Ok(namespace)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)?;
        match self.subscribe {
            Some(WhoSubscribes::Anyone) => f.write_str(" subscribe=anyone")?,
            Some(WhoSubscribes::Token) => f.write_str(" subscribe=token")?,
            Some(WhoSubscribes::Hook) => f.write_str(" subscribe=hook")?,
            None => {}
        }
        match self.publish {
            Some(WhoPublishes::Token) => f.write_str(" publish=token")?,
            Some(WhoPublishes::Subscribers) => f.write_str(" publish=subscribers")?,
            Some(WhoPublishes::Backend) => f.write_str(" publish=backend")?,
            Some(WhoPublishes::Nobody) => f.write_str(" publish=nobody")?,
            Some(WhoPublishes::Hook) => f.write_str(" publish=hook")?,
            None => {}
        }
        if !self.presence {
            f.write_str(" presence=off")?;
        }
        if !self.join_leave {
            f.write_str(" join-leave=off")?;
        }
        if self.latest {
            f.write_str(" latest=on")?;
        }
        if self.delta {
            f.write_str(" delta=on")?;
        }
        if !self.compress {
            f.write_str(" compress=off")?;
        }
        Ok(())
    }
}

/// The namespace that governs `topic` among `namespaces`, if any.
pub(super) fn governing<'a>(namespaces: &'a [Namespace], topic: &str) -> Option<&'a Namespace> {
    let index = tether_topic::most_specific(namespaces.iter().map(|n| n.pattern.as_str()), topic)?;
    namespaces.get(index)
}

/// Who publishes, as far as a namespace's rule cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Publisher {
    /// The publish token, or a ticket it issued with the right to publish.
    Backend,
    /// A JSON Web Token (or a ticket issued for one) whose rights name the
    /// topic.
    Granted,
    /// A WebSocket subscriber with no right of its own.
    Subscriber,
}

/// Whether `who` may publish under `rule` (`None`: no namespace rule, so
/// tokens and the backend may, and subscribers where `ws_publish_open`).
pub(super) fn may_publish(rule: Option<WhoPublishes>, who: Publisher, ws_publish_open: bool) -> bool {
    match (rule, who) {
        (Some(WhoPublishes::Nobody), _) => false,
        (_, Publisher::Backend) => true,
        (Some(WhoPublishes::Backend), _) => false,
        (_, Publisher::Granted) => true,
        (Some(WhoPublishes::Subscribers | WhoPublishes::Hook), Publisher::Subscriber) => true,
        (Some(WhoPublishes::Token), Publisher::Subscriber) => false,
        (None, Publisher::Subscriber) => ws_publish_open,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_form_round_trips() {
        for text in [
            "chat.*",
            "chat.* publish=subscribers",
            "user.* subscribe=token publish=backend presence=off join-leave=off",
            "clock subscribe=anyone publish=nobody",
            "room.* subscribe=hook publish=hook",
            "score.* publish=backend latest=on",
            "vault.* subscribe=token compress=off",
            "state.* publish=backend latest=on delta=on",
        ] {
            let namespace: Namespace = text.parse().unwrap();
            assert_eq!(namespace.to_string(), text);
        }
        let private: Namespace = "user.* private=true".parse().unwrap();
        assert_eq!(private.subscribe, Some(WhoSubscribes::Token));
    }

    #[test]
    fn errors_name_the_rule() {
        for (text, wanted) in [
            ("", "not a topic pattern"),
            ("chat/*", "not a topic pattern"),
            (
                "chat.* publish=everyone",
                "publish: expected token, subscribers, backend, hook or nobody",
            ),
            ("chat.* presence=maybe", "presence: expected on or off"),
            ("score.* latest=yes", "latest: expected on or off"),
            ("vault.* compress=gzip", "compress: expected on or off"),
            ("state.* delta=yes", "delta: expected on or off"),
            ("chat.* colour=blue", "colour: not a namespace rule"),
            ("chat.* publish", "expected key=value"),
        ] {
            let e = text.parse::<Namespace>().unwrap_err();
            assert!(e.contains(wanted), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_most_specific_namespace_governs() {
        let namespaces: Vec<Namespace> = ["chat.* publish=subscribers", "chat.announce publish=backend", "*"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        let rule = |topic: &str| governing(&namespaces, topic).map(|n| n.pattern.as_str());
        assert_eq!(rule("chat.lobby"), Some("chat.*"));
        assert_eq!(rule("chat.announce"), Some("chat.announce"));
        assert_eq!(rule("news"), Some("*"));
        assert_eq!(governing(&namespaces[..2], "news"), None);
    }

    #[test]
    fn publishing_rules() {
        let table = [
            (None, [true, true, false]),
            (Some(WhoPublishes::Token), [true, true, false]),
            (Some(WhoPublishes::Subscribers), [true, true, true]),
            (Some(WhoPublishes::Hook), [true, true, true]),
            (Some(WhoPublishes::Backend), [true, false, false]),
            (Some(WhoPublishes::Nobody), [false, false, false]),
        ];
        for (rule, expected) in table {
            let got = [Publisher::Backend, Publisher::Granted, Publisher::Subscriber]
                .map(|who| may_publish(rule, who, false));
            assert_eq!(got, expected, "{rule:?}");
        }
        // Without a rule, --ws-publish opens a topic to its subscribers.
        assert!(may_publish(None, Publisher::Subscriber, true));
        assert!(!may_publish(
            Some(WhoPublishes::Token),
            Publisher::Subscriber,
            true
        ));
    }
}
