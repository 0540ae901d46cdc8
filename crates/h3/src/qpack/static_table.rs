//! The static table (RFC 9204 Appendix A): 99 entries, indexed from 0.

/// The entries, name and value, in index order.
pub const STATIC_TABLE: [(&[u8], &[u8]); 99] = [
    /*  0 */ (b":authority", b""),
    /*  1 */ (b":path", b"/"),
    /*  2 */ (b"age", b"0"),
    /*  3 */ (b"content-disposition", b""),
    /*  4 */ (b"content-length", b"0"),
    /*  5 */ (b"cookie", b""),
    /*  6 */ (b"date", b""),
    /*  7 */ (b"etag", b""),
    /*  8 */ (b"if-modified-since", b""),
    /*  9 */ (b"if-none-match", b""),
    /* 10 */ (b"last-modified", b""),
    /* 11 */ (b"link", b""),
    /* 12 */ (b"location", b""),
    /* 13 */ (b"referer", b""),
    /* 14 */ (b"set-cookie", b""),
    /* 15 */ (b":method", b"CONNECT"),
    /* 16 */ (b":method", b"DELETE"),
    /* 17 */ (b":method", b"GET"),
    /* 18 */ (b":method", b"HEAD"),
    /* 19 */ (b":method", b"OPTIONS"),
    /* 20 */ (b":method", b"POST"),
    /* 21 */ (b":method", b"PUT"),
    /* 22 */ (b":scheme", b"http"),
    /* 23 */ (b":scheme", b"https"),
    /* 24 */ (b":status", b"103"),
    /* 25 */ (b":status", b"200"),
    /* 26 */ (b":status", b"304"),
    /* 27 */ (b":status", b"404"),
    /* 28 */ (b":status", b"503"),
    /* 29 */ (b"accept", b"*/*"),
    /* 30 */ (b"accept", b"application/dns-message"),
    /* 31 */ (b"accept-encoding", b"gzip, deflate, br"),
    /* 32 */ (b"accept-ranges", b"bytes"),
    /* 33 */ (b"access-control-allow-headers", b"cache-control"),
    /* 34 */ (b"access-control-allow-headers", b"content-type"),
    /* 35 */ (b"access-control-allow-origin", b"*"),
    /* 36 */ (b"cache-control", b"max-age=0"),
    /* 37 */ (b"cache-control", b"max-age=2592000"),
    /* 38 */ (b"cache-control", b"max-age=604800"),
    /* 39 */ (b"cache-control", b"no-cache"),
    /* 40 */ (b"cache-control", b"no-store"),
    /* 41 */ (b"cache-control", b"public, max-age=31536000"),
    /* 42 */ (b"content-encoding", b"br"),
    /* 43 */ (b"content-encoding", b"gzip"),
    /* 44 */ (b"content-type", b"application/dns-message"),
    /* 45 */ (b"content-type", b"application/javascript"),
    /* 46 */ (b"content-type", b"application/json"),
    /* 47 */ (b"content-type", b"application/x-www-form-urlencoded"),
    /* 48 */ (b"content-type", b"image/gif"),
    /* 49 */ (b"content-type", b"image/jpeg"),
    /* 50 */ (b"content-type", b"image/png"),
    /* 51 */ (b"content-type", b"text/css"),
    /* 52 */ (b"content-type", b"text/html; charset=utf-8"),
    /* 53 */ (b"content-type", b"text/plain"),
    /* 54 */ (b"content-type", b"text/plain;charset=utf-8"),
    /* 55 */ (b"range", b"bytes=0-"),
    /* 56 */ (b"strict-transport-security", b"max-age=31536000"),
    /* 57 */
    (
        b"strict-transport-security",
        b"max-age=31536000; includesubdomains",
    ),
    /* 58 */
    (
        b"strict-transport-security",
        b"max-age=31536000; includesubdomains; preload",
    ),
    /* 59 */ (b"vary", b"accept-encoding"),
    /* 60 */ (b"vary", b"origin"),
    /* 61 */ (b"x-content-type-options", b"nosniff"),
    /* 62 */ (b"x-xss-protection", b"1; mode=block"),
    /* 63 */ (b":status", b"100"),
    /* 64 */ (b":status", b"204"),
    /* 65 */ (b":status", b"206"),
    /* 66 */ (b":status", b"302"),
    /* 67 */ (b":status", b"400"),
    /* 68 */ (b":status", b"403"),
    /* 69 */ (b":status", b"421"),
    /* 70 */ (b":status", b"425"),
    /* 71 */ (b":status", b"500"),
    /* 72 */ (b"accept-language", b""),
    /* 73 */ (b"access-control-allow-credentials", b"FALSE"),
    /* 74 */ (b"access-control-allow-credentials", b"TRUE"),
    /* 75 */ (b"access-control-allow-headers", b"*"),
    /* 76 */ (b"access-control-allow-methods", b"get"),
    /* 77 */ (b"access-control-allow-methods", b"get, post, options"),
    /* 78 */ (b"access-control-allow-methods", b"options"),
    /* 79 */ (b"access-control-expose-headers", b"content-length"),
    /* 80 */ (b"access-control-request-headers", b"content-type"),
    /* 81 */ (b"access-control-request-method", b"get"),
    /* 82 */ (b"access-control-request-method", b"post"),
    /* 83 */ (b"alt-svc", b"clear"),
    /* 84 */ (b"authorization", b""),
    /* 85 */
    (
        b"content-security-policy",
        b"script-src 'none'; object-src 'none'; base-uri 'none'",
    ),
    /* 86 */ (b"early-data", b"1"),
    /* 87 */ (b"expect-ct", b""),
    /* 88 */ (b"forwarded", b""),
    /* 89 */ (b"if-range", b""),
    /* 90 */ (b"origin", b""),
    /* 91 */ (b"purpose", b"prefetch"),
    /* 92 */ (b"server", b""),
    /* 93 */ (b"timing-allow-origin", b"*"),
    /* 94 */ (b"upgrade-insecure-requests", b"1"),
    /* 95 */ (b"user-agent", b""),
    /* 96 */ (b"x-forwarded-for", b""),
    /* 97 */ (b"x-frame-options", b"deny"),
    /* 98 */ (b"x-frame-options", b"sameorigin"),
];

