//! The access log: one [`AccessEntry`] per request the server answers,
//! handed to the embedder's [`AccessLog`] (off unless
//! [`Config::access_log`](crate::Config::access_log) is set).
//!
//! A request is reported once, when its answer is decided: at once for
//! an answer the application or the server gives as the request is read,
//! when it is given for an answer the application defers
//! ([`Reply::Later`](crate::Reply::Later)), and at its start for a
//! WebSocket or an event stream (101 over HTTP/1.1, 200 over HTTP/2 and
//! HTTP/3, and no bytes: its traffic is in the counters). Requests refused
//! before their head is read whole (400, 413, 431) are counted, not
//! reported. With [`AccessLog::with_session_ends`], a WebSocket or an
//! event stream is reported again as it ends ([`SessionEnd`]).

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::request::{CloseReason, ConnId, Request};

/// What carried a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// Plain TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// QUIC (HTTP/3).
    Quic,
}

impl Transport {
    /// Its name in lower case: `tcp`, `tls` or `quic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Quic => "quic",
        }
    }
}

/// The HTTP version a request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Version {
    /// HTTP/1.1.
    Http11,
    /// HTTP/2.
    Http2,
    /// HTTP/3.
    Http3,
}

impl Version {
    /// Its number as HTTP writes it: `1.1`, `2` or `3`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http11 => "1.1",
            Version::Http2 => "2",
            Version::Http3 => "3",
        }
    }
}

/// What the answer opened, beyond the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Opened {
    /// Nothing: a response, whole.
    Nothing,
    /// A WebSocket, reported as it opens.
    WebSocket,
    /// An event stream, reported as it starts.
    EventStream,
}

/// One request and what it was answered.
///
/// The method, path and query are as the client sent them (the query
/// not decoded), so they may hold anything a request line can:
/// whoever writes them out escapes them, and redacts credentials in the
/// query.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AccessEntry<'a> {
    /// The connection (or HTTP/2 or HTTP/3 stream) the request came on.
    pub conn: ConnId,
    /// The method.
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The query after `?`, if any, not decoded.
    pub query: Option<&'a str>,
    /// The answer's status.
    pub status: u16,
    /// The answer's body, in bytes (0 for HEAD, and for a WebSocket or an
    /// event stream, which are reported as they open).
    pub bytes: u64,
    /// From the loop turn that read the request to its answer.
    pub duration: Duration,
    /// What carried it.
    pub transport: Transport,
    /// Its HTTP version.
    pub version: Version,
    /// The peer's address, if the socket still had one.
    pub peer: Option<SocketAddr>,
    /// What the answer opened.
    pub opened: Opened,
    /// Who the request's credential says it is, when the application
    /// knew as it was answered or deferred ([`App::subject`](crate::App::subject)).
    pub subject: Option<&'a str>,
}

