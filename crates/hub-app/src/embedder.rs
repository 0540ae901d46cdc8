//! The hub as the embedding application makes it (one per event loop)
//! and calls it outside the server's callbacks: a publish of its own,
//! presence questions for its own requests.

use std::fmt;

use tether_hub::{Broker, Error as HubError, Hub, HubMessage, Members, Publish};
use tether_server::{ConnId, Ctx};

use super::admin::Admin;
use super::api::ServerApi;
use super::cors::Cors;
use super::deliver::Delivery;
use super::hooks::BackendHooks;
use super::loop_parts::LoopParts;
use super::presence::{Asker, Roster};
use super::publishing::Pending;
use super::publishing::Publishing;
use super::readiness::BusReadiness;
use super::{HubApp, HubSettings, HubShared};

impl fmt::Debug for HubApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubApp")
            .field("loop", &self.index)
            .field("broker", &self.broker.kind())
            .field("subscribers", &self.delivery.subscribers.len())
            .finish_non_exhaustive()
    }
}

impl HubApp {
    /// A hub on a single event loop.
    pub fn new(settings: HubSettings) -> HubApp {
        HubShared::new(settings, 1).app(0)
    }

    /// The hub of loop `index`, with its broker.
    fn on_loop(shared: HubShared, index: usize, broker: Box<dyn Broker + Send>) -> HubApp {
        let stats = shared
            .stats
            .get(index)
            .or(shared.stats.last())
            .cloned()
            .unwrap_or_default();
        let hub = Hub::new(shared.settings.hub.clone(), broker.complete())
            .with_one_sequence(broker.ids_one_sequence());
        HubApp {
            delivery: Delivery::new(hub, Roster::new(shared.node.clone(), index)),
            broker,
            index,
            stats: stats.clone(),
            cors: Cors::new(shared.settings.clone()),
            publishing: Publishing::default(),
            hooks: BackendHooks::new(index, stats),
            calls: super::rpc::Calls::default(),
            values: super::latest_value::LatestValues::default(),
            api: ServerApi::default(),
            admin: Admin::default(),
            presence_answers: Vec::new(),
            shared,
            settings_seen: 0,
            departed: Vec::new(),
            bus_readiness: BusReadiness::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &HubSettings {
        &self.shared.settings
    }

    /// Publishes from the server itself (a feed it produces): no token, no
    /// answer but the counters.
    ///
    /// # Errors
    ///
    /// What [`Publish::new`] refuses, and what the broker refuses at once.
    pub fn publish(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        topic: &str,
        event_type: Option<&str>,
        data: &str,
    ) -> Result<(), HubError> {
        let publish = Publish::new(topic, event_type, data, &self.shared.settings.hub)?;
        (self.publishing).submit(ctx, &mut parts!(self), publish, Pending::Internal)
    }

    /// Asks who is present on `topic` for the embedding application's
    /// request `conn` (answered later, or never if the topic's sequencer
    /// is gone): the members come from
    /// [`HubApp::take_presence_answers`] after one of the next posts
    /// ([`App::on_post`](tether_server::App::on_post)). [`HubApp::forget_presence_question`] drops the
    /// question, with its request.
    pub fn ask_presence(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, topic: &str) {
        self.delivery.ask_members(ctx, Asker::Embedder(conn), topic);
    }

    /// The answers to [`HubApp::ask_presence`] that came since the last
    /// call, by request.
    pub fn take_presence_answers(&mut self) -> Vec<(ConnId, Members)> {
        std::mem::take(&mut self.presence_answers)
    }

    /// `conn`'s presence question is no longer wanted.
    pub fn forget_presence_question(&mut self, conn: ConnId) {
        self.delivery.forget_question(conn);
        self.presence_answers.retain(|(asker, _)| *asker != conn);
    }
}

/// Where each loop's hub is made.
impl HubShared {
    /// The application for loop `loop_index`, with the in-process broker.
    pub fn app(&self, loop_index: usize) -> HubApp {
        self.app_with_broker(loop_index, Box::new(self.local.sibling()))
    }

    /// The application for loop `loop_index`, with another broker (one
    /// value per loop; see [`tether_hub::Broker`] for the contract).
    pub fn app_with_broker(&self, loop_index: usize, broker: Box<dyn Broker + Send>) -> HubApp {
        HubApp::on_loop(self.clone(), loop_index, broker)
    }
}
