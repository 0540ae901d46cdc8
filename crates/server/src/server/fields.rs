//! Heads as HTTP/2 and HTTP/3 carry them (fields, with pseudo-fields for
//! the request line and the status): a request's fields turned into what
//! the application's [`crate::app::Request`] shows, and a response's into
//! the field list both versions encode (HPACK, QPACK).
//!
//! Calling contract: plain functions of a decoded request
//! ([`tether_h2::connection::Request`], which tether-h3 decodes into too)
//! or of a response's parts; nothing here knows a stream or a connection.

use tether_h2::connection::Request as FieldRequest;
use tether_h2::hpack::Field;

use crate::http::is_safe_field;

/// Header fields the server never sends over HTTP/2 or HTTP/3 (RFC 9113
/// §8.2.2, RFC 9114 §4.2), and those it writes itself.
pub(super) fn sendable(name: &str, value: &str) -> bool {
    is_safe_field(name, value)
        && ![
            "connection",
            "keep-alive",
            "proxy-connection",
            "transfer-encoding",
            "upgrade",
            "content-length",
            "te",
        ]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
}

/// A response head: `:status`, then [`header_fields`].
pub(super) fn response_fields<'h>(
    status: u16,
    content_type: &str,
    content_length: Option<usize>,
    headers: impl IntoIterator<Item = (&'h str, &'h str)>,
) -> Vec<Field> {
    let mut fields = vec![Field::new(":status", status.to_string())];
    fields.extend(header_fields(content_type, content_length, headers));
    fields
}

/// A response head's fields after the status: the content type and
/// length if given, and the further fields, lower-cased, without
/// connection-specific ones.
pub(super) fn header_fields<'h>(
    content_type: &str,
    content_length: Option<usize>,
    headers: impl IntoIterator<Item = (&'h str, &'h str)>,
) -> Vec<Field> {
    let mut fields = Vec::new();
    if !content_type.is_empty() && is_safe_field("content-type", content_type) {
        fields.push(Field::new("content-type", content_type));
    }
    if let Some(length) = content_length {
        fields.push(Field::new("content-length", length.to_string()));
    }
    for (name, value) in headers {
        if sendable(name, value) {
            fields.push(Field::new(name.to_ascii_lowercase(), value));
        }
    }
    fields
}

/// The request's fields as the application's [`crate::app::Request`]
/// shows them: `host` from `:authority` when there is none, and the
/// `cookie` fields joined into one (RFC 9113 §8.2.3, RFC 9114 §4.2.1).
/// Names are ASCII (checked by the decoder); a value that is not UTF-8 is
/// still given as bytes.
pub(super) fn app_headers<'r>(
    request: &'r FieldRequest,
    cookie: &'r Option<Vec<u8>>,
) -> Vec<httparse::Header<'r>> {
    let mut headers = Vec::with_capacity(request.fields.len() + 1);
    if request.field("host").is_none()
        && let Some(authority) = request.authority.as_deref()
    {
        headers.push(httparse::Header {
            name: "host",
            value: authority.as_bytes(),
        });
    }
    for field in &request.fields {
        if field.name == b"cookie" {
            continue;
        }
        if let Ok(name) = std::str::from_utf8(&field.name) {
            headers.push(httparse::Header {
                name,
                value: &field.value,
            });
        }
    }
    if let Some(cookie) = cookie {
        headers.push(httparse::Header {
            name: "cookie",
            value: cookie,
        });
    }
    headers
}

/// The request's `cookie` fields joined with `; `, if it has any.
pub(super) fn joined_cookies(request: &FieldRequest) -> Option<Vec<u8>> {
    let mut cookies = request.fields.iter().filter(|f| f.name == b"cookie");
    let mut joined = cookies.next()?.value.clone();
    for more in cookies {
        joined.extend_from_slice(b"; ");
        joined.extend_from_slice(&more.value);
    }
    Some(joined)
}

/// The method the application sees: an extended CONNECT for a WebSocket
/// (or a WebTransport session, served as one) is the GET of an HTTP/1.1
/// upgrade.
pub(super) fn app_method(request: &FieldRequest) -> &str {
    if request.is_extended_connect("websocket") || request.is_extended_connect("webtransport") {
        "GET"
    } else {
        &request.method
    }
}

/// The request's `:path`, split at `?` into path and query.
pub(super) fn split_target(request: &FieldRequest) -> (&str, Option<&str>) {
    let target = request.path.as_deref().unwrap_or("/");
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}
