//! Negotiation, RFC 7692 section 7.1: the server's choice among offers and
//! the client's check of the response.

use tether_handshake::{Extension, ExtensionNegotiator, ExtensionParams, NegotiationResult};

use crate::codec::{Deflate, Role};
use crate::error::Error;
use crate::params::{MAX_WINDOW_BITS, MIN_WINDOW_BITS, Params};

/// The extension token.
pub const EXTENSION_NAME: &str = "permessage-deflate";

const SERVER_NO_CONTEXT_TAKEOVER: &str = "server_no_context_takeover";
const CLIENT_NO_CONTEXT_TAKEOVER: &str = "client_no_context_takeover";
const SERVER_MAX_WINDOW_BITS: &str = "server_max_window_bits";
const CLIENT_MAX_WINDOW_BITS: &str = "client_max_window_bits";

impl Params {
    /// What a server's own response element says was agreed: the element
    /// its negotiator wrote into `Sec-WebSocket-Extensions` (for example
    /// `tether_handshake::NegotiatedExtension::element`, parsed with
    /// `tether_handshake::parse_extensions`). A server that installed the
    /// extension learns from it, for instance, whether the connection
    /// takes frames compressed once for many ([`shared_frame`](crate::shared::shared_frame)).
    ///
    /// ```
    /// use tether_deflate::Params;
    /// use tether_handshake::parse_extensions;
    ///
    /// let element = parse_extensions("permessage-deflate; server_no_context_takeover; server_max_window_bits=10")?;
    /// let params = Params::from_response(&element[0]).expect("a permessage-deflate response");
    /// assert!(params.server_no_context_takeover && !params.client_no_context_takeover);
    /// assert_eq!((params.server_max_window_bits, params.client_max_window_bits), (10, 15));
    /// # Ok::<(), tether_handshake::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotOffered`] for an element of another extension, and the
    /// syntax errors of [`ClientOffer::accept`] (a response never carries
    /// a bare `client_max_window_bits`).
    pub fn from_response(element: &Extension<'_>) -> Result<Params, Error> {
        if !element.is(EXTENSION_NAME) {
            return Err(Error::NotOffered(EXTENSION_NAME));
        }
        let parsed = parse(element)?;
        let client_max_window_bits = match parsed.client_max_window_bits {
            Some(None) => return Err(Error::InvalidValue(CLIENT_MAX_WINDOW_BITS)),
            Some(Some(bits)) => bits,
            None => MAX_WINDOW_BITS,
        };
        Ok(Params {
            server_no_context_takeover: parsed.server_no_context_takeover,
            client_no_context_takeover: parsed.client_no_context_takeover,
            server_max_window_bits: parsed.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS),
            client_max_window_bits,
        })
    }
}

/// The parameters of one element, checked for the syntax RFC 7692 section
/// 7 gives them: known names only, each at most once, values where values
/// belong. `client_max_window_bits` is `Some(None)` when given bare.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Parsed {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: Option<Option<u8>>,
}

/// The parameters RFC 7692 defines, in its order.
const KNOWN: [&str; 4] = [
    SERVER_NO_CONTEXT_TAKEOVER,
    CLIENT_NO_CONTEXT_TAKEOVER,
    SERVER_MAX_WINDOW_BITS,
    CLIENT_MAX_WINDOW_BITS,
];

fn parse(element: &Extension<'_>) -> Result<Parsed, Error> {
    let mut parsed = Parsed::default();
    let mut seen = [false; 4];
    for param in element.params() {
        let name = param.name();
        let value = param.value();
        let (index, (&known, seen)) = KNOWN
            .iter()
            .zip(&mut seen)
            .enumerate()
            .find(|(_, (known, _))| known.eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::UnknownParameter(name.to_owned()))?;
        if std::mem::replace(seen, true) {
            return Err(Error::DuplicateParameter(known));
        }
        match index {
            0 | 1 => {
                if value.is_some() {
                    return Err(Error::InvalidValue(known));
                }
                if index == 0 {
                    parsed.server_no_context_takeover = true;
                } else {
                    parsed.client_no_context_takeover = true;
                }
            }
            2 => {
                let value = value.ok_or(Error::InvalidValue(known))?;
                parsed.server_max_window_bits = Some(window_bits(value).ok_or(Error::InvalidValue(known))?);
            }
            _ => {
                parsed.client_max_window_bits = Some(match value {
                    None => None,
                    Some(v) => Some(window_bits(v).ok_or(Error::InvalidValue(known))?),
                });
            }
        }
    }
    Ok(parsed)
}

