//! One application made of two: one mounted at some paths, the other
//! serving the rest, each getting the callbacks of its own routes.

use std::time::Duration;

use tether_server::{
    App, BeforeBody, CloseReason, ConnId, Ctx, MessageRef, Readiness, Reply, Request, Response, Route,
};

/// Two applications on one server: `mounted` serves the paths under its
/// prefixes (and, with [`Mount::with_admin_listener`], everything the
/// admin listener receives), `rest` every other path.
///
/// Every callback about a request goes to the application that routed
/// it, with the state it made: the mount's state ([`MountState`]) says
/// whose it is. Posts between loops go to the mounted application; ticks, and the start of a shutdown, to
/// both (at the shorter of their tick intervals).
///
/// ```
/// use tether_apps::{HubApp, HubSettings, Mount};
/// use tether_hub::HubMessage;
/// use tether_server::{App, Request, Route};
///
/// struct Home;
///
/// impl App for Home {
///     type Post = HubMessage;
///     type State = ();
///
///     fn route(&mut self, request: &Request<'_>) -> Route {
///         match request.path() {
///             "/" => Route::Page { content_type: "text/plain", body: b"hello\n" },
///             _ => Route::NotFound,
///         }
///     }
/// }
///
/// // The hub at its paths, the home page at the others.
/// let hub = HubApp::new(HubSettings::default());
/// let app = Mount::new(hub, &["/topics/", "/tickets", "/metrics"], Home).with_admin_listener();
/// ```
#[derive(Debug)]
pub struct Mount<A, B> {
    mounted: A,
    prefixes: &'static [&'static str],
    admin_listener: bool,
    rest: B,
}

/// The state of a request under a [`Mount`]: the state the application
/// that routed it made, marked with which of the two that is.
#[derive(Debug)]
pub enum MountState<A, B> {
    /// The mounted application's request.
    Mounted(A),
    /// The other application's request.
    Rest(B),
}

/// The mounted application's default state: what the later callbacks of
/// a session whose state was let go are lent. Only the mounted
/// application's states are let go ([`Mount`]'s `keeps_session_state`),
/// so that such a session's callbacks go to the application that routed
/// it.
impl<A: Default, B> Default for MountState<A, B> {
    fn default() -> MountState<A, B> {
        MountState::Mounted(A::default())
    }
}

/// Whether `path` is `prefix` or goes on below it: `/tickets` is under
/// `/tickets` and not under `/tick`; `/topics/a` is under `/topics/`.
fn is_under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|after| after.is_empty() || prefix.ends_with('/') || after.starts_with(['/', '?']))
}

impl<A, B> Mount<A, B> {
    /// `mounted` at the paths under `prefixes`, `rest` at all others.
    pub fn new(mounted: A, prefixes: &'static [&'static str], rest: B) -> Mount<A, B> {
        Mount {
            mounted,
            prefixes,
            admin_listener: false,
            rest,
        }
    }

    /// The mounted application serves everything the admin listener
    /// receives, at any path.
    #[must_use]
    pub fn with_admin_listener(mut self) -> Mount<A, B> {
        self.admin_listener = true;
        self
    }

    /// The mounted application.
    pub fn mounted(&self) -> &A {
        &self.mounted
    }

    /// The mounted application, to act on.
    pub fn mounted_mut(&mut self) -> &mut A {
        &mut self.mounted
    }

    /// The application at every other path.
    pub fn rest(&self) -> &B {
        &self.rest
    }

    /// Whether the mounted application serves `request`.
    fn serves(&self, request: &Request<'_>) -> bool {
        (self.admin_listener && request.via_admin_listener())
            || self
                .prefixes
                .iter()
                .any(|prefix| is_under(request.path(), prefix))
    }
}

impl<A: App, B: App<Post = A::Post>> App for Mount<A, B> {
    type Post = A::Post;
    type State = MountState<A::State, B::State>;

    fn route(&mut self, request: &Request<'_>) -> Route<Self::State> {
        if self.serves(request) {
            self.mounted.route(request).map(MountState::Mounted)
        } else {
            self.rest.route(request).map(MountState::Rest)
        }
    }

    fn on_open(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        conn: ConnId,
        state: &mut Self::State,
        request: &Request<'_>,
    ) {
        match state {
            MountState::Mounted(state) => self.mounted.on_open(ctx, conn, state, request),
            MountState::Rest(state) => self.rest.on_open(ctx, conn, state, request),
        }
    }

    fn on_message(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        conn: ConnId,
        state: &mut Self::State,
        message: MessageRef<'_>,
    ) {
        match state {
            MountState::Mounted(state) => self.mounted.on_message(ctx, conn, state, message),
            MountState::Rest(state) => self.rest.on_message(ctx, conn, state, message),
        }
    }

    fn on_close(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        conn: ConnId,
        state: &mut Self::State,
        reason: CloseReason,
    ) {
        match state {
            MountState::Mounted(state) => self.mounted.on_close(ctx, conn, state, reason),
            MountState::Rest(state) => self.rest.on_close(ctx, conn, state, reason),
        }
    }

