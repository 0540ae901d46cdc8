//! Publishing into the hub from outside its loops: a [`HubPublisher`]
//! that any thread (a tokio task, a worker pool) clones and publishes
//! through, and the future each publish returns, resolved where an HTTP
//! publisher would be answered.
//!
//! The publisher posts [`HubMessage::External`] to one loop through the
//! server's [`Poster`]; that loop submits the publish as its own and,
//! when the broker answers (after sequencing it; a durable broker, after
//! writing it as promised), calls the message's answer, which fills a
//! one-shot slot shared with the future. No runtime is involved: the slot
//! is a mutex and a [`Waker`], so the future works on tokio, on any other
//! executor, or blocking ([`PublishFuture::wait`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use tether_hub::{Config, Error as HubError, EventId, HubMessage, Payload, Publish, sequencer_of};
use tether_server::Poster;

use super::settings::HubSettings;

/// Publishes into a running hub from any thread: `Send + Sync + Clone`,
/// cheap to clone (two reference counts). Made from the server's
/// [`Poster`] (`HubShared::publisher`, or [`HubPublisher::new`]).
///
/// Each publish resolves, like `POST /topics/NAME`, once its topic's
/// broker has sequenced it (a durable broker: written as promised), with
/// the event's id, the one subscribers see; or with why it was not
/// published. The embedding application is trusted as the server itself
/// is: no credential, no rate limit, no publish hook.
///
/// Publishes to one topic go to one loop (chosen by the topic's name),
/// so those made one after the other from one thread are sequenced in
/// that order, whether or not each was awaited before the next.
///
/// ```no_run
/// use tether_hub_app::{HubSettings, HubShared};
/// use tether_server::{Cluster, Config, Handshake};
///
/// let loops = 2;
/// let shared = HubShared::new(HubSettings::default(), loops);
/// let config = Config::new("127.0.0.1:8080".parse().unwrap());
/// let cluster = Cluster::bind(config, Handshake::new(), loops, |i| shared.app(i))?;
/// let publisher = shared.publisher(cluster.poster());
/// let handle = cluster.handle();
/// let server = std::thread::spawn(move || cluster.run());
///
/// // From any thread; `.await` it in async code instead of `wait`.
/// let id = publisher.publish("orders", None, r#"{"order":1}"#).wait();
/// println!("published as {id:?}");
///
/// handle.shutdown();
/// server.join().expect("the server thread")?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct HubPublisher {
    poster: Poster<HubMessage>,
    /// The limits a publish is checked against before it is posted.
    config: Arc<Config>,
}

impl fmt::Debug for HubPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubPublisher")
            .field("loops", &self.poster.loops())
            .finish_non_exhaustive()
    }
}

impl HubPublisher {
    /// A publisher into the hub whose loops `poster` posts to
    /// ([`Cluster::poster`](tether_server::Cluster::poster),
    /// [`Server::poster`](tether_server::Server::poster)), run with
    /// `settings`.
    pub fn new(poster: Poster<HubMessage>, settings: &HubSettings) -> HubPublisher {
        HubPublisher {
            poster,
            config: Arc::new(settings.hub.clone()),
        }
    }

    /// Publishes `data` to `topic`, as an event of `event_type` (by
    /// default `message`). The publish is checked and posted now; the
    /// future only waits for its outcome (dropping it does not take the
    /// publish back).
    ///
    /// # Errors
    ///
    /// The future resolves with [`PublishError::Refused`] for what
    /// `POST /topics/NAME` would refuse ([`HubError::InvalidTopic`],
    /// [`HubError::InvalidEventType`], [`HubError::EventTooLarge`] at
    /// once; [`HubError::TopicLimit`], [`HubError::BrokerUnavailable`],
    /// [`HubError::ShuttingDown`] from the loop), and with
    /// [`PublishError::Unanswered`] if it gets no outcome.
    pub fn publish(&self, topic: &str, event_type: Option<&str>, data: impl Into<Payload>) -> PublishFuture {
        match Publish::new(topic, event_type, data, &self.config) {
            Ok(publish) => self.submit(publish),
            Err(e) => PublishFuture::ready(Err(PublishError::Refused(e))),
        }
    }

