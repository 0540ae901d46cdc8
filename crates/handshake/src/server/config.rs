//! A server's handshake settings: its subprotocols, its extension
//! negotiators, and the policy run on every valid request.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use super::RequestHead;
use super::rejection::Rejection;
use super::upgrade::{Accepted, UpgradeRequest};
use crate::extension::{self, ExtensionNegotiator};

/// A server's decision hook, run on every request that passed validation
/// and before extension negotiation: check the `Origin` against an
/// allowlist, authenticate a cookie, refuse unknown paths...
///
/// Any `Fn(&UpgradeRequest<'_>) -> Result<(), Rejection> + Send + Sync`
/// closure is a policy (see [`ServerConfig::policy`]); implement the trait
/// for a type to keep state in it. Refuse with [`Rejection::forbidden`].
pub trait Policy: Send + Sync {
    /// `Ok(())` to let the handshake go on, or the rejection to answer.
    fn check(&self, request: &UpgradeRequest<'_>) -> Result<(), Rejection>;
}

impl<F> Policy for F
where
    F: Fn(&UpgradeRequest<'_>) -> Result<(), Rejection> + Send + Sync,
{
    fn check(&self, request: &UpgradeRequest<'_>) -> Result<(), Rejection> {
        self(request)
    }
}

type BoxedNegotiator<T> = Box<dyn ExtensionNegotiator<Value = T> + Send + Sync>;

/// A server's handshake settings: the subprotocols it speaks in order of
/// preference, its extension negotiators in order of preference, and an
/// optional [`Policy`]. Build it once and share it: it is `Send + Sync`,
/// because negotiators and the policy must be.
///
/// `T` is the value the negotiators return; with none, leave it `()`.
///
/// ```
/// use tether_handshake::{parse_request, Rejection, ServerConfig, Status, UpgradeRequest};
///
/// let config: ServerConfig = ServerConfig::new()
///     .protocols(["chat.v2", "chat.v1"])
///     .policy(|req: &UpgradeRequest<'_>| match req.origin() {
///         Some("https://example.com") | None => Ok(()),
///         Some(_) => Err(Rejection::forbidden("origin not allowed")),
///     });
///
/// let buf = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///     Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat.v1, chat.v2\r\n\r\n";
/// let Status::Complete((req, _)) = parse_request(buf)? else { unreachable!() };
/// let mut out = Vec::new();
/// match config.accept(req.head()) {
///     Ok(accepted) => {
///         assert_eq!(accepted.protocol(), Some("chat.v2"));
///         accepted.write_response(&mut out, &[])?;
///     }
///     Err(rejection) => rejection.write_response(&mut out),
/// }
/// assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
/// # Ok::<(), tether_handshake::Error>(())
/// ```
pub struct ServerConfig<T = ()> {
    protocols: Vec<String>,
    negotiators: Vec<BoxedNegotiator<T>>,
    policy: Option<Box<dyn Policy>>,
}

impl<T> Default for ServerConfig<T> {
    fn default() -> Self {
        Self {
            protocols: Vec::new(),
            negotiators: Vec::new(),
            policy: None,
        }
    }
}

impl<T> core::fmt::Debug for ServerConfig<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let names: Vec<&str> = self.negotiators.iter().map(|n| n.name()).collect();
        f.debug_struct("ServerConfig")
            .field("protocols", &self.protocols)
            .field("negotiators", &names)
            .field("policy", &self.policy.is_some())
            .finish()
    }
}

impl<T> ServerConfig<T> {
    /// No subprotocols, no extensions, no policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a subprotocol to the preference list (most preferred first).
    pub fn protocol(mut self, name: impl Into<String>) -> Self {
        self.protocols.push(name.into());
        self
    }

    /// Appends several subprotocols, most preferred first.
    pub fn protocols<I>(mut self, names: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.protocols.extend(names.into_iter().map(Into::into));
        self
    }

    /// Appends an extension negotiator (most preferred first).
    pub fn negotiator<N>(mut self, negotiator: N) -> Self
    where
        N: ExtensionNegotiator<Value = T> + Send + Sync + 'static,
    {
        self.negotiators.push(Box::new(negotiator));
        self
    }

    /// Sets the policy from a closure. Annotate its argument
    /// (`|req: &UpgradeRequest<'_>|`) so it is generic over the lifetime.
    pub fn policy<F>(self, policy: F) -> Self
    where
        F: Fn(&UpgradeRequest<'_>) -> Result<(), Rejection> + Send + Sync + 'static,
    {
        self.policy_object(Box::new(policy))
    }

    /// Sets the policy from any [`Policy`] implementation.
    pub fn policy_object(mut self, policy: Box<dyn Policy>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The whole server side of the handshake: validate (see
    /// [`UpgradeRequest::new`]), run the policy, select the subprotocol,
    /// negotiate extensions. The result writes either the 101 response or
    /// the rejection.
    pub fn accept<'a>(&self, head: RequestHead<'a>) -> Result<Accepted<'a, T>, Rejection> {
        let request = UpgradeRequest::new(head)?;
        if let Some(policy) = &self.policy {
            policy.check(&request)?;
        }
        let protocol = request.select_protocol(&self.protocols);
        let extensions = extension::negotiate(request.extensions(), self.negotiators.iter().map(|n| &**n))?;
        Ok(request.accept(protocol, extensions)?)
    }
}
