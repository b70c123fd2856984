//! The fuzz targets' entry points (`fuzz/`): each takes arbitrary bytes, must not panic on
//! them, and checks what the code it drives promises, panicking when a promise is broken.
//! Not an API: hidden from the docs, called only by the fuzz targets and this crate's tests.

use bytes::BytesMut;
use http::header::{self, HeaderMap, HeaderName};
use http::{Method, StatusCode, Version};

use crate::client::{self, Framing, Parsed};
use crate::server::{self, BodyFraming, MAX_HEAD};
use crate::{Chunked, Error};

/// The server's request-head parser on `data`. A head it accepts is read once whole, and its
/// framing is what its headers say, by the rules RFC 9112 §6 and the server's refusals set.
pub fn request_head(data: &[u8]) {
    let Ok(Some((head, len))) = server::parse_head(data) else {
        return;
    };
    assert!(len <= data.len() && len <= MAX_HEAD, "head of {len} bytes");
    let whole = &data[..len];
    assert!(
        whole.ends_with(b"\n\n") || whole.ends_with(b"\n\r\n"),
        "a head ends with an empty line"
    );
    // Read once whole: no prefix is a head yet, and what follows the head changes nothing.
    assert!(
        matches!(server::parse_head(&whole[..len - 1]), Ok(None)),
        "a prefix of a head is not a head"
    );
    let (again, again_len) = server::parse_head(whole)
        .expect("the same head again")
        .expect("whole");
    assert_eq!(
        (again.body, again_len, again.keep_alive),
        (head.body, len, head.keep_alive)
    );

    let codings = values(&head.headers, &header::TRANSFER_ENCODING);
    let lengths = values(&head.headers, &header::CONTENT_LENGTH);
    match head.body {
        BodyFraming::Chunked => {
            // One line of `chunked` alone, without a length, in HTTP/1.1.
            assert_eq!(codings.len(), 1, "one Transfer-Encoding line");
            assert!(codings[0].trim_ascii().eq_ignore_ascii_case(b"chunked"));
            assert!(lengths.is_empty(), "no Content-Length beside chunked");
            assert_eq!(head.version, Version::HTTP_11);
        }
        BodyFraming::Length(n) => {
            assert!(codings.is_empty(), "a coding is never read as a length");
            for l in &lengths {
                assert_eq!(digits(l), Some(n), "every Content-Length says {n}");
            }
            assert!(!lengths.is_empty() || n == 0, "no length, no body");
        }
    }
    let hosts = head.headers.get_all(header::HOST).iter().count();
    assert!(hosts <= 1, "one Host at most");
    assert!(
        head.version != Version::HTTP_11 || hosts == 1,
        "HTTP/1.1 has a Host"
    );
    let close = values(&head.headers, &header::CONNECTION)
        .iter()
        .any(|v| has_token(v, b"close"));
    assert!(!(close && head.keep_alive), "Connection: close is kept");
    assert!(!head.expect_continue || head.version == Version::HTTP_11);
    assert!(!head.uri.to_string().is_empty());
    assert!(!head.method.as_str().is_empty());
}