    /// Publishes a [`Publish`] made by the caller: one with a publish key
    /// ([`Publish::with_key`]), say, which makes publishing it again safe
    /// (a key the topic remembers resolves with the id of the event first
    /// published with it). Its data is checked against this hub's limit.
    ///
    /// # Errors
    ///
    /// As [`HubPublisher::publish`].
    pub fn submit(&self, mut publish: Publish) -> PublishFuture {
        let max = self.config.max_event_size;
        if publish.data.len() > max {
            let size = publish.data.len();
            return PublishFuture::ready(Err(PublishError::Refused(HubError::EventTooLarge { size, max })));
        }
        // The loop answers it, not a loop's broker.
        publish.reply = None;
        let (answerer, future) = one_shot();
        let to_loop = sequencer_of(&publish.topic, self.poster.loops());
        let answer = Box::new(move |result: Result<(EventId, bool), HubError>| {
            answerer.fill(result.map(|(id, _)| id).map_err(PublishError::Refused));
        });
        // Posted to a loop that has stopped, the message is dropped, and
        // its answer with it: the future resolves `Unanswered`.
        self.poster
            .post(to_loop, HubMessage::External { publish, answer });
        future
    }
}

/// Why a publish through a [`HubPublisher`] did not resolve with an id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishError {
    /// Not published, for this reason: what `POST /topics/NAME` would
    /// answer with (a 400, 413, 503...). [`HubError::ShuttingDown`]: the
    /// server is stopping; publish again elsewhere or later.
    Refused(HubError),
    /// No outcome came: the server stopped (or was not running) before
    /// the publish was answered, or its broker did not answer within
    /// [`HubSettings::publish_timeout`] (504 over HTTP). It may or may
    /// not have been published.
    Unanswered,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Refused(e) => write!(f, "publish refused: {e}"),
            PublishError::Unanswered => {
                f.write_str("the hub gave the publish no outcome (stopped or timed out)")
            }
        }
    }
}

impl std::error::Error for PublishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PublishError::Refused(e) => Some(e),
            PublishError::Unanswered => None,
        }
    }
}

/// What a publish resolves with.
type Outcome = Result<EventId, PublishError>;

/// The outcome of one publish through a [`HubPublisher`]: a future
/// (runtime-agnostic, `Send`, `Unpin`), or [`PublishFuture::wait`] to
/// block for it. It always resolves: with the event's id, or with a
/// [`PublishError`] (the server having stopped included). Polled again
/// after it resolved, it stays pending.
#[must_use = "the publish is made either way; the future tells whether it was published"]
pub struct PublishFuture {
    state: FutureState,
}

enum FutureState {
    /// Refused before it was posted.
    Ready(Outcome),
    Waiting(Arc<Slot>),
    Done,
}

impl fmt::Debug for PublishFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            FutureState::Ready(_) => "ready",
            FutureState::Waiting(_) => "waiting",
            FutureState::Done => "done",
        };
        f.debug_struct("PublishFuture").field("state", &state).finish()
    }
}

impl PublishFuture {
    fn ready(outcome: Outcome) -> PublishFuture {
        PublishFuture {
            state: FutureState::Ready(outcome),
        }
    }

    /// Blocks the calling thread until the outcome comes. Not for async
    /// code (it would block the executor's thread): `.await` it there.
    ///
    /// # Errors
    ///
    /// As [`HubPublisher::publish`].
    pub fn wait(mut self) -> Outcome {
        let waker = Waker::from(Arc::new(Unpark(thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(outcome) = Pin::new(&mut self).poll(&mut cx) {
                return outcome;
            }
            // A wake before this park makes it return at once.
            thread::park();
        }
    }
}

impl Future for PublishFuture {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = self.get_mut();
        let outcome = match &this.state {
            FutureState::Ready(_) => match std::mem::replace(&mut this.state, FutureState::Done) {
                FutureState::Ready(outcome) => outcome,
                _ => return Poll::Pending,
            },
            FutureState::Waiting(slot) => match slot.take(cx.waker()) {
                Some(outcome) => {
                    this.state = FutureState::Done;
                    outcome
                }
                None => return Poll::Pending,
            },
            FutureState::Done => return Poll::Pending,
        };
        Poll::Ready(outcome)
    }
}

/// Wakes a thread blocked in [`PublishFuture::wait`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// The slot one outcome passes through, from the loop to the future.
struct Slot {
    state: Mutex<SlotState>,
}

enum SlotState {
    /// No outcome yet; the waker of the future's last poll.
    Empty(Option<Waker>),
    Full(Outcome),
    /// The future took it.
    Taken,
}

impl Slot {
    /// Puts the outcome in (the first one only) and wakes the future.
    fn put(&self, outcome: Outcome) {
        let waker = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            match &mut *state {
                SlotState::Empty(waker) => {
                    let waker = waker.take();
                    *state = SlotState::Full(outcome);
                    waker
                }
                SlotState::Full(_) | SlotState::Taken => None,
            }
        };
        // Woken outside the lock: the future's poll takes it.
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The outcome if it is there; otherwise `waker` is kept, to be woken
    /// when it comes.
    fn take(&self, waker: &Waker) -> Option<Outcome> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *state {
            SlotState::Empty(kept) => {
                match kept {
                    Some(kept) if kept.will_wake(waker) => {}
                    _ => *kept = Some(waker.clone()),
                }
                None
            }
            SlotState::Full(_) => match std::mem::replace(&mut *state, SlotState::Taken) {
                SlotState::Full(outcome) => Some(outcome),
                _ => None,
            },
            SlotState::Taken => None,
        }
    }
}

