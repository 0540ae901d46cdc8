//! The `tether` command. Each subcommand lives in its own module; this file
//! only parses the command line and dispatches.

// `tether serve` reads numbers from the command line and `sse-decode`
// reads any stream: nothing may panic on them. These lints make every
// exception visible, each `allow` with its reason beside it.
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::cast_possible_truncation,
        clippy::indexing_slicing
    )
)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod logger;
mod serve;
mod sse_decode;

/// WebSocket and Server-Sent Events toolkit.
#[derive(Parser)]
#[command(name = "tether", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve WebSocket, Server-Sent Events and HTTP on one port (the demo by default).
    Serve(Box<serve::Args>),
    /// Decode a text/event-stream from stdin into JSON Lines on stdout.
    SseDecode(sse_decode::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => serve::run(&args),
        Command::SseDecode(args) => sse_decode::run(&args),
    }
}