/// `1*DIGIT` without leading zeros, from 8 to 15 (RFC 7692 section 7.1.2).
fn window_bits(value: &str) -> Option<u8> {
    let bytes = value.as_bytes();
    if bytes.is_empty()
        || bytes.len() > 2
        || bytes.first() == Some(&b'0')
        || !bytes.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let bits: u8 = value.parse().ok()?;
    (MIN_WINDOW_BITS..=MAX_WINDOW_BITS)
        .contains(&bits)
        .then_some(bits)
}

fn check_bits(bits: u8, what: &'static str) -> Result<u8, Error> {
    if (MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&bits) {
        Ok(bits)
    } else {
        Err(Error::InvalidArgument(what))
    }
}

// The names are the constants above and the values decimal digits: all
// tokens, which is all `push` checks.
#[allow(clippy::expect_used)]
fn push(params: &mut ExtensionParams, name: &str, value: Option<u8>) {
    let digits;
    let value = match value {
        Some(v) => {
            digits = v.to_string();
            Some(digits.as_str())
        }
        None => None,
    };
    params
        .push(name, value)
        .expect("parameter names and decimal values are tokens");
}

/// A server's permessage-deflate preferences, and its negotiator.
///
/// Register it with `tether_handshake::ServerConfig::negotiator`; each
/// accepted connection gets its own [`Deflate`] (boxed as a
/// `tether_ws::Extension`). Among several offers the first acceptable one
/// wins; an offer with an unknown or repeated parameter, or a value out of
/// range, is declined (RFC 7692 section 7), never answered with an error.
///
/// # Defaults, and what they cost
///
/// | setting | default | why |
/// | --- | --- | --- |
/// | [`server_context_takeover`](Self::server_context_takeover) | off | a compressor with its 32 KiB window costs about 260 KiB per connection at level 1, 370 KiB at higher levels; without takeover one compressor per thread serves all connections |
/// | [`client_context_takeover`](Self::client_context_takeover) | off | a decompressor keeping the client's window costs about 40 KiB per connection; without it one per thread is lent out per message |
/// | [`server_max_window_bits`](Self::server_max_window_bits) | 15 | the client may still ask for less |
/// | [`client_max_window_bits`](Self::client_max_window_bits) | 15 | asked for only if the client offered the parameter |
/// | [`min_size`](Self::min_size) | 256 bytes, or 32 with server context takeover | alone, a JSON message under 200 bytes shrinks by 5 to 10 % at level 1; with context, even short ones shrink to about a third |
/// | [`level`](Self::level) | 1 | the fastest; level 2 compresses a lone 200-byte message to 71 % instead of 89 %, at 2 to 3 times the time |
///
/// With both takeovers off an idle connection holds no compression state
/// at all. Turning takeover on compresses streams of small similar messages
/// much better (each message can refer to the ones before), at the memory
/// cost above; `benches/README.md` has the measured figures.
///
/// ```
/// use tether_deflate::{DeflateConfig, Params};
/// use tether_handshake::{parse_extensions, ExtensionNegotiator};
///
/// let config = DeflateConfig::new();
/// let offers = parse_extensions(
///     "permessage-deflate; foo, permessage-deflate; server_max_window_bits=10; client_max_window_bits",
/// )?;
/// // The first offer has an unknown parameter and is declined; the second is taken.
/// let (response, params) = config.choose(&offers).unwrap();
/// assert_eq!(
///     response.as_str(),
///     "server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10",
/// );
/// assert_eq!(params.server_max_window_bits, 10);
/// assert_eq!(config.name(), "permessage-deflate");
/// # Ok::<(), tether_handshake::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    server_context_takeover: bool,
    client_context_takeover: bool,
    server_max_window_bits: u8,
    client_max_window_bits: u8,
    min_size: Option<usize>,
    level: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            server_context_takeover: false,
            client_context_takeover: false,
            server_max_window_bits: MAX_WINDOW_BITS,
            client_max_window_bits: MAX_WINDOW_BITS,
            min_size: None,
            level: 1,
        }
    }
}

