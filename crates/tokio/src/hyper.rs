//! The WebSocket upgrade for hyper 1.x: check the request with
//! tether-handshake, answer 101 (or refuse completely), then hand over the
//! upgraded I/O.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tether_handshake::{Rejection, RequestHead};

use crate::accept::Acceptor;
use crate::accept::{Agreed, response_headers};
use crate::error::Error;
use crate::ws::WebSocket;

/// The I/O of an upgraded hyper connection.
pub type UpgradedIo = TokioIo<Upgraded>;

/// A WebSocket over a connection hyper has handed over.
pub type HyperWebSocket = WebSocket<UpgradedIo>;

/// Runs `f` on the tether-handshake view of an `http` request head.
pub(crate) fn with_head<R>(
    method: &http::Method,
    uri: &http::Uri,
    version: http::Version,
    headers: &http::HeaderMap,
    f: impl FnOnce(RequestHead<'_>) -> R,
) -> R {
    let lines: Vec<tether_handshake::httparse::Header<'_>> = headers
        .iter()
        .map(|(name, value)| tether_handshake::httparse::Header {
            name: name.as_str(),
            value: value.as_bytes(),
        })
        .collect();
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    // HTTP/1.0 is refused by the handshake (400); HTTP/2 and later carry no
    // `Upgrade`, so they are refused as "not an upgrade" (426).
    let minor = if version <= http::Version::HTTP_10 { 0 } else { 1 };
    f(RequestHead::new(method.as_str(), target, minor, &lines))
}

/// The 101 response of an agreed upgrade.
pub(crate) fn switching<B: From<Bytes>>(agreed: &Agreed) -> http::Response<B> {
    let mut response = http::Response::new(B::from(Bytes::new()));
    *response.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(http::header::UPGRADE, http::HeaderValue::from_static("websocket"));
    headers.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    for (name, value) in response_headers(agreed) {
        // The handshake wrote these values: tokens and base64.
        if let Ok(value) = http::HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    response
}

/// The complete refusal: status, the headers it calls for (a 426 names
/// `Sec-WebSocket-Version: 13`), and the reason as a text body.
pub fn refusal<B: From<Bytes>>(rejection: &Rejection) -> http::Response<B> {
    let mut body = rejection.reason().as_bytes().to_vec();
    body.push(b'\n');
    let mut response = http::Response::new(B::from(Bytes::from(body)));
    *response.status_mut() =
        http::StatusCode::from_u16(rejection.status()).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in rejection.headers() {
        headers.insert(*name, http::HeaderValue::from_static(value));
    }
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The upgraded connection, once hyper has sent the 101: a future of the
/// open [`WebSocket`]. Spawn a task that awaits it.
pub struct Upgrading {
    inner: Pin<Box<dyn Future<Output = Result<HyperWebSocket, Error>> + Send>>,
}

impl std::fmt::Debug for Upgrading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Upgrading")
    }
}

impl Future for Upgrading {
    type Output = Result<HyperWebSocket, Error>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

pub(crate) fn upgrading(on_upgrade: OnUpgrade, acceptor: Arc<Acceptor>, agreed: Agreed) -> Upgrading {
    Upgrading {
        inner: Box::pin(async move {
            let upgraded = on_upgrade
                .await
                .map_err(|e| Error::Io(std::io::Error::other(e)))?;
            Ok(acceptor.open(TokioIo::new(upgraded), agreed, &[]))
        }),
    }
}

/// The WebSocket upgrade of a hyper request: `Ok` with the 101 response to
/// return from the service and the [`Upgrading`] connection to await in a
/// task of its own; `Err` with the complete refusal to return instead
/// (400 with the reason, 426 with `Sec-WebSocket-Version: 13`, ...).
///
/// `B` is the service's response body type; any `From<Bytes>` body
/// (`http_body_util::Full<Bytes>`, axum's `Body`) works.
///
/// ```no_run
/// use std::convert::Infallible;
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper::{Request, Response, body::Incoming};
///
/// async fn service(mut req: Request<Incoming>, acceptor: Arc<tether_tokio::Acceptor>)
///     -> Result<Response<Full<Bytes>>, Infallible>
/// {
///     Ok(match tether_tokio::hyper::upgrade(&mut req, &acceptor) {
///         Ok((response, upgrading)) => {
///             tokio::spawn(async move {
///                 let Ok(mut ws) = upgrading.await else { return };
///                 while let Ok(Some(message)) = ws.recv_ref().await {
///                     if message.echo().is_err() { break }
///                 }
///             });
///             response
///         }
///         Err(refusal) => refusal,
///     })
/// }
/// ```
#[allow(clippy::result_large_err)]
pub fn upgrade<B: From<Bytes>, ReqBody>(
    request: &mut http::Request<ReqBody>,
    acceptor: &Arc<Acceptor>,
) -> Result<(http::Response<B>, Upgrading), http::Response<B>> {
    let agreed = with_head(
        request.method(),
        request.uri(),
        request.version(),
        request.headers(),
        |head| acceptor.agree(head),
    );
    let agreed = match agreed {
        Ok(agreed) => agreed,
        Err(rejection) => return Err(refusal(&rejection)),
    };
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        // A request hyper cannot upgrade (not over an HTTP/1.1 connection
        // served with upgrades on).
        return Err(refusal(&Rejection::from(tether_handshake::Error::NotUpgrade)));
    };
    let response = switching(&agreed);
    Ok((response, upgrading(on_upgrade, Arc::clone(acceptor), agreed)))
}