/// Where access entries go: a function called on the event loop's
/// thread, once per request, so it should only format and write a line.
///
/// ```
/// use tether_server::{AccessLog, Config};
///
/// let mut config = Config::new("127.0.0.1:0".parse().unwrap());
/// config.access_log = Some(AccessLog::new(|entry| {
///     eprintln!("{} {} {}", entry.method, entry.path, entry.status);
/// }));
/// ```
#[derive(Clone)]
pub struct AccessLog {
    requests: Arc<dyn Fn(&AccessEntry<'_>) + Send + Sync>,
    sessions: Option<SessionWriter>,
}

/// Where session ends go ([`AccessLog::with_session_ends`]).
type SessionWriter = Arc<dyn Fn(&SessionEnd<'_>) + Send + Sync>;

impl AccessLog {
    /// An access log that hands each entry to `write`.
    pub fn new(write: impl Fn(&AccessEntry<'_>) + Send + Sync + 'static) -> AccessLog {
        AccessLog {
            requests: Arc::new(write),
            sessions: None,
        }
    }

    /// The same, and each WebSocket or event stream that ends handed to
    /// `write` ([`SessionEnd`]). The loop then keeps, for each open
    /// session, when it opened and what it was opened with.
    pub fn with_session_ends(mut self, write: impl Fn(&SessionEnd<'_>) + Send + Sync + 'static) -> AccessLog {
        self.sessions = Some(Arc::new(write));
        self
    }
}

/// A WebSocket or an event stream that ended: how long it was open,
/// why it ended, and what it was opened with.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SessionEnd<'a> {
    /// The connection (or stream) it was on.
    pub conn: ConnId,
    /// A WebSocket or an event stream.
    pub opened: Opened,
    /// The path it was opened with, without the query.
    pub path: &'a str,
    /// The query it was opened with, if any, not decoded (credentials
    /// and all: whoever writes it out redacts them).
    pub query: Option<&'a str>,
    /// Why it ended.
    pub reason: &'a CloseReason,
    /// From its opening to its end.
    pub duration: Duration,
    /// What carried it.
    pub transport: Transport,
    /// Its HTTP version.
    pub version: Version,
    /// The peer's address as it opened.
    pub peer: Option<SocketAddr>,
    /// Who its credential said it was as it opened
    /// ([`App::subject`](crate::App::subject)).
    pub subject: Option<&'a str>,
    /// Bytes written to and read from its connection from its opening,
    /// on the wire (TLS records whole): over HTTP/1.1 only, where the
    /// connection is the session; `None` for a stream of HTTP/2 or
    /// HTTP/3, which shares its connection.
    pub bytes: Option<SessionBytes>,
}

/// What a session's connection carried ([`SessionEnd::bytes`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionBytes {
    /// Written to the peer.
    pub out: u64,
    /// Read from the peer.
    pub read: u64,
}

/// An open session, kept to report its end.
struct Open {
    opened: Opened,
    path: Box<str>,
    query: Option<Box<str>>,
    since: Instant,
    transport: Transport,
    version: Version,
    peer: Option<SocketAddr>,
    subject: Option<Box<str>>,
    bytes: SessionBytes,
}

impl fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessLog")
    }
}

/// A deferred request waiting for its answer, kept to report it then.
struct Pending {
    method: Box<str>,
    path: Box<str>,
    query: Option<Box<str>>,
    since: Instant,
    /// After this the request is given up as abandoned (its connection
    /// closed before an answer), so that such entries do not pile up.
    until: Instant,
    transport: Transport,
    version: Version,
    peer: Option<SocketAddr>,
    subject: Option<Box<str>>,
}

/// Most deferred requests a loop keeps waiting for their answer; past
/// this, those whose time is up are dropped, and if none is, the new one
/// is reported at once with status 0 (answer not known).
const MAX_PENDING: usize = 16 * 1024;

/// Most open sessions a loop keeps to report their end: far more than
/// a loop serves, a bound only should a session's end ever go unseen
/// (past it, a session's end is not reported).
const MAX_OPEN: usize = 1 << 20;

/// A loop's access log and the deferred requests it still has to report.
/// Only the loop that owns it touches `pending`: its lock is never
/// contended.
pub(crate) struct Access {
    log: AccessLog,
    pending: Mutex<HashMap<ConnId, Pending>>,
    /// The open sessions, with [`AccessLog::with_session_ends`]: one
    /// entry each, from [`App::on_open`](crate::App::on_open) or
    /// [`App::on_subscribe`](crate::App::on_subscribe) to the session's
    /// last callback.
    open: Mutex<HashMap<ConnId, Open>>,
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Access")
    }
}

