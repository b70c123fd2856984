//! Answers: the same bytes read by our `client::parse_head` with the body framing it decides
//! (as the gateway reads them) and by hyper's `http1` client; whether hyper would use the
//! connection again is asked with a second request.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap};
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tongban_http1::Chunked;
use tongban_http1::client::{self, Framing, Parsed};

use crate::requests::explain_chunked;
use crate::{Stricter, runtime};

/// How an answer was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// The head was refused or never completed.
    Refused,
    Answer {
        status: u16,
        /// The body as read; `None` when reading it failed.
        body: Option<Vec<u8>>,
        /// The connection carried a second request and its answer after this one.
        reused: bool,
    },
    /// The reader still waited after 5 s.
    Hung,
}

/// Reads `answer` as the gateway does: `client::parse_head`, then the body its framing says,
/// the connection ending after `answer`. Also says whether the answer ended before the
/// connection did (so that hyper is asked whether it would reuse the connection).
fn ours_read(answer: &[u8], method: &Method) -> (Read, bool) {
    let mut buf = BytesMut::from(answer);
    let head = loop {
        match client::parse_head(&buf, method) {
            Ok(Parsed::Interim(n)) => buf.advance(n),
            Ok(Parsed::Head(h, n)) => {
                buf.advance(n);
                break h;
            }
            Ok(Parsed::Partial) | Err(_) => return (Read::Refused, false),
        }
    };
    let body = match head.framing {
        Framing::Empty => Some(Vec::new()),
        Framing::Length(n) => usize::try_from(n)
            .ok()
            .filter(|n| *n <= buf.len())
            .map(|n| buf.split_to(n).to_vec()),
        Framing::Chunked => {
            let mut out = BytesMut::new();
            match Chunked::default().feed(&mut buf, &mut out, usize::MAX) {
                Ok(true) => Some(out.to_vec()),
                Ok(false) | Err(_) => None,
            }
        }
        Framing::Close => Some(buf.split().to_vec()),
    };
    let ends_first = body.is_some() && head.framing != Framing::Close;
    let reused = ends_first && head.keep_alive && buf.is_empty();
    let read = Read::Answer {
        status: head.status.as_u16(),
        body,
        reused,
    };
    (read, ends_first)
}

/// Reads a request head from `io`; false at the end of the connection.
async fn read_head(io: &mut DuplexStream) -> bool {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match io.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return false,
        }
    }
    true
}

/// Reads `answer` with hyper's client, sent for a `method` request; with `second`, asks
/// for a second answer on the same connection once the first has been read, which the
/// upstream gives only after `answer`. Also returns the first answer's headers.
async fn hyper_reads(answer: &[u8], method: &Method, second: bool) -> (Read, HeaderMap) {
    let (client_io, mut upstream_io) = tokio::io::duplex(64 * 1024);
    let upstream = async move {
        if read_head(&mut upstream_io).await {
            let _ = upstream_io.write_all(answer).await;
            if second && read_head(&mut upstream_io).await {
                let _ = upstream_io
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecond")
                    .await;
            }
        }
        let _ = upstream_io.shutdown().await;
        // Held open until the client is done with it.
        let mut sink = Vec::new();
        let _ = upstream_io.read_to_end(&mut sink).await;
    };
    let request = |m: &Method| {
        Request::builder()
            .method(m.clone())
            .uri("/")
            .header(header::HOST, "upstream")
            .body(Empty::<Bytes>::new())
            .expect("request")
    };
    let client = async {
        let Ok((mut tx, conn)) =
            hyper::client::conn::http1::handshake(TokioIo::new(client_io)).await
        else {
            return (Read::Refused, HeaderMap::new());
        };
        let exchange = async move {
            let Ok(resp) = tx.send_request(request(method)).await else {
                return (Read::Refused, HeaderMap::new());
            };
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp.into_body().collect().await.ok();
            let body = body.map(|c| c.to_bytes().to_vec());
            let mut reused = false;
            if second
                && body.is_some()
                && tx.ready().await.is_ok()
                && let Ok(r) = tx.send_request(request(&Method::GET)).await
            {
                let b = r.into_body().collect().await.ok();
                reused = b.is_some_and(|c| c.to_bytes() == "second");
            }
            (
                Read::Answer {
                    status,
                    body,
                    reused,
                },
                headers,
            )
        };
        let (read, _) = tokio::join!(exchange, conn);
        read
    };
    let run = async { tokio::join!(upstream, client).1 };
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap_or((Read::Hung, HeaderMap::new()))
}

/// How our reading of an answer compares with hyper's.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AnswerVerdict {
    Same,
    /// We refused the head, or its body, where hyper read them.
    OursRefused,
    /// Read alike, but we do not reuse the connection where hyper does.
    OursNoReuse,
    Differs,
}

pub(crate) fn answer_verdict(ours: &Read, hypers: &Read) -> AnswerVerdict {
    match (ours, hypers) {
        _ if ours == hypers => AnswerVerdict::Same,
        (Read::Refused, Read::Answer { .. }) => AnswerVerdict::OursRefused,
        (
            Read::Answer {
                status: s1,
                body: None,
                ..
            },
            Read::Answer {
                status: s2,
                body: Some(_),
                ..
            },
        ) if s1 == s2 => AnswerVerdict::OursRefused,
        (
            Read::Answer {
                status: s1,
                body: b1,
                reused: false,
            },
            Read::Answer {
                status: s2,
                body: b2,
                reused: true,
            },
        ) if s1 == s2 && b1 == b2 => AnswerVerdict::OursNoReuse,
        _ => AnswerVerdict::Differs,
    }
}

/// Which documented refusal explains how our reading of `answer` to a `method` request
/// differs (`verdict`) from hyper's, which saw `hypers` with `headers`.
pub(crate) fn explain_answer(
    answer: &[u8],
    method: &Method,
    verdict: &AnswerVerdict,
    hypers: &Read,
    headers: &HeaderMap,
) -> Option<Stricter> {
    let Read::Answer { status, .. } = *hypers else {
        return None;
    };
    let lengths: Vec<&[u8]> = headers
        .get_all(header::CONTENT_LENGTH)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    let coded = headers.contains_key(header::TRANSFER_ENCODING);
    let digits = |v: &&[u8]| !v.is_empty() && v.iter().all(u8::is_ascii_digit);
    let bodiless = *method == Method::HEAD || status == 204 || status == 304;
    match verdict {
        AnswerVerdict::OursRefused if status == 101 => Some(Stricter::Switching),
        AnswerVerdict::OursRefused if bodiless => Some(Stricter::BrokenFramingWithoutBody),
        AnswerVerdict::OursRefused if coded && !lengths.iter().all(digits) => {
            Some(Stricter::BadLengthBesideCoding)
        }
        AnswerVerdict::OursRefused if lengths.iter().any(|v| v.contains(&b',')) => {
            Some(Stricter::LengthList)
        }
        AnswerVerdict::OursNoReuse if coded && !lengths.is_empty() => {
            Some(Stricter::NoReuseAfterBothFramings)
        }
        AnswerVerdict::OursRefused if coded => {
            let head_end = answer
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(answer.len(), |p| p + 4);
            explain_chunked(&answer[head_end..])
        }
        _ => None,
    }
}

/// Both readings of `answer` to a `method` request, with hyper's headers.
pub(crate) fn both_read(answer: &[u8], method: &Method) -> (Read, Read, HeaderMap) {
    let (ours, ends_first) = ours_read(answer, method);
    let (hypers, headers) = runtime().block_on(hyper_reads(answer, method, ends_first));
    (ours, hypers, headers)
}
