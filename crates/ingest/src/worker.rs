//! A source's thread, owned: asked to stop and waited for when its owner
//! stops it or drops it, so that what the thread finishes on its way out
//! (the batch it is publishing, the offsets it commits) is done before
//! the owner goes on.

use std::sync::Arc;
use std::thread::JoinHandle;

use crate::StopSignal;

/// A named thread that runs until its [`StopSignal`] is raised, joined
/// when stopped or dropped.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tether_ingest::{StopSignal, Worker};
///
/// let stop = Arc::new(StopSignal::default());
/// let seen = stop.clone();
/// let worker = Worker::spawn("example", stop, move || while !seen.sleep(Duration::from_secs(3600)) {})?;
/// worker.stop(); // raised, and the thread has ended
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Worker {
    stop: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts `run` on a thread called `name`; `stop` is the signal it
    /// watches.
    ///
    /// # Errors
    ///
    /// The thread could not be started.
    pub fn spawn(
        name: &str,
        stop: Arc<StopSignal>,
        run: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Worker> {
        let thread = std::thread::Builder::new().name(name.to_owned()).spawn(run)?;
        Ok(Worker {
            stop,
            thread: Some(thread),
        })
    }

    /// Asks the thread to stop and waits for it.
    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.stop.ask_to_stop();
        if let Some(thread) = self.thread.take() {
            // A thread that panicked has said so on its way out.
            let _ = thread.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.finish();
    }
}
