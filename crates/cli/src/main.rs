//! The `tether` command. Each subcommand lives in its own module; this file
//! only parses the command line and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Decode a text/event-stream from stdin into JSON Lines on stdout.
    SseDecode(sse_decode::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::SseDecode(args) => sse_decode::run(&args),
    }
}