/// The upstream client's answer-head parser on `data[1..]`, for a request whose method
/// `data[0]` picks. An answer it accepts is read once whole, keeps no framing headers, and
/// is framed as RFC 9112 §6.3 says.
pub fn response_head(data: &[u8]) {
    let Some((pick, buf)) = data.split_first() else {
        return;
    };
    let method = match pick % 3 {
        0 => Method::GET,
        1 => Method::HEAD,
        _ => Method::POST,
    };
    let len = match client::parse_head(buf, &method) {
        Ok(Parsed::Partial) | Err(_) => return,
        Ok(Parsed::Interim(len)) => {
            assert!(matches!(
                client::parse_head(&buf[..len], &method),
                Ok(Parsed::Interim(l)) if l == len
            ));
            len
        }
        Ok(Parsed::Head(head, len)) => {
            assert!(
                !head.status.is_informational(),
                "an interim answer is skipped"
            );
            let Ok(Parsed::Head(again, again_len)) = client::parse_head(&buf[..len], &method)
            else {
                panic!("the same head again is not read as one");
            };
            assert_eq!(
                (again.status, again.framing, again.keep_alive, again_len),
                (head.status, head.framing, head.keep_alive, len)
            );
            assert!(
                !head.headers.contains_key(header::CONTENT_LENGTH)
                    && !head.headers.contains_key(header::TRANSFER_ENCODING),
                "framing headers are this connection's"
            );
            let bodiless = method == Method::HEAD
                || head.status == StatusCode::NO_CONTENT
                || head.status == StatusCode::NOT_MODIFIED;
            assert_eq!(bodiless, head.framing == Framing::Empty);
            if head.framing == Framing::Close {
                assert!(
                    !head.keep_alive,
                    "a body ended by the close ends the connection"
                );
            }
            len
        }
    };
    assert!(len > 0 && len <= buf.len(), "head of {len} bytes");
    assert!(
        matches!(
            client::parse_head(&buf[..len - 1], &method),
            Ok(Parsed::Partial)
        ),
        "a prefix of a head is not a head"
    );
}

/// The chunked decoder on `data[2..]`, with a limit `data[0]` picks and pieces `data[1]`
/// seeds. It reads the same however the bytes arrive, never yields more than the limit, and
/// decodes what [`encode_chunked`] encodes back to the same body.
pub fn chunked(data: &[u8]) {
    let [limit, seed, payload @ ..] = data else {
        return;
    };
    let max = match limit % 4 {
        0 => usize::MAX,
        1 => 0,
        2 => usize::from(*limit),
        _ => 4096,
    };
    let whole = decode(payload, max, &mut || usize::MAX);
    let mut cuts = Cuts::new(*seed);
    let pieces = decode(payload, max, &mut || cuts.next());
    assert_eq!(
        whole, pieces,
        "the same bytes read alike however they arrive"
    );
    match &whole {
        Outcome::Done(body, rest) => {
            assert!(body.len() <= max);
            assert!(
                payload.ends_with(rest),
                "what follows the body is left as it came"
            );
        }
        Outcome::More(body) => assert!(body.len() <= max),
        Outcome::Failed(_) => {}
    }
    let encoded = encode_chunked(payload, *seed);
    let mut cuts = Cuts::new(seed.wrapping_add(1));
    assert_eq!(
        decode(&encoded, payload.len(), &mut || cuts.next()),
        Outcome::Done(payload.to_vec(), Vec::new()),
        "a chunked body decodes to itself"
    );
}

