//! [`HttpBackend`]: the hub's [`Backend`] answered by the application's
//! backend over HTTP, through [`tether_hooks`] (its JSON contract is in
//! that crate's README). The `tether` binary's `--hook-*` options make
//! one; an embedder can too.

use std::fmt;
use std::time::Duration;

use tether_hooks::{
    Answer, ConnectRequest, HookKind, HookQueue, HookRequest, Hooks, LatestRequest, PublishRequest,
    RefreshRequest, RpcRequest, SubscribeRequest, Transport,
};
use tether_hub::{Allowed, Decision};

use super::backend::{AnswerTo, Backend, Busy, Hook, Question};

/// Asks at most this many questions at once from one event loop, unless
/// told otherwise ([`HttpBackend::new`]'s `per_loop`).
pub const DEFAULT_PER_LOOP: usize = 1024;

/// The hub's questions put to HTTP hooks: each event loop has a queue of
/// its own (at most `per_loop` questions outstanding, more are [`Busy`]:
/// a 503 at once), and the [`Hooks`]' worker threads do the asking.
pub struct HttpBackend {
    hooks: Hooks,
    queues: Vec<HookQueue>,
    timeout: Duration,
    headers: Vec<String>,
    cookies: Vec<String>,
}

impl fmt::Debug for HttpBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpBackend")
            .field("loops", &self.queues.len())
            .field("timeout", &self.timeout)
            .field("headers", &self.headers)
            .field("cookies", &self.cookies)
            .finish_non_exhaustive()
    }
}

impl HttpBackend {
    /// Puts the hub's questions to `hooks`, from `loops` event loops, each
    /// with at most `per_loop` outstanding (at least 1).
    pub fn new(hooks: Hooks, loops: usize, per_loop: usize) -> HttpBackend {
        let queues = (0..loops.max(1)).map(|_| hooks.queue(per_loop.max(1))).collect();
        let timeout = HookKind::ALL
            .iter()
            .filter_map(|&kind| hooks.config().target(kind).map(|target| target.timeout))
            .max()
            .unwrap_or(tether_hooks::DEFAULT_TIMEOUT);
        HttpBackend {
            hooks,
            queues,
            timeout,
            headers: Vec::new(),
            cookies: Vec::new(),
        }
    }

    /// With these request header fields passed to the connect hook (names
    /// in any case; sent in lower case).
    pub fn forward_headers<S: AsRef<str>>(mut self, names: impl IntoIterator<Item = S>) -> HttpBackend {
        self.headers = names
            .into_iter()
            .map(|name| name.as_ref().to_ascii_lowercase())
            .collect();
        self
    }

    /// With these cookies passed to the connect hook (names as they are).
    pub fn forward_cookies<S: AsRef<str>>(mut self, names: impl IntoIterator<Item = S>) -> HttpBackend {
        self.cookies = names.into_iter().map(|name| name.as_ref().to_owned()).collect();
        self
    }

    /// The client's counters (answers, latencies, reasons for no answer).
    pub fn stats(&self) -> tether_hooks::Stats {
        self.hooks.stats()
    }
}

/// The hooks' name for a kind of question.
fn kind_of(hook: Hook) -> HookKind {
    match hook {
        Hook::Connect => HookKind::Connect,
        Hook::Subscribe => HookKind::Subscribe,
        Hook::Publish => HookKind::Publish,
        Hook::Refresh => HookKind::Refresh,
        Hook::Rpc => HookKind::Rpc,
        Hook::Latest => HookKind::Latest,
    }
}

/// The hooks' name for a transport, as [`Question`]s say it.
fn transport_of(name: &str) -> Transport {
    match name {
        "websocket" => Transport::WebSocket,
        "sse" => Transport::Sse,
        "poll" => Transport::Poll,
        "presence" => Transport::Presence,
        _ => Transport::Http,
    }
}

