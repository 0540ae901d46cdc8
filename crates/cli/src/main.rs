//! The `tether` command. Each subcommand lives in its own module; this file
//! only parses the command line and dispatches.

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
