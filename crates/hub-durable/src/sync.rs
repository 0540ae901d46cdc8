//! The thread that syncs a log in the background.

use std::fs::File;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tether_hub::Error;
use tether_log::Log;

/// Syncs a log's active file from a thread of its own, at most an
/// interval after the first unsynced append, so that the loop never waits
/// for the disk (with [`tether_log::Fsync::Interval`]).
pub(crate) struct Syncer {
    state: Arc<(Mutex<SyncState>, Condvar)>,
    base: u64,
}

struct SyncState {
    file: Option<Arc<File>>,
    dirty: bool,
    stop: bool,
    errors: u64,
}

impl Syncer {
    pub(crate) fn start(log: &Log, interval: Duration) -> Result<Syncer, Error> {
        let file = log.try_clone_active().map_err(|_| Error::BrokerUnavailable)?;
        let state = Arc::new((
            Mutex::new(SyncState {
                file: Some(Arc::new(file)),
                dirty: false,
                stop: false,
                errors: 0,
            }),
            Condvar::new(),
        ));
        let shared = state.clone();
        std::thread::Builder::new()
            .name("tether-log-sync".into())
            .spawn(move || sync_loop(&shared, interval))
            .map_err(|_| Error::BrokerUnavailable)?;
        Ok(Syncer {
            state,
            base: log.active_base(),
        })
    }

    /// An append was made to `log`.
    pub(crate) fn appended(&mut self, log: &Log) {
        let (lock, wake) = &*self.state;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        if log.active_base() != self.base {
            // Rolled: the log synced the segment it closed.
            self.base = log.active_base();
            state.file = log.try_clone_active().ok().map(Arc::new);
        }
        if !state.dirty {
            state.dirty = true;
            wake.notify_one();
        }
    }

    pub(crate) fn errors(&self) -> u64 {
        self.state.0.lock().map_or(0, |state| state.errors)
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        let (lock, wake) = &*self.state;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        state.stop = true;
        wake.notify_one();
    }
}

fn sync_loop(state: &(Mutex<SyncState>, Condvar), interval: Duration) {
    let (lock, wake) = state;
    loop {
        {
            let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            while !guard.dirty && !guard.stop {
                guard = wake.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
            if guard.stop {
                return;
            }
        }
        std::thread::sleep(interval);
        let file = {
            let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            guard.dirty = false;
            guard.file.clone()
        };
        if let Some(file) = file
            && file.sync_data().is_err()
        {
            let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            guard.errors = guard.errors.saturating_add(1);
        }
    }
}
