//! Just enough HTTP/1.1 for an event stream: the response head, and a body
//! framed by `Transfer-Encoding: chunked`, by `Content-Length`, or by the
//! end of the connection.

use tether_handshake::httparse;

use crate::Error;

/// The response head fields the event-stream client looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) status: u16,
    pub(crate) reason: String,
    pub(crate) content_type: Option<String>,
    pub(crate) location: Option<String>,
    pub(crate) body: Body,
}

/// Parses a response head from the start of `buf`: `None` while
/// incomplete, else the head and its length.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, Error> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut res = httparse::Response::new(&mut headers);
    let used = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Error::Http(format!("bad response head: {e}"))),
    };
    let status = res.code.unwrap_or_default();
    let value = |name: &str| {
        res.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
    };
    let chunked = res
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("Transfer-Encoding"))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .map(|coding| String::from_utf8_lossy(coding).trim().to_ascii_lowercase())
        .next_back();
    let body = match (chunked, value("Content-Length")) {
        // RFC 9112 section 6.3: Transfer-Encoding overrides Content-Length;
        // a final coding other than chunked means "read until close".
        (Some(coding), _) if coding == "chunked" => Body::Chunked(Chunked::new()),
        (Some(_), _) => Body::UntilClose,
        (None, Some(length)) => match length.parse::<u64>() {
            Ok(n) => Body::Length(n),
            Err(_) => return Err(Error::Http(format!("bad Content-Length {length:?}"))),
        },
        (None, None) => Body::UntilClose,
    };
    Ok(Some((
        Head {
            status,
            reason: res.reason.unwrap_or_default().to_owned(),
            content_type: value("Content-Type"),
            location: value("Location"),
            body,
        },
        used,
    )))
}

/// Whether a `Content-Type` value's MIME type essence is
/// `text/event-stream` (parameters such as `charset` are ignored).
pub(crate) fn is_event_stream(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/event-stream"))
}

/// How the body is framed, and how far it has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// Until the server closes the connection.
    UntilClose,
    /// This many bytes are still to come.
    Length(u64),
    /// Chunked transfer coding.
    Chunked(Chunked),
}

impl Body {
    /// Decodes `input`, handing body bytes to `sink`. Returns true once the
    /// body is complete (what follows it is ignored).
    pub(crate) fn decode(&mut self, input: &[u8], sink: &mut dyn FnMut(&[u8])) -> Result<bool, Error> {
        match self {
            Body::UntilClose => {
                sink(input);
                Ok(false)
            }
            Body::Length(remaining) => {
                let take = input.len().min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                sink(&input[..take]);
                *remaining -= take as u64;
                Ok(*remaining == 0)
            }
            Body::Chunked(chunked) => chunked.decode(input, sink),
        }
    }

    /// Whether the body is complete.
    pub(crate) fn is_complete(&self) -> bool {
        match self {
            Body::UntilClose => false,
            Body::Length(remaining) => *remaining == 0,
            Body::Chunked(chunked) => chunked.state == ChunkState::Done,
        }
    }
}

/// An incremental decoder of the chunked transfer coding (RFC 9112
/// section 7.1). Chunk extensions and trailers are skipped; a bare LF is
/// accepted where CRLF belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chunked {
    state: ChunkState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading the hex size; how many digits so far.
    Size { size: u64, digits: u8 },
    /// Skipping a chunk extension up to the line end.
    Extension { size: u64 },
    /// After the CR of the size line.
    SizeLf { size: u64 },
    /// Inside chunk data.
    Data { remaining: u64 },
    /// After chunk data: its CR.
    DataCr,
    /// After chunk data: its LF.
    DataLf,
    /// In the trailer section; the current line's length.
    Trailer { len: usize },
    /// After the CR of a trailer line.
    TrailerLf { len: usize },
    /// The last chunk and the trailer are read.
    Done,
}

impl Chunked {
    pub(crate) fn new() -> Chunked {
        Chunked {
            state: ChunkState::Size { size: 0, digits: 0 },
        }
    }

    fn decode(&mut self, mut input: &[u8], sink: &mut dyn FnMut(&[u8])) -> Result<bool, Error> {
        use ChunkState::*;
        let bad = |what: &str| Err(Error::Http(format!("bad chunked encoding: {what}")));
        while let Some(&b) = input.first() {
            let mut used = 1;
            self.state = match self.state {
                Size { size, digits } => match (b as char).to_digit(16) {
                    Some(_) if digits == 16 => return bad("chunk size too large"),
                    Some(d) => Size {
                        size: size * 16 + u64::from(d),
                        digits: digits + 1,
                    },
                    None if digits == 0 => return bad("no chunk size"),
                    None => match b {
                        b';' | b' ' | b'\t' => Extension { size },
                        b'\r' => SizeLf { size },
                        b'\n' => after_size(size),
                        _ => return bad("junk after the chunk size"),
                    },
                },
                Extension { size } => match b {
                    b'\r' => SizeLf { size },
                    b'\n' => after_size(size),
                    _ => Extension { size },
                },
                SizeLf { size } => match b {
                    b'\n' => after_size(size),
                    _ => return bad("CR without LF after the chunk size"),
                },
                Data { remaining } => {
                    let take = input.len().min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    sink(&input[..take]);
                    used = take;
                    match remaining - take as u64 {
                        0 => DataCr,
                        remaining => Data { remaining },
                    }
                }
                DataCr => match b {
                    b'\r' => DataLf,
                    b'\n' => Size { size: 0, digits: 0 },
                    _ => return bad("no line end after chunk data"),
                },
                DataLf => match b {
                    b'\n' => Size { size: 0, digits: 0 },
                    _ => return bad("CR without LF after chunk data"),
                },
                Trailer { len } => match b {
                    b'\r' => TrailerLf { len },
                    b'\n' if len == 0 => Done,
                    b'\n' => Trailer { len: 0 },
                    _ if len >= 64 * 1024 => return bad("trailer line too long"),
                    _ => Trailer { len: len + 1 },
                },
                TrailerLf { len } => match b {
                    b'\n' if len == 0 => Done,
                    b'\n' => Trailer { len: 0 },
                    _ => return bad("CR without LF in the trailer"),
                },
                Done => return Ok(true),
            };
            input = &input[used..];
        }
        Ok(self.state == Done)
    }
}

fn after_size(size: u64) -> ChunkState {
    if size == 0 {
        ChunkState::Trailer { len: 0 }
    } else {
        ChunkState::Data { remaining: size }
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
        let chunked = Body::Chunked(Chunked::new());
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
            let mut body = Body::Chunked(Chunked::new());
            assert!(body.decode(input, &mut |_| {}).is_err(), "{input:?}");
        }
    }

    #[test]
    fn length_bodies_stop_at_the_length() {
        let got = decode_all(&Body::Length(5), b"hello, and more").unwrap();
        assert_eq!(got, (b"hello".to_vec(), true));
        let got = decode_all(&Body::Length(9), b"hello").unwrap();
        assert_eq!(got, (b"hello".to_vec(), false));
        let got = decode_all(&Body::UntilClose, b"anything").unwrap();
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
        assert!(is_event_stream(head.content_type.as_deref().unwrap()));
        assert_eq!(head.body, Body::Chunked(Chunked::new()));

        let (head, _) = parse_head(b"HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 3\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((head.status, head.location.as_deref()), (302, Some("/b")));
        assert_eq!(head.body, Body::Length(3));

        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Ty").unwrap(), None);
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
        assert!(!is_event_stream("text/plain"));
        assert!(!is_event_stream("text/event-streamx"));
        assert!(is_event_stream(" text/event-stream "));
    }
}