impl DeflateConfig {
    /// The defaults (see the table above).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the server keeps its LZ77 window from one message to the
    /// next. Off: every response carries `server_no_context_takeover`. On:
    /// the server still honours a client that asks for
    /// `server_no_context_takeover`.
    pub fn server_context_takeover(mut self, on: bool) -> Self {
        self.server_context_takeover = on;
        self
    }

    /// Whether the client may keep its LZ77 window from one message to the
    /// next. Off: every response carries `client_no_context_takeover`, so
    /// the server need not keep the client's window between messages.
    pub fn client_context_takeover(mut self, on: bool) -> Self {
        self.client_context_takeover = on;
        self
    }

    /// The largest window the server compresses with (8 to 15); a client's
    /// smaller `server_max_window_bits` wins.
    pub fn server_max_window_bits(mut self, bits: u8) -> Result<Self, Error> {
        self.server_max_window_bits = check_bits(bits, "server_max_window_bits must be from 8 to 15")?;
        Ok(self)
    }

    /// The largest window the client should compress with (8 to 15). Below
    /// 15 it is sent as `client_max_window_bits` when the client offered
    /// that parameter (the RFC allows it only then); a client that did not
    /// may use the full 32 KiB window, and is accepted all the same.
    pub fn client_max_window_bits(mut self, bits: u8) -> Result<Self, Error> {
        self.client_max_window_bits = check_bits(bits, "client_max_window_bits must be from 8 to 15")?;
        Ok(self)
    }

    /// Messages shorter than this many bytes are sent uncompressed.
    /// Without it, the threshold follows the agreed server context
    /// takeover (see [`Deflate::new`]).
    pub fn min_size(mut self, bytes: usize) -> Self {
        self.min_size = Some(bytes);
        self
    }

    /// The zlib compression level, 0 (stored) to 9 (smallest, slowest).
    pub fn level(mut self, level: u8) -> Result<Self, Error> {
        if level > 9 {
            return Err(Error::InvalidArgument(
                "the compression level must be from 0 to 9",
            ));
        }
        self.level = level;
        Ok(self)
    }

    /// The first acceptable offer among `offers` (all named
    /// `permessage-deflate`, in the client's order): the parameters of the
    /// response and what was agreed. `None` declines them all.
    pub fn choose(&self, offers: &[Extension<'_>]) -> Option<(ExtensionParams, Params)> {
        offers.iter().find_map(|offer| self.accept_offer(offer))
    }

    /// The response to one offer, or `None` to decline it.
    pub fn accept_offer(&self, offer: &Extension<'_>) -> Option<(ExtensionParams, Params)> {
        let offer = parse(offer).ok()?;
        // Section 7.1.2.2: a bare client_max_window_bits is offer syntax only.
        let server_no_context_takeover = offer.server_no_context_takeover || !self.server_context_takeover;
        // The server may add client_no_context_takeover on its own (section
        // 7.1.1.2); echoing the client's lets it drop the client's window.
        let client_no_context_takeover = offer.client_no_context_takeover || !self.client_context_takeover;
        let server_bits = offer
            .server_max_window_bits
            .unwrap_or(MAX_WINDOW_BITS)
            .min(self.server_max_window_bits);
        let client_bits = match offer.client_max_window_bits {
            // Not offered: the client may use up to 32 KiB, whatever we prefer.
            None => MAX_WINDOW_BITS,
            Some(limit) => limit.unwrap_or(MAX_WINDOW_BITS).min(self.client_max_window_bits),
        };
        let mut response = ExtensionParams::new();
        if server_no_context_takeover {
            push(&mut response, SERVER_NO_CONTEXT_TAKEOVER, None);
        }
        if client_no_context_takeover {
            push(&mut response, CLIENT_NO_CONTEXT_TAKEOVER, None);
        }
        // Echoing an offered server_max_window_bits is how it is accepted
        // (section 7.1.2.1); unasked, it is sent only to shrink the window.
        if offer.server_max_window_bits.is_some() || server_bits < MAX_WINDOW_BITS {
            push(&mut response, SERVER_MAX_WINDOW_BITS, Some(server_bits));
        }
        if offer.client_max_window_bits.is_some() && client_bits < MAX_WINDOW_BITS {
            push(&mut response, CLIENT_MAX_WINDOW_BITS, Some(client_bits));
        }
        Some((
            response,
            Params {
                server_no_context_takeover,
                client_no_context_takeover,
                server_max_window_bits: server_bits,
                client_max_window_bits: client_bits,
            },
        ))
    }

    /// The server-side extension for what was agreed, with this config's
    /// level and minimum size.
    pub fn extension(&self, params: Params) -> Deflate {
        let deflate = Deflate::new(Role::Server, params).with_level(self.level);
        match self.min_size {
            Some(bytes) => deflate.with_min_size(bytes),
            None => deflate,
        }
    }
}

impl ExtensionNegotiator for DeflateConfig {
    type Value = Box<dyn tether_ws::Extension>;

