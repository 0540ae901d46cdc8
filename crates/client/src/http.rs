//! Just enough HTTP/1.1 for an event stream, on tether-http1: the
//! response head, and a body framed by `Transfer-Encoding: chunked`, by
//! `Content-Length`, or by the end of the connection.

use tether_http1::{BodyDecoder, EMPTY_HEADER, Framing, Limits, Status};

use crate::error::Error;

/// The longest trailer section taken at the end of a chunked body.
const MAX_TRAILERS: usize = 64 * 1024;

/// The response head fields the event-stream client looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) status: u16,
    pub(crate) reason: String,
    pub(crate) content_type: Option<String>,
    pub(crate) location: Option<String>,
    pub(crate) cache_control: Option<String>,
    pub(crate) body: Body,
}

/// Parses the head of a response to a `GET` from the start of `buf`:
/// `None` while incomplete, else the head and its length. The caller
/// bounds the head's size.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, Error> {
    let mut headers = [EMPTY_HEADER; 64];
    let limits = Limits::new().max_head(usize::MAX);
    let (head, used) = match tether_http1::parse_response(buf, &mut headers, "GET", &limits) {
        Ok(Status::Complete(parsed)) => parsed,
        Ok(Status::Partial) => return Ok(None),
        Err(e) => return Err(Error::Http(format!("bad response head: {e}"))),
    };
    let value = |name: &str| {
        head.header(name)
            .map(|v| String::from_utf8_lossy(v).trim().to_owned())
    };
    Ok(Some((
        Head {
            status: head.status(),
            reason: head.reason().to_owned(),
            content_type: value("Content-Type"),
            location: value("Location"),
            cache_control: value("Cache-Control"),
            body: Body::new(head.framing()),
        },
        used,
    )))
}

/// How the body is framed, and how far it has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Body {
    framing: Framing,
    decoder: BodyDecoder,
}

impl Body {
    /// A body framed by `framing`. An event stream has no size limit; a
    /// bare LF is taken for CRLF in chunk lines, as servers in the wild
    /// send them.
    pub(crate) fn new(framing: Framing) -> Body {
        Body {
            framing,
            decoder: BodyDecoder::new(framing, u64::MAX, MAX_TRAILERS).allow_bare_lf(true),
        }
    }

    /// Decodes `input`, handing body bytes to `sink`. Returns true once the
    /// body is complete (what follows it is ignored).
    pub(crate) fn decode(&mut self, input: &[u8], sink: &mut dyn FnMut(&[u8])) -> Result<bool, Error> {
        match self.decoder.decode_with(input, sink) {
            Ok((_, done)) => Ok(done),
            Err(e) => Err(Error::Http(e.to_string())),
        }
    }

    /// Whether the body is complete.
    pub(crate) fn is_complete(&self) -> bool {
        self.decoder.is_done()
    }

    /// Whether the body ends with the connection.
    pub(crate) fn until_close(&self) -> bool {
        self.framing == Framing::UntilClose
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` whole, one byte at a time, and split at every
    /// position; all three must agree.
    fn decode_all(body: &Body, input: &[u8]) -> Result<(Vec<u8>, bool), String> {
        let run = |pieces: &[&[u8]]| -> Result<(Vec<u8>, bool), String> {
            let mut body = body.clone();
            let mut out = Vec::new();
            let mut done = false;
            for piece in pieces {
                done = body
                    .decode(piece, &mut |b| out.extend_from_slice(b))
                    .map_err(|e| e.to_string())?;
            }
            Ok((out, done))
        };
        let whole = run(&[input]);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run(&bytes), whole, "byte at a time");
        for split in 0..input.len() {
            let (a, b) = input.split_at(split);
            assert_eq!(run(&[a, b]), whole, "split at {split}");
        }
        whole
    }

    #[test]
    fn chunked_bodies() {
        let chunked = Body::new(Framing::Chunked);
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello", true),
            (
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\ntrailing junk",
                b"hello world",
                true,
            ),
            (
                b"A;ext=1\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
                b"0123456789",
                true,
            ),
            (b"a\n0123456789\n0\n\n", b"0123456789", true),
            (b"1f\r\n", b"", false),
            (b"3\r\nabc\r\n2\r\nde", b"abcde", false),
        ];
        for &(input, want, done) in cases {
            let got = decode_all(&chunked, input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(got, (want.to_vec(), done), "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn chunked_errors() {
        let cases: &[&[u8]] = &[
            b"\r\n",
            b"zz\r\n",
            b"5\r\nhelloX",
            b"5\rX",
            b"11111111111111111\r\n",
        ];
        for &input in cases {
            let mut body = Body::new(Framing::Chunked);
            assert!(body.decode(input, &mut |_| {}).is_err(), "{input:?}");
        }
    }

    #[test]
    fn length_bodies_stop_at_the_length() {
        let got = decode_all(&Body::new(Framing::Length(5)), b"hello, and more").unwrap();
        assert_eq!(got, (b"hello".to_vec(), true));
        let got = decode_all(&Body::new(Framing::Length(9)), b"hello").unwrap();
        assert_eq!(got, (b"hello".to_vec(), false));
        let got = decode_all(&Body::new(Framing::UntilClose), b"anything").unwrap();
        assert_eq!(got, (b"anything".to_vec(), false));
    }

    #[test]
    fn heads() {
        let buf = b"HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream; charset=utf-8\r\n\
            Transfer-Encoding: gzip, chunked\r\n\r\ndata: x\n\n";
        let (head, used) = parse_head(buf).unwrap().unwrap();
        assert_eq!(&buf[used..], b"data: x\n\n");
        assert_eq!(head.status, 200);
        assert_eq!(head.reason, "OK");
        assert_eq!(
            head.content_type.as_deref(),
            Some("Text/Event-Stream; charset=utf-8")
        );
        assert_eq!(head.body, Body::new(Framing::Chunked));

        let (head, _) = parse_head(b"HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 3\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((head.status, head.location.as_deref()), (302, Some("/b")));
        assert_eq!(head.body, Body::new(Framing::Length(3)));

        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Ty").unwrap(), None);
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }
}
