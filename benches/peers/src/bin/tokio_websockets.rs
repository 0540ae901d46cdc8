//! A WebSocket echo server on tokio-websockets, one current-thread tokio
//! runtime: every text or binary message goes back as it came. The crate
//! answers pings and close frames itself.

#[path = "../common.rs"]
mod common;
#[path = "../forward.rs"]
mod forward;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_websockets::{Message, ServerBuilder};

const NAME: &str = "echo-tokio-websockets";

async fn serve(stream: TcpStream, forwarding: bool) -> Result<(), tokio_websockets::Error> {
    let (_request, mut ws) = ServerBuilder::new().accept(stream).await?;
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
