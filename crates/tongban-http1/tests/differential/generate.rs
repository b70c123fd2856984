//! Generated streams: well-formed requests and answers with random framing and spelling,
//! and the byte-level mutations applied to them.

use http::Method;
use proptest::prelude::*;
use proptest::sample::Index;

/// One well-formed request, its framing and spelling chosen at random.
#[derive(Clone, Debug)]
struct GenRequest {
    method: &'static str,
    target: String,
    http10: bool,
    /// HTTP/1.0: `Connection: keep-alive`; HTTP/1.1: no `Connection: close`.
    keep_alive: bool,
    /// 0: no body, 1: `Content-Length`, 2: chunked (HTTP/1.1 only).
    framing: u8,
    body: Vec<u8>,
    chunks: Chunking,
    /// Header-name case and the whitespace after the colon.
    spelling: u8,
    /// The head's lines end with LF alone (which both readers accept).
    lf_only: bool,
    extra: Vec<(String, String)>,
    expect: bool,
}

/// How a chunked body is cut and decorated.
#[derive(Clone, Debug)]
struct Chunking {
    cuts: Vec<usize>,
    extensions: bool,
    trailers: bool,
}

fn gen_chunking() -> impl Strategy<Value = Chunking> {
    (
        prop::collection::vec(1usize..80, 0..6),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(cuts, extensions, trailers)| Chunking {
            cuts,
            extensions,
            trailers,
        })
}

fn gen_request() -> impl Strategy<Value = GenRequest> {
    let methods = vec!["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"];
    (
        (
            prop::sample::select(methods),
            "/[a-zA-Z0-9._~/-]{0,10}(\\?[a-z0-9=&]{0,8})?",
            prop::bool::weighted(0.15),
            prop::bool::weighted(0.85),
            0u8..3,
            prop::collection::vec(any::<u8>(), 0..160),
        ),
        (
            gen_chunking(),
            0u8..9,
            prop::bool::weighted(0.15),
            prop::collection::vec(("X-[a-z0-9]{1,6}", "[!-~]([ -~]{0,10}[!-~])?"), 0..3),
            prop::bool::weighted(0.15),
        ),
    )
        .prop_map(
            |(
                (method, target, http10, keep_alive, framing, body),
                (chunks, spelling, lf_only, extra, expect),
            )| GenRequest {
                method,
                target,
                http10,
                keep_alive,
                framing: if http10 && framing == 2 { 1 } else { framing },
                body,
                chunks,
                spelling,
                lf_only,
                extra,
                expect,
            },
        )
}