impl Access {
    pub(crate) fn new(log: AccessLog) -> Access {
        Access {
            log,
            pending: Mutex::new(HashMap::new()),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Reports `request` (on `conn`, read at `since`, by `subject`)
    /// answered now with `status` and a body of `bytes`.
    #[allow(clippy::too_many_arguments)] // one call site; a struct for it would be its twin
    pub(crate) fn answered(
        &self,
        conn: ConnId,
        request: &Request<'_>,
        since: Instant,
        status: u16,
        bytes: usize,
        opened: Opened,
        subject: Option<&str>,
    ) {
        let (transport, version) = carrier(conn, request.secure);
        (self.log.requests)(&AccessEntry {
            conn,
            method: request.method,
            path: request.path,
            query: request.query,
            status,
            bytes: if request.method == "HEAD" { 0 } else { bytes as u64 },
            duration: since.elapsed(),
            transport,
            version,
            peer: request.peer,
            opened,
            subject,
        });
    }

    /// Keeps `request` (read at `since`, due by `until`, by `subject`) to
    /// report when [`Access::deferred_answer`] gives its answer.
    pub(crate) fn defer(
        &self,
        conn: ConnId,
        request: &Request<'_>,
        since: Instant,
        until: Instant,
        subject: Option<&str>,
    ) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        if pending.len() >= MAX_PENDING {
            let now = Instant::now();
            pending.retain(|_, p| p.until > now);
        }
        if pending.len() >= MAX_PENDING {
            drop(pending);
            return self.answered(conn, request, since, 0, 0, Opened::Nothing, subject);
        }
        let (transport, version) = carrier(conn, request.secure);
        pending.insert(
            conn,
            Pending {
                method: request.method.into(),
                path: request.path.into(),
                query: request.query.map(Into::into),
                since,
                until,
                transport,
                version,
                peer: request.peer,
                subject: subject.map(Box::from),
            },
        );
    }

    /// Drops the deferred request on `conn`, if one waits: the
    /// application let it go on as another route, reported then.
    pub(crate) fn forget(&self, conn: ConnId) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(&conn);
        }
    }

    /// Reports the deferred request on `conn`, if one waits, answered
    /// with `status` and a body of `bytes`.
    pub(crate) fn deferred_answer(&self, conn: ConnId, status: u16, bytes: usize) {
        let Some(p) = self
            .pending
            .lock()
            .ok()
            .and_then(|mut pending| pending.remove(&conn))
        else {
            return;
        };
        (self.log.requests)(&AccessEntry {
            conn,
            method: &p.method,
            path: &p.path,
            query: p.query.as_deref(),
            status,
            bytes: if &*p.method == "HEAD" { 0 } else { bytes as u64 },
            duration: p.since.elapsed(),
            transport: p.transport,
            version: p.version,
            peer: p.peer,
            opened: Opened::Nothing,
            subject: p.subject.as_deref(),
        });
    }
}

impl Access {
    /// Whether session ends are reported.
    pub(crate) fn reports_session_ends(&self) -> bool {
        self.log.sessions.is_some()
    }

    /// Keeps what the session on `conn` (a WebSocket or an event stream)
    /// opened with, by `subject`, to report its end.
    pub(crate) fn session_opened(
        &self,
        conn: ConnId,
        opened: Opened,
        request: &Request<'_>,
        subject: Option<&str>,
    ) {
        if self.log.sessions.is_none() {
            return;
        }
        let (transport, version) = carrier(conn, request.secure);
        if let Ok(mut open) = self.open.lock()
            && open.len() < MAX_OPEN
        {
            open.insert(
                conn,
                Open {
                    opened,
                    path: request.path.into(),
                    query: request.query.map(Into::into),
                    since: Instant::now(),
                    transport,
                    version,
                    peer: request.peer,
                    subject: subject.map(Into::into),
                    bytes: SessionBytes::default(),
                },
            );
        }
    }

    /// Reports the end of the session on `conn`, if it was kept open.
    pub(crate) fn session_ended(&self, conn: ConnId, reason: &CloseReason) {
        let Some(write) = &self.log.sessions else {
            return;
        };
        let Some(o) = self.open.lock().ok().and_then(|mut open| open.remove(&conn)) else {
            return;
        };
        write(&SessionEnd {
            conn,
            opened: o.opened,
            path: &o.path,
            query: o.query.as_deref(),
            reason,
            duration: o.since.elapsed(),
            transport: o.transport,
            version: o.version,
            peer: o.peer,
            subject: o.subject.as_deref(),
            bytes: (conn.stream() == 0 && !conn.is_quic()).then_some(o.bytes),
        });
    }

    /// Counts `out` bytes written to and `read` bytes read from the
    /// HTTP/1.1 connection `conn`, if it is an open session kept.
    pub(crate) fn count(&self, conn: ConnId, out: usize, read: usize) {
        if self.log.sessions.is_none() {
            return;
        }
        if let Ok(mut open) = self.open.lock()
            && let Some(o) = open.get_mut(&conn)
        {
            o.bytes.out = o.bytes.out.saturating_add(out as u64);
            o.bytes.read = o.bytes.read.saturating_add(read as u64);
        }
    }
}

