//! The durable broker for tether's hub: [`DurableBroker`], the hub's
//! in-process sequencing with each event loop's events appended to a log
//! of its own (`tether-log`) before they are delivered and acknowledged,
//! and recovered when the server starts.
//!
//! `tether-hub` is sans-IO; this crate is where the durable broker's IO
//! lives: the data directory (its lock, its layout file, one log per
//! loop in `DIR/loop-N/`), a thread per loop that syncs the log in the
//! background ([`Fsync::Interval`]), and the monotonic clock that log
//! reads for it. The numbering is not repeated here: each loop's broker
//! is a [`tether_hub::Sequencer`], the type [`tether_hub::LocalBroker`]
//! numbers with, whose write step appends the event to the log (a
//! failed append changes nothing and refuses the publish), and which
//! takes back the topics recovered from the log.
//!
//! # Calling contract
//!
//! - Open every loop's broker at once, before the loops run, with
//!   [`DurableBroker::open_all`] (the wall clock is passed in): it takes
//!   the directory's lock, refuses a directory written by another number
//!   of loops, recovers each log, and starts the sync threads. It blocks
//!   on the disk while it reads the logs.
//! - Give broker `i` to loop `i` and call it only from that loop's thread
//!   (it is a [`tether_hub::Broker`]; its [`tether_hub::Broker::tick`]
//!   forgets idle topics and deletes segments no topic needs). A publish
//!   appends to the log on the loop's thread; with [`Fsync::Always`] it
//!   also waits for the disk there.
//! - Dropping a broker syncs its log and stops its thread; the directory
//!   stays locked while any loop's broker lives.
//!
//! ```
//! use tether_hub::{Broker, Config, Context, HubMessage, Publish};
//! use tether_hub_durable::{DurableBroker, DurableConfig, Fsync};
//!
//! struct OneLoop(Vec<HubMessage>);
//! impl Context for OneLoop {
//!     fn loops(&self) -> usize { 1 }
//!     fn this_loop(&self) -> usize { 0 }
//!     fn post(&mut self, _to: usize, message: HubMessage) { self.0.push(message) }
//!     fn unix_ms(&self) -> u64 { 1_000 }
//! }
//!
//! let dir = std::env::temp_dir().join(format!("tether-hub-durable-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let mut durable = DurableConfig::new(&dir);
//! durable.fsync = Fsync::Never;
//! let config = Config::default();
//! let mut brokers = DurableBroker::open_all(&config, &durable, 1, 1_000)?;
//! let mut cx = OneLoop(Vec::new());
//! brokers[0].publish(Publish::new("news", None, "hi", &config)?, &mut cx)?;
//! drop(brokers);
//!
//! // After a restart the event is still there.
//! let brokers = DurableBroker::open_all(&config, &durable, 1, 2_000)?;
//! assert_eq!(brokers[0].recovered().records, 1);
//! assert_eq!(brokers[0].backlog("news").map(|b| b.len()), Some(1));
//! # drop(brokers);
//! # let _ = std::fs::remove_dir_all(&dir);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
mod broker;
mod record;
mod sync;

pub use broker::{DurableBroker, DurableConfig, Recovered};
/// The log's fsync policy ([`DurableConfig::fsync`]).
pub use tether_log::Fsync;
