//! SIGHUP with `--config`: the options are read again (file, environment
//! and command line, as at start), what can change while the server runs
//! is applied, and what cannot is logged as needing a restart.

use std::collections::BTreeMap;
use std::ffi::OsString;

use clap::{ArgMatches, Command};

/// The options (clap's ids) that a reload applies: the hub's access rules
/// and namespaces' rules, token options, the metrics' token and series,
/// and the log level. The certificate and key files, and the token key
/// files, are read again on SIGHUP whatever the file says (their paths
/// are not options a reload changes).
const RELOADABLE: &[&str] = &[
    "publish_token",
    "require_ticket",
    "ticket_ttl",
    "ws_publish",
    "poll_timeout",
    "namespaces",
    "unknown_namespace",
    "publish_rate",
    "publish_burst",
    "max_connections_per_subject",
    "max_subscriptions",
    "max_subscribe_rate",
    "max_rpc_in_flight",
    "rpc_rate",
    "rpc_burst",
    "private",
    "jwt_audiences",
    "jwt_issuers",
    "jwt_leeway",
    "token_cookie",
    "token_query",
    "auth_timeout",
    "metrics_token",
    "metrics_topics",
    "admin_hosts",
    "log_level",
];

/// Each option's values as given (file, environment or command line), by
/// clap id; options left at their defaults are absent.
pub(crate) type Given = BTreeMap<String, Vec<OsString>>;

/// What `matches` of `cmd` gives, option by option (not groups).
pub(crate) fn given(cmd: &Command, matches: &ArgMatches) -> Given {
    matches
        .ids()
        .filter(|id| cmd.get_arguments().any(|arg| arg.get_id() == *id))
        .filter(|id| {
            !matches!(
                matches.value_source(id.as_str()),
                None | Some(clap::parser::ValueSource::DefaultValue)
            )
        })
        .map(|id| {
            let values = matches
                .get_raw(id.as_str())
                .map(|raw| raw.map(ToOwned::to_owned).collect())
                .unwrap_or_default();
            (id.to_string(), values)
        })
        .collect()
}

/// The options that differ between `old` and `new`: those a reload
/// applies, and those that take a restart (long names, for a log).
pub(crate) fn changes(old: &Given, new: &Given) -> (Vec<String>, Vec<String>) {
    let mut applied = Vec::new();
    let mut restart = Vec::new();
    let ids = old.keys().chain(new.keys().filter(|id| !old.contains_key(*id)));
    for id in ids {
        if old.get(id) != new.get(id) {
            let name = id.replace('_', "-");
            if RELOADABLE.contains(&id.as_str()) {
                applied.push(name);
            } else {
                restart.push(name);
            }
        }
    }
    (applied, restart)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(pairs: &[(&str, &[&str])]) -> Given {
        pairs
            .iter()
            .map(|(id, values)| ((*id).to_owned(), values.iter().map(OsString::from).collect()))
            .collect()
    }

    #[test]
    fn changes_are_sorted_into_applied_and_restart() {
        let old = given(&[
            ("port", &["8080"]),
            ("ws_publish", &["chat.*"]),
            ("threads", &["2"]),
        ]);
        let new = given(&[
            ("port", &["8081"]),
            ("ws_publish", &["chat.*", "news"]),
            ("threads", &["2"]),
            ("namespaces", &["a.*"]),
        ]);
        let (applied, restart) = changes(&old, &new);
        assert_eq!(applied, ["ws-publish", "namespaces"]);
        assert_eq!(restart, ["port"]);
        assert_eq!(changes(&new, &new), (vec![], vec![]));
        // An option that goes back to its default changed too.
        let (applied, restart) = changes(&new, &given(&[("threads", &["2"])]));
        assert_eq!(applied, ["namespaces", "ws-publish"]);
        assert_eq!(restart, ["port"]);
    }
}
