//! The cookies of a request, read from its `Cookie` headers.

use httparse::Header;

/// The cookies of a request's `Cookie` headers, as `(name, value)`.
///
/// Pairs are split on `;`, then at the first `=`, and trimmed; a value in
/// double quotes loses them (RFC 6265 section 4.1.1). A pair without `=`
/// is yielded with an empty name, as browsers send a cookie whose name is
/// empty. Values are not decoded. A `Cookie` header that is not UTF-8 is
/// skipped whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cookies<'a> {
    pub(super) headers: &'a [Header<'a>],
    pub(super) rest: Option<&'a str>,
}

impl<'a> Iterator for Cookies<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(rest) = self.rest {
                let (pair, tail) = rest.split_once(';').map_or((rest, None), |(p, t)| (p, Some(t)));
                self.rest = tail;
                let pair = pair.trim_matches([' ', '\t']);
                if pair.is_empty() {
                    continue;
                }
                let (name, value) = pair.split_once('=').unwrap_or(("", pair));
                let value = value.trim_matches([' ', '\t']);
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                return Some((name.trim_end_matches([' ', '\t']), value));
            }
            let (first, others) = self.headers.split_first()?;
            self.headers = others;
            if first.name.eq_ignore_ascii_case("Cookie") {
                self.rest = core::str::from_utf8(first.value).ok();
            }
        }
    }
}