/// The entry at `index`, or `None` past the end.
pub fn get(index: u64) -> Option<(&'static [u8], &'static [u8])> {
    usize::try_from(index)
        .ok()
        .and_then(|i| STATIC_TABLE.get(i))
        .copied()
}

/// What the static table holds for a field: its exact entry, or only an
/// entry with its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// An entry with this name and value.
    Field(usize),
    /// The first entry with this name (another value).
    Name(usize),
}

/// The best entry for a field, if any: an exact one, else the first with
/// the name.
pub fn find(name: &[u8], value: &[u8]) -> Option<Match> {
    let mut by_name = None;
    for (index, &(n, v)) in STATIC_TABLE.iter().enumerate() {
        if n == name {
            if v == value {
                return Some(Match::Field(index));
            }
            by_name.get_or_insert(index);
        }
    }
    by_name.map(Match::Name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample of Appendix A, read against the RFC: the first and last
    /// entries, the edges of each run and the longest value.
    #[test]
    fn a_sample_matches_appendix_a() {
        let sample: [(u64, &str, &str); 16] = [
            (0, ":authority", ""),
            (1, ":path", "/"),
            (14, "set-cookie", ""),
            (15, ":method", "CONNECT"),
            (17, ":method", "GET"),
            (23, ":scheme", "https"),
            (25, ":status", "200"),
            (29, "accept", "*/*"),
            (31, "accept-encoding", "gzip, deflate, br"),
            (52, "content-type", "text/html; charset=utf-8"),
            (63, ":status", "100"),
            (71, ":status", "500"),
            (73, "access-control-allow-credentials", "FALSE"),
            (
                85,
                "content-security-policy",
                "script-src 'none'; object-src 'none'; base-uri 'none'",
            ),
            (95, "user-agent", ""),
            (98, "x-frame-options", "sameorigin"),
        ];
        for (index, name, value) in sample {
            assert_eq!(get(index), Some((name.as_bytes(), value.as_bytes())), "{index}");
        }
        assert_eq!(get(99), None);
        assert_eq!(get(u64::MAX), None);
        assert_eq!(STATIC_TABLE.len(), 99);
    }

    #[test]
    fn names_are_lowercase_and_find_prefers_exact_entries() {
        for (name, _) in STATIC_TABLE {
            assert!(!name.iter().any(u8::is_ascii_uppercase));
        }
        assert_eq!(find(b":method", b"GET"), Some(Match::Field(17)));
        assert_eq!(find(b":method", b"PATCH"), Some(Match::Name(15)));
        assert_eq!(find(b"x-custom", b"1"), None);
        assert_eq!(find(b":status", b"425"), Some(Match::Field(70)));
    }
}
