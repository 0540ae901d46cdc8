//! `forward_app!`: the callbacks of an [`App`](crate::App) that wraps
//! another, written once for every wrapper that passes them through.

/// Writes [`App`](crate::App) callbacks that pass each call, as it came,
/// to the application in a field of `self`: for an application that wraps
/// another, adds to some callbacks and leaves the rest to it.
///
/// `forward_app!(self.FIELD => CALLBACK, ...)` goes inside the `impl App`
/// block, beside the associated types and the callbacks written out; each
/// `CALLBACK` is the name of an [`App`](crate::App) method. A callback
/// neither named nor written keeps the trait's default, not the inner
/// application's. The inner application must have the same `Post` and
/// `State` types. The calls are direct (no boxing, no `dyn`), so a
/// forwarded callback costs what the inner one does.
///
/// ```
/// use tether_server::{App, ConnId, Ctx, Message, Request, Route};
///
/// struct Inner;
///
/// impl App for Inner {
///     type Post = ();
///     type State = ();
///
///     fn route(&mut self, _request: &Request<'_>) -> Route<()> {
///         Route::WebSocket(())
///     }
/// }
///
/// /// `Inner`, greeting each WebSocket first.
/// struct Greeting(Inner);
///
/// impl App for Greeting {
///     type Post = ();
///     type State = ();
///
///     tether_server::forward_app!(self.0 => route, on_message, on_close);
///
///     fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, state: &mut (), request: &Request<'_>) {
///         ctx.send(conn, &Message::text("hello"));
///         self.0.on_open(ctx, conn, state, request);
///     }
/// }
/// ```
#[macro_export]
macro_rules! forward_app {
    (self.$field:tt => $($callback:ident),+ $(,)?) => {
        $($crate::forward_app!(@one $field $callback);)+
    };
    // One callback, by its signature in the trait.
    (@one $f:tt route) => {
        $crate::forward_app!(@fn mut $f route(request: &$crate::Request<'_>) -> $crate::Route<Self::State>);
    };
    (@one $f:tt on_open) => {
        $crate::forward_app!(@fn mut $f on_open(
            ctx: &mut $crate::Ctx<'_, Self::Post>, conn: $crate::ConnId, state: &mut Self::State,
            request: &$crate::Request<'_>,
        ));
    };
    (@one $f:tt on_message) => {
        $crate::forward_app!(@fn mut $f on_message(
            ctx: &mut $crate::Ctx<'_, Self::Post>, conn: $crate::ConnId, state: &mut Self::State,
            message: $crate::MessageRef<'_>,
        ));
    };
    (@one $f:tt on_close) => {
        $crate::forward_app!(@fn mut $f on_close(
            ctx: &mut $crate::Ctx<'_, Self::Post>, conn: $crate::ConnId, state: &mut Self::State,
            reason: $crate::CloseReason,
        ));
    };
    (@one $f:tt event_stream_headers) => {
        $crate::forward_app!(@fn mut $f event_stream_headers(
            state: &mut Self::State, request: &$crate::Request<'_>,
        ) -> ::std::vec::Vec<(::std::string::String, ::std::string::String)>);
    };
    (@one $f:tt on_subscribe) => {
        $crate::forward_app!(@fn mut $f on_subscribe(
            ctx: &mut $crate::Ctx<'_, Self::Post>, conn: $crate::ConnId, state: &mut Self::State,
            request: &$crate::Request<'_>, last_event_id: ::core::option::Option<&str>,
        ));
    };
    (@one $f:tt on_unsubscribe) => {
        $crate::forward_app!(@fn mut $f on_unsubscribe(
            ctx: &mut $crate::Ctx<'_, Self::Post>, conn: $crate::ConnId, state: &mut Self::State,
            reason: $crate::CloseReason,
        ));
    };
    (@one $f:tt ready) => {
        $crate::forward_app!(@fn ref $f ready() -> bool);
    };
    (@one $f:tt readiness) => {
        $crate::forward_app!(@fn ref $f readiness(report: &mut $crate::Readiness) -> ());
    };
    (@one $f:tt tick_interval) => {
        $crate::forward_app!(@fn ref $f tick_interval() -> ::core::option::Option<::core::time::Duration>);
    };
    (@one $f:tt on_tick) => {
        $crate::forward_app!(@fn mut $f on_tick(ctx: &mut $crate::Ctx<'_, Self::Post>));
    };
    (@one $f:tt on_request) => {
        $crate::forward_app!(@fn mut $f on_request(
            ctx: &mut $crate::Ctx<'_, Self::Post>, conn: $crate::ConnId, state: &mut Self::State,
            request: &$crate::Request<'_>, body: &[u8],
        ) -> $crate::Reply);
    };
    (@one $f:tt before_body) => {
        $crate::forward_app!(@fn mut $f before_body(
            ctx: &mut $crate::Ctx<'_, Self::Post>, request: &$crate::Request<'_>,
        ) -> $crate::BeforeBody<Self::State>);
    };
    (@one $f:tt refuse_before_body) => {
        $crate::forward_app!(@fn mut $f refuse_before_body(
            ctx: &mut $crate::Ctx<'_, Self::Post>, request: &$crate::Request<'_>,
        ) -> ::core::option::Option<$crate::Response>);
    };
    (@one $f:tt body_too_large) => {
        $crate::forward_app!(@fn mut $f body_too_large(
            request: &$crate::Request<'_>, limit: usize,
        ) -> ::core::option::Option<$crate::Response>);
    };
    (@one $f:tt on_request_timeout) => {
        $crate::forward_app!(@fn mut $f on_request_timeout(
            ctx: &mut $crate::Ctx<'_, Self::Post>, conn: $crate::ConnId, state: &mut Self::State,
        ) -> $crate::Response);
    };
    (@one $f:tt on_request_abandoned) => {
        $crate::forward_app!(@fn mut $f on_request_abandoned(
            ctx: &mut $crate::Ctx<'_, Self::Post>, conn: $crate::ConnId, state: &mut Self::State,
        ));
    };
    (@one $f:tt on_proceed) => {
        $crate::forward_app!(@fn mut $f on_proceed(
            conn: $crate::ConnId, state: &mut Self::State, route: &$crate::Route,
        ));
    };
    (@one $f:tt on_post) => {
        $crate::forward_app!(@fn mut $f on_post(ctx: &mut $crate::Ctx<'_, Self::Post>, message: Self::Post));
    };
    (@one $f:tt on_shutdown) => {
        $crate::forward_app!(@fn mut $f on_shutdown(ctx: &mut $crate::Ctx<'_, Self::Post>));
    };
    (@one $f:tt keeps_session_state) => {
        $crate::forward_app!(@fn ref $f keeps_session_state(state: &Self::State) -> bool);
    };
    (@one $f:tt subject) => {
        #[inline]
        fn subject<'s>(&self, state: &'s Self::State) -> ::core::option::Option<&'s str> {
            $crate::App::subject(&self.$f, state)
        }
    };
    (@one $f:tt on_request_shutdown) => {
        $crate::forward_app!(@fn mut $f on_request_shutdown(
            ctx: &mut $crate::Ctx<'_, Self::Post>, conn: $crate::ConnId, state: &mut Self::State,
        ) -> ::core::option::Option<$crate::Response>);
    };
    // The method itself: the same call on the field, through the trait
    // (an inherent method of the same name is not taken instead).
    (@fn mut $f:tt $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?) => {
        #[inline]
        fn $name(&mut self, $($arg: $ty),*) $(-> $ret)? {
            $crate::App::$name(&mut self.$f, $($arg),*)
        }
    };
    (@fn ref $f:tt $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty) => {
        #[inline]
        fn $name(&self, $($arg: $ty),*) -> $ret {
            $crate::App::$name(&self.$f, $($arg),*)
        }
    };
}
