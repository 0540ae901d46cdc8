//! The sign-in form's body (`application/x-www-form-urlencoded`), read.

/// The value of field `name` of a form body
/// (`application/x-www-form-urlencoded`), percent-decoded; `None` if it
/// is missing, comes twice, or is not UTF-8 once decoded.
pub(super) fn form_field(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    let mut found = None;
    for pair in body.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(key)? == name {
            if found.is_some() {
                return None;
            }
            found = Some(percent_decode(value)?);
        }
    }
    found
}

/// `+` as a space and `%XX` as its byte; `None` for a broken escape or
/// bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        out.push(match b {
            b'+' => b' ',
            b'%' => {
                let hi = char::from(bytes.next()?).to_digit(16)?;
                let lo = char::from(bytes.next()?).to_digit(16)?;
                u8::try_from(hi * 16 + lo).ok()?
            }
            b => b,
        });
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields() {
        assert_eq!(
            form_field(b"token=a%2Bb%3D%3D+c", "token").as_deref(),
            Some("a+b== c")
        );
        assert_eq!(form_field(b"x=1&token=t", "token").as_deref(), Some("t"));
        assert_eq!(form_field(b"token=t&token=t", "token"), None);
        assert_eq!(form_field(b"token=%2", "token"), None);
        assert_eq!(form_field(b"token=%zz", "token"), None);
        assert_eq!(form_field(b"token=%ff", "token"), None);
        assert_eq!(form_field(b"other=t", "token"), None);
        assert_eq!(form_field(b"token=", "token").as_deref(), Some(""));
    }
}
