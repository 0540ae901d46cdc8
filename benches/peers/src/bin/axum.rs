//! A WebSocket echo server on axum's own `ws` (tokio-tungstenite inside),
//! on the runtime of `common.rs`: every text or binary message goes back
//! as it came.

#[path = "../common.rs"]
mod common;
#[path = "../forward.rs"]
mod forward;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;

const NAME: &str = "echo-axum";

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let data = is_data(&message);
        if data && socket.send(message).await.is_err() {
            break;
        }
    }
}

fn is_data(message: &Message) -> bool {
    matches!(message, Message::Text(_) | Message::Binary(_))
}

async fn upgrade(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(echo)
}

async fn upgrade_forwarding(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|socket| async move {
        let _ = forward::echo(socket, is_data).await;
    })
}

fn main() {
    common::runtime().block_on(async {
        let listener = common::listener(NAME).await.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let app = if common::args(NAME).forward {
            Router::new()
                .route("/", get(upgrade_forwarding))
                .route("/echo", get(upgrade_forwarding))
        } else {
            Router::new()
                .route("/", get(upgrade))
                .route("/echo", get(upgrade))
        };
        axum::serve(listener, app).await.expect("serve");
    });
}
