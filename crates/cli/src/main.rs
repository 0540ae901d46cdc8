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

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod access_log;
mod banner;
mod check_config;
mod config;
mod genconfig;
mod gentoken;
mod logger;
mod namespace;
mod reference;
mod reload;
mod serve;
mod session_log;
mod sse_decode;
mod version;

/// WebSocket and Server-Sent Events toolkit.
#[derive(Parser)]
#[command(name = "tether", version = version::LONG, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(about = serve::ABOUT, long_about = None)]
    Serve(Box<serve::Args>),
    /// Decode a text/event-stream from stdin into JSON Lines on stdout.
    SseDecode(sse_decode::Args),
    /// Check a configuration file of `tether serve --config` without starting.
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
    /// Write a commented configuration file with fresh random secrets.
    Genconfig(genconfig::Args),
    /// Sign a JSON Web Token with the server's HMAC secret (from --config,
    /// --jwt-secret-file or TETHER_JWT_SECRET_FILE), and print it.
    Gentoken(Box<gentoken::Args>),
    /// Print the reference page of a subcommand's options, as Markdown.
    Reference(reference::Args),
    /// Print the version, the commit it was built from and the build date.
    Version,
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    // `tether serve` parses its options itself: they come from the
    // environment and a file too. `tether` takes no option before it.
    if let Some((_, [serve, rest @ ..])) = argv.split_first()
        && serve == "serve"
    {
        return serve::main(rest);
    }
    let matches = Cli::command()
        .mut_subcommand("serve", config::with_env)
        .get_matches_from(argv);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Serve(args) => serve::run(&args, None),
        Command::SseDecode(args) => sse_decode::run(&args),
        Command::CheckConfig { file } => check_config::check_config(&file),
        Command::Genconfig(args) => genconfig::run(&args),
        Command::Gentoken(args) => gentoken::run(&args),
        Command::Reference(args) => reference::run(&args, Cli::command()),
        Command::Version => version::run(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tether serve` parses its options with its own command: the one
    /// `tether` declares, help and all.
    #[test]
    fn serve_parses_with_the_command_tether_declares() {
        let declared = Cli::command().find_subcommand("serve").cloned();
        let mut declared = declared.expect("tether declares serve").bin_name("tether serve");
        assert_eq!(
            declared.render_long_help().to_string(),
            serve::command().render_long_help().to_string()
        );
    }
}