/// The loop's end of a one-shot: fills the slot once; dropped unfilled
/// (its message or its pending publish dropped), it fills it with
/// [`PublishError::Unanswered`], so that no future waits for ever.
struct Answerer {
    slot: Option<Arc<Slot>>,
}

impl Answerer {
    fn fill(mut self, outcome: Outcome) {
        if let Some(slot) = self.slot.take() {
            slot.put(outcome);
        }
    }
}

impl Drop for Answerer {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.put(Err(PublishError::Unanswered));
        }
    }
}

fn one_shot() -> (Answerer, PublishFuture) {
    let slot = Arc::new(Slot {
        state: Mutex::new(SlotState::Empty(None)),
    });
    (
        Answerer {
            slot: Some(slot.clone()),
        },
        PublishFuture {
            state: FutureState::Waiting(slot),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Counts its wakes.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll(future: &mut PublishFuture, waker: &Waker) -> Poll<Outcome> {
        Pin::new(future).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn shareable_between_threads_and_tasks() {
        fn publisher<T: Send + Sync + Clone + 'static>() {}
        fn future<T: Future + Send + Unpin + 'static>() {}
        publisher::<HubPublisher>();
        future::<PublishFuture>();
    }

    #[test]
    fn resolves_once_with_what_was_filled_and_wakes_the_last_poller() {
        let (answerer, mut future) = one_shot();
        let (first, last) = (Arc::new(Count::default()), Arc::new(Count::default()));
        assert_eq!(poll(&mut future, &Waker::from(first.clone())), Poll::Pending);
        assert_eq!(poll(&mut future, &Waker::from(last.clone())), Poll::Pending);
        answerer.fill(Ok(EventId::new(7, 3)));
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(last.0.load(Ordering::SeqCst), 1);
        let waker = Waker::from(last);
        assert_eq!(poll(&mut future, &waker), Poll::Ready(Ok(EventId::new(7, 3))));
        // Resolved: it stays pending, it does not resolve twice.
        assert_eq!(poll(&mut future, &waker), Poll::Pending);
    }

    #[test]
    fn filled_before_the_first_poll() {
        let (answerer, mut future) = one_shot();
        answerer.fill(Err(PublishError::Refused(HubError::ShuttingDown)));
        let waker = Waker::from(Arc::new(Count::default()));
        assert_eq!(
            poll(&mut future, &waker),
            Poll::Ready(Err(PublishError::Refused(HubError::ShuttingDown)))
        );
    }

    #[test]
    fn an_answerer_dropped_unfilled_resolves_unanswered() {
        let (answerer, mut future) = one_shot();
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        assert_eq!(poll(&mut future, &waker), Poll::Pending);
        drop(answerer);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(
            poll(&mut future, &waker),
            Poll::Ready(Err(PublishError::Unanswered))
        );
    }

    #[test]
    fn the_future_dropped_first_costs_the_answerer_nothing() {
        let (answerer, future) = one_shot();
        drop(future);
        answerer.fill(Ok(EventId::new(1, 0)));
    }

    #[test]
    fn wait_blocks_until_another_thread_fills_it() {
        let (answerer, future) = one_shot();
        let filler = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            answerer.fill(Ok(EventId::new(9, 1)));
        });
        assert_eq!(future.wait(), Ok(EventId::new(9, 1)));
        filler.join().unwrap();
        let (answerer, future) = one_shot();
        let dropper = thread::spawn(move || drop(answerer));
        assert_eq!(future.wait(), Err(PublishError::Unanswered));
        dropper.join().unwrap();
    }
}
