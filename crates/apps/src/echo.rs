//! Sends every message back to its sender.

use tether_server::{App, ConnId, Ctx, MessageRef, Request, Route};

/// Echoes every WebSocket message, text or binary, to its sender.
#[derive(Debug, Clone, Default)]
pub struct Echo {
    path: Option<String>,
}

impl Echo {
    /// Every path is the echo endpoint.
    pub fn everywhere() -> Echo {
        Echo { path: None }
    }

    /// Only `path` is; other paths are 404.
    pub fn at(path: impl Into<String>) -> Echo {
        Echo {
            path: Some(path.into()),
        }
    }

    /// Echoes `message` (for applications that embed the echo).
    pub fn reply<P>(ctx: &mut Ctx<'_, P>, conn: ConnId, message: MessageRef<'_>) {
        ctx.send(conn, message);
    }
}

impl App for Echo {
    type Post = ();
    type State = ();

    fn route(&mut self, request: &Request<'_>) -> Route {
        match &self.path {
            Some(path) if path != request.path() => Route::NotFound,
            _ => Route::WebSocket(()),
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _state: &mut (), message: MessageRef<'_>) {
        Echo::reply(ctx, conn, message);
    }
}