/// `body` chunked in sizes `seed` picks, with extensions (on the first chunks: on all of
/// them a long body would pass the extension limit) and trailers when it is odd.
pub fn encode_chunked(body: &[u8], seed: u8) -> Vec<u8> {
    let decorated = seed & 1 == 1;
    let mut cuts = Cuts::new(seed);
    let mut out = Vec::with_capacity(body.len() + 64);
    for (i, chunk) in body.chunks(cuts.next()).enumerate() {
        let size = if i % 2 == 0 {
            format!("{:x}", chunk.len())
        } else {
            format!("{:X}", chunk.len())
        };
        out.extend_from_slice(size.as_bytes());
        if decorated && i < 16 {
            out.extend_from_slice(b" ;name=\"v;a\"");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    if decorated {
        out.extend_from_slice(b"x-digest: sm3=abc\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// How a chunked decoding ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The body, and the bytes after it.
    Done(Vec<u8>, Vec<u8>),
    /// All bytes read and the body not ended: what it had so far.
    More(Vec<u8>),
    Failed(Error),
}

/// Feeds `input` to a decoder in pieces of the sizes `cut` gives.
fn decode(input: &[u8], max: usize, cut: &mut dyn FnMut() -> usize) -> Outcome {
    let mut decoder = Chunked::default();
    let (mut buf, mut body) = (BytesMut::new(), BytesMut::new());
    let mut fed = 0;
    loop {
        match decoder.feed(&mut buf, &mut body, max) {
            Err(e) => return Outcome::Failed(e),
            Ok(true) => {
                let mut rest = buf.to_vec();
                rest.extend_from_slice(&input[fed..]);
                return Outcome::Done(body.to_vec(), rest);
            }
            Ok(false) => assert!(body.len() <= max, "{} bytes past {max}", body.len()),
        }
        if fed == input.len() {
            return Outcome::More(body.to_vec());
        }
        let n = cut().clamp(1, input.len() - fed);
        buf.extend_from_slice(&input[fed..fed + n]);
        fed += n;
    }
}

/// Piece sizes from 1 to 97, from a small xorshift generator.
struct Cuts(u32);

impl Cuts {
    fn new(seed: u8) -> Self {
        Self(u32::from(seed).wrapping_mul(0x9e37_79b9) | 1)
    }

    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        1 + (self.0 % 97) as usize
    }
}

fn values<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Vec<&'a [u8]> {
    headers.get_all(name).iter().map(|v| v.as_bytes()).collect()
}

/// A decimal number of digits only (`str::parse` would take a sign).
fn digits(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

fn has_token(list: &[u8], token: &[u8]) -> bool {
    list.split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEADS: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\nhello",
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"\r\nGET / HTTP/1.1\nHost: x\nExpect: 100-continue\n\n",
    ];

    const ANSWERS: &[&[u8]] = &[
        b"\x00HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        b"\x01HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
        b"\x02HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        b"\x00HTTP/1.0 200 OK\r\n\r\nbody",
        b"\x00HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\ncontent-length: 1\r\n\r\n",
    ];

    #[test]
    fn known_messages_pass_the_checks() {
        for head in HEADS {
            assert!(matches!(server::parse_head(head), Ok(Some(_))), "{head:?}");
            request_head(head);
        }
        for answer in ANSWERS {
            assert!(
                matches!(
                    client::parse_head(&answer[1..], &Method::GET),
                    Ok(Parsed::Head(..) | Parsed::Interim(_))
                ),
                "{answer:?}"
            );
            response_head(answer);
        }
        for seed in 0..=255 {
            chunked(&[0, seed, b'5', b'\r', b'\n', b'h', b'e', b'l', b'l', b'o']);
        }
    }

    #[test]
    fn cut_pieces_are_small_and_vary() {
        let mut cuts = Cuts::new(0);
        let sizes: Vec<usize> = (0..50).map(|_| cuts.next()).collect();
        assert!(sizes.iter().all(|n| (1..=97).contains(n)));
        assert!(sizes.windows(2).any(|w| w[0] != w[1]));
    }

    proptest! {
        #[test]
        fn heads_with_any_bytes_around_them_pass_the_checks(
            pick in 0usize..5,
            cut in any::<prop::sample::Index>(),
            noise in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let head = HEADS[pick];
            let at = cut.index(head.len() + 1);
            let mut mutated = head[..at].to_vec();
            mutated.extend_from_slice(&noise);
            mutated.extend_from_slice(&head[at..]);
            request_head(&mutated);
            let mut answer = ANSWERS[pick][..].to_vec();
            answer.splice(at.min(answer.len())..at.min(answer.len()), noise.iter().copied());
            response_head(&answer);
        }

        #[test]
        fn any_chunked_input_passes_the_checks(
            data in prop::collection::vec(any::<u8>(), 0..400),
            body in prop::collection::vec(any::<u8>(), 0..400),
            limit in any::<u8>(),
            seed in any::<u8>(),
        ) {
            chunked(&data);
            let mut structured = vec![limit, seed];
            structured.extend_from_slice(&encode_chunked(&body, seed));
            structured.extend_from_slice(&data);
            chunked(&structured);
        }
    }
}
