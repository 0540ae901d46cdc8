//! A chat on axum: one topic, joined by WebSocket (`/ws`: send and receive)
//! or by event stream (`/events`: receive). `cargo run -p tether-tokio --features axum --example axum_chat -- 127.0.0.1:3000`
use axum::{Router, extract::State, response::Response, routing::get};
use tether_tokio::{axum::WebSocketUpgrade, sse::{Event, Sse}};
use tokio::sync::broadcast::{self, Sender};
use futures_util::StreamExt;

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

async fn events(State(topic): State<Sender<String>>) -> Sse<impl futures_util::Stream<Item = Event>> {
    let rx = tokio_stream_from(topic.subscribe());
    Sse::new(rx.map(|line| Event::data(&line)))
}

fn tokio_stream_from(rx: broadcast::Receiver<String>) -> impl futures_util::Stream<Item = String> {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.ok().map(|line| (line, rx)) })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3000".into());
    let app = Router::new().route("/ws", get(ws)).route("/events", get(events)).with_state(broadcast::channel(256).0);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("axum_chat listening on http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await
}
