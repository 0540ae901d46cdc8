//! A WebSocket echo server on tokio-websockets, one current-thread tokio
//! runtime: every text or binary message goes back as it came. The crate
//! answers pings and close frames itself.

#[path = "../common.rs"]
mod common;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_websockets::ServerBuilder;

const NAME: &str = "echo-tokio-websockets";

async fn serve(stream: TcpStream) -> Result<(), tokio_websockets::Error> {
    let (_request, mut ws) = ServerBuilder::new().accept(stream).await?;
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
