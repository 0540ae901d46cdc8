//! The backend hooks' options of `tether serve` (`--app demo` and
//! `--app hub`).

use tether_apps::HubSettings;
use tether_node::Hooks;

use super::auth::is_cookie_name;
use super::values::{seconds, seconds_between, whole};

/// Decisions by the application's backend over HTTP (`--app demo` and
/// `--app hub`): the JSON each hook is sent and answers is in
/// crates/hooks/README.md.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Backend decisions (HTTP hooks, --app demo and --app hub)")]
pub(crate) struct HookArgs {
    /// Ask this URL (http://HOST:PORT/PATH) who a request that presents no
    /// token (nor ticket, nor publish token) is: its subject, rights and
    /// expiry, from the --hook-forward-header fields and
    /// --hook-forward-cookie cookies. The request waits for the answer; a
    /// refusal is its status and reason, no answer in time is 503 with
    /// Retry-After, never an allow.
    #[arg(long, value_name = "URL")]
    pub(crate) hook_connect: Option<String>,
    /// Ask this URL whether a subscriber may read a topic, for the
    /// namespaces that say subscribe=hook.
    #[arg(long, value_name = "URL")]
    pub(crate) hook_subscribe: Option<String>,
    /// Ask this URL whether a publish goes out, as it is or with other
    /// data, for the namespaces that say publish=hook (all but the publish
    /// token's publishes; a WebSocket's in the order it sent them).
    #[arg(long, value_name = "URL")]
    pub(crate) hook_publish: Option<String>,
    /// Ask this URL for a later expiry of a connection the connect hook
    /// let in, shortly before it expires (at most 30 s before); a refusal
    /// or no answer lets it expire when it was to.
    #[arg(long, value_name = "URL")]
    pub(crate) hook_refresh: Option<String>,
    /// Ask this URL what a client's call answers: a multiplexed
    /// WebSocket's {"type":"rpc","method":...,"data":...}, or POST /rpc.
    /// The answer's data goes back to that caller alone; a refusal, or no
    /// answer in time, is that call's error (never a close). Without it,
    /// every call is answered an error (code 501).
    #[arg(long, value_name = "URL")]
    pub(crate) hook_rpc: Option<String>,
    /// Ask this URL for the current value of a topic of a latest=on
    /// namespace that has had no event, when a subscriber arrives at it
    /// from nowhere; the answer's data is published to the topic (as the
    /// backend's own publish, with an id), unless an event came first. No
    /// value, a refusal or no answer: the subscriber waits for the first
    /// event, as without the hook.
    #[arg(long, value_name = "URL")]
    pub(crate) hook_latest: Option<String>,
    /// Seconds the backend has to answer (queueing included), 0.001 to 60.
    #[arg(long, value_name = "SECONDS", value_parser = seconds_between(0.001, 60.0), default_value_t = 1.0)]
    pub(crate) hook_timeout: f64,
    /// A request header field the connect hook is given (repeat for more;
    /// any case, sent in lower case).
    #[arg(long = "hook-forward-header", value_name = "NAME", value_parser = parse_header_name)]
    pub(crate) hook_forward_headers: Vec<String>,
    /// A cookie the connect hook is given (repeat for more).
    #[arg(long = "hook-forward-cookie", value_name = "NAME", value_parser = parse_cookie_name)]
    pub(crate) hook_forward_cookies: Vec<String>,
    /// Threads asking the backend, each with its own keep-alive
    /// connection to each hook's host (1 to 1024).
    #[arg(long, value_name = "N", default_value_t = tether_hooks::DEFAULT_WORKERS,
          value_parser = whole::<usize>(1, 1024))]
    pub(crate) hook_workers: usize,
    /// Most questions outstanding from each event loop; more are answered
    /// 503 at once.
    #[arg(long, value_name = "N", default_value_t = tether_apps::DEFAULT_PER_LOOP,
          value_parser = whole::<usize>(1, 1_000_000))]
    pub(crate) hook_queue: usize,
}