    fn event_stream_headers(
        &mut self,
        state: &mut Self::State,
        request: &Request<'_>,
    ) -> Vec<(String, String)> {
        match state {
            MountState::Mounted(state) => self.mounted.event_stream_headers(state, request),
            MountState::Rest(state) => self.rest.event_stream_headers(state, request),
        }
    }

    fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        conn: ConnId,
        state: &mut Self::State,
        request: &Request<'_>,
        last_event_id: Option<&str>,
    ) {
        match state {
            MountState::Mounted(state) => self
                .mounted
                .on_subscribe(ctx, conn, state, request, last_event_id),
            MountState::Rest(state) => self.rest.on_subscribe(ctx, conn, state, request, last_event_id),
        }
    }

    fn on_unsubscribe(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        conn: ConnId,
        state: &mut Self::State,
        reason: CloseReason,
    ) {
        match state {
            MountState::Mounted(state) => self.mounted.on_unsubscribe(ctx, conn, state, reason),
            MountState::Rest(state) => self.rest.on_unsubscribe(ctx, conn, state, reason),
        }
    }

    /// As the mounted application says of its own; the other's are kept
    /// (a default state would name the mounted application).
    fn keeps_session_state(&self, state: &Self::State) -> bool {
        match state {
            MountState::Mounted(state) => self.mounted.keeps_session_state(state),
            MountState::Rest(_) => true,
        }
    }

    /// Whichever application's state it is says.
    fn subject<'s>(&self, state: &'s Self::State) -> Option<&'s str> {
        match state {
            MountState::Mounted(state) => self.mounted.subject(state),
            MountState::Rest(state) => self.rest.subject(state),
        }
    }

    fn ready(&self) -> bool {
        self.mounted.ready() && self.rest.ready()
    }

    /// Both applications' checks, the mounted one's first.
    fn readiness(&self, report: &mut Readiness) {
        self.mounted.readiness(report);
        self.rest.readiness(report);
    }

    fn tick_interval(&self) -> Option<Duration> {
        match (self.mounted.tick_interval(), self.rest.tick_interval()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, A::Post>) {
        self.rest.on_tick(ctx);
        self.mounted.on_tick(ctx);
    }

    fn on_request(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        conn: ConnId,
        state: &mut Self::State,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        match state {
            MountState::Mounted(state) => self.mounted.on_request(ctx, conn, state, request, body),
            MountState::Rest(state) => self.rest.on_request(ctx, conn, state, request, body),
        }
    }

    fn before_body(&mut self, ctx: &mut Ctx<'_, A::Post>, request: &Request<'_>) -> BeforeBody<Self::State> {
        if self.serves(request) {
            self.mounted.before_body(ctx, request).map(MountState::Mounted)
        } else {
            self.rest.before_body(ctx, request).map(MountState::Rest)
        }
    }

    fn body_too_large(&mut self, request: &Request<'_>, limit: usize) -> Option<Response> {
        if self.serves(request) {
            self.mounted.body_too_large(request, limit)
        } else {
            self.rest.body_too_large(request, limit)
        }
    }

    fn on_request_timeout(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        conn: ConnId,
        state: &mut Self::State,
    ) -> Response {
        match state {
            MountState::Mounted(state) => self.mounted.on_request_timeout(ctx, conn, state),
            MountState::Rest(state) => self.rest.on_request_timeout(ctx, conn, state),
        }
    }

    fn on_request_abandoned(&mut self, ctx: &mut Ctx<'_, A::Post>, conn: ConnId, state: &mut Self::State) {
        match state {
            MountState::Mounted(state) => self.mounted.on_request_abandoned(ctx, conn, state),
            MountState::Rest(state) => self.rest.on_request_abandoned(ctx, conn, state),
        }
    }

    fn on_proceed(&mut self, conn: ConnId, state: &mut Self::State, route: &Route) {
        match state {
            MountState::Mounted(state) => self.mounted.on_proceed(conn, state, route),
            MountState::Rest(state) => self.rest.on_proceed(conn, state, route),
        }
    }

    fn on_post(&mut self, ctx: &mut Ctx<'_, A::Post>, message: A::Post) {
        self.mounted.on_post(ctx, message);
    }

    fn on_shutdown(&mut self, ctx: &mut Ctx<'_, A::Post>) {
        self.rest.on_shutdown(ctx);
        self.mounted.on_shutdown(ctx);
    }

    fn on_request_shutdown(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        conn: ConnId,
        state: &mut Self::State,
    ) -> Option<Response> {
        match state {
            MountState::Mounted(state) => self.mounted.on_request_shutdown(ctx, conn, state),
            MountState::Rest(state) => self.rest.on_request_shutdown(ctx, conn, state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_prefixes() {
        assert!(is_under("/topics/a/ws", "/topics/"));
        assert!(is_under("/topics/", "/topics/"));
        assert!(!is_under("/topics", "/topics/"));
        assert!(is_under("/tickets", "/tickets"));
        assert!(is_under("/tickets/x", "/tickets"));
        assert!(!is_under("/ticketsx", "/tickets"));
        assert!(!is_under("/tick", "/tickets"));
        assert!(!is_under("/", "/metrics"));
    }
}
