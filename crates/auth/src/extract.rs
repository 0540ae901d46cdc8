//! Where a token comes from: pure functions on header values and
//! messages, no I/O.
//!
//! Each returns the token only if it has the syntax of a JWT (1 to
//! [`MAX_TOKEN_LEN`] bytes of base64url characters and dots), and `None`
//! for anything else: no such header part, a malformed one, an ambiguous
//! one. Whether the token is good is [`verify`](fn@crate::verify::verify)'s to say.

use serde::Deserialize;

use crate::limits::MAX_TOKEN_LEN;
use crate::object::Object;

/// The name of the query parameter [`query_token`] reads.
pub const QUERY_PARAMETER: &str = "token";

/// Whether `token` has the syntax of a compact JWS: 1 to
/// [`MAX_TOKEN_LEN`] bytes of `A-Z a-z 0-9 - _ .`.
pub fn is_token_syntax(token: &str) -> bool {
    (1..=MAX_TOKEN_LEN).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn token(candidate: &str) -> Option<&str> {
    is_token_syntax(candidate).then_some(candidate)
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The token of an `Authorization` header value of the `Bearer` scheme
/// (RFC 6750, section 2.1): the scheme in any case, one or more spaces,
/// the token; spaces and tabs around the whole value are allowed.
///
/// ```
/// use tether_auth::bearer_token;
///
/// assert_eq!(bearer_token("Bearer eyJ.eyJ.sig"), Some("eyJ.eyJ.sig"));
/// assert_eq!(bearer_token("bearer   eyJ.eyJ.sig "), Some("eyJ.eyJ.sig"));
/// assert_eq!(bearer_token("Basic dXNlcjpwYXNz"), None);
/// assert_eq!(bearer_token("Bearer"), None);
/// ```
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let value = authorization.trim_matches(is_ows);
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    token(rest.trim_start_matches(' '))
}

/// The token in the cookie `name` of a `Cookie` header value (RFC 6265,
/// section 4.2: `a=1; b=2`), its value unquoted if it is in double
/// quotes. Spaces and tabs around names and values are skipped, and pairs
/// without `=` ignored, as browsers send them.
///
/// A cookie of that name that comes twice gives `None`, whatever the
/// values: a cookie set by a sibling subdomain or for another path can
/// shadow the real one, and a server cannot tell which is which. Cookie
/// names are compared case-sensitively. For HTTP/2, whose cookies may come
/// in several headers, join them with `"; "` first (RFC 9113, section
/// 8.2.3).
///
/// ```
/// use tether_auth::cookie_token;
///
/// assert_eq!(cookie_token("theme=dark; auth=eyJ.eyJ.sig", "auth"), Some("eyJ.eyJ.sig"));
/// assert_eq!(cookie_token("auth=\"eyJ.eyJ.sig\"", "auth"), Some("eyJ.eyJ.sig"));
/// assert_eq!(cookie_token("auth=a.b.c; auth=a.b.c", "auth"), None);
/// assert_eq!(cookie_token("Auth=a.b.c", "auth"), None);
/// ```
pub fn cookie_token<'a>(cookie: &'a str, name: &str) -> Option<&'a str> {
    let mut found = None;
    for pair in cookie.split(';') {
        let Some((n, value)) = pair.split_once('=') else {
            continue;
        };
        if n.trim_matches(is_ows) != name {
            continue;
        }
        if found.is_some() {
            return None;
        }
        let value = value.trim_matches(is_ows);
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        found = Some(value);
    }
    token(found?)
}

/// The token of the `token` parameter of a query string (`a=1&token=...`,
/// with or without its leading `?`), percent-decoded (`+` is a space, as in
/// forms; a space is never part of a token). A `token` parameter that
/// comes twice, or whose escapes are broken, gives `None`.
///
/// ```
/// use tether_auth::query_token;
///
/// assert_eq!(query_token("?topic=news&token=eyJ.eyJ.sig").as_deref(), Some("eyJ.eyJ.sig"));
/// assert_eq!(query_token("token=eyJ%2EeyJ.sig").as_deref(), Some("eyJ.eyJ.sig"));
/// assert_eq!(query_token("token=a.b.c&token=a.b.c"), None);
/// assert_eq!(query_token("tokens=a.b.c"), None);
/// ```
pub fn query_token(query: &str) -> Option<String> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut found = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        // "token" is 5 bytes; escaped, 15 at most: a longer key is not it.
        if key.len() > 3 * QUERY_PARAMETER.len() || percent_decode(key).as_deref() != Some(QUERY_PARAMETER) {
            continue;
        }
        if found.is_some() {
            return None;
        }
        found = Some(value);
    }
    let value = found?;
    if value.len() > 3 * MAX_TOKEN_LEN {
        return None;
    }
    let value = percent_decode(value)?;
    is_token_syntax(&value).then_some(value)
}

