//! An axum application that keeps its own routes and uses tether's hub
//! for push. axum answers `POST /orders` and publishes each order to the
//! hub's topic `orders`; the hub runs on its own threads, on another
//! port, where browsers and curl subscribe:
//!
//! ```text
//! cargo run -p tether-tokio --example axum_with_hub
//! curl -N http://127.0.0.1:8081/topics/orders/events     # subscribe (SSE)
//! curl -d 'one tea' http://127.0.0.1:3000/orders          # {"id":"..."}
//! ```
//!
//! Ctrl-C stops axum, then the hub (gracefully: every publish answered
//! is delivered first).
use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use axum::{Router, extract::State, http::StatusCode, routing::post};
use tether_apps::{HubPublisher, HubSettings, HubShared, PublishError};
use tether_server::{Cluster, Config, Handle, Handshake};

/// tether's hub, running on threads of its own beside the tokio runtime.
pub(crate) struct Hub {
    pub(crate) addr: SocketAddr,
    /// `Send + Sync + Clone`: hand a clone to every task that publishes.
    pub(crate) publisher: HubPublisher,
    handle: Handle,
    thread: JoinHandle<io::Result<()>>,
}

impl Hub {
    pub(crate) fn start(config: Config, settings: HubSettings, loops: usize) -> io::Result<Hub> {
        let shared = HubShared::new(settings, loops);
        let cluster = Cluster::bind(config, Handshake::new(), loops, |i| shared.app(i))?;
        let publisher = shared.publisher(cluster.poster());
        let (addr, handle) = (cluster.local_addr(), cluster.handle());
        let thread = std::thread::spawn(move || cluster.run());
        Ok(Hub {
            addr,
            publisher,
            handle,
            thread,
        })
    }

    /// Shuts the hub down and waits for its loops to end (blocking: call
    /// it outside the runtime, or in `spawn_blocking`).
    pub(crate) fn stop(self) -> io::Result<()> {
        self.handle.shutdown();
        self.thread
            .join()
            .map_err(|_| io::Error::other("a hub thread panicked"))?
    }
}

/// axum's own route: publish the order, answer with the event's id once
/// the hub has sequenced it.
async fn order(State(hub): State<HubPublisher>, body: String) -> (StatusCode, String) {
    match hub.publish("orders", Some("order"), body).await {
        Ok(id) => (StatusCode::OK, format!("{{\"id\":\"{id}\"}}\n")),
        Err(PublishError::Refused(e)) if e.is_client_error() => (StatusCode::BAD_REQUEST, format!("{e}\n")),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
    }
}

pub(crate) fn app(publisher: HubPublisher) -> Router {
    Router::new().route("/orders", post(order)).with_state(publisher)
}

#[tokio::main]
async fn main() -> io::Result<()> {
    let hub = Hub::start(
        Config::new(([127, 0, 0, 1], 8081).into()),
        HubSettings::default(),
        2,
    )?;
    println!("hub: curl -N http://{}/topics/orders/events", hub.addr);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("axum: curl -d 'one tea' http://{}/orders", listener.local_addr()?);
    axum::serve(listener, app(hub.publisher.clone()))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    tokio::task::spawn_blocking(move || hub.stop()).await?
}
