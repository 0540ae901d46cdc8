//! `tether check-config FILE`: a configuration file of `tether serve`
//! checked without starting.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::FromArgMatches;
use tether_node::load_keys;

use crate::config;
use crate::serve::{AppChoice, Args, RESERVED, check_bus_files, command, preflight};

/// `tether check-config FILE`: reads the file as `tether serve --config`
/// does (without the environment), makes the checks `serve` makes before
/// it starts that touch nothing, and reads the files it names as a start
/// would (the token key files, the certificate and its key: each a
/// regular file within its bound, that parses, the key the
/// certificate's; the Redis CA, client certificate and key), as
/// `nginx -t` does. Warnings go to stderr.
pub(crate) fn check_config(path: &Path) -> ExitCode {
    match check(path) {
        Ok(warnings) => {
            for warning in warnings {
                eprintln!("{}: warning: {warning}", path.display());
            }
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &Path) -> Result<Vec<String>, String> {
    let cmd = command();
    let entries = config::read(&cmd, path, RESERVED).map_err(|e| e.describe(path))?;
    let all = std::iter::once(OsString::from("tether serve")).chain(entries.into_iter().flat_map(|e| e.args));
    let in_file = |message: String| format!("{}: {message}", path.display());
    let matches = cmd
        .try_get_matches_from(all)
        .map_err(|e| in_file(config::first_line(&e)))?;
    let args = Args::from_arg_matches(&matches).map_err(|e| in_file(config::first_line(&e)))?;
    preflight(&args).map_err(&in_file)?;
    #[cfg(feature = "tls")]
    args.tls.check_files().map_err(&in_file)?;
    if !matches!(args.app, AppChoice::Echo) {
        check_bus_files(&args).map_err(&in_file)?;
    }
    let key_files = args.auth.key_files();
    if key_files.is_empty() || matches!(args.app, AppChoice::Echo) {
        return Ok(Vec::new());
    }
    let (_, warnings) = load_keys(&key_files).map_err(&in_file)?;
    Ok(warnings)
}
