//! A WebSocket echo server on fastwebsockets, one current-thread tokio
//! runtime. The upgrade goes through hyper, as the crate's documentation
//! does it; the socket then belongs to a `FragmentCollector`, which joins
//! fragmented messages and, with the crate's defaults, answers pings and
//! close frames itself. Every text or binary message goes back as it came.

#[path = "../common.rs"]
mod common;

use fastwebsockets::{FragmentCollector, OpCode, WebSocketError, upgrade};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const NAME: &str = "echo-fastwebsockets";

async fn echo(upgrade: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = FragmentCollector::new(upgrade.await?);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
}

async fn handle(mut request: Request<Incoming>) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, upgrade) = upgrade::upgrade(&mut request)?;
    tokio::spawn(async move {
        let _ = echo(upgrade).await;
    });
    Ok(response)
}

fn main() {
    if common::args(NAME).forward {
        eprintln!("{NAME}: --forward is not offered: fastwebsockets' socket is not a Stream and Sink");
        std::process::exit(2);
    }
    common::runtime().block_on(async {
        let listener = common::listener(NAME).await;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let connection = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(handle))
                    .with_upgrades();
                let _ = connection.await;
            });
        }
    });
}
