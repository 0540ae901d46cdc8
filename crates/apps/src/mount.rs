//! One application made of two: one mounted at some paths, the other
//! serving the rest, each getting the callbacks of its own routes.

use std::time::Duration;

use tether_server::{App, CloseReason, ConnId, Ctx, MessageRef, Reply, Request, Response, Route};

/// The bit of a route's tag that says the mounted application routed it.
const MOUNTED: u32 = 1 << 31;

/// Two applications on one server: `mounted` serves the paths under its
/// prefixes (and, with [`Mount::with_admin_listener`], everything the
/// admin listener receives), `rest` every other path.
///
/// Every callback about a route goes to the application that routed it,
/// whatever tags the two use: the mount marks the mounted application's
/// tags with their top bit, so both keep their tags below 2^31 (a route
/// with a larger tag is logged and answered 404). Posts between loops go
/// to the mounted application; ticks, and the start of a shutdown, to
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

/// Which of the two a callback is for, and the tag it gave its route.
enum Owner {
    Mounted(u32),
    Rest(u32),
}

impl Owner {
    fn of(tag: u32) -> Owner {
        if tag & MOUNTED == 0 {
            Owner::Rest(tag)
        } else {
            Owner::Mounted(tag & !MOUNTED)
        }
    }
}

/// Whether `path` is `prefix` or goes on below it: `/tickets` is under
/// `/tickets` and not under `/tick`; `/topics/a` is under `/topics/`.
fn is_under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|after| after.is_empty() || prefix.ends_with('/') || after.starts_with(['/', '?']))
}

/// `route` with its tag marked as `mounted`'s (or not), if its tag leaves
/// room for the mark.
fn marked(route: Route, mounted: bool) -> Route {
    let mark = |tag: u32| {
        if tag & MOUNTED != 0 {
            log::error!("mount: a route's tag {tag:#x} is 2^31 or more: answered 404");
            None
        } else {
            Some(if mounted { tag | MOUNTED } else { tag })
        }
    };
    match route {
        Route::WebSocket(tag) => mark(tag).map_or(Route::NotFound, Route::WebSocket),
        Route::EventStream(tag) => mark(tag).map_or(Route::NotFound, Route::EventStream),
        Route::Handler(tag) => mark(tag).map_or(Route::NotFound, Route::Handler),
        other => other,
    }
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

    fn route(&mut self, request: &Request<'_>) -> Route {
        if self.serves(request) {
            marked(self.mounted.route(request), true)
        } else {
            marked(self.rest.route(request), false)
        }
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_, A::Post>, conn: ConnId, tag: u32, request: &Request<'_>) {
        match Owner::of(tag) {
            Owner::Mounted(tag) => self.mounted.on_open(ctx, conn, tag, request),
            Owner::Rest(tag) => self.rest.on_open(ctx, conn, tag, request),
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, A::Post>, conn: ConnId, tag: u32, message: MessageRef<'_>) {
        match Owner::of(tag) {
            Owner::Mounted(tag) => self.mounted.on_message(ctx, conn, tag, message),
            Owner::Rest(tag) => self.rest.on_message(ctx, conn, tag, message),
        }
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, A::Post>, conn: ConnId, tag: u32, reason: CloseReason) {
        match Owner::of(tag) {
            Owner::Mounted(tag) => self.mounted.on_close(ctx, conn, tag, reason),
            Owner::Rest(tag) => self.rest.on_close(ctx, conn, tag, reason),
        }
    }

    fn event_stream_headers(&mut self, tag: u32, request: &Request<'_>) -> Vec<(String, String)> {
        match Owner::of(tag) {
            Owner::Mounted(tag) => self.mounted.event_stream_headers(tag, request),
            Owner::Rest(tag) => self.rest.event_stream_headers(tag, request),
        }
    }

    fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        conn: ConnId,
        tag: u32,
        request: &Request<'_>,
        last_event_id: Option<&str>,
    ) {
        match Owner::of(tag) {
            Owner::Mounted(tag) => self.mounted.on_subscribe(ctx, conn, tag, request, last_event_id),
            Owner::Rest(tag) => self.rest.on_subscribe(ctx, conn, tag, request, last_event_id),
        }
    }

    fn on_unsubscribe(&mut self, ctx: &mut Ctx<'_, A::Post>, conn: ConnId, tag: u32, reason: CloseReason) {
        match Owner::of(tag) {
            Owner::Mounted(tag) => self.mounted.on_unsubscribe(ctx, conn, tag, reason),
            Owner::Rest(tag) => self.rest.on_unsubscribe(ctx, conn, tag, reason),
        }
    }

    fn ready(&self) -> bool {
        self.mounted.ready() && self.rest.ready()
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
        tag: u32,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        match Owner::of(tag) {
            Owner::Mounted(tag) => self.mounted.on_request(ctx, conn, tag, request, body),
            Owner::Rest(tag) => self.rest.on_request(ctx, conn, tag, request, body),
        }
    }

    fn refuse_before_body(&mut self, ctx: &mut Ctx<'_, A::Post>, request: &Request<'_>) -> Option<Response> {
        if self.serves(request) {
            self.mounted.refuse_before_body(ctx, request)
        } else {
            self.rest.refuse_before_body(ctx, request)
        }
    }

    fn body_too_large(&mut self, request: &Request<'_>, limit: usize) -> Option<Response> {
        if self.serves(request) {
            self.mounted.body_too_large(request, limit)
        } else {
            self.rest.body_too_large(request, limit)
        }
    }

    fn on_request_timeout(&mut self, ctx: &mut Ctx<'_, A::Post>, conn: ConnId, tag: u32) -> Response {
        match Owner::of(tag) {
            Owner::Mounted(tag) => self.mounted.on_request_timeout(ctx, conn, tag),
            Owner::Rest(tag) => self.rest.on_request_timeout(ctx, conn, tag),
        }
    }

    fn on_request_abandoned(&mut self, ctx: &mut Ctx<'_, A::Post>, conn: ConnId, tag: u32) {
        match Owner::of(tag) {
            Owner::Mounted(tag) => self.mounted.on_request_abandoned(ctx, conn, tag),
            Owner::Rest(tag) => self.rest.on_request_abandoned(ctx, conn, tag),
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
        tag: u32,
    ) -> Option<Response> {
        match Owner::of(tag) {
            Owner::Mounted(tag) => self.mounted.on_request_shutdown(ctx, conn, tag),
            Owner::Rest(tag) => self.rest.on_request_shutdown(ctx, conn, tag),
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

    #[test]
    fn tags_are_marked_and_given_back() {
        assert_eq!(marked(Route::Handler(7), true), Route::Handler(7 | MOUNTED));
        assert_eq!(marked(Route::WebSocket(7), false), Route::WebSocket(7));
        assert_eq!(marked(Route::EventStream(MOUNTED), false), Route::NotFound);
        assert_eq!(marked(Route::NotFound, true), Route::NotFound);
        assert!(matches!(Owner::of(7 | MOUNTED), Owner::Mounted(7)));
        assert!(matches!(Owner::of(7), Owner::Rest(7)));
    }
}
