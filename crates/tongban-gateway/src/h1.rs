//! HTTP/1.1 without I/O. For the gateway's upstream client: a request head written in one
//! buffer, an answer's head parsed (`httparse`) with its body framing decided as RFC 9112 §6.3
//! says. For it and the server (`tongban::server::h1`): chunked bodies decoded incrementally as
//! bytes arrive, and the framing headers read strictly (`FramingHeaders`).
//!
//! The gateway only ever sends whole, already-read requests and reads whole answers, so the
//! client side is all of HTTP/1.1 it needs: no upgrades, no request streaming, no pipelining.

use bytes::{Buf, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};

/// Most header lines an answer may have (hyper's default, which the gateway used before).
const MAX_HEADERS: usize = 100;

/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;

/// Most trailer bytes accepted (they are read and dropped).
const MAX_TRAILERS: usize = 16 * 1024;

/// Why an answer cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Not HTTP/1.x, or framing that cannot be trusted.
    Malformed,
    /// Larger than the caller accepts.
    TooLarge,
}

/// How an answer's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (HEAD, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Until the upstream closes the connection.
    Close,
}

/// A final answer's head.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) framing: Framing,
    /// The connection may carry another request after this answer's body.
    pub(crate) keep_alive: bool,
}

/// What the bytes received so far hold.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// An interim (1xx) answer of this many bytes, to skip.
    Interim(usize),
    /// A final answer's head of this many bytes.
    Head(Head, usize),
}

/// Writes the head of a request for `target` (origin form) with a body of `body_len` bytes.
/// `headers` are the end-to-end headers to forward (hop-by-hop already stripped); framing
/// headers are written here, from the body actually sent, and `Host` if `headers` has none.
pub(crate) fn encode_request(
    out: &mut Vec<u8>,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    host: &str,
    body_len: usize,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    // The address comes from configuration or the registry; one that is not a valid header
    // value (a line break would start a header of its own) is not written.
    let host_ok = host
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
    if !headers.contains_key(header::HOST) && host_ok {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers {
        // The body is sent whole with its length; a forwarded length or coding could
        // contradict it.
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // RFC 9110 §8.6: a length for any body, and for an empty one where the method defines a
    // meaning for content.
    if body_len > 0 || matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body_len).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Parses the answer at the start of `buf`, sent for a request with method `method`.
pub(crate) fn parse_head(buf: &[u8], method: &Method) -> Result<Parsed, Error> {
    // Left uninitialized: filling 100 empty headers before each parse cost more than parsing
    // a short answer's few.
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, &mut slots);
    let len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(_) => return Err(Error::Malformed),
    };
    let code = resp.code.ok_or(Error::Malformed)?;
    let status = StatusCode::from_u16(code).map_err(|_| Error::Malformed)?;
    if status.is_informational() {
        // 101 would switch protocols, which the gateway never asks for.
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(Error::Malformed);
        }
        return Ok(Parsed::Interim(len));
    }
    let http11 = resp.version == Some(1);
    let mut headers = HeaderMap::with_capacity(resp.headers.len());
    let mut seen = FramingHeaders::default();
    for h in resp.headers.iter() {
        let name = tongban_core::header::name(h.name.as_bytes()).map_err(|_| Error::Malformed)?;
        seen.see(&name, h.value)?;
        // The framing is this connection's: the body is handed on whole (decoded from
        // chunks), and whoever sends it on frames it anew.
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        let value = HeaderValue::from_bytes(h.value).map_err(|_| Error::Malformed)?;
        headers.append(name, value);
    }
    let mut keep_alive = seen.persistent(http11);
    let framing = if *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::Empty
    } else if seen.coded {
        // A length sent with a coding is ignored, and such a connection is not trusted again
        // (RFC 9112 §6.3, 3).
        if seen.length.is_some() {
            keep_alive = false;
        }
        if seen.chunked {
            Framing::Chunked
        } else {
            Framing::Close
        }
    } else {
        match seen.length {
            Some(n) => Framing::Length(n),
            None => Framing::Close,
        }
    };
    if framing == Framing::Close {
        keep_alive = false;
    }
    Ok(Parsed::Head(
        Head {
            status,
            headers,
            framing,
            keep_alive,
        },
        len,
    ))
}

