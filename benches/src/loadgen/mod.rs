//! A load generator for WebSocket and Server-Sent Events servers: one
//! process, one thread, one mio event loop, lean enough per message that
//! one core of it keeps one core of a fast server busy.
//!
//! Six modes, each a module with an `Options` and a `run` that returns a
//! [`Report`](report::Report):
//!
//! - [`echo`]: throughput of send, wait for the echo, send again;
//! - [`latency`]: round-trip percentiles at a fixed offered rate;
//! - [`fanout`]: one publisher, many subscribers, every event checked;
//! - [`idle`]: the server's memory per idle connection;
//! - [`replay`]: how long a client resuming from a topic's start takes to
//!   get its backlog;
//! - [`topics`]: fan-out to multiplexed sockets (the hub's `/ws`), each
//!   following many topics, every topic checked apart.
//!
//! Server CPU time and memory come from `/proc` for the pid given; the load
//! generator's own CPU time is reported beside them, to show it is not the
//! bottleneck. When one process is not enough, [`multi`] runs echo, latency
//! and fan-out as several, started together, and adds up their reports.
//! With [`h2`], echo WebSockets and fan-out event streams are streams of a
//! few HTTP/2 connections instead of a connection each; with [`h3`],
//! fan-out event streams are streams of a few HTTP/3 (QUIC) connections
//! ([`mux`] drives either).
//! [`sources`] spreads connections over loopback source addresses (past
//! one address's ephemeral ports; [`plan`] says how many a run needs), and [`watch`] is what the parent of a
//! multi-process run measures of several server processes at once.

pub mod conn;
pub mod deflated;
pub mod echo;
pub mod echoes;
pub mod fanout;
pub mod h2;
pub mod h3;
pub mod idle;
pub mod latency;
pub mod messages;
pub mod multi;
pub mod mux;
pub mod plan;
pub mod replay;
pub mod report;
pub mod sources;
pub mod spread;
pub mod summary;
pub mod sys;
pub mod tls;
pub mod topics;
pub mod watch;
pub mod wire;
