//! `Sec-WebSocket-Extensions` (RFC 6455 section 9.1): parsing offers,
//! formatting responses, and the negotiator hook.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::error::Error;
use crate::http::{is_tchar, is_token};

/// One element of a `Sec-WebSocket-Extensions` header: an extension name
/// and its parameters, as a client offered it or a server accepted it.
///
/// Parsed with [`parse_extensions`]; borrows the header text except where a
/// quoted value had backslash escapes to undo. `Display` writes it back in
/// canonical form (`name; p; q=v`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension<'a> {
    name: &'a str,
    params: Vec<ExtensionParam<'a>>,
}

/// One `name` or `name=value` parameter of an [`Extension`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionParam<'a> {
    name: &'a str,
    value: Option<Cow<'a, str>>,
}

impl<'a> Extension<'a> {
    /// The extension token, e.g. `permessage-deflate`.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The parameters, in the order they were sent. Duplicates are kept:
    /// whether they are allowed is the extension's own rule.
    pub fn params(&self) -> &[ExtensionParam<'a>] {
        &self.params
    }

    /// The first parameter called `name` (ASCII case-insensitive).
    pub fn param(&self, name: &str) -> Option<&ExtensionParam<'a>> {
        self.params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// Whether the name matches `name` (ASCII case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

impl<'a> ExtensionParam<'a> {
    /// The parameter name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The value with quotes and escapes removed, or `None` for a bare
    /// `name` parameter.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }
}

impl fmt::Display for Extension<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)?;
        for p in &self.params {
            write!(f, "; {}", p.name)?;
            if let Some(v) = &p.value {
                // Values are tokens after unescaping (RFC 6455 section 9.1),
                // so the bare form is always valid.
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}

/// Parses one `Sec-WebSocket-Extensions` header value.
///
/// The grammar is RFC 6455 section 9.1: a comma list of
/// `token *( ";" token [ "=" ( token / quoted-string ) ] )`, with optional
/// whitespace around `,`, `;` and `=`, and empty list elements skipped as
/// RFC 9110 asks. A quoted value may use backslash escapes and must be a
/// token once unescaped, as section 9.1 requires. Anything else is
/// [`Error::InvalidHeader`]. Several headers of this name form one list:
/// parse each and concatenate.
///
/// ```
/// use tether_handshake::parse_extensions;
///
/// let offers = parse_extensions(
///     r#"permessage-deflate; client_max_window_bits, permessage-deflate ; server_max_window_bits = "1\0""#,
/// )?;
/// assert_eq!(offers.len(), 2);
/// assert_eq!(offers[0].params()[0].name(), "client_max_window_bits");
/// assert_eq!(offers[0].params()[0].value(), None);
/// assert_eq!(offers[1].param("server_max_window_bits").unwrap().value(), Some("10"));
/// assert_eq!(offers[1].to_string(), "permessage-deflate; server_max_window_bits=10");
/// # Ok::<(), tether_handshake::Error>(())
/// ```
pub fn parse_extensions(value: &str) -> Result<Vec<Extension<'_>>, Error> {
    let mut out = Vec::new();
    parse_extensions_into(value, &mut out)?;
    Ok(out)
}

pub(crate) fn parse_extensions_into<'a>(value: &'a str, out: &mut Vec<Extension<'a>>) -> Result<(), Error> {
    Parser { s: value, pos: 0 }
        .list(out)
        .ok_or(Error::InvalidHeader("Sec-WebSocket-Extensions"))
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn token(&mut self) -> Option<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        // Only ASCII was consumed, so both ends are char boundaries.
        (self.pos > start).then(|| &self.s[start..self.pos])
    }

    /// A quoted-string whose unescaped content must be a token; the opening
    /// quote is under the cursor.
    fn quoted(&mut self) -> Option<Cow<'a, str>> {
        self.pos += 1;
        let start = self.pos;
        let mut unescaped: Option<String> = None;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => {
                    let c = *self.s.as_bytes().get(self.pos + 1)?;
                    if !is_tchar(c) {
                        return None;
                    }
                    unescaped
                        .get_or_insert_with(|| String::from(&self.s[start..self.pos]))
                        .push(char::from(c));
                    self.pos += 2;
                }
                c if is_tchar(c) => {
                    if let Some(u) = &mut unescaped {
                        u.push(char::from(c));
                    }
                    self.pos += 1;
                }
                _ => return None,
            }
        }
        let raw = &self.s[start..self.pos];
        self.pos += 1;
        match unescaped {
            Some(u) => Some(Cow::Owned(u)),
            None if raw.is_empty() => None,
            None => Some(Cow::Borrowed(raw)),
        }
    }

    fn list(mut self, out: &mut Vec<Extension<'a>>) -> Option<()> {
        loop {
            self.skip_ows();
            match self.peek() {
                None => return Some(()),
                Some(b',') => {
                    self.pos += 1;
                    continue;
                }
                Some(_) => {}
            }
            let name = self.token()?;
            let mut params = Vec::new();
            loop {
                self.skip_ows();
                match self.peek() {
                    None => {
                        out.push(Extension { name, params });
                        return Some(());
                    }
                    Some(b',') => {
                        self.pos += 1;
                        out.push(Extension { name, params });
                        break;
                    }
                    Some(b';') => {
                        self.pos += 1;
                        self.skip_ows();
                        let pname = self.token()?;
                        self.skip_ows();
                        let value = if self.peek() == Some(b'=') {
                            self.pos += 1;
                            self.skip_ows();
                            Some(if self.peek() == Some(b'"') {
                                self.quoted()?
                            } else {
                                Cow::Borrowed(self.token()?)
                            })
                        } else {
                            None
                        };
                        params.push(ExtensionParam { name: pname, value });
                    }
                    Some(_) => return None,
                }
            }
        }
    }
}

