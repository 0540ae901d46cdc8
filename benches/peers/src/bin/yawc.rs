//! A WebSocket echo server on yawc, one current-thread tokio runtime (or
//! `--threads N` workers). The upgrade goes through hyper, as the crate's
//! documentation does it; the socket then belongs to yawc's `WebSocket`,
//! which joins fragmented messages and answers pings and close frames
//! itself. Every text or binary message goes back as it came.
//!
//! Settings, chosen to match what the other servers do: text is checked as
//! UTF-8 (RFC 6455 requires it; yawc's default does not check), and
//! permessage-deflate is accepted when offered, with tether's defaults:
//! level 1 (yawc's low-latency preset), no context takeover in either
//! direction (set apart: the preset, in yawc 0.5, keeps both contexts
//! though its documentation says otherwise), nothing under 256 bytes
//! compressed, and the compressors and decompressors shared between
//! connections (yawc's `DeflatePool`, as its documentation sets it up for
//! no context takeover; tether keeps one of each per thread). The crate is
//! built with its `zlib` feature (zlib-rs behind flate2, the compressor
//! tether-deflate uses) and `simd` (its faster UTF-8 check). `--forward`
//! echoes by forwarding (`forward.rs`).

#[path = "../common.rs"]
mod common;
#[path = "../forward.rs"]
mod forward;

use std::sync::OnceLock;

use futures_util::{SinkExt, StreamExt};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use yawc::{DeflatePool, Frame, OpCode, Options, UpgradeFut, WebSocket, WebSocketError};

const NAME: &str = "echo-yawc";

async fn echo(upgrade: UpgradeFut, forwarding: bool) -> Result<(), WebSocketError> {
    let mut ws = upgrade.await?;
    if forwarding {
        let frames = ws.map(Ok::<Frame, WebSocketError>);
        return forward::echo(frames, |frame: &Frame| {
            matches!(frame.opcode(), OpCode::Text | OpCode::Binary)
        })
        .await;
    }
    while let Some(frame) = ws.next().await {
        match frame.opcode() {
            OpCode::Text | OpCode::Binary => ws.send(frame).await?,
            OpCode::Close => return Ok(()),
            _ => {}
        }
    }
    Ok(())
}

async fn handle(
    mut request: Request<Incoming>,
    forwarding: bool,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, upgrade) = WebSocket::upgrade_with_options(&mut request, options().clone())?;
    tokio::spawn(async move {
        let _ = echo(upgrade, forwarding).await;
    });
    Ok(response)
}

/// The options of every connection, built once: the pool is shared.
fn options() -> &'static Options {
    static OPTIONS: OnceLock<Options> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        Options::default()
            .with_utf8()
            .with_low_latency_compression()
            .server_no_context_takeover()
            .client_no_context_takeover()
            .with_compression_threshold(256)
            // About the threads compressing at once; idle state beyond it is dropped.
            .with_deflate_pool(DeflatePool::new(4))
    })
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
                let connection = http1::Builder::new()
                    .serve_connection(
                        TokioIo::new(stream),
                        service_fn(move |request| handle(request, forwarding)),
                    )
                    .with_upgrades();
                let _ = connection.await;
            });
        }
    });
}
