//! A request body gathered on a connection that carries many requests at
//! once (HTTP/2, HTTP/3): each body is bounded by the largest body, and
//! the bodies still arriving on one connection together by its budget
//! ([`crate::config::Config::request_bodies_per_connection`]), counted as the capacity
//! their buffers hold.

/// What became of a piece of a body.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Gathered {
    /// Appended.
    Taken,
    /// The body would be longer than the largest body: answer 413.
    TooLong,
    /// The connection's bodies would hold more than its budget: refuse
    /// the stream as not processed, so that the client may retry it.
    OverBudget,
}

/// The bytes that the bodies of `bodies` hold (their buffers' capacity).
pub(super) fn held<'a>(bodies: impl Iterator<Item = &'a Vec<u8>>) -> usize {
    bodies.map(Vec::capacity).fold(0, usize::saturating_add)
}

/// Appends `data` to `body`, whose connection's bodies hold `held` bytes
/// (its own included): the buffer is grown by doubling, as a `Vec` would,
/// but never past `max_body`, and only within `budget`.
pub(super) fn gather(
    body: &mut Vec<u8>,
    data: &[u8],
    held: usize,
    max_body: usize,
    budget: usize,
) -> Gathered {
    let needed = body.len().saturating_add(data.len());
    if needed > max_body {
        return Gathered::TooLong;
    }
    if needed > body.capacity() {
        let grown = body.capacity().saturating_mul(2).max(needed).min(max_body);
        let extra = grown.saturating_sub(body.capacity());
        if held.saturating_add(extra) > budget {
            return Gathered::OverBudget;
        }
        body.reserve_exact(grown.saturating_sub(body.len()));
    }
    body.extend_from_slice(data);
    Gathered::Taken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_grows_by_doubling_within_the_largest_body_and_the_budget() {
        let mut body = Vec::new();
        assert_eq!(gather(&mut body, &[1; 100], 0, 1000, 1000), Gathered::Taken);
        assert_eq!(body.capacity(), 100);
        // Doubled: 200.
        assert_eq!(gather(&mut body, &[2; 10], 100, 1000, 1000), Gathered::Taken);
        assert_eq!((body.len(), body.capacity()), (110, 200));
        // Within the capacity: no growth, whatever the budget.
        assert_eq!(gather(&mut body, &[3; 90], 5000, 1000, 1000), Gathered::Taken);
        assert_eq!(body.capacity(), 200);
        // Growth to 400 would take 200 more: over a budget of 350 when
        // the connection holds 200.
        assert_eq!(gather(&mut body, &[4; 1], 200, 1000, 350), Gathered::OverBudget);
        assert_eq!(body.len(), 200);
        // Never past the largest body.
        assert_eq!(gather(&mut body, &[5; 150], 200, 350, 1000), Gathered::Taken);
        assert_eq!(body.capacity(), 350);
        assert_eq!(gather(&mut body, &[6; 1], 350, 350, 1000), Gathered::TooLong);
        assert_eq!(held([&body, &vec![0u8; 7]].into_iter()), 357);
    }
}
