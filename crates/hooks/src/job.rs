//! One ask on its way: the request, its deadline, and the callback that is
//! called exactly once, whatever happens to the job.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::answer::{Answer, Unavailable};
use crate::protocol::HookRequest;
use crate::stats::Counters;

/// The callback an ask is answered through.
pub(crate) type OnAnswer = Box<dyn FnOnce(Answer) + Send + 'static>;

pub(crate) struct Job {
    pub(crate) id: u64,
    pub(crate) request: HookRequest,
    pub(crate) deadline: Instant,
    asked_at: Instant,
    on_answer: Option<OnAnswer>,
    /// The asking loop's count of outstanding asks.
    outstanding: Arc<AtomicUsize>,
    counters: Arc<Counters>,
}

impl Job {
    pub(crate) fn new(
        id: u64,
        request: HookRequest,
        deadline: Instant,
        on_answer: OnAnswer,
        outstanding: Arc<AtomicUsize>,
        counters: Arc<Counters>,
    ) -> Job {
        Job {
            id,
            request,
            deadline,
            asked_at: Instant::now(),
            on_answer: Some(on_answer),
            outstanding,
            counters,
        }
    }

    /// Answers the ask: counts it, frees the loop's slot (before the
    /// callback, so that a loop answered can ask again at once), and calls
    /// the callback. A panicking callback does not take the worker down.
    pub(crate) fn answer(mut self, answer: Answer) {
        self.deliver(answer);
    }

    /// Gives the loop's slot back without calling the callback: the ask
    /// was refused at once.
    pub(crate) fn refuse(mut self) {
        if self.on_answer.take().is_some() {
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn deliver(&mut self, answer: Answer) {
        let Some(on_answer) = self.on_answer.take() else {
            return;
        };
        self.counters.answered(&answer, self.asked_at.elapsed());
        self.outstanding.fetch_sub(1, Ordering::AcqRel);
        let _ = catch_unwind(AssertUnwindSafe(move || on_answer(answer)));
    }
}

impl Drop for Job {
    /// A job dropped unanswered (the queue emptied at shutdown) is
    /// answered [`Unavailable::ShuttingDown`]: every ask gets exactly one
    /// answer.
    fn drop(&mut self) {
        self.deliver(Err(Unavailable::ShuttingDown));
    }
}