/// `application/x-www-form-urlencoded` decoding, to text; `None` for a
/// broken escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The token of a WebSocket first message of the form
/// `{"type":"auth","token":"..."}` (JSON; members in any order, no
/// others). Any other message, or one longer than [`MAX_TOKEN_LEN`] and
/// a little, is not an auth message: `None`.
///
/// ```
/// use tether_auth::ws_auth_token;
///
/// assert_eq!(ws_auth_token(r#"{"type":"auth","token":"eyJ.eyJ.sig"}"#).as_deref(), Some("eyJ.eyJ.sig"));
/// assert_eq!(ws_auth_token(r#"{"type":"subscribe","topic":"news"}"#), None);
/// ```
pub fn ws_auth_token(message: &str) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Auth {
        #[serde(rename = "type")]
        kind: String,
        token: String,
    }
    // Room for the members' names and JSON escapes of a few characters.
    if message.len() > MAX_TOKEN_LEN + 256 {
        return None;
    }
    let Object(auth) = serde_json::from_str::<Object<Auth>>(message).ok()?;
    (auth.kind == "auth" && is_token_syntax(&auth.token)).then_some(auth.token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln-_";

    #[test]
    fn syntax() {
        assert!(is_token_syntax(T));
        assert!(is_token_syntax(&"a".repeat(MAX_TOKEN_LEN)));
        assert!(!is_token_syntax(&"a".repeat(MAX_TOKEN_LEN + 1)));
        for bad in ["", "a b", "a+b", "a/b", "a=", "a\0", "é"] {
            assert!(!is_token_syntax(bad), "{bad:?}");
        }
    }

    #[test]
    fn bearer() {
        assert_eq!(bearer_token(&format!("Bearer {T}")), Some(T));
        assert_eq!(bearer_token(&format!("BEARER {T}")), Some(T));
        assert_eq!(bearer_token(&format!("bEaReR {T}")), Some(T));
        assert_eq!(bearer_token(&format!("\t Bearer  {T}\t ")), Some(T));
        for bad in [
            String::new(),
            "Bearer".into(),
            "Bearer ".into(),
            "Bearer    ".into(),
            T.into(),
            format!("Bearer{T}"),
            format!("Bearer\t{T}"),
            format!("Basic {T}"),
            format!("Bearers {T}"),
            format!("Bearer {T} {T}"),
            format!("Bearer {T}="),
            format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1)),
            format!("Bearer {}", "a".repeat(1 << 20)),
        ] {
            assert_eq!(bearer_token(&bad), None, "{bad:.40}");
        }
    }

    #[test]
    fn cookie() {
        assert_eq!(cookie_token(&format!("auth={T}"), "auth"), Some(T));
        assert_eq!(cookie_token(&format!("a=1; auth={T}; b=2"), "auth"), Some(T));
        assert_eq!(cookie_token(&format!("a=1;auth={T};b=2"), "auth"), Some(T));
        assert_eq!(cookie_token(&format!(" a=1 ;\tauth = {T} ; b"), "auth"), Some(T));
        assert_eq!(cookie_token(&format!("auth=\"{T}\""), "auth"), Some(T));
        assert_eq!(cookie_token(&format!("novalue; auth={T}"), "auth"), Some(T));
        assert_eq!(cookie_token(&format!("auth={T}; auth"), "auth"), Some(T));
        // A value with '=' in it is split at the first '=' only.
        assert_eq!(cookie_token("x=a=b; auth=a.b.c", "auth"), Some("a.b.c"));
        assert_eq!(cookie_token("xauth=a.b.c; authx=a.b.c", "auth"), None);
        for bad in [
            String::new(),
            "auth".into(),
            "auth=".into(),
            "auth=\"\"".into(),
            "auth=\"".into(),
            format!("auth=\"{T}"),
            format!("auth={T}\""),
            format!("auth=\"\"{T}\"\""),
            format!("auth={T}; auth={T}"),
            format!("auth={T}; auth=other.x.y"),
            format!("auth={T};auth="),
            format!("AUTH={T}"),
            format!("auth={T} x"),
            format!("auth={}", "a".repeat(MAX_TOKEN_LEN + 1)),
            format!("{}auth={T}", "x=1;".repeat(10_000)) + ";auth=a",
        ] {
            assert_eq!(cookie_token(&bad, "auth"), None, "{bad:.60}");
        }
        // Many cookies, the one asked for last: found, in one pass.
        let many = format!("{}auth={T}", "x=1; ".repeat(10_000));
        assert_eq!(cookie_token(&many, "auth"), Some(T));
    }

    #[test]
    fn query() {
        assert_eq!(query_token(&format!("token={T}")).as_deref(), Some(T));
        assert_eq!(query_token(&format!("?token={T}")).as_deref(), Some(T));
        assert_eq!(query_token(&format!("a=1&token={T}&b")).as_deref(), Some(T));
        assert_eq!(query_token(&format!("%74oken={T}")).as_deref(), Some(T));
        assert_eq!(query_token("token=a%2eb%2Ec").as_deref(), Some("a.b.c"));
        for bad in [
            String::new(),
            "?".into(),
            "token".into(),
            "token=".into(),
            format!("token={T}&token={T}"),
            format!("token={T}&%74oken=x"),
            format!("token={T}&token"),
            format!("Token={T}"),
            format!("tokens={T}"),
            format!("token={T}+"),
            format!("token={T}%20"),
            "token=a%2".into(),
            "token=a%".into(),
            "token=a%zz".into(),
            "token=%C3%A9".into(),
            "token=%FF".into(),
            "token=a%2Fb".into(),
            format!("token={}", "a".repeat(MAX_TOKEN_LEN + 1)),
            format!("token={}", "%41".repeat(MAX_TOKEN_LEN + 1)),
            format!("token={}", "a".repeat(1 << 20)),
        ] {
            assert_eq!(query_token(&bad), None, "{bad:.60}");
        }
        assert_eq!(
            query_token(&format!("token={}", "%41".repeat(MAX_TOKEN_LEN))).map(|t| t.len()),
            Some(MAX_TOKEN_LEN)
        );
        assert_eq!(percent_decode("a+b%20c"), Some("a b c".into()));
    }

    #[test]
    fn ws_message() {
        assert_eq!(
            ws_auth_token(&format!(r#"{{"type":"auth","token":"{T}"}}"#)).as_deref(),
            Some(T)
        );
        assert_eq!(
            ws_auth_token(&format!(r#" {{ "token" : "{T}" , "type" : "auth" }} "#)).as_deref(),
            Some(T)
        );
        assert_eq!(
            ws_auth_token(r#"{"type":"auth","token":"a\u002eb.c"}"#).as_deref(),
            Some("a.b.c")
        );
        for bad in [
            String::new(),
            "auth".into(),
            "null".into(),
            "[]".into(),
            format!(r#"["auth","{T}"]"#),
            format!(r#"{{"type":"Auth","token":"{T}"}}"#),
            r#"{"type":"auth"}"#.into(),
            format!(r#"{{"token":"{T}"}}"#),
            format!(r#"{{"type":"auth","token":"{T}","topic":"x"}}"#),
            format!(r#"{{"type":"auth","token":"{T}","token":"{T}"}}"#),
            format!(r#"{{"type":"auth","type":"auth","token":"{T}"}}"#),
            r#"{"type":"auth","token":1}"#.into(),
            format!(r#"{{"type":"auth","token":"{T} "}}"#),
            r#"{"type":"auth","token":""}"#.into(),
            format!(r#"{{"type":"auth","token":"{T}"}} x"#),
            format!(r#"{{"type":"auth","token":"{T}""#),
            format!(r#"{{"type":"auth","token":"{}"}}"#, "a".repeat(MAX_TOKEN_LEN + 1)),
            format!(r#"{{"type":"auth","token":"{T}"}}{}"#, " ".repeat(1 << 20)),
            "[".repeat(100_000),
        ] {
            assert_eq!(ws_auth_token(&bad), None, "{bad:.60}");
        }
    }
}
