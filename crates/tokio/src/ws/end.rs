//! How a [`WebSocket`] ends: after the close handshake, or after a
//! failure whose close frame is still to go out. Both write what is left,
//! shut the transport down, and give up at the close timeout.

use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::timer::now;
use super::{Ending, Found, Role, Side, WebSocket};
use crate::error::Error;

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// After the close handshake: flush, let the server close TCP first
    /// (client), shut down. After a failure: flush its close frame, shut
    /// down, and report the failure. `side` is the one polling.
    pub(super) fn poll_end(&mut self, side: Side, cx: &mut Context<'_>) -> Poll<Result<Found, Error>> {
        if self.ending == Ending::Failing {
            return self.poll_failing(side, cx).map(Err);
        }
        if self.ending == Ending::Flushing {
            let deadline = self.end_deadline();
            if self.flush_as(side, cx)?.is_pending() {
                // A peer that does not read what is left (our close frame,
                // say) is not waited for past the close timeout.
                ready!(self.wait_until(deadline, cx));
                return Poll::Ready(Err(self.give_up_ending()));
            }
            if self.role == Role::Client {
                loop {
                    if self.read_buffer.len() < 1024 {
                        self.read_buffer.resize(1024, 0);
                    }
                    let mut buf = ReadBuf::new(&mut self.read_buffer);
                    match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                        Poll::Ready(Ok(())) if !buf.filled().is_empty() => continue,
                        Poll::Ready(_) => break,
                        Poll::Pending => {
                            ready!(self.wait_until(deadline, cx));
                            break;
                        }
                    }
                }
            }
            // A peer gone already makes shutting down fail, and one that
            // does not read may keep a TLS close_notify from going out: the
            // handshake is over either way.
            if Pin::new(&mut self.io).poll_shutdown(cx).is_pending() {
                ready!(self.wait_until(deadline, cx));
            }
            self.ending = Ending::Done;
        }
        Poll::Ready(Ok(Found::End))
    }

    /// The connection failed and queued its close frame (1001 at the idle
    /// timeout, 1002, 1009 ...): the frame is written before the transport
    /// is shut down, as far as the socket takes it within the close
    /// timeout, so that the peer reads why rather than an early end. Ready
    /// with the failure once that is done or given up.
    fn poll_failing(&mut self, side: Side, cx: &mut Context<'_>) -> Poll<Error> {
        let deadline = self.end_deadline();
        match self.flush_as(side, cx) {
            Poll::Pending => ready!(self.wait_until(deadline, cx)),
            // A peer gone makes both fail: there is nothing left to do.
            Poll::Ready(_) => {
                if Pin::new(&mut self.io).poll_shutdown(cx).is_pending() {
                    ready!(self.wait_until(deadline, cx));
                }
            }
        }
        self.ending = Ending::Done;
        let e = self.failure.clone().unwrap_or(tether_ws::Error::CloseTimeout);
        Poll::Ready(Error::Protocol(e))
    }

    /// When the end gives up: a close timeout from when it began.
    fn end_deadline(&mut self) -> Instant {
        *self
            .end_deadline
            .get_or_insert_with(|| now() + self.close_timeout)
    }

    /// Ready once `deadline` has passed; until then the timer is set for it
    /// and wakes this task.
    pub(super) fn wait_until(&mut self, deadline: Instant, cx: &mut Context<'_>) -> Poll<()> {
        // The timer may be set earlier (for a deadline of the connection's):
        // when it fires, it is set again.
        while now() < deadline {
            self.timer.arm(deadline);
            ready!(self.timer.poll(cx));
        }
        Poll::Ready(())
    }

    /// The end's deadline passed with output unwritten: the transport is
    /// shut down as far as it goes without waiting, and the connection
    /// ends with [`tether_ws::Error::CloseTimeout`].
    fn give_up_ending(&mut self) -> Error {
        let mut cx = Context::from_waker(Waker::noop());
        let _ = Pin::new(&mut self.io).poll_shutdown(&mut cx);
        self.ending = Ending::Done;
        let e = tether_ws::Error::CloseTimeout;
        self.failure = Some(e.clone());
        Error::Protocol(e)
    }

    /// After a close frame is sent: the timer set no later than the close
    /// deadline, so that a peer that keeps sending (and so never lets
    /// receiving wait) still meets it.
    pub(super) fn arm_close_deadline(&mut self) {
        if let Some(deadline) = self.conn.poll_timeout() {
            self.timer.arm(deadline);
        }
    }
}
