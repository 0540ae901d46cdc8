//! A bridge whose client runs on a thread of its own, on a tokio
//! current-thread runtime (NATS, RabbitMQ): the façade a node holds
//! ([`RuntimeBridge`]), the bus its loops' brokers share
//! ([`RuntimeBus`]), the thread that owns the runtime, the settings such
//! bridges have in common, and their one error type. A bus crate
//! implements [`Backend`] for what is its broker's own: its settings'
//! checks, its status and metrics, and the body of the thread.

mod bridge;
mod error;
mod settings;
mod shared;
mod thread;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tether_hub::Publish;
use tokio::sync::mpsc;

pub use bridge::RuntimeBridge;
pub use error::{Error, ErrorKind};
pub use settings::{Settings, backlog_bounds, is_valid_prefix, reconnect_backoff};
pub use shared::{RuntimeBus, Stats};

use crate::{Control, Post};

/// What a bus's crate tells the [`RuntimeBridge`] about its broker: the
/// rest (the channels to the thread, the thread itself, the start, the
/// shutdown, the brokers, the shared limits) is the bridge's, the same
/// for every such bus.
pub trait Backend: Sized + Send + Sync + 'static {
    /// The bus's name (`nats`, `rabbitmq`): the brokers' kind, the
    /// thread's name (`tether-KIND`), the prefix of the logs and errors.
    const KIND: &'static str;

    /// The bridge's settings.
    type Config: Clone + fmt::Debug + Send + Sync + 'static;

    /// The counters only this bus keeps, beside those every bus keeps
    /// ([`Stats::own`]).
    type Counters: Default + fmt::Debug + Send + Sync + 'static;

    /// The bridge's connection and counters at one moment.
    type Status: fmt::Debug + Send + 'static;

    /// The settings every such bridge has, as `config` holds them.
    fn settings(config: &Self::Config) -> Settings<'_>;

    /// Checks what only this bus's settings hold (its URL first); those
    /// of [`Settings`] are checked after.
    ///
    /// # Errors
    ///
    /// Why a setting is out of range.
    fn check(config: &Self::Config) -> Result<(), &'static str>;

    /// The status, from the counters.
    fn status(stats: &Stats<Self>) -> Self::Status;

    /// Appends the bus's own metrics of `status` in the Prometheus text
    /// format.
    fn write_metrics(status: &Self::Status, out: &mut String);

    /// Where the topics are shared, for the node's start log
    /// ([`BusBridge::describe`](crate::BusBridge::describe)).
    fn describe(config: &Self::Config) -> String;

    /// The thread's work, run on its runtime (in a `LocalSet`) until
    /// [`Control::Stop`] or the control channel's end: the publishes and
    /// the control messages of the loops, to hand to the bus, and `post`
    /// to hand the loops what comes back.
    fn run(
        shared: Arc<RuntimeBus<Self>>,
        post: Post,
        publishes: mpsc::Receiver<Publish>,
        control: mpsc::UnboundedReceiver<Control>,
    ) -> impl Future<Output = ()>;
}