/// Builds the parameter list of one accepted (or offered) extension, so
/// that what a negotiator produces is always a well-formed header element.
///
/// Names and values must be tokens (RFC 6455 section 9.1 requires values to
/// be tokens even when quoted), so they are written bare.
///
/// ```
/// use tether_handshake::ExtensionParams;
///
/// let mut params = ExtensionParams::new();
/// params.push("server_no_context_takeover", None)?;
/// params.push("client_max_window_bits", Some("10"))?;
/// assert_eq!(params.as_str(), "server_no_context_takeover; client_max_window_bits=10");
/// assert_eq!(
///     params.element("permessage-deflate")?,
///     "permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
/// );
/// assert!(params.push("bad name", None).is_err());
/// # Ok::<(), tether_handshake::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtensionParams {
    text: String,
}

impl ExtensionParams {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `name` or `name=value`. Fails with
    /// [`Error::InvalidArgument`], leaving the list as it was, when either is
    /// not a token.
    pub fn push(&mut self, name: &str, value: Option<&str>) -> Result<&mut Self, Error> {
        if !is_token(name.as_bytes()) {
            return Err(Error::InvalidArgument("extension parameter name is not a token"));
        }
        if value.is_some_and(|v| !is_token(v.as_bytes())) {
            return Err(Error::InvalidArgument("extension parameter value is not a token"));
        }
        if !self.text.is_empty() {
            self.text.push_str("; ");
        }
        self.text.push_str(name);
        if let Some(v) = value {
            self.text.push('=');
            self.text.push_str(v);
        }
        Ok(self)
    }

    /// The parameters as written, `a; b=1` (empty when there are none).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether no parameter was pushed.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The whole header element for extension `name`: `name; a; b=1`.
    /// Join several with `", "` to build a client's offer.
    pub fn element(&self, name: &str) -> Result<String, Error> {
        if !is_token(name.as_bytes()) {
            return Err(Error::InvalidArgument("extension name is not a token"));
        }
        let mut s = String::with_capacity(name.len() + 2 + self.text.len());
        s.push_str(name);
        if !self.text.is_empty() {
            s.push_str("; ");
            s.push_str(&self.text);
        }
        Ok(s)
    }
}

/// What [`ExtensionNegotiator::negotiate`] returns: the response parameters
/// and the caller's value for an accepted offer, `None` to decline, or the
/// negotiator's own error.
pub type NegotiationResult<V> = Result<Option<(ExtensionParams, V)>, Error>;