/// The transport and HTTP version of a request on `conn`: QUIC ids are
/// HTTP/3, stream ids of a TCP connection HTTP/2.
fn carrier(conn: ConnId, secure: bool) -> (Transport, Version) {
    if conn.is_quic() {
        (Transport::Quic, Version::Http3)
    } else {
        let transport = if secure { Transport::Tls } else { Transport::Tcp };
        let version = if conn.stream() == 0 {
            Version::Http11
        } else {
            Version::Http2
        };
        (transport, version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str) -> Request<'_> {
        Request {
            method: "POST",
            path,
            query: None,
            headers: &[],
            admin: false,
            secure: false,
            peer: None,
        }
    }

    /// Each entry's path and status.
    type Seen = Arc<Mutex<Vec<(String, u16)>>>;

    /// An access log that keeps what it sees.
    fn kept() -> (Access, Seen) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let access = Access::new(AccessLog::new(move |entry| {
            log.lock().unwrap().push((entry.path.to_owned(), entry.status));
        }));
        (access, seen)
    }

    #[test]
    fn deferred_requests_are_bounded() {
        let (access, seen) = kept();
        let now = Instant::now();
        let later = now + Duration::from_secs(3600);
        for i in 0..MAX_PENDING {
            let id = ConnId::new(i, 1);
            // Half of them already past their time.
            let until = if i % 2 == 0 { now } else { later };
            access.defer(id, &request("/p"), now, until, None);
        }
        assert_eq!(access.pending.lock().unwrap().len(), MAX_PENDING);
        // Full: those whose time is up make room.
        access.defer(ConnId::new(MAX_PENDING, 1), &request("/new"), now, later, None);
        assert_eq!(access.pending.lock().unwrap().len(), MAX_PENDING / 2 + 1);
        assert!(seen.lock().unwrap().is_empty());
        for i in 0..MAX_PENDING / 2 - 1 {
            access.defer(
                ConnId::new(MAX_PENDING + 1 + i, 1),
                &request("/more"),
                now,
                later,
                None,
            );
        }
        // Full of requests still due: the next is reported at once, as
        // not known, and not kept.
        access.defer(
            ConnId::new(usize::MAX >> 2, 1),
            &request("/over"),
            now,
            later,
            None,
        );
        assert_eq!(access.pending.lock().unwrap().len(), MAX_PENDING);
        assert_eq!(*seen.lock().unwrap(), [("/over".to_owned(), 0)]);
        // An answer reports and frees its request; a second does nothing.
        access.deferred_answer(ConnId::new(MAX_PENDING, 1), 202, 3);
        access.deferred_answer(ConnId::new(MAX_PENDING, 1), 500, 3);
        assert_eq!(seen.lock().unwrap()[1..], [("/new".to_owned(), 202)]);
        assert_eq!(access.pending.lock().unwrap().len(), MAX_PENDING - 1);
    }

    #[test]
    fn a_session_is_reported_once_as_it_ends() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let access = Access::new(AccessLog::new(|_| {}).with_session_ends(move |end| {
            log.lock().unwrap().push((
                end.conn,
                end.path.to_owned(),
                end.subject.map(str::to_owned),
                end.reason.clone(),
                end.opened,
                end.bytes.map(|b| (b.out, b.read)),
            ));
        }));
        assert!(access.reports_session_ends());
        let id = ConnId::new(3, 1);
        access.session_opened(id, Opened::WebSocket, &request("/topics/a/ws"), Some("alice"));
        access.count(id, 10, 2);
        access.count(id, 5, 0);
        // Another connection's bytes are not this session's.
        access.count(ConnId::new(4, 1), 100, 100);
        access.session_ended(id, &CloseReason::SlowConsumer);
        // Ended already, or never opened: nothing.
        access.session_ended(id, &CloseReason::Dropped);
        access.session_ended(ConnId::new(4, 1), &CloseReason::Dropped);
        assert_eq!(
            *seen.lock().unwrap(),
            [(
                id,
                "/topics/a/ws".to_owned(),
                Some("alice".to_owned()),
                CloseReason::SlowConsumer,
                Opened::WebSocket,
                Some((15, 2))
            )]
        );
        assert!(access.open.lock().unwrap().is_empty());

        // Without a writer for them, nothing is kept.
        let (access, _) = kept();
        assert!(!access.reports_session_ends());
        access.session_opened(id, Opened::EventStream, &request("/e"), None);
        assert!(access.open.lock().unwrap().is_empty());
    }
}
