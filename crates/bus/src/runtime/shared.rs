//! What the loops' brokers and the bridge's thread share: the settings,
//! the channels to the thread, and the counters behind the status and the
//! metrics (atomics, never locks).

use std::fmt;
use std::ops::Deref;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tether_hub::{BrokerState, Publish};
use tokio::sync::mpsc;

use super::Backend;
use crate::{Bus, Control, Counters};

/// What the loops' brokers and the bridge's thread share: the bus behind
/// every broker of a [`RuntimeBridge`](super::RuntimeBridge).
pub struct RuntimeBus<B: Backend> {
    /// The settings.
    pub config: B::Config,
    /// The counters.
    pub stats: Stats<B>,
    /// What the last failure to connect said (the thread writes it).
    pub last_error: Mutex<Option<String>>,
    publish_tx: mpsc::Sender<Publish>,
    pub(super) control_tx: mpsc::UnboundedSender<Control>,
}

impl<B: Backend> RuntimeBus<B> {
    pub(super) fn new(
        config: B::Config,
        publish_tx: mpsc::Sender<Publish>,
        control_tx: mpsc::UnboundedSender<Control>,
    ) -> RuntimeBus<B> {
        RuntimeBus {
            config,
            stats: Stats::default(),
            last_error: Mutex::new(None),
            publish_tx,
            control_tx,
        }
    }

    /// Records what the last failure to connect said.
    pub fn set_last_error(&self, error: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }
}

impl<B: Backend> fmt::Debug for RuntimeBus<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The settings' URL may hold a password: never printed.
        f.debug_struct("RuntimeBus")
            .field("bus", &B::describe(&self.config))
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Bus for RuntimeBus<B> {
    const KIND: &'static str = B::KIND;
    type Status = B::Status;

    fn counters(&self) -> &Counters {
        &self.stats.bus
    }

    fn connected(&self) -> bool {
        self.stats.up.load(Ordering::Acquire)
    }

    fn publishing(&self) -> bool {
        self.connected()
    }

    fn try_publish(&self, publish: Publish) -> bool {
        self.publish_tx.try_send(publish).is_ok()
    }

    fn control(&self, message: Control) {
        let _ = self.control_tx.send(message);
    }

    fn status(&self) -> B::Status {
        B::status(&self.stats)
    }

    fn write_metrics(&self, out: &mut String) {
        B::write_metrics(&self.status(), out);
    }

    fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The counters: those every bus keeps (reached through `Deref`), the
/// connection's flag, and the bus's own.
pub struct Stats<B: Backend> {
    /// Those every bus keeps.
    pub bus: Counters,
    /// Connected, with what the bus needs ready (a stream found, channels
    /// open): the thread sets it.
    pub up: AtomicBool,
    /// Those only this bus keeps.
    pub own: B::Counters,
}

impl<B: Backend> fmt::Debug for Stats<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stats")
            .field("bus", &self.bus)
            .field("up", &self.up)
            .field("own", &self.own)
            .finish()
    }
}

impl<B: Backend> Default for Stats<B> {
    fn default() -> Stats<B> {
        Stats {
            bus: Counters::default(),
            up: AtomicBool::new(false),
            own: B::Counters::default(),
        }
    }
}

impl<B: Backend> Deref for Stats<B> {
    type Target = Counters;

    fn deref(&self) -> &Counters {
        &self.bus
    }
}

impl<B: Backend> Stats<B> {
    /// Up, connecting, or down (shut down).
    pub fn state(&self) -> BrokerState {
        self.bus.state(self.up.load(Ordering::Acquire))
    }
}
