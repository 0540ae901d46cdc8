//! The bridge's thread: it owns a tokio current-thread runtime and runs
//! the bus's work on it, so that the event loops never wait for the bus.

use std::future::Future;

/// Builds the runtime and runs `work` on it in a `LocalSet` (the bus's
/// tasks share `Rc`s and cells), until it ends. `kind` names the bus in
/// the log when the runtime cannot be built.
pub(crate) fn run<F: Future<Output = ()>>(kind: &str, work: impl FnOnce() -> F) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            log::error!("{kind}: cannot start the bridge's runtime: {e}");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, work());
}
