//! `--namespace 'PATTERN key=value ...'`: a namespace's rules (who
//! subscribes and publishes, presence; [`tether_apps::Namespace`]) and its
//! backlog and expiry ([`tether_hub::TopicLimits`]), in one spec.

use tether_apps::{HubSettings, Namespace};
use tether_hub::TopicLimits;

/// One `--namespace`: the rules, and the bounds it sets (those it leaves
/// out are the hub-wide ones).
#[derive(Clone, Debug)]
pub(crate) struct NamespaceArg {
    namespace: Namespace,
    backlog_events: Option<usize>,
    backlog_bytes: Option<usize>,
    /// Seconds; 0: never forgotten.
    topic_ttl: Option<f64>,
    /// Kept in the durable log (`--data-dir`).
    durable: Option<bool>,
}

/// Parses `PATTERN key=value ...` (whitespace between): the keys of
/// [`Namespace::set`], and `backlog-events=N`, `backlog-bytes=N`,
/// `topic-ttl=SECONDS` (0: never), `durable=on|off`.
pub(crate) fn parse_namespace(text: &str) -> Result<NamespaceArg, String> {
    let mut words = text.split_whitespace();
    let mut arg = NamespaceArg {
        namespace: Namespace::new(words.next().unwrap_or_default())?,
        backlog_events: None,
        backlog_bytes: None,
        topic_ttl: None,
        durable: None,
    };
    for word in words {
        let (key, value) = word
            .split_once('=')
            .ok_or_else(|| format!("{word:?}: expected key=value"))?;
        let count = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{key}: expected a whole number, found {value:?}"))
        };
        match key {
            "backlog-events" => arg.backlog_events = Some(count()?),
            "backlog-bytes" => arg.backlog_bytes = Some(count()?),
            "durable" => {
                arg.durable = Some(match value {
                    "on" | "true" => true,
                    "off" | "false" => false,
                    _ => return Err(format!("durable: expected on or off, found {value:?}")),
                });
            }
            "topic-ttl" => {
                let seconds = value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && (0.0..=1e9).contains(s))
                    .ok_or_else(|| format!("topic-ttl: expected seconds from 0 to 1e9, found {value:?}"))?;
                arg.topic_ttl = Some(seconds);
            }
            _ => arg.namespace.set(key, value).map_err(|e| {
                if e.contains("not a namespace rule") {
                    format!("{key}: not a namespace key (subscribe, private, publish, presence, join-leave, latest, delta, compress, backlog-events, backlog-bytes, topic-ttl, durable)")
                } else {
                    e
                }
            })?,
        }
    }
    Ok(arg)
}

/// Puts `args` into `settings`: the rules into its namespaces, the bounds
/// into its hub's, starting from the hub-wide bounds already there.
pub(crate) fn apply(args: &[NamespaceArg], settings: &mut HubSettings) -> Result<(), String> {
    for arg in args {
        let pattern = &arg.namespace.pattern;
        if settings.namespaces.iter().any(|n| n.pattern == *pattern) {
            return Err(format!("--namespace: {pattern} is given twice"));
        }
        let mut limits = TopicLimits::new(pattern.clone(), &settings.hub);
        if let Some(events) = arg.backlog_events {
            limits.max_backlog_events = events;
        }
        if let Some(bytes) = arg.backlog_bytes {
            limits.max_backlog_bytes = bytes;
        }
        if let Some(durable) = arg.durable {
            limits.durable = durable;
        }
        if let Some(ttl) = arg.topic_ttl {
            limits.topic_ttl = (ttl > 0.0).then(|| std::time::Duration::from_secs_f64(ttl));
        }
        // Only a namespace with bounds of its own needs them: the hub's
        // limits then change only when those do.
        if limits != TopicLimits::new(pattern.clone(), &settings.hub) {
            settings.hub.namespaces.push(limits);
        }
        settings.namespaces.push(arg.namespace.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_apps::WhoPublishes;

    #[test]
    fn a_spec_sets_rules_and_bounds() {
        let mut settings = HubSettings::default();
        settings.hub.max_backlog_events = 7;
        let args = [
            parse_namespace("chat.* publish=subscribers backlog-events=50 topic-ttl=0").unwrap(),
            parse_namespace("user.* private=true durable=off").unwrap(),
        ];
        apply(&args, &mut settings).unwrap();
        assert_eq!(settings.namespaces[0].publish, Some(WhoPublishes::Subscribers));
        assert_eq!(settings.hub.backlog_bounds("chat.x"), (50, 1 << 20));
        assert_eq!(settings.hub.topic_ttl_of("chat.x"), None);
        // What a namespace leaves out is the hub's.
        assert_eq!(settings.hub.backlog_bounds("user.x"), (7, 1 << 20));
        assert_eq!(settings.hub.topic_ttl_of("user.x"), settings.hub.topic_ttl);
        assert!(settings.hub.is_durable("chat.x") && !settings.hub.is_durable("user.x"));
        assert!(settings.hub.is_durable("news"));
    }

    #[test]
    fn errors_name_the_key() {
        for (text, wanted) in [
            (
                "chat.* backlog-events=lots",
                "backlog-events: expected a whole number",
            ),
            ("chat.* topic-ttl=-1", "topic-ttl: expected seconds"),
            ("chat.* colour=blue", "colour: not a namespace key"),
            ("chat.* publish=all", "publish: expected"),
            ("chat/x", "not a topic pattern"),
        ] {
            let e = parse_namespace(text).unwrap_err();
            assert!(e.contains(wanted), "{text:?}: {e}");
        }
        let twice = [
            parse_namespace("a.*").unwrap(),
            parse_namespace("a.* publish=nobody").unwrap(),
        ];
        assert_eq!(
            apply(&twice, &mut HubSettings::default()).unwrap_err(),
            "--namespace: a.* is given twice"
        );
    }
}