/// `body` in chunks cut as `c` says, with the last chunk and trailers.
fn encode_chunked(out: &mut Vec<u8>, body: &[u8], c: &Chunking) {
    let mut rest = body;
    let mut cuts = c.cuts.iter().cycle();
    while !rest.is_empty() {
        let n = cuts.next().copied().unwrap_or(rest.len()).min(rest.len());
        let ext = if c.extensions { ";a=b ; c" } else { "" };
        out.extend_from_slice(format!("{n:X}{ext}\r\n").as_bytes());
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(b"0\r\n");
    if c.trailers {
        out.extend_from_slice(b"X-Digest: sm3=abc\r\nX-Count:\t2\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

impl GenRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        let eol = if self.lf_only { "\n" } else { "\r\n" };
        let name = |n: &str| match self.spelling % 3 {
            0 => n.to_owned(),
            1 => n.to_ascii_lowercase(),
            _ => n.to_ascii_uppercase(),
        };
        let sep = [": ", ":", ":\t"][usize::from(self.spelling / 3)];
        let mut head = format!(
            "{} {} HTTP/1.{}{eol}",
            self.method,
            self.target,
            u8::from(!self.http10)
        );
        let mut field = |n: &str, v: &str| head.push_str(&format!("{}{sep}{v}{eol}", name(n)));
        if !self.http10 || self.spelling.is_multiple_of(2) {
            field("Host", "gov.example");
        }
        for (n, v) in &self.extra {
            field(n, v);
        }
        if self.http10 && self.keep_alive {
            field("Connection", "keep-alive");
        } else if !self.http10 && !self.keep_alive {
            field("Connection", "close");
        }
        if self.expect && self.framing != 0 {
            field("Expect", "100-continue");
        }
        match self.framing {
            1 => field("Content-Length", &self.body.len().to_string()),
            2 => field("Transfer-Encoding", "chunked"),
            _ => {}
        }
        head.push_str(eol);
        out.extend_from_slice(head.as_bytes());
        match self.framing {
            1 => out.extend_from_slice(&self.body),
            2 => encode_chunked(out, &self.body, &self.chunks),
            _ => {}
        }
    }

    /// Whether the connection ends after this request.
    fn closes(&self) -> bool {
        !self.keep_alive
    }
}

/// A stream of requests and how many of them a server must serve (up to the first that
/// closes the connection).
pub(crate) fn gen_stream() -> impl Strategy<Value = (Vec<u8>, usize)> {
    prop::collection::vec(gen_request(), 1..5).prop_map(|reqs| {
        let mut stream = Vec::new();
        for r in &reqs {
            r.encode(&mut stream);
        }
        let served = reqs
            .iter()
            .position(GenRequest::closes)
            .map_or(reqs.len(), |i| i + 1);
        (stream, served)
    })
}

/// Bytes that change how HTTP/1.1 is read.
const INTERESTING: &[u8] = b"\r\n \t:;,0aF\x00\x0b\x0c-+\"=";

/// Fragments that change how a message is framed.
const SNIPPETS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 0\r\n",
    b"Host: other\r\n",
    b"Connection: close\r\n",
    b"0\r\n\r\n",
    b" chunked",
    b", chunked",
    b"5\r\nhello\r\n",
    b"\r\n\r\n",
    b"HTTP/1.1",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
];

/// One change to a stream: where, what kind, and which byte or fragment.
pub(crate) type Mutation = (Index, u8, Index);

pub(crate) fn mutate(stream: &mut Vec<u8>, mutations: &[Mutation]) {
    for (at, kind, pick) in mutations {
        if stream.is_empty() {
            return;
        }
        let at = at.index(stream.len());
        let byte = INTERESTING[pick.index(INTERESTING.len())];
        match kind % 6 {
            0 => stream[at] = byte,
            1 => stream.insert(at, byte),
            2 => {
                stream.remove(at);
            }
            3 => {
                let snippet = SNIPPETS[pick.index(SNIPPETS.len())];
                stream.splice(at..at, snippet.iter().copied());
            }
            4 => {
                // The line around `at`, twice: a repeated header.
                let start = stream[..at]
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |p| p + 1);
                let end = stream[at..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(stream.len(), |p| at + p + 1);
                let line = stream[start..end].to_vec();
                stream.splice(start..start, line);
            }
            _ => {
                stream[at] ^= if stream[at].is_ascii_alphabetic() {
                    0x20
                } else {
                    0
                }
            }
        }
    }
}

/// One well-formed answer.
#[derive(Clone, Debug)]
pub(crate) struct GenAnswer {
    interim: bool,
    status: u16,
    http10: bool,
    keep_alive: bool,
    /// 0: until close, 1: `Content-Length`, 2: chunked (HTTP/1.1 only).
    framing: u8,
    body: Vec<u8>,
    chunks: Chunking,
    head: bool,
    lf_only: bool,
}

pub(crate) fn gen_answer() -> impl Strategy<Value = GenAnswer> {
    (
        (
            prop::bool::weighted(0.1),
            prop::sample::select(vec![200u16, 201, 204, 304, 404, 500, 502]),
            prop::bool::weighted(0.15),
            prop::bool::weighted(0.8),
            0u8..3,
        ),
        (
            prop::collection::vec(any::<u8>(), 0..160),
            gen_chunking(),
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.15),
        ),
    )
        .prop_map(
            |((interim, status, http10, keep_alive, framing), (body, chunks, head, lf_only))| {
                let bodiless = status == 204 || status == 304;
                GenAnswer {
                    interim,
                    status,
                    http10,
                    keep_alive,
                    framing: match framing {
                        _ if bodiless => 1,
                        2 if http10 => 1,
                        f => f,
                    },
                    body: if bodiless || head { Vec::new() } else { body },
                    chunks,
                    head,
                    lf_only,
                }
            },
        )
}

impl GenAnswer {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let eol = if self.lf_only { "\n" } else { "\r\n" };
        let mut out = Vec::new();
        if self.interim {
            out.extend_from_slice(format!("HTTP/1.1 100 Continue{eol}{eol}").as_bytes());
        }
        let mut head = format!("HTTP/1.{} {} X{eol}", u8::from(!self.http10), self.status);
        if self.http10 && self.keep_alive {
            head.push_str(&format!("Connection: keep-alive{eol}"));
        } else if !self.http10 && !self.keep_alive {
            head.push_str(&format!("Connection: close{eol}"));
        }
        match self.framing {
            1 if self.status != 304 => {
                head.push_str(&format!("Content-Length: {}{eol}", self.body.len()))
            }
            2 => head.push_str(&format!("Transfer-Encoding: chunked{eol}")),
            _ => {}
        }
        head.push_str(eol);
        out.extend_from_slice(head.as_bytes());
        match self.framing {
            2 if !self.head => encode_chunked(&mut out, &self.body, &self.chunks),
            _ => out.extend_from_slice(&self.body),
        }
        out
    }

    pub(crate) fn method(&self) -> Method {
        if self.head { Method::HEAD } else { Method::GET }
    }
}
