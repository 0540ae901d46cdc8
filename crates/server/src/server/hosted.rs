//! The application as a loop hosts it: the application itself, and the
//! states ([`App::State`]) of the requests under way, kept in a table
//! beside it so that the connection and stream structs, which are not
//! generic, keep a `u32` key to a state where they would keep the state.
//!
//! Calling contract: [`Hosted::route`] puts a request's state in the
//! table and returns its key in the route; the callbacks below take the
//! key and hand the application its state by `&mut`; the session that
//! holds a key calls [`Hosted::release`] exactly once, when its request is
//! over (after the last callback), and never uses the key after it (the
//! slot serves a later request).

use std::ops::{Deref, DerefMut};

use tether_ws::MessageRef;

use crate::access::Opened;
use crate::app::{App, BeforeBody, CloseReason, ConnId, Ctx, Reply, Request, Response, Route};
use crate::loops::Stats;

/// Whether the server answers `path` itself (`/healthz`, `/readyz`, as
/// `super::dispatch` does, before any route): the application is asked
/// nothing of such a request, neither its head alone nor its route, so a
/// probe is answered by the server whatever the application would make of
/// it.
fn server_answers(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// The key a session holds once its state has been let go
/// ([`App::keeps_session_state`]): its callbacks receive a fresh default
/// state, and there is nothing to release.
pub(super) const NO_STATE: u32 = u32::MAX;

/// The states of the requests under way, by key. A freed slot is reused
/// by a later request, so the table stays as long as the most requests
/// under way at once; a slot of a state that is `()` takes a byte. A
/// session whose state was let go holds [`NO_STATE`] and no slot.
pub(super) struct States<S> {
    slots: Vec<Option<S>>,
    free: Vec<u32>,
    /// What a callback of a session holding [`NO_STATE`] is lent: made
    /// afresh for each.
    spare: S,
}

impl<S: Default> States<S> {
    fn new() -> States<S> {
        States {
            slots: Vec::new(),
            free: Vec::new(),
            spare: S::default(),
        }
    }

    fn insert(&mut self, state: S) -> u32 {
        if let Some(key) = self.free.pop()
            && let Some(slot) = self.slots.get_mut(key as usize)
        {
            *slot = Some(state);
            return key;
        }
        self.slots.push(Some(state));
        // Each request under way holds a connection or stream: far fewer
        // than 2^32 - 1 of them, so no key is `NO_STATE`.
        u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
    }

    fn get_mut(&mut self, key: u32) -> Option<&mut S> {
        if key == NO_STATE {
            self.spare = S::default();
            return Some(&mut self.spare);
        }
        self.slots.get_mut(key as usize).and_then(Option::as_mut)
    }

    fn get(&self, key: u32) -> Option<&S> {
        self.slots.get(key as usize).and_then(Option::as_ref)
    }

    fn remove(&mut self, key: u32) -> Option<S> {
        if key == NO_STATE {
            return Some(S::default());
        }
        let state = self.slots.get_mut(key as usize)?.take()?;
        self.free.push(key);
        Some(state)
    }

    /// The states kept: one per request under way that has one, and per
    /// open session that kept its own.
    #[cfg(test)]
    pub(super) fn kept(&self) -> usize {
        self.slots.iter().filter(|slot| slot.is_some()).count()
    }
}

/// An application and its requests' states.
pub(super) struct Hosted<A: App> {
    app: A,
    pub(super) states: States<A::State>,
    /// With an access log: the subject ([`App::subject`]) of the last
    /// state released, for the line of a request answered at once (whose
    /// state is released before it is reported).
    pub(super) released_subject: Option<Option<Box<str>>>,
}

impl<A: App> Deref for Hosted<A> {
    type Target = A;
    fn deref(&self) -> &A {
        &self.app
    }
}

impl<A: App> DerefMut for Hosted<A> {
    fn deref_mut(&mut self) -> &mut A {
        &mut self.app
    }
}

impl<A: App> Hosted<A> {
    pub(super) fn new(app: A) -> Hosted<A> {
        Hosted {
            app,
            states: States::new(),
            released_subject: None,
        }
    }

    /// [`App::route`], its state kept: the route names its key.
    pub(super) fn route(&mut self, request: &Request<'_>) -> Route<u32> {
        let states = &mut self.states;
        self.app.route(request).map(|state| states.insert(state))
    }

    /// The route a held request goes on as ([`Ctx::proceed`]), with the
    /// state it was held with (`key`); a route without one (a page, a
    /// 404) ends the request, and its state is released.
    pub(super) fn proceed_route(&mut self, conn: ConnId, route: Route, key: u32) -> Route<u32> {
        if matches!(route, Route::Page { .. } | Route::NotFound) {
            self.release(key);
        } else if let Some(state) = self.states.get_mut(key) {
            self.app.on_proceed(conn, state, &route);
        }
        route.map(|()| key)
    }

    /// [`App::on_close`] for a session that is being forgotten, its state
    /// then dropped (taken out first, so that a callback that panics
    /// drops it too).
    pub(super) fn close_final(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        conn: ConnId,
        key: u32,
        reason: CloseReason,
    ) {
        session_ended(ctx, conn, &reason);
        if let Some(mut state) = self.states.remove(key) {
            self.app.on_close(ctx, conn, &mut state, reason);
        }
    }

    /// [`App::on_unsubscribe`] for an event stream being forgotten, its
    /// state then dropped.
    pub(super) fn unsubscribe_final(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        conn: ConnId,
        key: u32,
        reason: CloseReason,
    ) {
        session_ended(ctx, conn, &reason);
        if let Some(mut state) = self.states.remove(key) {
            self.app.on_unsubscribe(ctx, conn, &mut state, reason);
        }
    }

    /// [`App::on_request_abandoned`], the state then dropped.
    pub(super) fn abandoned_final(&mut self, ctx: &mut Ctx<'_, A::Post>, conn: ConnId, key: u32) {
        if let Some(mut state) = self.states.remove(key) {
            self.app.on_request_abandoned(ctx, conn, &mut state);
        }
    }

    /// [`App::before_body`]: `Err` answers now; `Ok(Some(key))` is the
    /// handler state kept for the request (its route is then
    /// `Route::Handler(key)`, not asked again); `Ok(None)` reads on.
    pub(super) fn head_before_body(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        request: &Request<'_>,
    ) -> Result<Option<u32>, Response> {
        if server_answers(request.path) {
            // The server's own answer wins: a state kept, or a refusal,
            // would take the request past it.
            return Ok(None);
        }
        match self.app.before_body(ctx, request) {
            BeforeBody::Read => Ok(None),
            BeforeBody::Handler(state) => {
                // Its route is released, not dispatched: counted here, once.
                Stats::add(&ctx.peers.own().stats.http_requests, 1);
                Ok(Some(self.states.insert(state)))
            }
            BeforeBody::Refuse(refusal) => Err(refusal),
        }
    }

    /// Drops the state of a request that is over (noting its subject
    /// first, if one is being noted: see [`Hosted::note_subject`]).
    pub(super) fn release(&mut self, key: u32) {
        if self.released_subject.is_some() {
            self.released_subject = Some(self.subject(key));
        }
        drop(self.states.remove(key));
    }

    /// [`App::subject`] of the state under `key`, if it is held.
    pub(super) fn subject(&self, key: u32) -> Option<Box<str>> {
        self.states
            .get(key)
            .and_then(|state| self.app.subject(state))
            .map(Box::from)
    }

    /// From now on, [`Hosted::release`] notes the subject of the state
    /// it releases, until [`Hosted::released_subject`] takes it.
    pub(super) fn note_subject(&mut self) {
        self.released_subject = Some(None);
    }

    /// The subject noted since [`Hosted::note_subject`], and no more
    /// noting.
    pub(super) fn released_subject(&mut self) -> Option<Box<str>> {
        self.released_subject.take().flatten()
    }

    /// [`App::on_open`]; then, if the application lets the state go, it
    /// is dropped and `key` becomes [`NO_STATE`].
    pub(super) fn on_open(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        conn: ConnId,
        key: &mut u32,
        request: &Request<'_>,
    ) {
        self.session_opened(ctx, conn, *key, Opened::WebSocket, request);
        if let Some(state) = self.states.get_mut(*key) {
            self.app.on_open(ctx, conn, state, request);
            self.settle(key);
        }
    }

    pub(super) fn on_message(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        conn: ConnId,
        key: u32,
        message: MessageRef<'_>,
    ) {
        if let Some(state) = self.states.get_mut(key) {
            self.app.on_message(ctx, conn, state, message);
        }
    }

    pub(super) fn on_close(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        conn: ConnId,
        key: u32,
        reason: CloseReason,
    ) {
        session_ended(ctx, conn, &reason);
        if let Some(state) = self.states.get_mut(key) {
            self.app.on_close(ctx, conn, state, reason);
        }
    }

    pub(super) fn compress_event_stream(&mut self, key: u32, request: &Request<'_>) -> bool {
        match self.states.get_mut(key) {
            Some(state) => self.app.compress_event_stream(state, request),
            None => false,
        }
    }

    pub(super) fn event_stream_headers(&mut self, key: u32, request: &Request<'_>) -> Vec<(String, String)> {
        match self.states.get_mut(key) {
            Some(state) => self.app.event_stream_headers(state, request),
            None => Vec::new(),
        }
    }

    /// [`App::on_subscribe`]; then, as [`Hosted::on_open`], the state
    /// kept or let go.
    pub(super) fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        conn: ConnId,
        key: &mut u32,
        request: &Request<'_>,
        last_event_id: Option<&str>,
    ) {
        self.session_opened(ctx, conn, *key, Opened::EventStream, request);
        if let Some(state) = self.states.get_mut(*key) {
            self.app.on_subscribe(ctx, conn, state, request, last_event_id);
            self.settle(key);
        }
    }

    /// With session ends in the access log: keeps what the session on
    /// `conn` opened with, and who its state says it is (asked before
    /// the application's first callback of the session, which may take
    /// its credential out of the state).
    #[cold]
    fn session_opened(
        &self,
        ctx: &Ctx<'_, A::Post>,
        conn: ConnId,
        key: u32,
        opened: Opened,
        request: &Request<'_>,
    ) {
        if let Some(access) = &ctx.peers.own().access
            && access.reports_session_ends()
        {
            let subject = self.subject(key);
            access.session_opened(conn, opened, request, subject.as_deref());
        }
    }

    /// For a session that has just opened: drops its state if the
    /// application does not keep it, `key` then [`NO_STATE`].
    fn settle(&mut self, key: &mut u32) {
        if *key == NO_STATE {
            return;
        }
        let kept = match self.states.get_mut(*key) {
            Some(state) => self.app.keeps_session_state(state),
            None => return,
        };
        if !kept {
            self.release(*key);
            *key = NO_STATE;
        }
    }

    pub(super) fn on_unsubscribe(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        conn: ConnId,
        key: u32,
        reason: CloseReason,
    ) {
        session_ended(ctx, conn, &reason);
        if let Some(state) = self.states.get_mut(key) {
            self.app.on_unsubscribe(ctx, conn, state, reason);
        }
    }

    pub(super) fn on_request(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        conn: ConnId,
        key: u32,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        match self.states.get_mut(key) {
            Some(state) => self.app.on_request(ctx, conn, state, request, body),
            None => Reply::Now(Response::text(500, "500 Internal Server Error\n")),
        }
    }

    pub(super) fn on_request_timeout(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        conn: ConnId,
        key: u32,
    ) -> Response {
        match self.states.get_mut(key) {
            Some(state) => self.app.on_request_timeout(ctx, conn, state),
            None => Response::empty(204),
        }
    }

    pub(super) fn on_request_abandoned(&mut self, ctx: &mut Ctx<'_, A::Post>, conn: ConnId, key: u32) {
        if let Some(state) = self.states.get_mut(key) {
            self.app.on_request_abandoned(ctx, conn, state);
        }
    }

    pub(super) fn on_request_shutdown(
        &mut self,
        ctx: &mut Ctx<'_, A::Post>,
        conn: ConnId,
        key: u32,
    ) -> Option<Response> {
        match self.states.get_mut(key) {
            Some(state) => self.app.on_request_shutdown(ctx, conn, state),
            None => Some(Response::text(503, "the server is shutting down\n").header("Retry-After", "1")),
        }
    }
}

