//! The bounds on what a peer can make a decoder hold.

/// What a peer can make a decoder hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest head (request or status line and header section), and
    /// the largest trailer section. 16 KiB; more is 431.
    pub max_head: usize,
    /// The largest body. 1 MiB; more is 413.
    pub max_body: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head: 16 * 1024,
            max_body: 1 << 20,
        }
    }
}

impl Limits {
    /// The defaults: a 16 KiB head, a 1 MiB body.
    pub fn new() -> Limits {
        Limits::default()
    }

    /// Another head (and trailer section) limit.
    pub fn max_head(mut self, bytes: usize) -> Limits {
        self.max_head = bytes;
        self
    }

    /// Another body limit.
    pub fn max_body(mut self, bytes: u64) -> Limits {
        self.max_body = bytes;
        self
    }
}
