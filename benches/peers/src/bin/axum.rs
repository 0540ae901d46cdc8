//! A WebSocket echo server on axum's own `ws` (tokio-tungstenite inside),
//! on the runtime of `common.rs`: every text or binary message goes back
//! as it came.

#[path = "../common.rs"]
mod common;

use axum::Router;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;

const NAME: &str = "echo-axum";

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let data = matches!(
            message,
            axum::extract::ws::Message::Text(_) | axum::extract::ws::Message::Binary(_)
        );
        if data && socket.send(message).await.is_err() {
            break;
        }
    }
}

async fn upgrade(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(echo)
}

fn main() {
    common::runtime().block_on(async {
        let listener = common::listener(NAME).await.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let app = Router::new().route("/", get(upgrade)).route("/echo", get(upgrade));
        axum::serve(listener, app).await.expect("serve");
    });
}
