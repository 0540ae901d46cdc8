//! A WebSocket echo server on tokio-tungstenite, one current-thread tokio
//! runtime: every text or binary message goes back as it came. Pings are
//! answered by tungstenite itself (it queues the pong and sends it with the
//! next write or flush). `--forward` echoes as the crate's own
//! echo-server example does (`forward.rs`).

#[path = "../common.rs"]
mod common;
#[path = "../forward.rs"]
mod forward;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const NAME: &str = "echo-tokio-tungstenite";

async fn serve(stream: TcpStream, forwarding: bool) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    if forwarding {
        return forward::echo(ws, |message: &Message| message.is_text() || message.is_binary()).await;
    }
    while let Some(message) = ws.next().await {
        let message = message?;
        if message.is_text() || message.is_binary() {
            ws.send(message).await?;
        }
    }
    Ok(())
}

fn main() {
    let forwarding = common::args(NAME).forward;
    common::runtime().block_on(async {
        let listener = common::listener(NAME).await;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = serve(stream, forwarding).await;
            });
        }
    });
}
