//! A WebSocket echo server on tokio-tungstenite, one current-thread tokio
//! runtime: every text or binary message goes back as it came. Pings are
//! answered by tungstenite itself (it queues the pong and sends it with the
//! next write or flush).

#[path = "../common.rs"]
mod common;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;

const NAME: &str = "echo-tokio-tungstenite";

async fn serve(stream: TcpStream) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    while let Some(message) = ws.next().await {
        let message = message?;
        if message.is_text() || message.is_binary() {
            ws.send(message).await?;
        }
    }
    Ok(())
}

fn main() {
    common::runtime().block_on(async {
        let listener = common::listener(NAME).await;
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = serve(stream).await;
            });
        }
    });
}
