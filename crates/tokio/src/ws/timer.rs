//! The one tokio timer a [`WebSocket`](super::WebSocket) sets for its
//! deadlines (keepalive ping, idle timeout, close timeout), and the clock
//! they are read on.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use tokio::time::Sleep;

/// Now, on the runtime's clock. Deadlines are set on tokio's timer, so
/// they are read on tokio's clock too: with the clock paused (tests), the
/// wall clock lags behind the timer, and a deadline read on it would not
/// be due when its timer fires (the task would poll again and again until
/// the wall clock caught up). Outside a paused runtime both clocks agree.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// A timer set for the earliest deadline asked of it.
#[derive(Default)]
pub(super) struct Timer {
    sleep: Option<Pin<Box<Sleep>>>,
    /// The deadline it is set to, if it is set.
    armed: Option<Instant>,
    /// The waker it holds: set when a poll of it was pending with budget
    /// to spare (so it registered this waker), cleared when it is set
    /// again or has fired.
    waker: Option<Waker>,
}

impl Timer {
    /// Sets it for `deadline`, unless it is set for an earlier one.
    pub(super) fn arm(&mut self, deadline: Instant) {
        if self.armed.is_some_and(|at| at <= deadline) {
            return;
        }
        self.armed = Some(deadline);
        self.waker = None;
        match &mut self.sleep {
            Some(sleep) => sleep.as_mut().reset(deadline.into()),
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline.into()))),
        }
    }

    /// Whether it is set for a deadline that `now` has reached.
    pub(super) fn is_due(&self, now: Instant) -> bool {
        self.armed.is_some_and(|at| now >= at)
    }

    /// Whether it holds the waker of another task than `cx`'s (the other
    /// half of a `split` waits on it).
    pub(super) fn held_by_another(&self, cx: &Context<'_>) -> bool {
        self.waker.as_ref().is_some_and(|w| !w.will_wake(cx.waker()))
    }

    /// Whether it is set, has not fired and will wake the task of `cx`.
    pub(super) fn waits_for(&self, cx: &Context<'_>) -> bool {
        self.armed.is_some()
            && self.sleep.as_ref().is_some_and(|sleep| !sleep.is_elapsed())
            && self
                .waker
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()))
    }

    /// Ready when the deadline it is set for has passed (it is then
    /// unset); pending otherwise, and pending when it is not set.
    ///
    /// It is not polled again while it holds this task's waker and has not
    /// fired: polling it costs more than receiving a small message, and
    /// the task waits on it once a message. Whether it holds the waker is
    /// known only of a poll made with budget to spare: with the task's
    /// budget spent, tokio answers "pending" and wakes the task at once
    /// without registering anything, so that poll counts for nothing and
    /// the next one polls again.
    pub(super) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.waits_for(cx) {
            return Poll::Pending;
        }
        match &mut self.sleep {
            Some(sleep) if self.armed.is_some() => {
                let registers = tokio::task::coop::has_budget_remaining();
                if sleep.as_mut().poll(cx).is_ready() {
                    self.armed = None;
                    self.waker = None;
                    return Poll::Ready(());
                }
                self.waker = registers.then(|| cx.waker().clone());
                Poll::Pending
            }
            _ => Poll::Pending,
        }
    }
}
