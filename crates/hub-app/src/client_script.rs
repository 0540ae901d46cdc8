//! The browser client, served by every application that has topics to
//! subscribe to (the hub alone, and the demo beside its page).

use tether_server::Route;

/// The minified ES module that `clients/js` builds (`node build.mjs --demo`
/// copies it here; its test run checks that the copy is the fresh build).
const CLIENT: &[u8] = include_bytes!("../static/tether-client.js");

/// The path it is served at.
pub(crate) const PATH: &str = "/tether-client.js";

/// The route that serves it, as JavaScript.
pub(crate) fn route<S>() -> Route<S> {
    Route::Page {
        content_type: "text/javascript; charset=utf-8",
        body: CLIENT,
    }
}