/// The access log's line for a session on `conn` that ends now, if it
/// was kept open.
fn session_ended<P>(ctx: &Ctx<'_, P>, conn: ConnId, reason: &CloseReason) {
    if let Some(access) = &ctx.peers.own().access {
        access.session_ended(conn, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An application with nothing but its state type.
    struct Keeping<S>(std::marker::PhantomData<S>);

    impl<S: Default + Send + 'static> App for Keeping<S> {
        type Post = ();
        type State = S;

        fn route(&mut self, _request: &Request<'_>) -> Route<S> {
            Route::NotFound
        }
    }

    /// The key a session holds once it has opened and settled.
    fn settled<S: Default + Send + 'static>(state: S) -> (Hosted<Keeping<S>>, u32) {
        let mut hosted = Hosted::new(Keeping(std::marker::PhantomData));
        let mut key = hosted.states.insert(state);
        hosted.settle(&mut key);
        (hosted, key)
    }

    /// By default a session's state is kept, unless it is zero-sized: an
    /// open session of an application whose state is `()` (the echo)
    /// holds no slot.
    #[test]
    fn a_zero_sized_state_is_let_go_and_any_other_kept() {
        let (mut unit, key) = settled(());
        assert_eq!((key, unit.states.kept()), (NO_STATE, 0));
        assert!(unit.states.get_mut(key).is_some());
        let (mut counted, key) = settled(7u32);
        assert_ne!(key, NO_STATE);
        assert_eq!(counted.states.kept(), 1);
        assert_eq!(counted.states.get_mut(key), Some(&mut 7));
    }

    /// A let-go session is lent a fresh default each time, and nothing
    /// is released for it; its key's slot serves the next request.
    #[test]
    fn a_let_go_session_is_lent_a_fresh_default_each_time() {
        let (mut unit, key) = settled(());
        let mut states = States::<String>::new();
        let spare = states.get_mut(NO_STATE).map(|s| {
            s.push_str("written");
            s.clone()
        });
        assert_eq!(spare.as_deref(), Some("written"));
        assert_eq!(states.get_mut(NO_STATE).map(|s| s.as_str()), Some(""));
        assert_eq!(states.remove(NO_STATE).as_deref(), Some(""));
        assert_eq!(states.insert("next".into()), 0);
        unit.release(key);
        assert_eq!(
            unit.states.insert(()),
            0,
            "the let-go slot serves the next request"
        );
    }
}
