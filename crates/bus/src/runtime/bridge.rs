//! The façade a node holds: a bridge's settings, its thread, and the
//! brokers of the event loops, whichever [`Backend`] it runs.

use std::fmt;
use std::sync::Arc;

use tether_hub::{Broker, HubMessage, NodeLimits, Publish};
use tokio::sync::mpsc;

use super::error::{Error, ErrorKind};
use super::shared::RuntimeBus;
use super::{Backend, thread};
use crate::{BusBroker, Control, Post, Revoker, SharedLimits, Threads};

/// The bridge between a tether server's hub and a bus whose client runs
/// on a thread of its own, on a tokio current-thread runtime: its
/// settings, its thread, and the brokers of the event loops
/// (`tether_nats::NatsBridge`, `tether_rabbitmq::RabbitBridge`).
///
/// Make it ([`RuntimeBridge::new`]), give each event loop a
/// [`RuntimeBridge::broker`], then [`RuntimeBridge::start`] it with a way
/// to post to the loops; [`RuntimeBridge::shutdown`] (or dropping it)
/// stops the thread.
pub struct RuntimeBridge<B: Backend> {
    shared: Arc<RuntimeBus<B>>,
    thread: Threads<Receivers>,
}

/// The thread's ends of its channels, until it starts.
type Receivers = (mpsc::Receiver<Publish>, mpsc::UnboundedReceiver<Control>);

impl<B: Backend> fmt::Debug for RuntimeBridge<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeBridge")
            .field("bus", &B::describe(&self.shared.config))
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl<B: Backend> RuntimeBridge<B> {
    /// A bridge with these settings; nothing connects before
    /// [`RuntimeBridge::start`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`]: what [`Backend::check`] finds, then
    /// what [`Settings::check`](super::Settings::check) does.
    pub fn new(config: B::Config) -> Result<RuntimeBridge<B>, Error> {
        let settings = B::settings(&config);
        B::check(&config)
            .and_then(|()| settings.check())
            .map_err(|why| Error::new(B::KIND, ErrorKind::InvalidConfig(why)))?;
        let (publish_tx, publish_rx) = mpsc::channel(settings.max_queued_publishes);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        Ok(RuntimeBridge {
            shared: Arc::new(RuntimeBus::new(config, publish_tx, control_tx)),
            thread: Threads::new(B::KIND, (publish_rx, control_rx)),
        })
    }

    /// The settings.
    pub fn config(&self) -> &B::Config {
        &self.shared.config
    }

    /// A broker for one event loop (make one per loop).
    pub fn broker(&self) -> BusBroker<RuntimeBus<B>> {
        BusBroker::new(self.shared.clone())
    }

    /// Starts the bridge's thread. `post(loop, message)` hands a message
    /// to an event loop and wakes it (with tether-server:
    /// `move |to, m| poster.post(to, m)`); messages posted by one thread
    /// to one loop must arrive in order.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::AlreadyStarted`], [`ErrorKind::Spawn`].
    pub fn start(&self, post: impl Fn(usize, HubMessage) + Send + Sync + 'static) -> Result<(), Error> {
        let Some((publishes, control)) = self.thread.take() else {
            return Err(Error::new(B::KIND, ErrorKind::AlreadyStarted));
        };
        let post: Post = Arc::new(post);
        let shared = self.shared.clone();
        self.thread
            .spawn(&format!("tether-{}", B::KIND), move || {
                thread::run(B::KIND, || B::run(shared, post, publishes, control));
            })
            .map_err(|e| Error::new(B::KIND, ErrorKind::Spawn(e)))
    }

    /// The connection and counters now.
    pub fn status(&self) -> B::Status {
        B::status(&self.shared.stats)
    }

    /// Shares this node's connection counts per subject and its
    /// revocations with the other nodes (how, the bus's crate says),
    /// from the bridge's thread, every [`LIMITS_PERIOD`](crate::LIMITS_PERIOD):
    /// `limits` is told the others' counts, and every revocation when
    /// they change (all of them once connected). The [`Revoker`] adds
    /// revocations for every node. Call it before or after
    /// [`RuntimeBridge::start`]; a second call replaces `limits`.
    pub fn share_limits(&self, limits: Arc<dyn NodeLimits>) -> Revoker {
        let _ = self.shared.control_tx.send(Control::Limits(SharedLimits(limits)));
        Revoker::new(self.shared.clone())
    }

    /// Stops the thread (publishes still queued are refused, those sent
    /// are answered or time out, at most the settings' request timeout)
    /// and waits for it. The brokers report
    /// [`BrokerState::Down`](tether_hub::BrokerState::Down) from then on
    /// and refuse publishes.
    pub fn shutdown(&self) {
        self.shared.stats.stop();
        let _ = self.shared.control_tx.send(Control::Stop);
        self.thread.join();
    }
}

impl<B: Backend> crate::BusBridge for RuntimeBridge<B> {
    fn broker(&self) -> Box<dyn Broker + Send> {
        Box::new(RuntimeBridge::broker(self))
    }

    fn start(&self, post: Post) -> std::io::Result<()> {
        RuntimeBridge::start(self, move |to, message| post(to, message)).map_err(std::io::Error::other)
    }

    fn share_limits(&self, limits: Arc<dyn NodeLimits>) -> Revoker {
        RuntimeBridge::share_limits(self, limits)
    }

    fn shutdown(&self) {
        RuntimeBridge::shutdown(self);
    }

    fn describe(&self) -> String {
        B::describe(&self.shared.config)
    }
}

impl<B: Backend> Drop for RuntimeBridge<B> {
    fn drop(&mut self) {
        self.shutdown();
    }
}