/// Server-side negotiation of one extension, e.g. permessage-deflate.
///
/// The server tries its negotiators in its own order of preference. Each
/// one sees every offer that carries its [`name`](Self::name), in the order
/// the client sent them, picks the first it can accept, and returns the
/// parameters for the 101 response plus a [`Value`](Self::Value) the caller
/// gets back (typically the configured extension instance), so this crate
/// needs to know nothing about WebSocket connections. Declining (`Ok(None)`)
/// is the normal answer to offers it cannot accept (RFC 7692 section 5);
/// an `Err` is reserved for the negotiator's own failures and turns into a
/// 500 response.
///
/// ```
/// use tether_handshake::{Error, Extension, ExtensionNegotiator, ExtensionParams, NegotiationResult};
///
/// /// Accepts `x-count` if the client allows the default limit.
/// struct Count;
/// impl ExtensionNegotiator for Count {
///     type Value = u32;
///     fn name(&self) -> &str {
///         "x-count"
///     }
///     fn negotiate(&self, offers: &[Extension<'_>]) -> NegotiationResult<u32> {
///         for offer in offers {
///             let limit = match offer.param("limit").map(|p| p.value()) {
///                 None => 8,
///                 Some(Some(v)) => match v.parse() {
///                     Ok(n) => n,
///                     Err(_) => continue,
///                 },
///                 Some(None) => continue,
///             };
///             let mut params = ExtensionParams::new();
///             params.push("limit", Some(&limit.to_string()))?;
///             return Ok(Some((params, limit)));
///         }
///         Ok(None)
///     }
/// }
///
/// let offers = tether_handshake::parse_extensions("x-count; limit=x, x-count; limit=3")?;
/// let (params, value) = Count.negotiate(&offers)?.unwrap();
/// assert_eq!((params.as_str(), value), ("limit=3", 3));
/// # Ok::<(), Error>(())
/// ```
pub trait ExtensionNegotiator {
    /// What the caller gets back for an accepted extension.
    type Value;

    /// The extension token this negotiator handles (matched ASCII
    /// case-insensitively). Must be a token.
    fn name(&self) -> &str;

    /// Picks the first acceptable offer among `offers` (all of this
    /// negotiator's name, in the client's order) and returns the response
    /// parameters and the value, or `None` to decline them all.
    #[allow(clippy::type_complexity)]
    fn negotiate(&self, offers: &[Extension<'_>]) -> Result<Option<(ExtensionParams, Self::Value)>, Error>;
}

/// An extension a negotiator accepted: the header element written into the
/// 101 response and the negotiator's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiatedExtension<T> {
    element: String,
    value: T,
}

impl<T> NegotiatedExtension<T> {
    /// The element written into `Sec-WebSocket-Extensions`, e.g.
    /// `permessage-deflate; server_no_context_takeover`.
    pub fn element(&self) -> &str {
        &self.element
    }

