//! What a node says once it listens: where, and what it serves. Scripts
//! wait for its first line and read the port from it, so by default it
//! goes to standard output as text; an embedder (or `tether serve
//! --log-format json`) may write it its own way ([`Announce`]).

use std::fmt;

/// Where a node listens and what it serves, said once it is bound.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Banner {
    /// The main port's URL (`http://127.0.0.1:8080/`).
    pub url: String,
    /// What is served there, in a few words.
    pub serves: &'static str,
    /// The TLS port beside the main one, if any (`https://ADDR/`).
    pub tls_url: Option<String>,
    /// HTTP/3's UDP port, if it is on (`udp://ADDR/`).
    pub http3_url: Option<String>,
    /// `/metrics` on the admin listener, if there is one.
    pub metrics_url: Option<String>,
    /// The admin page on the admin listener, if there is one.
    pub admin_url: Option<String>,
    /// The backend hooks asked: each hook's name (`connect`, ...) and its
    /// URL, the values of its query redacted.
    pub hooks: Vec<(&'static str, String)>,
}

impl Banner {
    /// The first line: `tether listening on URL (WHAT; Ctrl-C stops)`,
    /// the line scripts wait for.
    pub fn first_line(&self) -> String {
        format!("tether listening on {} ({}; Ctrl-C stops)", self.url, self.serves)
    }

    /// Every line, as a terminal shows them: the first, then one for each
    /// other listener, then the hooks.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![self.first_line()];
        if let Some(tls) = &self.tls_url {
            lines.push(format!("TLS beside it on {tls}"));
        }
        if let Some(quic) = &self.http3_url {
            lines.push(format!("HTTP/3 on {quic}"));
        }
        if let (Some(metrics), Some(admin)) = (&self.metrics_url, &self.admin_url) {
            lines.push(format!("metrics on {metrics}, the admin page on {admin}"));
        }
        if !self.hooks.is_empty() {
            lines.push(format!("hooks: {}", self.hooks_text()));
        }
        lines
    }

    /// The hooks as `connect http://...; publish http://...`.
    pub fn hooks_text(&self) -> String {
        let hooks: Vec<String> = self
            .hooks
            .iter()
            .map(|(name, url)| format!("{name} {url}"))
            .collect();
        hooks.join("; ")
    }
}

/// How a node says its [`Banner`]; without one it prints
/// [`Banner::lines`] on standard output.
pub struct Announce(Box<dyn FnOnce(&Banner) + Send>);

impl Announce {
    /// Says the banner with `say`.
    pub fn new(say: impl FnOnce(&Banner) + Send + 'static) -> Announce {
        Announce(Box::new(say))
    }

    pub(crate) fn say(self, banner: &Banner) {
        (self.0)(banner);
    }
}

impl fmt::Debug for Announce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Announce")
    }
}

/// The hooks of `config`, each with its URL redacted.
pub(crate) fn hooks(config: &tether_hooks::Config) -> Vec<(&'static str, String)> {
    tether_hooks::HookKind::ALL
        .iter()
        .filter_map(|&kind| {
            config
                .target(kind)
                .map(|target| (kind.name(), target.endpoint.redacted()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lines_say_every_listener_and_hook() {
        let config = tether_hooks::Config::new()
            .hook(
                tether_hooks::HookKind::Connect,
                "http://10.0.0.5:8080/c?key=s3cret",
                Duration::from_secs(1),
            )
            .unwrap()
            .hook(
                tether_hooks::HookKind::Publish,
                "http://10.0.0.5:8080/p",
                Duration::from_secs(1),
            )
            .unwrap();
        let banner = Banner {
            url: "http://127.0.0.1:8080/".into(),
            serves: "the pub/sub hub at /topics",
            tls_url: None,
            http3_url: None,
            metrics_url: Some("http://127.0.0.1:9090/metrics".into()),
            admin_url: Some("http://127.0.0.1:9090/admin".into()),
            hooks: hooks(&config),
        };
        assert_eq!(
            banner.lines(),
            [
                "tether listening on http://127.0.0.1:8080/ (the pub/sub hub at /topics; Ctrl-C stops)",
                "metrics on http://127.0.0.1:9090/metrics, the admin page on http://127.0.0.1:9090/admin",
                "hooks: connect http://10.0.0.5:8080/c?key=REDACTED; publish http://10.0.0.5:8080/p",
            ]
        );
    }
}
