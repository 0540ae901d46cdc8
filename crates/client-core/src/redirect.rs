//! Redirects of an event stream's request: which are followed, how many,
//! where to, and which of the caller's headers go along.
//!
//! The rules: 301, 302, 303, 307 and 308 are followed (the request is a
//! `GET` without a body, so all five mean the same), up to a limit per
//! connection attempt; the `Location` is resolved against the URL that
//! answered; a redirect from `https` to `http` is refused (the stream
//! would leave TLS), as is a scheme the client cannot use; and once the
//! chain has left the origin the caller named, the caller's credential
//! headers (`Authorization`, `Cookie`, `Proxy-Authorization`) stay behind
//! for the rest of it, as browsers and curl do: that origin was never
//! given them.

use crate::Error;
use crate::url::{Scheme, Url};

/// The statuses that are followed.
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Whether `name` is a header that carries the caller's credentials,
/// which a redirect to another origin does not get.
pub fn is_credential(name: &str) -> bool {
    ["authorization", "cookie", "proxy-authorization"]
        .iter()
        .any(|credential| name.eq_ignore_ascii_case(credential))
}

/// One connection attempt's chain of redirects, from the URL the caller
/// named. Start one per attempt.
#[derive(Debug, Clone)]
pub struct Redirects {
    origin: Url,
    hops: u32,
    limit: u32,
    cross_origin: bool,
}

impl Redirects {
    /// A chain starting at `start`, following at most `limit` redirects.
    pub fn new(start: &Url, limit: u32) -> Redirects {
        Redirects {
            origin: start.clone(),
            hops: 0,
            limit,
            cross_origin: false,
        }
    }

    /// The redirects followed so far.
    pub fn hops(&self) -> u32 {
        self.hops
    }

    /// After `current` answered `status` (a redirect, see
    /// [`is_redirect`]) with `location`: the URL to request next, whose
    /// scheme is one of `schemes`; or why not.
    pub fn follow(
        &mut self,
        current: &Url,
        status: u16,
        location: Option<&str>,
        schemes: &[Scheme],
    ) -> Result<Url, Error> {
        self.hops = self.hops.saturating_add(1);
        if self.hops > self.limit {
            return Err(Error::TooManyRedirects { limit: self.limit });
        }
        let location = location.ok_or(Error::MissingLocation { status })?;
        let next = current.join(location).map_err(|e| Error::BadLocation {
            location: location.to_owned(),
            reason: match e {
                Error::InvalidUrl { reason, .. } => reason,
                _ => "does not resolve",
            },
        })?;
        let next = next.require(schemes, "the schemes of the URL given")?;
        if current.scheme().is_secure() && !next.scheme().is_secure() {
            return Err(Error::Downgrade { to: next.to_string() });
        }
        self.cross_origin |= !next.same_origin(&self.origin);
        Ok(next)
    }

    /// Whether the caller's header `name` is sent on the next request:
    /// every header is, but a credential once the chain has left the
    /// origin.
    pub fn sends(&self, name: &str) -> bool {
        !(self.cross_origin && is_credential(name))
    }
}
