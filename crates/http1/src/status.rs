//! Whether a parse is done: the one answer every decoder gives.

/// The result of parsing something that may not have fully arrived yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// Complete, with what was parsed.
    Complete(T),
    /// More bytes are needed; this is not an error.
    Partial,
}