/// The request body a question is sent as.
fn request_of(question: Question) -> HookRequest {
    match question {
        Question::Connect {
            transport,
            topic,
            remote,
            headers,
            cookies,
        } => HookRequest::Connect(ConnectRequest {
            transport: transport_of(transport),
            topic,
            remote,
            headers: headers.into_iter().collect(),
            cookies: cookies.into_iter().collect(),
        }),
        Question::Subscribe {
            subject,
            topic,
            transport,
        } => HookRequest::Subscribe(SubscribeRequest {
            subject,
            topic,
            transport: transport_of(transport),
        }),
        Question::Publish {
            subject,
            topic,
            data,
            event,
            encoding,
        } => HookRequest::Publish(PublishRequest {
            subject,
            topic,
            data,
            event,
            encoding,
        }),
        Question::Refresh { subject, transport } => HookRequest::Refresh(RefreshRequest {
            subject,
            transport: transport_of(transport),
        }),
        Question::Rpc {
            subject,
            transport,
            method,
            data,
        } => HookRequest::Rpc(RpcRequest {
            subject,
            transport: transport_of(transport),
            method,
            data,
        }),
        Question::Latest { topic } => HookRequest::Latest(LatestRequest { topic }),
    }
}

/// The hub's decision for the hooks' answer: no answer is never an allow.
fn decision_of(answer: Answer) -> Decision {
    match answer {
        Ok(tether_hooks::Decision::Allow(allow)) => {
            let grant = allow.grant.unwrap_or_default();
            Decision::Allow(
                Allowed::new()
                    .identity(allow.subject, grant.subscribe, grant.publish)
                    .expires_at(allow.exp)
                    .data(allow.data)
                    .event(allow.event),
            )
        }
        Ok(tether_hooks::Decision::Deny(deny)) => Decision::Deny {
            status: deny.status,
            reason: deny.reason,
        },
        Err(unavailable) => Decision::Unavailable {
            reason: unavailable.name(),
        },
    }
}

impl Backend for HttpBackend {
    fn answers(&self, hook: Hook) -> bool {
        self.hooks.has(kind_of(hook))
    }

    fn ask(&self, loop_index: usize, question: Question, answer: AnswerTo) -> Result<(), Busy> {
        let Some(queue) = self.queues.get(loop_index % self.queues.len().max(1)) else {
            return Err(Busy);
        };
        queue
            .ask(request_of(question), None, move |got| answer(decision_of(got)))
            .map(drop)
            .map_err(|refused| {
                log::debug!("backend: not asked: {refused}");
                Busy
            })
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn forwarded_headers(&self) -> &[String] {
        &self.headers
    }

    fn forwarded_cookies(&self) -> &[String] {
        &self.cookies
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_becomes_the_same_decision_and_no_answer_is_never_an_allow() {
        let allow = tether_hooks::parse_answer(
            HookKind::Connect,
            200,
            br#"{"allow":true,"subject":"u1","tether":{"sub":["chat.*"],"pub":["chat.7"]},"exp":1900000000}"#,
        );
        assert_eq!(
            decision_of(allow),
            Decision::Allow(
                Allowed::new()
                    .identity(Some("u1".into()), vec!["chat.*".into()], vec!["chat.7".into()])
                    .expires_at(Some(1_900_000_000))
            )
        );
        let deny = tether_hooks::parse_answer(
            HookKind::Subscribe,
            200,
            br#"{"allow":false,"status":404,"reason":"no"}"#,
        );
        assert_eq!(
            decision_of(deny),
            Decision::Deny {
                status: 404,
                reason: "no".into()
            }
        );
        for bad in [&b"{}"[..], b"[]", b"yes"] {
            let decision = decision_of(tether_hooks::parse_answer(HookKind::Subscribe, 200, bad));
            assert_eq!(decision, Decision::Unavailable { reason: "malformed" });
        }
        let decision = decision_of(tether_hooks::parse_answer(
            HookKind::Subscribe,
            500,
            br#"{"allow":true}"#,
        ));
        assert_eq!(decision, Decision::Unavailable { reason: "status" });
    }

    #[test]
    fn questions_are_sent_with_their_transport() {
        for (name, transport) in [
            ("websocket", Transport::WebSocket),
            ("sse", Transport::Sse),
            ("poll", Transport::Poll),
            ("presence", Transport::Presence),
            ("http", Transport::Http),
        ] {
            let request = request_of(Question::Subscribe {
                subject: None,
                topic: "t".into(),
                transport: name,
            });
            assert_eq!(
                request,
                HookRequest::Subscribe(SubscribeRequest {
                    subject: None,
                    topic: "t".into(),
                    transport
                })
            );
        }
    }
}
