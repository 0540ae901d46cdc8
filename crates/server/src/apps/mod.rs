//! Ready-made applications: an echo (what Autobahn|Testsuite runs
//! against), a chat room, a clock feed, the pub/sub hub, and the demo that
//! serves them with a page that uses the hub.

mod chat;
mod clock;
mod demo;
mod echo;
mod hub;

pub use chat::Chat;
pub use clock::Clock;
pub use demo::Demo;
pub use echo::Echo;
pub use hub::{HubApp, HubSettings, HubShared};
