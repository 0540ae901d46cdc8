//! The WebSocket upgrade as an axum extractor, and `Last-Event-ID` for
//! event streams.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use hyper::upgrade::OnUpgrade;
use tether_handshake::Rejection;

use crate::accept::Acceptor;
use crate::accept::Agreed;
use crate::error::Error;
use crate::hyper::{HyperWebSocket, refusal, switching, upgrading, with_head};

/// An accepted WebSocket upgrade, as an axum extractor: the request was
/// checked by tether-handshake (a bad one never reaches the handler: it
/// gets the complete refusal, such as 426 with `Sec-WebSocket-Version: 13`
/// or 400 with the reason), and the subprotocol and extensions agreed.
/// Answer with [`on_upgrade`](Self::on_upgrade).
///
/// The [`Acceptor`] is the one in the request's extensions
/// (`.layer(axum::Extension(acceptor.shared()))`), else the default.
///
/// ```no_run
/// use axum::{Router, routing::get, response::Response};
/// use tether_tokio::axum::WebSocketUpgrade;
///
/// async fn ws(upgrade: WebSocketUpgrade) -> Response {
///     upgrade.on_upgrade(|mut ws| async move {
///         while let Ok(Some(message)) = ws.recv().await {
///             if ws.send(&message).await.is_err() { break }
///         }
///     })
/// }
/// let app: Router = Router::new().route("/ws", get(ws));
/// ```
pub struct WebSocketUpgrade {
    agreed: Agreed,
    acceptor: Arc<Acceptor>,
    on_upgrade: OnUpgrade,
}

impl std::fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("protocol", &self.agreed.protocol)
            .field("extensions", &self.agreed.extensions_header)
            .finish_non_exhaustive()
    }
}

fn default_acceptor() -> Arc<Acceptor> {
    static DEFAULT: OnceLock<Arc<Acceptor>> = OnceLock::new();
    Arc::clone(DEFAULT.get_or_init(|| Arc::new(Acceptor::default())))
}

impl WebSocketUpgrade {
    /// The subprotocol agreed, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.agreed.protocol.as_deref()
    }

    /// The 101 response; once hyper has sent it, `callback` runs in a task
    /// of its own with the open WebSocket. (If the upgrade then fails, the
    /// callback does not run.)
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(HyperWebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let response = switching::<Body>(&self.agreed);
        let upgrading = upgrading(self.on_upgrade, self.acceptor, self.agreed);
        tokio::spawn(async move {
            if let Ok(ws) = upgrading.await {
                callback(ws).await;
            }
        });
        response
    }
}

/// The refusal of an upgrade the handshake turned down.
#[derive(Debug)]
pub struct UpgradeRefused(Rejection);

impl IntoResponse for UpgradeRefused {
    fn into_response(self) -> Response {
        refusal::<Body>(&self.0)
    }
}

impl From<UpgradeRefused> for Error {
    fn from(refused: UpgradeRefused) -> Error {
        Error::Status(refused.0.status())
    }
}

impl<St: Send + Sync> FromRequestParts<St> for WebSocketUpgrade {
    type Rejection = UpgradeRefused;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Self::Rejection> {
        let acceptor = parts
            .extensions
            .get::<Arc<Acceptor>>()
            .cloned()
            .unwrap_or_else(default_acceptor);
        let agreed = with_head(&parts.method, &parts.uri, parts.version, &parts.headers, |head| {
            acceptor.agree(head)
        })
        .map_err(UpgradeRefused)?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or_else(|| UpgradeRefused(Rejection::from(tether_handshake::Error::NotUpgrade)))?;
        Ok(WebSocketUpgrade {
            agreed,
            acceptor,
            on_upgrade,
        })
    }
}

/// The `Last-Event-ID` a reconnecting EventSource sends, as an extractor
/// (`None` when there is none, or it is not visible ASCII).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastEventId(pub Option<String>);

impl<St: Send + Sync> FromRequestParts<St> for LastEventId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Self::Rejection> {
        Ok(LastEventId(
            crate::sse::last_event_id(&parts.headers).map(str::to_owned),
        ))
    }
}

impl<St> IntoResponse for crate::sse::Sse<St>
where
    St: futures_core::Stream<Item = crate::sse::Event> + Send + 'static,
{
    fn into_response(self) -> Response {
        self.into_http().map(Body::new)
    }
}
