//! What the worker threads share with the loops' queues: the jobs
//! waiting, and the signal that one is there.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::config::Config;
use crate::job::Job;
use crate::outage::Outages;
use crate::stats::Counters;

/// What the workers share with the queues.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) queue: Mutex<Queue>,
    pub(crate) ready: Condvar,
    pub(crate) counters: Arc<Counters>,
    pub(crate) next_id: AtomicU64,
    /// The backend's failures, said at warn level, rate-limited.
    pub(crate) outages: Outages,
}

/// The jobs not yet taken by a worker.
#[derive(Default)]
pub(crate) struct Queue {
    pub(crate) jobs: VecDeque<Job>,
    pub(crate) shutting_down: bool,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Queue> {
        // A callback never runs under this lock, so a poisoned lock only
        // means a panic elsewhere with the queue intact.
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The next job, waiting for one; `None` once shutting down.
    pub(crate) fn next_job(&self) -> Option<Job> {
        let mut queue = self.lock();
        loop {
            if queue.shutting_down {
                return None;
            }
            if let Some(job) = queue.jobs.pop_front() {
                return Some(job);
            }
            queue = self
                .ready
                .wait(queue)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}
