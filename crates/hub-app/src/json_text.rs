//! A cursor over JSON text (RFC 8259) for the hub's small flat objects
//! (a WebSocket publisher's envelope, a multiplexed socket's messages):
//! strings with every escape checked, literals, no nesting (so no
//! recursion), and an error that says what was wrong. A value the hub
//! passes on without reading (a call's data) is checked whole and
//! taken as its text, its depth bounded and walked without recursion.

pub(crate) struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str) -> Cursor<'a> {
        Cursor {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    /// The next byte, not taken.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Whether every byte was read.
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// Takes `word` (a literal such as `true`) if it comes next.
    pub(crate) fn literal(&mut self, word: &str) -> bool {
        let hit = self
            .bytes
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(word.as_bytes()));
        if hit {
            self.pos += word.len();
        }
        hit
    }

    pub(crate) fn skip_space(&mut self) {
        while matches!(self.bytes.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        let hit = self.bytes.get(self.pos) == Some(&byte);
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// A string literal, from its opening quote.
    pub(crate) fn string(&mut self) -> Result<String, String> {
        if !self.eat(b'"') {
            return Err("malformed JSON: a string expected".to_owned());
        }
        let mut out = String::new();
        loop {
            let start = self.pos;
            while self
                .bytes
                .get(self.pos)
                .is_some_and(|&b| b != b'"' && b != b'\\' && b >= 0x20)
            {
                self.pos += 1;
            }
            // Both ends are at ASCII bytes (or the end): char boundaries.
            out.push_str(&self.text[start..self.pos]);
            match self.bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    out.push(self.escape()?);
                }
                Some(_) => return Err("malformed JSON: a control character in a string".to_owned()),
                None => return Err("malformed JSON: an unterminated string".to_owned()),
            }
        }
    }

    /// What follows a backslash.
    fn escape(&mut self) -> Result<char, String> {
        let byte = self.bytes.get(self.pos).copied();
        self.pos += 1;
        Ok(match byte {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let unit = self.hex4()?;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        if !(self.eat(b'\\') && self.eat(b'u')) {
                            return Err("malformed JSON: a lone surrogate".to_owned());
                        }
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err("malformed JSON: a lone surrogate".to_owned());
                        }
                        0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err("malformed JSON: a lone surrogate".to_owned()),
                    _ => unit,
                };
                char::from_u32(code).ok_or_else(|| "malformed JSON: a bad \\u escape".to_owned())?
            }
            _ => return Err("malformed JSON: a bad escape".to_owned()),
        })
    }

    /// Any JSON value, checked, as the text it is: nested at most
    /// `max_depth` arrays and objects deep.
    pub(crate) fn raw_value(&mut self, max_depth: usize) -> Result<&'a str, String> {
        let start = self.pos;
        // The containers open around the cursor: `true` for an object.
        let mut open: Vec<bool> = Vec::new();
        loop {
            self.skip_space();
            // A value.
            match self.peek() {
                Some(b'{' | b'[') => {
                    let object = self.peek() == Some(b'{');
                    self.pos += 1;
                    if open.len() >= max_depth {
                        return Err(format!("a value nested more than {max_depth} deep"));
                    }
                    open.push(object);
                    self.skip_space();
                    let close = if object { b'}' } else { b']' };
                    if self.eat(close) {
                        open.pop();
                    } else {
                        if object {
                            self.member_name()?;
                        }
                        continue;
                    }
                }
                Some(b'"') => drop(self.string()?),
                Some(b'-' | b'0'..=b'9') => self.number()?,
                _ if self.literal("true") || self.literal("false") || self.literal("null") => {}
                _ => return Err("malformed JSON: a value expected".to_owned()),
            }
            // After a value: the next member or element, or the end of
            // its containers.
            loop {
                let Some(&object) = open.last() else {
                    return Ok(&self.text[start..self.pos]);
                };
                self.skip_space();
                if self.eat(b',') {
                    if object {
                        self.skip_space();
                        self.member_name()?;
                    }
                    break;
                }
                if self.eat(if object { b'}' } else { b']' }) {
                    open.pop();
                    continue;
                }
                return Err("malformed JSON: ',' or the container's end expected".to_owned());
            }
        }
    }

    /// A member's name and its colon, in an object being skipped.
    fn member_name(&mut self) -> Result<(), String> {
        self.string()?;
        self.skip_space();
        if self.eat(b':') {
            Ok(())
        } else {
            Err("malformed JSON: ':' expected".to_owned())
        }
    }

    /// A number, as RFC 8259 writes one.
    fn number(&mut self) -> Result<(), String> {
        let bad = || "malformed JSON: a bad number".to_owned();
        self.eat(b'-');
        if !self.eat(b'0') && self.digits() == 0 {
            return Err(bad());
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(bad());
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _ = self.eat(b'+') || self.eat(b'-');
            if self.digits() == 0 {
                return Err(bad());
            }
        }
        Ok(())
    }

    /// Decimal digits taken: how many.
    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| "malformed JSON: a short \\u escape".to_owned())?;
        let mut value = 0;
        for &d in digits {
            let nibble = char::from(d)
                .to_digit(16)
                .ok_or_else(|| "malformed JSON: a bad \\u escape".to_owned())?;
            value = value << 4 | nibble;
        }
        self.pos += 4;
        Ok(value)
    }
}