    fn name(&self) -> &str {
        EXTENSION_NAME
    }

    fn negotiate(&self, offers: &[Extension<'_>]) -> NegotiationResult<Self::Value> {
        Ok(self
            .choose(offers)
            .map(|(response, params)| (response, Box::new(self.extension(params)) as Self::Value)))
    }
}

/// How a client's offer treats `client_max_window_bits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientWindow {
    /// Not sent: the server may not limit the client's window.
    Omit,
    /// Sent bare: the server may answer with a limit, which the client then
    /// keeps to.
    Negotiable,
    /// Sent with a value: the client will not use a larger window, and the
    /// server may ask for a smaller one.
    Max(u8),
}

/// One permessage-deflate offer of a client, and the check of the server's
/// answer to it.
///
/// The default offer is `permessage-deflate; client_max_window_bits`: the
/// client keeps context and a 32 KiB window unless the server asks
/// otherwise. Several offers, most preferred first, go into one header with
/// [`offer_header`]; [`accept_response`] checks what came back.
///
/// ```
/// use tether_deflate::{accept_response, offer_header, ClientOffer, Error};
/// use tether_handshake::parse_extensions;
///
/// let offers = [
///     ClientOffer::new().server_no_context_takeover(true).server_max_window_bits(Some(10))?,
///     ClientOffer::new(),
/// ];
/// assert_eq!(
///     offer_header(&offers),
///     "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits, \
///      permessage-deflate; client_max_window_bits",
/// );
/// // The server took the second offer and limits the client's window.
/// let response = parse_extensions("permessage-deflate; client_max_window_bits=12").unwrap();
/// let params = accept_response(&offers, &response)?.expect("negotiated");
/// assert_eq!((params.client_max_window_bits, params.server_max_window_bits), (12, 15));
/// // A response that fits no offer fails the connection.
/// let bad = parse_extensions("permessage-deflate; server_max_window_bits=16").unwrap();
/// assert_eq!(accept_response(&offers, &bad), Err(Error::InvalidValue("server_max_window_bits")));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOffer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: ClientWindow,
}

impl Default for ClientOffer {
    fn default() -> Self {
        ClientOffer {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: ClientWindow::Negotiable,
        }
    }
}

impl ClientOffer {
    /// `permessage-deflate; client_max_window_bits`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the server to compress every message on its own.
    pub fn server_no_context_takeover(mut self, on: bool) -> Self {
        self.server_no_context_takeover = on;
        self
    }

    /// Announces that the client compresses every message on its own.
    pub fn client_no_context_takeover(mut self, on: bool) -> Self {
        self.client_no_context_takeover = on;
        self
    }

    /// Limits the server's window (8 to 15), or lets the server choose
    /// (`None`).
    pub fn server_max_window_bits(mut self, bits: Option<u8>) -> Result<Self, Error> {
        if let Some(b) = bits {
            check_bits(b, "server_max_window_bits must be from 8 to 15")?;
        }
        self.server_max_window_bits = bits;
        Ok(self)
    }

    /// What to say about the client's own window.
    pub fn client_max_window_bits(mut self, window: ClientWindow) -> Result<Self, Error> {
        if let ClientWindow::Max(b) = window {
            check_bits(b, "client_max_window_bits must be from 8 to 15")?;
        }
        self.client_max_window_bits = window;
        Ok(self)
    }

