//! What a concern of the hub (delivery, publishing, the backend's hooks,
//! the server API) borrows of the rest of its loop for one call: split
//! borrows of the [`HubApp`](crate::HubApp)'s fields, made where the app
//! dispatches.

use tether_hub::Broker;
use tether_server::ConnId;

use super::cors::Cors;
use super::metrics::HubStats;
use super::shared::HubShared;

/// The parts of a loop's hub every concern reads or lends.
pub(super) struct LoopParts<'a> {
    /// The settings, access and counters every loop shares.
    pub(super) shared: &'a HubShared,
    /// This loop's counters.
    pub(super) stats: &'a HubStats,
    /// This loop's broker.
    pub(super) broker: &'a mut (dyn Broker + Send),
    /// Every answer to a request goes out through it.
    pub(super) cors: &'a mut Cors,
    /// The connections that left since the publishing concern last
    /// looked: it lets go of their publishes still held for the
    /// backend's word before it next holds, lets go or counts one (the
    /// concern a connection leaves by need not know the others).
    pub(super) departed: &'a mut Vec<ConnId>,
}
