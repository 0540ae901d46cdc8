//! The few Kafka requests the consumer makes itself (the client it uses
//! for fetching has no consumer groups): their encoding, and a checked
//! reader of the broker's answers, every length bounded.

use crate::error::Error;

/// The largest answer read from a coordinator (an offset answer for a
/// few hundred partitions is a few KiB).
pub(crate) const MAX_RESPONSE: usize = 1 << 20;

/// A request's bytes: the size prefix, the header (version 1: key,
/// version, correlation id, client id) and the body.
pub(crate) struct Request {
    bytes: Vec<u8>,
}

impl Request {
    pub(crate) fn new(api_key: i16, version: i16, correlation: i32, client_id: &str) -> Request {
        let mut request = Request { bytes: vec![0; 4] };
        request.i16(api_key);
        request.i16(version);
        request.i32(correlation);
        request.string(client_id);
        request
    }

    /// An encoding with no size nor header: a consumer protocol's
    /// subscription or assignment, carried as bytes in a request.
    pub(crate) fn plain() -> Request {
        Request { bytes: Vec::new() }
    }

    /// The bytes of a [`Request::plain`].
    pub(crate) fn into_plain(self) -> Vec<u8> {
        self.bytes
    }

    pub(crate) fn i8(&mut self, v: i8) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn i16(&mut self, v: i16) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn i32(&mut self, v: i32) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn i64(&mut self, v: i64) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }

    /// A string; the callers' strings (group, topic names) are checked
    /// short at configuration.
    pub(crate) fn string(&mut self, s: &str) {
        self.i16(i16::try_from(s.len()).unwrap_or(i16::MAX));
        self.bytes.extend_from_slice(s.as_bytes());
    }

    /// Bytes, their length first.
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.i32(i32::try_from(b.len()).unwrap_or(i32::MAX));
        self.bytes.extend_from_slice(b);
    }

    /// An array's length.
    pub(crate) fn len(&mut self, n: usize) {
        self.i32(i32::try_from(n).unwrap_or(i32::MAX));
    }

    /// The bytes to send, the size prefix filled in.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let size = u32::try_from(self.bytes.len() - 4).unwrap_or(u32::MAX);
        if let Some(prefix) = self.bytes.get_mut(..4) {
            prefix.copy_from_slice(&size.to_be_bytes());
        }
        self.bytes
    }
}

/// A checked reader of an answer's body: every read that would go past
/// its end is an error, never a panic.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.bytes.len() < n {
            return Err(Error::Protocol("an answer ends early".to_owned()));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn i16(&mut self) -> Result<i16, Error> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, Error> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, Error> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// A nullable string (`None` for null).
    pub(crate) fn string(&mut self) -> Result<Option<String>, Error> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let bytes = self.take(usize::from(len.unsigned_abs()))?;
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| Error::Protocol("a string in an answer is not UTF-8".to_owned()))
    }

    /// Nullable bytes (empty for null), at most what is left.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(&[]);
        }
        let len = usize::try_from(len).map_err(|_| Error::Protocol("bytes too long".to_owned()))?;
        self.take(len)
    }

    /// An array's length: at most what the bytes left could hold at
    /// `min_item` bytes an item, so that no length allocates more than
    /// the answer's size.
    pub(crate) fn len(&mut self, min_item: usize) -> Result<usize, Error> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(0);
        }
        let n = usize::try_from(n).map_err(|_| Error::Protocol("an array too long".to_owned()))?;
        if n.saturating_mul(min_item.max(1)) > self.bytes.len() {
            return Err(Error::Protocol("an array longer than its answer".to_owned()));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_carries_its_size_and_header() {
        let mut request = Request::new(10, 1, 7, "tether");
        request.string("g");
        request.i8(0);
        let bytes = request.finish();
        assert_eq!(
            &bytes[..4],
            &u32::try_from(bytes.len() - 4).unwrap().to_be_bytes()
        );
        assert_eq!(&bytes[4..12], &[0, 10, 0, 1, 0, 0, 0, 7]);
        assert_eq!(&bytes[12..20], b"\0\x06tether");
        assert_eq!(&bytes[20..], b"\0\x01g\0");
    }

    #[test]
    fn reads_past_the_end_are_errors() {
        let mut reader = Reader::new(&[0, 5, b'a']);
        assert!(reader.string().is_err());
        let mut reader = Reader::new(&[0xff, 0xff]);
        assert_eq!(reader.string().unwrap(), None);
        assert!(reader.i32().is_err());
        // An array length claiming more items than the bytes left.
        let mut reader = Reader::new(&[0, 0, 0x10, 0, 1, 2, 3]);
        assert!(reader.len(4).is_err());
        let mut reader = Reader::new(&[0, 2, 0xff, 0xfe]);
        assert!(reader.string().is_err(), "not UTF-8");
    }
}
