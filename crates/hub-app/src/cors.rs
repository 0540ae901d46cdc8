//! CORS: the fields every answer of the hub carries for a trusted origin,
//! now or later, and the answer to a preflight.

use std::collections::HashMap;
use std::sync::Arc;

use tether_server::{ConnId, Ctx, Reply, Request, Response};

use super::settings::HubSettings;

/// What a CORS preflight may ask for.
const METHODS: &str = "GET, HEAD, POST";
const HEADERS: &str = "Authorization, Content-Type, Last-Event-ID, Tether-Event, Tether-Publish-Id";
/// Headers of the hub's answers that scripts may read.
const EXPOSED: &str = "Retry-After, WWW-Authenticate";
/// How long a browser may keep a preflight's answer, in seconds.
const MAX_AGE: &str = "600";

/// The one way out for the hub's answers: each goes through here, so that
/// each carries the CORS fields of the request it answers.
///
/// An answer given later (a publish, a long poll, a presence query) is
/// made where the request is long gone: the origin it named is kept until
/// then, and only while CORS is on.
#[derive(Debug)]
pub(super) struct Cors {
    settings: Arc<HubSettings>,
    later: HashMap<ConnId, Box<str>>,
    /// How many origins are kept, for tests to read from outside the
    /// loop.
    #[cfg(test)]
    pub(super) held: Arc<std::sync::atomic::AtomicUsize>,
}

impl Cors {
    pub(super) fn new(settings: Arc<HubSettings>) -> Cors {
        Cors {
            settings,
            later: HashMap::new(),
            #[cfg(test)]
            held: Arc::default(),
        }
    }

    /// Tells the tests how many origins are kept.
    fn counted(&self) {
        #[cfg(test)]
        self.held
            .store(self.later.len(), std::sync::atomic::Ordering::Relaxed);
    }

    /// The request's `Origin`, if it is a trusted one (which gets CORS
    /// answers).
    pub(super) fn origin<'r>(&self, request: &Request<'r>) -> Option<&'r str> {
        self.settings.origins().trusted_origin(request)
    }

    /// `response` with the CORS fields for `origin` (a trusted one), and
    /// `Vary: Origin` whenever CORS is on.
    fn apply(&self, response: Response, origin: Option<&str>) -> Response {
        if self.settings.trusted_origins.is_empty() {
            return response;
        }
        let response = self.settings.origins().with_fields(response, origin);
        match origin {
            Some(_) => response.header("Access-Control-Expose-Headers", EXPOSED),
            None => response,
        }
    }

    /// The answer to `request` as it leaves: with its CORS fields if it is
    /// given now, else with the origin kept for [`Cors::respond`].
    pub(super) fn reply(&mut self, conn: ConnId, request: &Request<'_>, reply: Reply) -> Reply {
        let origin = self.origin(request);
        match reply {
            Reply::Now(response) => {
                // A request held before (for the backend's word) that is
                // answered now, after all.
                self.forget(conn);
                Reply::Now(self.apply(response, origin))
            }
            Reply::Later(_) | Reply::Hold(_) => {
                if let Some(origin) = origin {
                    self.later.insert(conn, origin.into());
                    self.counted();
                }
                reply
            }
        }
    }

    /// An answer to `request` given now.
    pub(super) fn now(&self, request: &Request<'_>, response: Response) -> Response {
        self.apply(response, self.origin(request))
    }

    /// The answer to a request that was answered later, sent.
    pub(super) fn respond<P>(&mut self, ctx: &mut Ctx<'_, P>, conn: ConnId, response: Response) {
        let response = self.finish(conn, response);
        ctx.respond(conn, response);
    }

    /// The answer to a request that was answered later, for the server to
    /// send (on its timeout, or at shutdown).
    pub(super) fn finish(&mut self, conn: ConnId, response: Response) -> Response {
        let origin = self.later.remove(&conn);
        self.counted();
        self.apply(response, origin.as_deref())
    }

    /// A request answered later went away unanswered, or went on as a
    /// session (a WebSocket, an event stream), which no answer follows.
    pub(super) fn forget(&mut self, conn: ConnId) {
        // Most requests kept none: no hashing for them.
        if !self.later.is_empty() && self.later.remove(&conn).is_some() {
            self.counted();
        }
    }

    /// The fields of an event stream's head.
    pub(super) fn stream_headers(&self, request: &Request<'_>) -> Vec<(String, String)> {
        self.now(request, Response::empty(200)).headers
    }

    /// The answer to a CORS preflight from a trusted origin: 204 with what
    /// may be asked for; `None` for any other origin. Its origin's fields
    /// are added as it leaves, as every answer's are ([`Cors::reply`]): a
    /// field twice is refused by browsers.
    pub(super) fn preflight(&self, request: &Request<'_>) -> Option<Response> {
        self.origin(request)?;
        Some(
            Response::empty(204)
                .header("Access-Control-Allow-Methods", METHODS)
                .header("Access-Control-Allow-Headers", HEADERS)
                .header("Access-Control-Max-Age", MAX_AGE),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
        response
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn fields_for_trusted_origins_only_and_none_when_off() {
        let mut settings = HubSettings::default();
        let off = Cors::new(Arc::new(settings.clone()));
        assert!(
            off.apply(Response::empty(200), Some("https://a.example"))
                .headers
                .is_empty()
        );

        settings.trusted_origins = vec!["https://a.example".into()];
        let cors = Cors::new(Arc::new(settings));
        let trusted = cors.apply(Response::empty(200), Some("https://a.example"));
        assert_eq!(
            header(&trusted, "access-control-allow-origin"),
            Some("https://a.example")
        );
        assert_eq!(header(&trusted, "access-control-allow-credentials"), Some("true"));
        assert_eq!(header(&trusted, "vary"), Some("Origin"));
        let other = cors.apply(Response::empty(200), None);
        assert_eq!(header(&other, "vary"), Some("Origin"));
        assert_eq!(header(&other, "access-control-allow-origin"), None);
    }
}