    /// The negotiator's value.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// Takes the negotiator's value.
    pub fn into_value(self) -> T {
        self.value
    }
}

/// Runs `negotiators` in order over `offers`; see [`ExtensionNegotiator`].
pub(crate) fn negotiate<T, N>(
    offers: &[Extension<'_>],
    negotiators: impl IntoIterator<Item = N>,
) -> Result<Vec<NegotiatedExtension<T>>, Error>
where
    N: core::ops::Deref,
    N::Target: ExtensionNegotiator<Value = T>,
{
    let mut accepted = Vec::new();
    for n in negotiators {
        let name = n.name();
        let mine: Vec<Extension<'_>> = offers.iter().filter(|o| o.is(name)).cloned().collect();
        if mine.is_empty() {
            continue;
        }
        if let Some((params, value)) = n.negotiate(&mine)? {
            accepted.push(NegotiatedExtension {
                element: params.element(name)?,
                value,
            });
        }
    }
    Ok(accepted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    type Flat = Vec<(String, Vec<(String, Option<String>)>)>;

    fn flat(s: &str) -> Result<Flat, Error> {
        Ok(parse_extensions(s)?
            .iter()
            .map(|e| {
                (
                    e.name().to_string(),
                    e.params()
                        .iter()
                        .map(|p| (p.name().to_string(), p.value().map(ToString::to_string)))
                        .collect(),
                )
            })
            .collect())
    }

    fn ext(name: &str, params: &[(&str, Option<&str>)]) -> (String, Vec<(String, Option<String>)>) {
        (
            name.to_string(),
            params
                .iter()
                .map(|(n, v)| (n.to_string(), v.map(ToString::to_string)))
                .collect(),
        )
    }

    #[test]
    fn valid_headers() {
        let cases: &[(&str, Flat)] = &[
            ("", vec![]),
            (" , ,", vec![]),
            ("foo", vec![ext("foo", &[])]),
            ("foo, bar", vec![ext("foo", &[]), ext("bar", &[])]),
            ("foo,bar,", vec![ext("foo", &[]), ext("bar", &[])]),
            (
                "permessage-deflate; client_max_window_bits",
                vec![ext("permessage-deflate", &[("client_max_window_bits", None)])],
            ),
            (
                "a;b=1;c ; d = 2 ,\te\t;\tf=\"g\"",
                vec![
                    ext("a", &[("b", Some("1")), ("c", None), ("d", Some("2"))]),
                    ext("e", &[("f", Some("g"))]),
                ],
            ),
            (r#"x; v="\a\b""#, vec![ext("x", &[("v", Some("ab"))])]),
            (r#"x; v="1\0""#, vec![ext("x", &[("v", Some("10"))])]),
            (
                "x; a=1; a=2, x",
                vec![ext("x", &[("a", Some("1")), ("a", Some("2"))]), ext("x", &[])],
            ),
            // RFC 6455 section 9.1's own example.
            (
                "foo, bar; baz=2",
                vec![ext("foo", &[]), ext("bar", &[("baz", Some("2"))])],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(flat(input).as_ref(), Ok(want), "{input:?}");
        }
    }

    #[test]
    fn malformed_headers() {
        for bad in [
            ";",
            "; a",
            "a;",
            "a; ",
            "a;;b",
            "a b",
            "a; b c",
            "a; b=",
            "a; b= ,c",
            "a; =1",
            "a; b=\"\"",
            "a; b=\"1",
            "a; b=\"1 2\"",
            "a; b=\"1\\\"",
            "a; b=\"x\\ y\"",
            "a; b=\"é\"",
            "a; b=1=2",
            "a=1",
            "\"a\"",
            "a; b=\"1\"x",
            "é",
            "a\u{0}",
            "a\r\nb",
        ] {
            assert_eq!(
                parse_extensions(bad),
                Err(Error::InvalidHeader("Sec-WebSocket-Extensions")),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn quoted_values_borrow_unless_escaped() {
        let offers = parse_extensions(r#"x; a="plain"; b="e\scaped""#).unwrap();
        assert!(matches!(
            offers[0].params()[0].value,
            Some(Cow::Borrowed("plain"))
        ));
        assert_eq!(offers[0].params()[1].value(), Some("escaped"));
    }

    #[test]
    fn display_round_trips() {
        let s = "a;b= \"1\" ;c,  d";
        let offers = parse_extensions(s).unwrap();
        let shown: Vec<String> = offers.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["a; b=1; c", "d"]);
        assert_eq!(parse_extensions(&shown.join(", ")).unwrap(), offers);
    }

    #[test]
    fn params_builder_rejects_non_tokens_without_changing() {
        let mut p = ExtensionParams::new();
        assert!(p.is_empty());
        p.push("a", None).unwrap();
        assert_eq!(
            p.push("b", Some("two words")),
            Err(Error::InvalidArgument("extension parameter value is not a token"))
        );
        assert_eq!(
            p.push("", None),
            Err(Error::InvalidArgument("extension parameter name is not a token"))
        );
        assert_eq!(p.as_str(), "a");
        assert_eq!(p.element("ext").unwrap(), "ext; a");
        assert_eq!(ExtensionParams::new().element("ext").unwrap(), "ext");
        assert!(p.element("e,x").is_err());
    }

    struct Fixed {
        name: &'static str,
        accept_if: &'static str,
        tag: u8,
    }

    impl ExtensionNegotiator for Fixed {
        type Value = (u8, usize);
        fn name(&self) -> &str {
            self.name
        }
        fn negotiate(&self, offers: &[Extension<'_>]) -> NegotiationResult<Self::Value> {
            for (i, o) in offers.iter().enumerate() {
                if o.param(self.accept_if).is_some() {
                    let mut p = ExtensionParams::new();
                    p.push(self.accept_if, None)?;
                    return Ok(Some((p, (self.tag, i))));
                }
            }
            Ok(None)
        }
    }

    #[test]
    fn negotiators_run_in_server_order_and_see_only_their_offers() {
        let offers = parse_extensions("b; no, a; no, B; ok, a; ok, c; ok").unwrap();
        let a = Fixed {
            name: "a",
            accept_if: "ok",
            tag: 1,
        };
        let b = Fixed {
            name: "b",
            accept_if: "ok",
            tag: 2,
        };
        let d = Fixed {
            name: "d",
            accept_if: "ok",
            tag: 3,
        };
        let got = negotiate(&offers, [&b, &d, &a]).unwrap();
        let summary: Vec<(&str, (u8, usize))> = got.iter().map(|n| (n.element(), *n.value())).collect();
        assert_eq!(summary, [("b; ok", (2, 1)), ("a; ok", (1, 1))]);
        let declined = Fixed {
            name: "a",
            accept_if: "never",
            tag: 4,
        };
        assert!(negotiate(&offers, [&declined]).unwrap().is_empty());
    }
}
