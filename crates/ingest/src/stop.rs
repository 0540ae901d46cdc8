//! How a source's thread is asked to stop: a flag it reads between
//! steps, and waits that end early when it is raised.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// A stop request, shared between a source's thread and its owner.
///
/// ```
/// use std::time::Duration;
/// let stop = tether_ingest::StopSignal::default();
/// assert!(!stop.sleep(Duration::from_millis(1)));
/// stop.ask_to_stop();
/// assert!(stop.stopping());
/// assert!(stop.sleep(Duration::from_secs(3600)));
/// ```
#[derive(Debug, Default)]
pub struct StopSignal {
    stop: Mutex<bool>,
    stopped: Condvar,
}

impl StopSignal {
    /// Whether it was asked to stop.
    pub fn stopping(&self) -> bool {
        *self.stop.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits `delay`, or less if asked to stop; whether it was.
    pub fn sleep(&self, delay: Duration) -> bool {
        let stop = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        let (stop, _) = self
            .stopped
            .wait_timeout_while(stop, delay, |stop| !*stop)
            .unwrap_or_else(|e| e.into_inner());
        *stop
    }

    /// Asks to stop, and wakes the waits.
    pub fn ask_to_stop(&self) {
        *self.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.stopped.notify_all();
    }
}
