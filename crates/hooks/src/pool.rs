//! [`Hooks`], the pool of worker threads, and [`HookQueue`], each event
//! loop's non-blocking way to ask it.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::answer::{Answer, Unavailable};
use crate::config::{Config, ConfigError};
use crate::job::Job;
use crate::outage::Outages;
use crate::protocol::{HookKind, HookRequest};
use crate::shared::{Queue, Shared};
use crate::stats::{Counters, Stats};
use crate::worker::Worker;

/// The hooks: a pool of worker threads asking the backend, fed by a
/// bounded queue. See the crate documentation for the calling contract.
///
/// Dropping it shuts it down ([`Hooks::shutdown`]).
pub struct Hooks {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("config", &self.shared.config)
            .field("workers", &self.workers.len())
            .finish()
    }
}

impl Hooks {
    /// Checks `config` and starts the worker threads (named
    /// `tether-hook-N` unless [`Config::thread_name`] says otherwise). Connections are opened when first needed.
    pub fn start(config: Config) -> Result<Hooks, ConfigError> {
        config.check()?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            counters: Arc::new(Counters::default()),
            next_id: AtomicU64::new(1),
            outages: Outages::default(),
            config,
        });
        let mut hooks = Hooks {
            shared: Arc::clone(&shared),
            workers: Vec::new(),
        };
        for n in 0..shared.config.worker_count() {
            let worker = Worker::new(Arc::clone(&shared));
            let spawned = std::thread::Builder::new()
                .name(format!("{}-{n}", shared.config.thread_prefix()))
                .spawn(move || worker.run());
            match spawned {
                Ok(handle) => hooks.workers.push(handle),
                Err(e) => {
                    hooks.shutdown();
                    return Err(ConfigError::Spawn(e.to_string()));
                }
            }
        }
        Ok(hooks)
    }

    /// A handle for one event loop, allowing it at most `bound` asks
    /// outstanding (queued or in flight) at a time, whatever other loops
    /// do. Its clones share that bound.
    pub fn queue(&self, bound: usize) -> HookQueue {
        HookQueue {
            shared: Arc::clone(&self.shared),
            outstanding: Arc::new(AtomicUsize::new(0)),
            bound,
        }
    }

    /// Whether the `kind` hook is configured.
    pub fn has(&self, kind: HookKind) -> bool {
        self.shared.config.target(kind).is_some()
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The counters since start.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Stops: asks still queued are answered
    /// [`Unavailable::ShuttingDown`] at once, asks in flight are answered
    /// when their exchange ends (by their deadline at the latest), and
    /// the worker threads are joined. Later asks are refused with
    /// [`AskError::ShuttingDown`]. Calling it again does nothing.
    pub fn shutdown(&mut self) {
        let queued = {
            let mut queue = self.shared.lock();
            queue.shutting_down = true;
            std::mem::take(&mut queue.jobs)
        };
        self.shared.ready.notify_all();
        // Outside the lock: dropping a job calls its callback.
        drop(queued);
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Drop for Hooks {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Why an ask was refused at once (its callback is then never called).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AskError {
    /// The loop's bound of outstanding asks, or the shared queue's bound,
    /// is reached. Counted in [`Stats::busy`].
    Busy,
    /// The hooks are shutting down.
    ShuttingDown,
    /// The hook asked is not configured.
    NotConfigured(HookKind),
}

impl AskError {
    /// The [`Unavailable`] the hub treats it as (a hook not configured is
    /// a program error; it is reported as [`Unavailable::Malformed`]).
    pub fn unavailable(self) -> Unavailable {
        match self {
            AskError::Busy => Unavailable::Busy,
            AskError::ShuttingDown => Unavailable::ShuttingDown,
            AskError::NotConfigured(_) => Unavailable::Malformed,
        }
    }
}

impl fmt::Display for AskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AskError::Busy => f.write_str("too many hook asks outstanding"),
            AskError::ShuttingDown => f.write_str("the hooks are shutting down"),
            AskError::NotConfigured(kind) => write!(f, "the {} hook is not configured", kind.name()),
        }
    }
}

impl std::error::Error for AskError {}

/// One event loop's handle on the [`Hooks`]: cheap to clone (clones share
/// the loop's bound), never blocks.
#[derive(Clone)]
pub struct HookQueue {
    shared: Arc<Shared>,
    outstanding: Arc<AtomicUsize>,
    bound: usize,
}

impl fmt::Debug for HookQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookQueue")
            .field("outstanding", &self.outstanding())
            .field("bound", &self.bound)
            .finish()
    }
}

impl HookQueue {
    /// Asks the backend `request`'s hook, answering through `on_answer`
    /// on a worker thread, exactly once, by `deadline` (or the hook's
    /// timeout from now, whichever is sooner; `None` for the timeout).
    ///
    /// Returns at once with the request's id (the `"id"` of its body), or
    /// refuses: [`AskError::Busy`] when this loop has `bound` asks
    /// outstanding or the shared queue is full. A refused ask's callback
    /// is dropped uncalled.
    pub fn ask(
        &self,
        request: HookRequest,
        deadline: Option<Instant>,
        on_answer: impl FnOnce(Answer) + Send + 'static,
    ) -> Result<u64, AskError> {
        let kind = request.kind();
        let Some(target) = self.shared.config.target(kind) else {
            return Err(AskError::NotConfigured(kind));
        };
        let latest = Instant::now() + target.timeout;
        let deadline = deadline.map_or(latest, |d| d.min(latest));
        let reserved = self
            .outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.bound).then_some(n + 1)
            });
        if reserved.is_err() {
            self.shared.counters.busy();
            return Err(AskError::Busy);
        }
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let job = Job::new(
            id,
            request,
            deadline,
            Box::new(on_answer),
            Arc::clone(&self.outstanding),
            Arc::clone(&self.shared.counters),
        );
        let refused = {
            let mut queue = self.shared.lock();
            if queue.shutting_down {
                Some((job, AskError::ShuttingDown))
            } else if queue.jobs.len() >= self.shared.config.queue_limit() {
                Some((job, AskError::Busy))
            } else {
                queue.jobs.push_back(job);
                None
            }
        };
        match refused {
            None => {
                self.shared.counters.asked();
                self.shared.ready.notify_one();
                Ok(id)
            }
            Some((job, error)) => {
                job.refuse();
                if error == AskError::Busy {
                    self.shared.counters.busy();
                }
                Err(error)
            }
        }
    }

    /// Asks outstanding from this loop (queued or in flight).
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }

    /// This loop's bound.
    pub fn bound(&self) -> usize {
        self.bound
    }
}