/// What a message's framing and connection headers say, gathered header by header: the same
/// rules for the answers the upstream client reads and the requests the server reads.
#[derive(Debug, Default)]
pub struct FramingHeaders {
    /// `Content-Length`, every copy of it agreeing.
    pub length: Option<u64>,
    /// A `Transfer-Encoding` was sent.
    pub coded: bool,
    /// The last coding of the last `Transfer-Encoding` is `chunked`.
    pub chunked: bool,
    /// `Connection` names `close`.
    pub close: bool,
    /// `Connection` names `keep-alive`.
    pub keep_alive: bool,
}

impl FramingHeaders {
    /// Takes note of one header; refuses a length that is not plain digits or disagrees with
    /// an earlier one (RFC 9110 §8.6: the framing would be unknown).
    pub fn see(&mut self, name: &HeaderName, value: &[u8]) -> Result<(), Error> {
        if name == header::CONTENT_LENGTH {
            let n = parse_length(value)?;
            if self.length.is_some_and(|l| l != n) {
                return Err(Error::Malformed);
            }
            self.length = Some(n);
        } else if name == header::TRANSFER_ENCODING {
            self.coded = true;
            // Chunked must be the last coding; anything after it leaves the end unknown.
            self.chunked = last_token(value).eq_ignore_ascii_case(b"chunked");
        } else if name == header::CONNECTION {
            for token in value.split(|b| *b == b',') {
                let t = token.trim_ascii();
                self.close |= t.eq_ignore_ascii_case(b"close");
                self.keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        Ok(())
    }

    /// Whether the connection may carry another message after this one, as the version and
    /// `Connection` say (framing may still rule it out).
    pub fn persistent(&self, http11: bool) -> bool {
        !self.close && (http11 || self.keep_alive)
    }
}

/// A `Content-Length` value: digits only.
fn parse_length(v: &[u8]) -> Result<u64, Error> {
    let v = v.trim_ascii();
    // Digits only: `+5`, `0x5`, `5 5` and empty are refused; 19 digits cannot overflow.
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(Error::Malformed);
    }
    Ok(v.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// The last of a comma-separated list's items (a `Transfer-Encoding`'s final coding).
fn last_token(v: &[u8]) -> &[u8] {
    v.rsplit(|b| *b == b',')
        .next()
        .unwrap_or_default()
        .trim_ascii()
}

/// A chunked body being decoded: fed the bytes received, it moves what is complete into the
/// body and leaves the rest for the next feed.
#[derive(Debug, Default)]
pub struct Chunked {
    state: ChunkState,
    trailer_bytes: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk's data, this many bytes to go.
    Data(u64),
    /// Expecting the CRLF that ends a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailer,
    Done,
}

impl Chunked {
    /// Consumes from `input` what can be decoded, appending data to `body` (at most `max`
    /// bytes in all). `Ok(true)` once the body has ended; `Ok(false)` needs more input.
    pub fn feed(
        &mut self,
        input: &mut BytesMut,
        body: &mut BytesMut,
        max: usize,
    ) -> Result<bool, Error> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(line) = take_line(input)? else {
                        return Ok(false);
                    };
                    let size = parse_chunk_size(&line)?;
                    if size == 0 {
                        self.state = ChunkState::Trailer;
                    } else {
                        let total = u64::try_from(body.len())
                            .ok()
                            .and_then(|l| l.checked_add(size));
                        if total.is_none_or(|t| t > u64::try_from(max).unwrap_or(u64::MAX)) {
                            return Err(Error::TooLarge);
                        }
                        self.state = ChunkState::Data(size);
                    }
                }
                ChunkState::Data(left) => {
                    if input.is_empty() {
                        return Ok(false);
                    }
                    let n = usize::try_from(left).map_or(input.len(), |l| l.min(input.len()));
                    body.extend_from_slice(&input[..n]);
                    input.advance(n);
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                }
                ChunkState::DataEnd => {
                    if input.len() < 2 {
                        return Ok(false);
                    }
                    if &input[..2] != b"\r\n" {
                        return Err(Error::Malformed);
                    }
                    input.advance(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailer => {
                    let Some(line) = take_line(input)? else {
                        return Ok(false);
                    };
                    if line.is_empty() {
                        self.state = ChunkState::Done;
                    } else {
                        self.trailer_bytes += line.len() + 2;
                        if self.trailer_bytes > MAX_TRAILERS {
                            return Err(Error::Malformed);
                        }
                    }
                }
                ChunkState::Done => return Ok(true),
            }
        }
    }
}

/// The next CRLF-terminated line of `input` without its CRLF, taken out of `input`; `None`
/// until a whole line has arrived.
fn take_line(input: &mut BytesMut) -> Result<Option<BytesMut>, Error> {
    let Some(lf) = input.iter().position(|b| *b == b'\n') else {
        if input.len() > MAX_LINE {
            return Err(Error::Malformed);
        }
        return Ok(None);
    };
    if lf > MAX_LINE || lf == 0 || input[lf - 1] != b'\r' {
        return Err(Error::Malformed);
    }
    let mut line = input.split_to(lf + 1);
    line.truncate(lf - 1);
    Ok(Some(line))
}

/// `1a`, `1A;name=value`: the hexadecimal size, extensions ignored.
fn parse_chunk_size(line: &[u8]) -> Result<u64, Error> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    // 15 hex digits cannot overflow, and no answer the gateway accepts comes near it.
    if digits == 0 || digits > 15 {
        return Err(Error::Malformed);
    }
    let rest = line[digits..].trim_ascii_start();
    if !(rest.is_empty() || rest[0] == b';') {
        return Err(Error::Malformed);
    }
    Ok(line[..digits].iter().fold(0, |n, d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => d - b'A' + 10,
        };
        n * 16 + u64::from(v)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn head(raw: &str) -> (Head, usize) {
        head_for(raw, &Method::GET)
    }

    fn head_for(raw: &str, method: &Method) -> (Head, usize) {
        match parse_head(raw.as_bytes(), method) {
            Ok(Parsed::Head(h, n)) => (h, n),
            other => panic!("not a head: {other:?}"),
        }
    }

    #[test]
    fn a_request_head_carries_its_length_and_a_host() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("r1"));
        h.insert("content-length", HeaderValue::from_static("999"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        let mut out = Vec::new();
        encode_request(&mut out, &Method::POST, "/a?b=1", &h, "10.0.0.1:80", 2);
        assert_eq!(
            String::from_utf8(out).expect("ascii"),
            "POST /a?b=1 HTTP/1.1\r\nhost: 10.0.0.1:80\r\nx-request-id: r1\r\ncontent-length: 2\r\n\r\n"
        );
    }

    #[test]
    fn an_address_that_is_no_header_value_is_not_written() {
        let mut out = Vec::new();
        encode_request(
            &mut out,
            &Method::GET,
            "/",
            &HeaderMap::new(),
            "a:1\r\nx-evil: 1",
            0,
        );
        assert_eq!(out, b"GET / HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn a_forwarded_host_is_kept_and_bodiless_gets_have_no_length() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("gov.example"));
        let mut out = Vec::new();
        encode_request(&mut out, &Method::GET, "/", &h, "10.0.0.1:80", 0);
        assert_eq!(out, b"GET / HTTP/1.1\r\nhost: gov.example\r\n\r\n");
        out.clear();
        encode_request(&mut out, &Method::PUT, "/", &h, "10.0.0.1:80", 0);
        assert!(out.ends_with(b"content-length: 0\r\n\r\n"));
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let (h, n) = head("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello");
        assert_eq!((h.framing, h.keep_alive, n), (Framing::Length(5), true, 38));
        let (h, _) = head("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, true));
        // Chunked not last: the end is the close.
        let (h, _) = head("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Close, false));
        // A coding overrides a length, and the connection is not reused.
        let (h, _) =
            head("HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, false));
        let (h, _) = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Close, false));
        let (h, _) = head("HTTP/1.1 204 No Content\r\ncontent-length: 7\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Empty, true));
        let (h, _) = head("HTTP/1.1 304 Not Modified\r\n\r\n");
        assert_eq!(h.framing, Framing::Empty);
        let (h, _) = head_for(
            "HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n",
            &Method::HEAD,
        );
        assert_eq!((h.framing, h.keep_alive), (Framing::Empty, true));
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection() {
        let (h, _) = head("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
        assert!(!h.keep_alive);
        let (h, _) = head("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n");
        assert!(!h.keep_alive);
        let (h, _) = head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: 0\r\n\r\n");
        assert!(h.keep_alive);
    }

    #[test]
    fn headers_are_kept_in_order_with_repeats() {
        let (h, _) = head(
            "HTTP/1.1 201 Created\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nX-Y: z\r\ncontent-length: 0\r\n\r\n",
        );
        assert_eq!(h.status, StatusCode::CREATED);
        let cookies: Vec<_> = h.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(h.headers["x-y"], "z");
        // Framing headers describe this connection only.
        assert!(!h.headers.contains_key("content-length"));
        let (h, _) = head("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
        assert_eq!(h.framing, Framing::Chunked);
        assert!(h.headers.is_empty());
    }

    #[test]
    fn interim_answers_are_skipped_and_switching_is_refused() {
        let raw = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        let Ok(Parsed::Interim(n)) = parse_head(raw.as_bytes(), &Method::POST) else {
            panic!("not interim");
        };
        assert_eq!(n, 25);
        let (h, _) = head(&raw[n..]);
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(
            parse_head(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", &Method::GET).err(),
            Some(Error::Malformed)
        );
    }

    #[test]
    fn partial_and_malformed_heads() {
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\ncontent-le", &Method::GET),
            Ok(Parsed::Partial)
        ));
        for bad in [
            "SSH-2.0-OpenSSH\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 5, 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 0x10\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n",
        ] {
            assert_eq!(
                parse_head(bad.as_bytes(), &Method::GET).err(),
                Some(Error::Malformed),
                "{bad:?}"
            );
        }
        // Equal repeated lengths are one length.
        let (h, _) = head("HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\n");
        assert_eq!(h.framing, Framing::Length(2));
    }

    /// Decodes `raw` fed in pieces of `step` bytes; also returns what followed the body.
    fn decode(raw: &[u8], step: usize, max: usize) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let mut c = Chunked::default();
        let mut input = BytesMut::new();
        let mut body = BytesMut::new();
        let mut fed = 0;
        loop {
            if c.feed(&mut input, &mut body, max)? {
                let mut rest = input.to_vec();
                rest.extend_from_slice(&raw[fed..]);
                return Ok((body.to_vec(), rest));
            }
            if fed == raw.len() {
                return Err(Error::Malformed);
            }
            let end = (fed + step).min(raw.len());
            input.extend_from_slice(&raw[fed..end]);
            fed = end;
        }
    }

    #[test]
    fn chunked_bodies_decode_however_they_arrive() {
        let raw =
            b"5\r\nhello\r\n1;ext=\"x\"\r\n,\r\nA \r\n world!!!!\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        for step in 1..=raw.len() {
            let (body, rest) = decode(raw, step, 1024).expect("decodes");
            assert_eq!(body, b"hello, world!!!!", "step {step}");
            assert_eq!(rest, b"NEXT", "step {step}");
        }
    }

    #[test]
    fn broken_or_oversized_chunked_bodies_are_refused() {
        for bad in [
            &b"5\r\nhelloXX0\r\n\r\n"[..],
            b"g\r\n",
            b"\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"1000000000000000\r\n",
            b"5 x\r\nhello\r\n0\r\n\r\n",
        ] {
            assert_eq!(
                decode(bad, 64, 1024).err(),
                Some(Error::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            decode(b"5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n", 64, 10).err(),
            Some(Error::TooLarge)
        );
        let endless = [b'1'; MAX_LINE + 1];
        assert_eq!(decode(&endless, 64, 10).err(), Some(Error::Malformed));
    }

    proptest! {
        #[test]
        fn any_body_in_any_chunks_round_trips(
            body in proptest::collection::vec(any::<u8>(), 0..600),
            cuts in proptest::collection::vec(1usize..100, 0..12),
            step in 1usize..64,
        ) {
            let mut raw = Vec::new();
            let mut at = 0usize;
            for c in cuts.iter().chain(std::iter::once(&usize::MAX)) {
                let end = at.saturating_add(*c).min(body.len());
                if end > at {
                    raw.extend_from_slice(format!("{:x}\r\n", end - at).as_bytes());
                    raw.extend_from_slice(&body[at..end]);
                    raw.extend_from_slice(b"\r\n");
                }
                at = end;
            }
            raw.extend_from_slice(b"0\r\n\r\n");
            let (got, rest) = decode(&raw, step, 600).expect("decodes");
            prop_assert_eq!(got, body);
            prop_assert!(rest.is_empty());
        }
    }
}
