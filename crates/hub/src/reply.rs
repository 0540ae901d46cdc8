//! Where an answer goes: a loop, and the token its application is waiting
//! on.

/// Where a publish's outcome goes: a loop, and a token that means
/// something to that loop's application (the request waiting for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplyTo {
    /// The loop to post `HubMessage::Published` to.
    pub loop_index: usize,
    /// Handed back unchanged.
    pub token: u64,
}
