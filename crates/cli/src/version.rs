//! `tether version` (and `tether --version`): the version, the commit and
//! the build date that `build.rs` found.

use std::process::ExitCode;

/// The crate's version.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit the binary was built from, or "unknown".
pub(crate) const COMMIT: &str = env!("TETHER_COMMIT");

/// What `--version` prints after the name: the version first (scripts
/// read the second word of `tether --version`), then the commit and the
/// build date.
pub(crate) const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("TETHER_COMMIT"),
    ", built ",
    env!("TETHER_BUILD_DATE"),
    ")"
);

/// Prints the same line as `tether --version`.
pub(crate) fn run() -> ExitCode {
    println!("tether {LONG}");
    ExitCode::SUCCESS
}
