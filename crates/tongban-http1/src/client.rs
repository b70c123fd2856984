//! The upstream client's side of HTTP/1.1, without I/O: a request head written in one buffer,
//! an answer's head parsed (`httparse`) with its body framing decided as RFC 9112 §6.3 says.
//!
//! The gateway only ever sends whole, already-read requests and reads whole answers, so the
//! client side is all of HTTP/1.1 it needs: no upgrades, no request streaming, no pipelining.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};

use crate::Error;
use crate::framing::FramingHeaders;

/// Most header lines an answer may have (hyper's default, which the gateway used before).
const MAX_HEADERS: usize = 100;

/// How an answer's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Until the upstream closes the connection.
    Close,
}

/// A final answer's head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// The connection may carry another request after this answer's body.
    pub keep_alive: bool,
}

/// What the bytes received so far hold.
#[derive(Debug)]
pub enum Parsed {
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
pub fn encode_request(
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
pub fn parse_head(buf: &[u8], method: &Method) -> Result<Parsed, Error> {
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
    // Transfer codings are HTTP/1.1's: an HTTP/1.0 answer with one was likely passed on by
    // something that did not decode it, and its framing is not to be trusted (RFC 9112 §6.1).
    if seen.coded && !http11 {
        return Err(Error::Malformed);
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

#[cfg(test)]
mod tests {
    use super::*;

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
            // HTTP/1.0 has no transfer codings: hyper refuses this too.
            "HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(
                parse_head(bad.as_bytes(), &Method::GET).err(),
                Some(Error::Malformed),
                "{bad:?}"
            );
        }
        // Leading zeros are digits too (hyper reads them so).
        let (h, _) = head("HTTP/1.1 200 OK\r\ncontent-length: 000000000000000000000002\r\n\r\n");
        assert_eq!(h.framing, Framing::Length(2));
        // Equal repeated lengths are one length.
        let (h, _) = head("HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\n");
        assert_eq!(h.framing, Framing::Length(2));
    }
}
