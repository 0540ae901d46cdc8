//! A worker thread: takes jobs off the shared queue and asks the backend,
//! keeping one idle keep-alive connection per backend between jobs.

use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

use tether_http1::{Framing, write_request};

use crate::answer::{Answer, Unavailable, parse_answer};
use crate::exchange::{Failure, Response, connect, exchange};
use crate::shared::Shared;

/// An idle connection, and the backend (`host`, `port`) it goes to.
struct Idle {
    host: String,
    port: u16,
    stream: TcpStream,
}

/// What a worker keeps between jobs.
pub(crate) struct Worker {
    shared: Arc<Shared>,
    idle: Vec<Idle>,
    request: Vec<u8>,
    buf: Vec<u8>,
}

impl Worker {
    pub(crate) fn new(shared: Arc<Shared>) -> Worker {
        Worker {
            shared,
            idle: Vec::new(),
            request: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// Answers jobs until the hooks shut down.
    pub(crate) fn run(mut self) {
        while let Some(job) = self.shared.next_job() {
            let answer = if Instant::now() >= job.deadline {
                // Expired while queued: never sent.
                Err(Unavailable::Timeout)
            } else {
                self.ask(&job.request, job.id, job.deadline)
            };
            let kind = job.request.kind();
            let config = &self.shared.config;
            let url = || {
                config
                    .target(kind)
                    .map(|t| t.endpoint.redacted())
                    .unwrap_or_default()
            };
            self.shared.outages.log(kind, &url, &answer);
            job.answer(answer);
        }
    }

    fn ask(&mut self, request: &crate::protocol::HookRequest, id: u64, deadline: Instant) -> Answer {
        let kind = request.kind();
        let Some(target) = self.shared.config.target(kind) else {
            return Err(Unavailable::Malformed);
        };
        let endpoint = target.endpoint.clone();
        let body = request.to_json(id);
        self.request.clear();
        let head = write_request(
            &mut self.request,
            "POST",
            endpoint.target(),
            endpoint.host_header(),
            &[("Content-Type", "application/json")],
            Framing::Length(u64::try_from(body.len()).unwrap_or(u64::MAX)),
        );
        if head.is_err() {
            // The endpoint was checked at start; this cannot be sent.
            return Err(Unavailable::Malformed);
        }
        self.request.extend_from_slice(&body);

        let (host, port) = (endpoint.host(), endpoint.port());
        let reused = self.take_idle(host, port);
        let response = match reused {
            Some(stream) => match self.send(stream, deadline) {
                // The backend closed the idle connection before we used
                // it: once more on a new one, if time remains.
                Err(Failure::Down {
                    before_response: true,
                }) => self.send_fresh(host, port, deadline),
                other => other,
            },
            None => self.send_fresh(host, port, deadline),
        };
        match response {
            Ok((response, stream)) => {
                if let Some(stream) = stream {
                    self.idle.push(Idle {
                        host: host.to_string(),
                        port,
                        stream,
                    });
                }
                parse_answer(kind, response.status, &response.body)
            }
            Err(Failure::Timeout) => Err(Unavailable::Timeout),
            Err(Failure::Down { .. }) => Err(Unavailable::Down),
            Err(Failure::Malformed) => Err(Unavailable::Malformed),
        }
    }

    fn send_fresh(
        &mut self,
        host: &str,
        port: u16,
        deadline: Instant,
    ) -> Result<(Response, Option<TcpStream>), Failure> {
        let stream = connect(host, port, deadline)?;
        self.send(stream, deadline)
    }

    /// One exchange on `stream`; the stream comes back only if it can be
    /// used again. After a failure it is dropped (closed): a late answer
    /// on it must never be read as the answer to the next request.
    fn send(
        &mut self,
        mut stream: TcpStream,
        deadline: Instant,
    ) -> Result<(Response, Option<TcpStream>), Failure> {
        let max_body = self.shared.config.body_limit();
        let response = exchange(&mut stream, &self.request, deadline, max_body, &mut self.buf)?;
        let keep = response.reusable.then_some(stream);
        Ok((response, keep))
    }

    fn take_idle(&mut self, host: &str, port: u16) -> Option<TcpStream> {
        let at = self.idle.iter().position(|i| i.port == port && i.host == host)?;
        Some(self.idle.swap_remove(at).stream)
    }
}
