//! A source's health, shared between its thread, which sets it, and
//! whoever asks (`/readyz`).

use std::sync::Mutex;

/// A value of a source's own health type, shared. A panic while it is
/// held does not make it unreadable.
///
/// ```
/// let cell = tether_ingest::HealthCell::new("connecting");
/// cell.update(|now| if *now == "connecting" { "up" } else { "down" });
/// assert_eq!(cell.get(), "up");
/// ```
#[derive(Debug, Default)]
pub struct HealthCell<H>(Mutex<H>);

impl<H: Clone> HealthCell<H> {
    /// A cell holding `health`.
    pub fn new(health: H) -> HealthCell<H> {
        HealthCell(Mutex::new(health))
    }

    /// The health now.
    pub fn get(&self) -> H {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets it.
    pub fn set(&self, health: H) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = health;
    }

    /// Sets it to what `next` makes of it, in one step.
    pub fn update(&self, next: impl FnOnce(&H) -> H) {
        let mut health = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *health = next(&health);
    }
}
