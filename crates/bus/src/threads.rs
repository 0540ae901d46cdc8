//! A bridge's threads: the receiving ends of their channels until they
//! start, their handles until they are joined at shutdown.

use std::io;
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

/// A bridge's threads, started once and joined at shutdown. `R` is what
/// they take when they start (their channels' receiving ends).
#[derive(Debug)]
pub struct Threads<R> {
    /// The bus's name, for the logs.
    kind: &'static str,
    receivers: Mutex<Option<R>>,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl<R> Threads<R> {
    /// Threads of the bus `kind` (`redis`, `nats`), not yet started, that
    /// will take `receivers`.
    pub fn new(kind: &'static str, receivers: R) -> Threads<R> {
        Threads {
            kind,
            receivers: Mutex::new(Some(receivers)),
            handles: Mutex::new(Vec::new()),
        }
    }

    /// The receiving ends, the first time only (`None`: already
    /// started).
    pub fn take(&self) -> Option<R> {
        lock(&self.receivers).take()
    }

    /// Starts a thread named `name`, joined at [`Threads::join`].
    ///
    /// # Errors
    ///
    /// The system's, when it cannot start a thread.
    pub fn spawn(&self, name: &str, run: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let handle = thread::Builder::new().name(name.to_owned()).spawn(run)?;
        lock(&self.handles).push(handle);
        Ok(())
    }

    /// Waits for the threads started, in the order they were (a thread
    /// that panicked is logged).
    pub fn join(&self) {
        let handles: Vec<_> = lock(&self.handles).drain(..).collect();
        for handle in handles {
            if handle.join().is_err() {
                log::error!("{}: a bridge thread panicked", self.kind);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn threads_start_once_and_are_joined() {
        let threads = Threads::new("test", 7);
        assert_eq!(threads.take(), Some(7));
        assert_eq!(threads.take(), None, "already started");
        let ran = Arc::new(AtomicUsize::new(0));
        for name in ["tether-test-a", "tether-test-b"] {
            let ran = ran.clone();
            threads
                .spawn(name, move || {
                    assert!(thread::current().name().unwrap().starts_with("tether-test-"));
                    ran.fetch_add(1, Ordering::Relaxed);
                })
                .unwrap();
        }
        threads
            .spawn("tether-test-panics", || panic!("logged, not raised"))
            .unwrap();
        threads.join();
        assert_eq!(ran.load(Ordering::Relaxed), 2);
        threads.join();
    }
}
