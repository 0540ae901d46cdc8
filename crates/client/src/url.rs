//! What the clients add to tether-client-core's [`Url`]: the DNS lookup,
//! and the message for a scheme this build cannot use.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use tether_client_core::url::{Scheme, Url};

use crate::error::Error;

/// The addresses `url`'s host resolves to (a DNS lookup unless the host
/// is an IP address), for connecting a socket yourself.
///
/// ```
/// let url = tether_client::Url::parse("ws://[::1]:9/")?;
/// assert_eq!(tether_client::resolve(&url).unwrap(), vec!["[::1]:9".parse().unwrap()]);
/// # Ok::<(), tether_client::Error>(())
/// ```
pub fn resolve(url: &Url) -> io::Result<Vec<SocketAddr>> {
    (url.connect_host(), url.port())
        .to_socket_addrs()
        .map(Iterator::collect)
}

/// The message for a scheme the client cannot use.
pub(crate) fn unsupported_scheme(url: &Url, client: &str) -> Error {
    let what = match (url.scheme(), client) {
        (Scheme::Wss | Scheme::Https, _) if !cfg!(feature = "tls") => format!(
            "{}: URLs need TLS: build tether-client with its `tls` feature, or connect to a \
             ws:// or http:// endpoint",
            url.scheme().as_str()
        ),
        (scheme, client) => format!(
            "the {client} client cannot use {}: URLs (expected {})",
            scheme.as_str(),
            if client == "WebSocket" {
                "ws:// or wss://"
            } else {
                "http:// or https://"
            }
        ),
    };
    Error::UnsupportedScheme(what)
}

#[cfg(test)]
mod tests {
    #[test]
    fn resolves_ip_literals() {
        let v4 = super::resolve(&tether_client_core::url::Url::parse("ws://127.0.0.1:9/").unwrap()).unwrap();
        assert_eq!(v4, vec!["127.0.0.1:9".parse().unwrap()]);
        let v6 = super::resolve(&tether_client_core::url::Url::parse("ws://[::1]:9/").unwrap()).unwrap();
        assert_eq!(v6, vec!["[::1]:9".parse().unwrap()]);
    }
}