/// The members of one flat JSON object, in order: `not_object` is the
/// error for text that does not start as an object (it names what was
/// expected), and `value` reads each member's value from the cursor (its
/// name given, to say which one is wrong), refusing the kinds its caller
/// does not take. Nothing may follow the object.
pub(crate) fn flat_object<V>(
    text: &str,
    not_object: &str,
    mut value: impl FnMut(&mut Cursor<'_>, &str) -> Result<V, String>,
) -> Result<Vec<(String, V)>, String> {
    let mut p = Cursor::new(text);
    p.skip_space();
    if !p.eat(b'{') {
        return Err(not_object.to_owned());
    }
    let mut members = Vec::new();
    p.skip_space();
    if !p.eat(b'}') {
        loop {
            p.skip_space();
            let name = p.string()?;
            p.skip_space();
            if !p.eat(b':') {
                return Err("malformed JSON: ':' expected".to_owned());
            }
            p.skip_space();
            let read = value(&mut p, &name)?;
            members.push((name, read));
            p.skip_space();
            if p.eat(b',') {
                continue;
            }
            if p.eat(b'}') {
                break;
            }
            return Err("malformed JSON: ',' or '}' expected".to_owned());
        }
    }
    p.skip_space();
    if !p.at_end() {
        return Err("malformed JSON: text after the object".to_owned());
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Result<&str, String> {
        let mut p = Cursor::new(text);
        p.raw_value(4)
    }

    #[test]
    fn a_raw_value_is_checked_whole_and_taken_as_its_text() {
        for good in [
            "0",
            "-1.5e+3",
            "\"a\\u00e9\"",
            "null",
            "[]",
            "{}",
            "[1, {\"a\" : [true, false, null]}, \"x\"]",
            "{\"a\":{\"b\":{\"c\":[]}}}",
        ] {
            assert_eq!(raw(good), Ok(good), "{good}");
        }
        // What follows the value is the caller's (a leading zero ends a
        // number: the caller finds the rest is not its `,` or `}`).
        assert_eq!(raw("[1,2] , \"next\""), Ok("[1,2]"));
        assert_eq!(raw("01"), Ok("0"));
        for bad in [
            "",
            "-",
            "1.",
            "1e",
            "[1,]",
            "[1 2]",
            "{\"a\"}",
            "{\"a\":}",
            "{a:1}",
            "[",
            "{\"a\":1",
            "nul",
            "\"\\x\"",
            "[[[[[1]]]]]",
            "'a'",
        ] {
            assert!(raw(bad).is_err(), "{bad:?} taken");
        }
    }

    #[test]
    fn a_raw_value_one_byte_short_is_never_taken() {
        let whole = "{\"a\":[1,\"b\",{\"c\":null}],\"d\":-2.5e3}";
        for cut in 0..whole.len() {
            assert!(raw(&whole[..cut]).is_err(), "{:?} taken", &whole[..cut]);
        }
        assert_eq!(raw(whole), Ok(whole));
    }
}
