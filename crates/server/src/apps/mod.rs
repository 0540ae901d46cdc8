//! Ready-made applications: an echo (what Autobahn|Testsuite runs
//! against), a chat room, a clock feed, and the demo that serves all three
//! with a page that uses them.

mod chat;
mod clock;
mod demo;
mod echo;

pub use chat::Chat;
pub use clock::Clock;
pub use demo::Demo;
pub use echo::Echo;