    /// The offer's parameters, in the order RFC 7692 lists them.
    pub fn params(&self) -> ExtensionParams {
        let mut params = ExtensionParams::new();
        if self.server_no_context_takeover {
            push(&mut params, SERVER_NO_CONTEXT_TAKEOVER, None);
        }
        if self.client_no_context_takeover {
            push(&mut params, CLIENT_NO_CONTEXT_TAKEOVER, None);
        }
        if let Some(bits) = self.server_max_window_bits {
            push(&mut params, SERVER_MAX_WINDOW_BITS, Some(bits));
        }
        match self.client_max_window_bits {
            ClientWindow::Omit => {}
            ClientWindow::Negotiable => push(&mut params, CLIENT_MAX_WINDOW_BITS, None),
            ClientWindow::Max(bits) => push(&mut params, CLIENT_MAX_WINDOW_BITS, Some(bits)),
        }
        params
    }

    /// The header element: `permessage-deflate; ...`.
    // The extension's name is a constant token, and `params` holds only
    // what `push` checked: nothing here can fail.
    #[allow(clippy::expect_used)]
    pub fn element(&self) -> String {
        self.params()
            .element(EXTENSION_NAME)
            .expect("the extension name is a token")
    }

    /// Checks the server's `permessage-deflate` element against this offer
    /// (RFC 7692 section 7.1) and returns what was agreed. Any error means
    /// the client must fail the connection.
    pub fn accept(&self, response: &Extension<'_>) -> Result<Params, Error> {
        let got = parse(response)?;
        if self.server_no_context_takeover && !got.server_no_context_takeover {
            return Err(Error::Missing(SERVER_NO_CONTEXT_TAKEOVER));
        }
        let server_max_window_bits = match (self.server_max_window_bits, got.server_max_window_bits) {
            (Some(_), None) => return Err(Error::Missing(SERVER_MAX_WINDOW_BITS)),
            (Some(offered), Some(bits)) if bits > offered => {
                return Err(Error::WindowTooLarge(SERVER_MAX_WINDOW_BITS));
            }
            (_, bits) => bits.unwrap_or(MAX_WINDOW_BITS),
        };
        let client_max_window_bits = match (self.client_max_window_bits, got.client_max_window_bits) {
            (_, Some(None)) => return Err(Error::InvalidValue(CLIENT_MAX_WINDOW_BITS)),
            (ClientWindow::Omit, Some(_)) => return Err(Error::NotOffered(CLIENT_MAX_WINDOW_BITS)),
            (ClientWindow::Max(offered), Some(Some(bits))) if bits > offered => {
                return Err(Error::WindowTooLarge(CLIENT_MAX_WINDOW_BITS));
            }
            (_, Some(Some(bits))) => bits,
            (ClientWindow::Max(offered), None) => offered,
            (_, None) => MAX_WINDOW_BITS,
        };
        Ok(Params {
            server_no_context_takeover: got.server_no_context_takeover,
            client_no_context_takeover: got.client_no_context_takeover || self.client_no_context_takeover,
            server_max_window_bits,
            client_max_window_bits,
        })
    }

    /// The client-side extension for what was agreed (level 1 and the
    /// default minimum size of [`Deflate::new`]; change them with
    /// [`Deflate::with_level`] and [`Deflate::with_min_size`]).
    pub fn extension(&self, params: Params) -> Deflate {
        Deflate::new(Role::Client, params)
    }
}

/// Several offers, most preferred first, as one `Sec-WebSocket-Extensions`
/// value.
pub fn offer_header(offers: &[ClientOffer]) -> String {
    offers
        .iter()
        .map(ClientOffer::element)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks the extensions of a server's response (for example
/// `tether_handshake::Response::extensions()`) against the offers sent.
///
/// `Ok(None)`: the server did not accept permessage-deflate. `Ok(Some)`:
/// the first offer the response is a valid answer to, and what was agreed.
/// `Err`: permessage-deflate is there more than once, or the response fits
/// none of the offers (the error is the first offer's); the client must fail
/// the connection. Extensions of other names are ignored.
pub fn accept_response(
    offers: &[ClientOffer],
    extensions: &[Extension<'_>],
) -> Result<Option<Params>, Error> {
    let mut mine = extensions.iter().filter(|e| e.is(EXTENSION_NAME));
    let Some(response) = mine.next() else {
        return Ok(None);
    };
    if mine.next().is_some() {
        return Err(Error::DuplicateExtension);
    }
    let mut first_error = None;
    for offer in offers {
        match offer.accept(response) {
            Ok(params) => return Ok(Some(params)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(Error::NotOffered(EXTENSION_NAME)))
}