/// `--hook-forward-header`: a field name (RFC 9110 token), kept in lower
/// case.
fn parse_header_name(text: &str) -> Result<String, String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if text.is_empty() || !text.bytes().all(token) {
        return Err("expected a header field name (letters, digits and !#$%&'*+-.^_`|~)".to_owned());
    }
    Ok(text.to_ascii_lowercase())
}

/// `--hook-forward-cookie`: a cookie name.
fn parse_cookie_name(text: &str) -> Result<String, String> {
    if is_cookie_name(text) {
        Ok(text.to_owned())
    } else {
        Err("expected a cookie name".to_owned())
    }
}

impl HookArgs {
    /// The backend hooks the options ask for, checked, if any; `loops`
    /// event loops ask them.
    pub(crate) fn hooks(&self, settings: &HubSettings) -> Result<Option<Hooks>, String> {
        let Some(config) = self.config(settings)? else {
            return Ok(None);
        };
        let mut hooks = Hooks::new(config);
        hooks.queue = self.hook_queue;
        hooks.forward_headers.clone_from(&self.hook_forward_headers);
        hooks.forward_cookies.clone_from(&self.hook_forward_cookies);
        Ok(Some(hooks))
    }

    /// The hooks' configuration, checked, if any hook is given.
    pub(crate) fn config(&self, settings: &HubSettings) -> Result<Option<tether_hooks::Config>, String> {
        self.check(settings)?;
        let timeout = seconds(self.hook_timeout);
        let mut config = tether_hooks::Config::new()
            .workers(self.hook_workers)
            .thread_name("tether-hook");
        let mut any = false;
        for (kind, url) in [
            (tether_hooks::HookKind::Connect, &self.hook_connect),
            (tether_hooks::HookKind::Subscribe, &self.hook_subscribe),
            (tether_hooks::HookKind::Publish, &self.hook_publish),
            (tether_hooks::HookKind::Refresh, &self.hook_refresh),
            (tether_hooks::HookKind::Rpc, &self.hook_rpc),
            (tether_hooks::HookKind::Latest, &self.hook_latest),
        ] {
            if let Some(url) = url {
                any = true;
                config = config
                    .hook(kind, url, timeout)
                    .map_err(|e| format!("--hook-{}: {e}", kind.name()))?;
            }
        }
        Ok(any.then_some(config))
    }

    /// The checks that touch nothing: options that go together, and a
    /// namespace that asks a hook that is not there.
    fn check(&self, settings: &HubSettings) -> Result<(), String> {
        if self.hook_connect.is_none()
            && !(self.hook_forward_headers.is_empty() && self.hook_forward_cookies.is_empty())
        {
            return Err("--hook-forward-header and --hook-forward-cookie need --hook-connect".to_owned());
        }
        if self.hook_refresh.is_some() && self.hook_connect.is_none() {
            return Err(
                "--hook-refresh needs --hook-connect (it refreshes the connections that hook let in)"
                    .to_owned(),
            );
        }
        if !(1..=1024).contains(&self.hook_workers) {
            return Err("--hook-workers: expected 1 to 1024".to_owned());
        }
        if self.hook_queue == 0 {
            return Err("--hook-queue: expected at least 1".to_owned());
        }
        if self.hook_subscribe.is_none()
            && let Some(namespace) = settings
                .namespaces
                .iter()
                .find(|n| n.subscribe == Some(tether_apps::WhoSubscribes::Hook))
        {
            return Err(format!(
                "--namespace {}: subscribe=hook needs --hook-subscribe",
                namespace.pattern
            ));
        }
        if self.hook_publish.is_none()
            && let Some(namespace) = settings
                .namespaces
                .iter()
                .find(|n| n.publish == Some(tether_apps::WhoPublishes::Hook))
        {
            return Err(format!(
                "--namespace {}: publish=hook needs --hook-publish",
                namespace.pattern
            ));
        }
        Ok(())
    }
}
