//! A chat on axum: one topic, joined by WebSocket (`/ws`, both ways) or by
//! event stream (`/events`). `cargo run -p tether-tokio --features axum --example axum_chat`
use axum::{Router, extract::State, response::Response, routing::get};
use futures_util::{Stream, StreamExt, stream};
use tether_tokio::{
    axum::WebSocketUpgrade,
    sse::{Event, Sse},
};
use tokio::sync::broadcast::{self, Sender};

async fn ws(upgrade: WebSocketUpgrade, State(topic): State<Sender<String>>) -> Response {
    upgrade.on_upgrade(|mut ws| async move {
        let mut rx = topic.subscribe();
        loop {
            tokio::select! {
                got = ws.recv() => match got {
                    Ok(Some(message)) => drop(topic.send(message.as_text().unwrap_or_default().to_owned())),
                    _ => break,
                },
                Ok(line) = rx.recv() => if ws.send(line.as_str()).await.is_err() { break },
            }
        }
    })
}

async fn events(State(topic): State<Sender<String>>) -> Sse<impl Stream<Item = Event>> {
    let lines = stream::unfold(topic.subscribe(), |mut rx| async move {
        Some((rx.recv().await.ok()?, rx))
    });
    Sse::new(lines.map(|line| Event::data(&line)))
}

pub(crate) fn app() -> Router {
    Router::new()
        .route("/ws", get(ws))
        .route("/events", get(events))
        .with_state(broadcast::channel(256).0)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("axum_chat listening on http://{}/", listener.local_addr()?);
    axum::serve(listener, app()).await
}
