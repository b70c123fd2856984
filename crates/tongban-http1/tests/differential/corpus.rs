//! The hand-picked streams: plain messages, the request-smuggling shapes (CL.TE, TE.CL,
//! TE.TE obfuscations), malformed lengths and chunks, and each documented refusal.

use http::Method;

use crate::Stricter;

/// A request stream, how many requests hyper serves whole from it (so that a broken harness
/// cannot pass by serving nothing on both sides), and the documented refusal, if any, that
/// makes us serve fewer.
pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) stream: Vec<u8>,
    pub(crate) hyper_serves: usize,
    pub(crate) stricter: Option<Stricter>,
}

fn case(name: &'static str, stream: &[u8], hyper_serves: usize) -> Case {
    Case {
        name,
        stream: stream.to_vec(),
        hyper_serves,
        stricter: None,
    }
}

fn stricter(name: &'static str, stream: &[u8], hyper_serves: usize, why: Stricter) -> Case {
    Case {
        stricter: Some(why),
        ..case(name, stream, hyper_serves)
    }
}

pub(crate) const NEXT: &str = "GET /next HTTP/1.1\r\nHost: x\r\n\r\n";

/// `head` (each line given without its CRLF) with `body` after it, then [`NEXT`].
fn req(head: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in head {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out.extend_from_slice(NEXT.as_bytes());
    out
}

pub(crate) fn request_cases() -> Vec<Case> {
    let post = "POST /p HTTP/1.1";
    let host = "Host: x";
    let te = "Transfer-Encoding: chunked";
    let chunked = b"5\r\nhello\r\n0\r\n\r\n";
    let long_ext = format!("5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(5000));
    let ext_flood: String = (0..6)
        .map(|_| format!("1;{}\r\nx\r\n", "e".repeat(3000)))
        .chain(std::iter::once("0\r\n\r\n".to_owned()))
        .collect();
    let long_trailer = format!("5\r\nhello\r\n0\r\nx-t: {}\r\n\r\n", "v".repeat(5000));
    let many_trailers: String = std::iter::once("5\r\nhello\r\n0\r\n".to_owned())
        .chain((0..101).map(|i| format!("t{i}: v\r\n")))
        .chain(std::iter::once("\r\n".to_owned()))
        .collect();
    let big_header = format!("X-Big: {}", "b".repeat(100 * 1024));
    let many_headers: Vec<String> = (0..101).map(|i| format!("h{i}: v")).collect();
    let mut many: Vec<&str> = vec!["GET / HTTP/1.1", host];
    many.extend(many_headers.iter().map(String::as_str));
    let leading_zeros_length = format!("Content-Length: {}5", "0".repeat(30));
    let leading_zeros_chunk = format!("{}5\r\nhello\r\n0\r\n\r\n", "0".repeat(30));
    let mut cases = vec![
        // Plain messages, one and pipelined.
        case("get", &req(&["GET /a?b=1 HTTP/1.1", host], b""), 2),
        case(
            "post with length",
            &req(&[post, host, "Content-Length: 5"], b"hello"),
            2,
        ),
        case("post chunked", &req(&[post, host, te], chunked), 2),
        case(
            "pipelined framings",
            &[
                req(&[post, host, "Content-Length: 3"], b"abc"),
                req(&[post, host, te], b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
            ]
            .concat(),
            4,
        ),
        case("http/1.0 closes", &req(&["GET / HTTP/1.0"], b""), 1),
        case(
            "http/1.0 keep-alive",
            &req(&["GET / HTTP/1.0", "Connection: keep-alive"], b""),
            2,
        ),
        case(
            "connection close",
            &req(&["GET / HTTP/1.1", host, "Connection: close"], b""),
            1,
        ),
        case(
            "close among other tokens",
            &req(&["GET / HTTP/1.1", host, "Connection: foo, CLOSE"], b""),
            1,
        ),
        case(
            "expect continue",
            &req(
                &[post, host, "Expect: 100-continue", "Content-Length: 2"],
                b"ok",
            ),
            2,
        ),
        case(
            "body longer than its length",
            &req(&[post, host, "Content-Length: 3"], b""),
            1,
        ),
        case(
            "unknown method",
            &req(&["BREW /pot HTTP/1.1", host], b""),
            2,
        ),
        case(
            "absolute form",
            &req(&["GET http://example.com/a?b HTTP/1.1", host], b""),
            2,
        ),
        case("asterisk form", &req(&["OPTIONS * HTTP/1.1", host], b""), 2),
        case(
            "leading empty line",
            &[b"\r\n".as_slice(), &req(&["GET / HTTP/1.1", host], b"")].concat(),
            2,
        ),
        case(
            "bare LF head",
            b"GET / HTTP/1.1\nHost: x\n\nGET /b HTTP/1.1\nHost: x\n\n",
            2,
        ),
        case(
            "empty header value",
            &req(&["GET / HTTP/1.1", host, "X-Empty:"], b""),
            2,
        ),
        case(
            "upgrade not taken",
            &req(
                &[
                    "GET / HTTP/1.1",
                    host,
                    "Upgrade: h2c",
                    "Connection: Upgrade",
                ],
                b"",
            ),
            2,
        ),
        // A 2xx answer to CONNECT turns the connection into a tunnel: what follows is not
        // HTTP any more.
        case(
            "connect answered",
            &req(
                &["CONNECT example.com:443 HTTP/1.1", "Host: example.com:443"],
                b"",
            ),
            1,
        ),
        // Transfer-Encoding obfuscations (TE.TE).
        case(
            "te xchunked",
            &req(&[post, host, "Transfer-Encoding: xchunked"], chunked),
            0,
        ),
        case(
            "te leading space",
            &req(&[post, host, "Transfer-Encoding:  chunked"], chunked),
            2,
        ),
        case(
            "te trailing space",
            &req(&[post, host, "Transfer-Encoding: chunked "], chunked),
            2,
        ),
        case(
            "te tab",
            &req(&[post, host, "Transfer-Encoding:\tchunked\t"], chunked),
            2,
        ),
        case(
            "te upper case",
            &req(&[post, host, "TRANSFER-ENCODING: CHUNKED"], chunked),
            2,
        ),
        case(
            "te space before colon",
            &req(&[post, host, "Transfer-Encoding : chunked"], chunked),
            0,
        ),
        case(
            "te chunked then other",
            &req(&[post, host, te, "Transfer-Encoding: x"], chunked),
            0,
        ),
        case(
            "te chunked not last",
            &req(&[post, host, "Transfer-Encoding: chunked, gzip"], chunked),
            0,
        ),
        case(
            "te identity",
            &req(&[post, host, "Transfer-Encoding: identity"], b""),
            0,
        ),
        case(
            "te trailing comma",
            &req(&[post, host, "Transfer-Encoding: chunked,"], chunked),
            0,
        ),
        case("te in http/1.0", &req(&["POST / HTTP/1.0", te], chunked), 0),
        case(
            "te obs-fold",
            &req(&[post, host, "Transfer-Encoding:", " chunked"], chunked),
            0,
        ),
        case(
            "te with NUL",
            &req(&[post, host, "Transfer-Encoding: chunked\0"], chunked),
            0,
        ),
        case(
            "te vertical tab",
            &req(&[post, host, "Transfer-Encoding:\x0bchunked"], chunked),
            0,
        ),
        stricter(
            "te gzip before chunked",
            &req(&[post, host, "Transfer-Encoding: gzip, chunked"], chunked),
            2,
            Stricter::Coding,
        ),
        stricter(
            "te chunked twice in a list",
            &req(
                &[post, host, "Transfer-Encoding: chunked, chunked"],
                chunked,
            ),
            2,
            Stricter::Coding,
        ),
        stricter(
            "te empty element first",
            &req(&[post, host, "Transfer-Encoding: , chunked"], chunked),
            2,
            Stricter::Coding,
        ),
        stricter(
            "te identity line then chunked line",
            &req(&[post, host, "Transfer-Encoding: identity", te], chunked),
            2,
            Stricter::Coding,
        ),
        stricter(
            "te chunked on two lines",
            &req(&[post, host, te, te], chunked),
            2,
            Stricter::Coding,
        ),
        // CL.TE and TE.CL.
        stricter(
            "cl.te",
            &req(&[post, host, "Content-Length: 6", te], b"0\r\n\r\nG"),
            1,
            Stricter::CodingWithLength,
        ),
        stricter(
            "te.cl",
            &req(
                &[post, host, te, "Content-Length: 3"],
                b"8\r\nSMUGGLED\r\n0\r\n\r\n",
            ),
            1,
            Stricter::CodingWithLength,
        ),
        // Content-Length shapes.
        case(
            "cl repeated equal",
            &req(
                &[post, host, "Content-Length: 2", "Content-Length: 2"],
                b"ok",
            ),
            2,
        ),
        case(
            "cl contradicting",
            &req(
                &[post, host, "Content-Length: 2", "Content-Length: 3"],
                b"ok",
            ),
            0,
        ),
        case(
            "cl list",
            &req(&[post, host, "Content-Length: 2, 2"], b"ok"),
            0,
        ),
        case(
            "cl plus sign",
            &req(&[post, host, "Content-Length: +2"], b"ok"),
            0,
        ),
        case(
            "cl negative",
            &req(&[post, host, "Content-Length: -2"], b"ok"),
            0,
        ),
        case(
            "cl hex",
            &req(&[post, host, "Content-Length: 0x2"], b"ok"),
            0,
        ),
        case(
            "cl inner space",
            &req(&[post, host, "Content-Length: 1 1"], b"ok"),
            0,
        ),
        case("cl empty", &req(&[post, host, "Content-Length:"], b"ok"), 0),
        case(
            "cl tab",
            &req(&[post, host, "Content-Length:\t2\t"], b"ok"),
            2,
        ),
        case(
            "cl leading zeros",
            &req(&[post, host, &leading_zeros_length], b"hello"),
            2,
        ),
        case(
            "cl overflow",
            &req(&[post, host, "Content-Length: 99999999999999999999"], b""),
            0,
        ),
        case(
            "cl u64 max",
            &req(&[post, host, "Content-Length: 18446744073709551615"], b""),
            0,
        ),
        // Heads hyper and we both refuse.
        case(
            "NUL in value",
            &req(&["GET / HTTP/1.1", host, "X-A: a\0b"], b""),
            0,
        ),
        case(
            "NUL in name",
            &req(&["GET / HTTP/1.1", host, "X\0A: b"], b""),
            0,
        ),
        case(
            "obs-fold",
            &req(&["GET / HTTP/1.1", host, "X-A: a", " b"], b""),
            0,
        ),
        case(
            "bare CR in a line",
            &req(&["GET / HTTP/1.1", "Host: x\rX-A: b"], b""),
            0,
        ),
        case("http/0.9", b"GET /\r\n\r\n", 0),
        case("http/1.2", &req(&["GET / HTTP/1.2", host], b""), 0),
        case("http/2.0 line", &req(&["GET / HTTP/2.0", host], b""), 0),
        case(
            "space in target",
            &req(&["GET /a b HTTP/1.1", host], b""),
            0,
        ),
        case(
            "two spaces after method",
            &req(&["GET  / HTTP/1.1", host], b""),
            0,
        ),
        case("too many headers", &req(&many, b""), 0),
        // Chunked bodies.
        case(
            "chunk extensions",
            &req(
                &[post, host, te],
                b"5;a=b;c=\"d;e\"\r\nhello\r\n0;z\r\n\r\n",
            ),
            2,
        ),
        case(
            "chunk size space",
            &req(&[post, host, te], b"5 \r\nhello\r\n0\t\r\n\r\n"),
            2,
        ),
        case(
            "chunk size then space then extension",
            &req(&[post, host, te], b"5 ;a\r\nhello\r\n0\r\n\r\n"),
            2,
        ),
        case(
            "chunk size leading zeros",
            &req(&[post, host, te], b"0005\r\nhello\r\n000\r\n\r\n"),
            2,
        ),
        case(
            "chunk size many leading zeros",
            &req(&[post, host, te], leading_zeros_chunk.as_bytes()),
            2,
        ),
        case(
            "chunk size upper hex",
            &req(&[post, host, te], b"A\r\n0123456789\r\n0\r\n\r\n"),
            2,
        ),
        case(
            "chunk size overflow",
            &req(&[post, host, te], b"10000000000000000\r\n"),
            0,
        ),
        case(
            "chunk size huge",
            &req(&[post, host, te], b"fffffffffffffff\r\nabc"),
            0,
        ),
        case(
            "chunk size missing",
            &req(&[post, host, te], b"\r\nhello\r\n0\r\n\r\n"),
            0,
        ),
        case(
            "chunk size sign",
            &req(&[post, host, te], b"+5\r\nhello\r\n0\r\n\r\n"),
            0,
        ),
        case(
            "chunk size 0x",
            &req(&[post, host, te], b"0x5\r\nhello\r\n0\r\n\r\n"),
            0,
        ),
        case(
            "chunk size form feed",
            &req(&[post, host, te], b"5\x0c\r\nhello\r\n0\r\n\r\n"),
            0,
        ),
        case(
            "chunk size bare CR",
            &req(&[post, host, te], b"5\r\rhello\r\n0\r\n\r\n"),
            0,
        ),
        case(
            "chunk extension bare CR",
            &req(&[post, host, te], b"5;a\rb\r\nhello\r\n0\r\n\r\n"),
            0,
        ),
        case(
            "chunk size bare LF",
            &req(&[post, host, te], b"5\nhello\r\n0\r\n\r\n"),
            0,
        ),
        case(
            "chunk data too long",
            &req(&[post, host, te], b"5\r\nhelloX\r\n0\r\n\r\n"),
            0,
        ),
        case(
            "chunk data bare LF end",
            &req(&[post, host, te], b"5\r\nhello\n0\r\n\r\n"),
            0,
        ),
        stricter(
            "last chunk bare LF",
            &req(&[post, host, te], b"5\r\nhello\r\n0\r\n\n"),
            1,
            Stricter::BareLfInTrailers,
        ),
        stricter(
            "trailer ended by bare LF",
            &req(&[post, host, te], b"5\r\nhello\r\n0\r\nX-T: 1\n\r\n"),
            1,
            Stricter::BareLfInTrailers,
        ),
        case(
            "chunked cut off",
            b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            0,
        ),
        case(
            "length cut off",
            b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel",
            0,
        ),
        case("head cut off", b"GET / HTTP/1.1\r\nHost: x\r\n", 0),
        case(
            "trailers",
            &req(
                &[post, host, te],
                b"5\r\nhello\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n",
            ),
            2,
        ),
        case(
            "trailer not a field",
            &req(&[post, host, te], b"5\r\nhello\r\n0\r\nnot a field\r\n\r\n"),
            0,
        ),
        case(
            "trailer obs-fold",
            &req(
                &[post, host, te],
                b"5\r\nhello\r\n0\r\nX-T: 1\r\n 2\r\n\r\n",
            ),
            0,
        ),
        case(
            "trailer with NUL",
            &req(&[post, host, te], b"5\r\nhello\r\n0\r\nX-T: 1\0\r\n\r\n"),
            0,
        ),
        case(
            "trailer bare CR",
            &req(
                &[post, host, te],
                b"5\r\nhello\r\n0\r\nX-T: 1\rX-U: 2\r\n\r\n",
            ),
            0,
        ),
        case(
            "too many trailers",
            &req(&[post, host, te], many_trailers.as_bytes()),
            0,
        ),
        case(
            "extensions over 16 KiB",
            &req(&[post, host, te], ext_flood.as_bytes()),
            0,
        ),
        stricter(
            "very long chunk-size line",
            &req(&[post, host, te], long_ext.as_bytes()),
            2,
            Stricter::LongLine,
        ),
        stricter(
            "very long trailer line",
            &req(&[post, host, te], long_trailer.as_bytes()),
            2,
            Stricter::LongLine,
        ),
        // Heads we refuse on purpose.
        stricter("no host", &req(&["GET / HTTP/1.1"], b""), 2, Stricter::Host),
        stricter(
            "two hosts",
            &req(&["GET / HTTP/1.1", host, "Host: y"], b""),
            2,
            Stricter::Host,
        ),
        stricter(
            "large head",
            &req(&["GET / HTTP/1.1", host, &big_header], b""),
            2,
            Stricter::LargeHead,
        ),
    ];
    // The second request of a pipeline is where smuggled bytes would land.
    let smuggle = req(&[post, host, "Content-Length: 6", te], b"0\r\n\r\nG");
    cases.push(stricter(
        "cl.te after a plain request",
        &[
            req(&["GET /first HTTP/1.1", host], b"").as_slice(),
            &smuggle,
        ]
        .concat(),
        3,
        Stricter::CodingWithLength,
    ));
    cases
}

/// An answer, the method it answers, and the documented disagreement, if any.
pub(crate) struct AnswerCase {
    pub(crate) name: &'static str,
    pub(crate) answer: Vec<u8>,
    pub(crate) method: Method,
    pub(crate) stricter: Option<Stricter>,
}

pub(crate) fn answer_cases() -> Vec<AnswerCase> {
    let get = |name, answer: &[u8]| AnswerCase {
        name,
        answer: answer.to_vec(),
        method: Method::GET,
        stricter: None,
    };
    let head = |name, answer: &[u8]| AnswerCase {
        method: Method::HEAD,
        ..get(name, answer)
    };
    let stricter = |name, answer: &[u8], why| AnswerCase {
        stricter: Some(why),
        ..get(name, answer)
    };
    let long_ext = format!(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;{}\r\nhello\r\n0\r\n\r\n",
        "e".repeat(5000)
    );
    let zeros = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}5\r\n\r\nhello",
        "0".repeat(30)
    );
    vec![
        get("length", b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"),
        get("length then more", b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nhello"),
        get("length cut off", b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nhello"),
        get("length leading zeros", zeros.as_bytes()),
        get("chunked", b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        get(
            "chunked with extensions and trailers",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;a=1\r\nhello\r\n0\r\nx-t: 1\r\n\r\n",
        ),
        get(
            "chunked then more",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nEXTRA",
        ),
        get("chunked cut off", b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel"),
        get("chunked malformed", b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"),
        get("chunked bare CR", b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\rhello\r\n0\r\n\r\n"),
        get("chunked bad trailer", b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nnot a field\r\n\r\n"),
        get(
            "coding before chunked",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        get("chunked not last", b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\nhello"),
        get("identity coding", b"HTTP/1.1 200 OK\r\ntransfer-encoding: identity\r\n\r\nhello"),
        get(
            "chunked line then gzip line",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: gzip\r\n\r\nhello",
        ),
        get(
            "gzip line then chunked line",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        get("until close", b"HTTP/1.1 200 OK\r\n\r\nhello"),
        get("http/1.0 until close", b"HTTP/1.0 200 OK\r\n\r\nhello"),
        get("http/1.0 length", b"HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\nhello"),
        get(
            "http/1.0 keep-alive",
            b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 5\r\n\r\nhello",
        ),
        get(
            "http/1.0 chunked",
            b"HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        get("connection close", b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello"),
        get("no content", b"HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n"),
        get("not modified", b"HTTP/1.1 304 Not Modified\r\n\r\n"),
        get(
            "continue first",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        ),
        get(
            "processing first",
            b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
        ),
        get("only an interim answer", b"HTTP/1.1 100 Continue\r\n\r\n"),
        get("no reason", b"HTTP/1.1 404\r\ncontent-length: 2\r\n\r\nno"),
        get("bare LF", b"HTTP/1.1 200 OK\ncontent-length: 2\n\nok"),
        get("lengths disagree", b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok"),
        get("lengths agree", b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\nok"),
        get("length sign", b"HTTP/1.1 200 OK\r\ncontent-length: +2\r\n\r\nok"),
        get("length overflow", b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\nok"),
        get("obs-fold", b"HTTP/1.1 200 OK\r\nx-a: 1\r\n 2\r\ncontent-length: 2\r\n\r\nok"),
        get("space before colon", b"HTTP/1.1 200 OK\r\ncontent-length : 2\r\n\r\nok"),
        get("not http", b"SSH-2.0-OpenSSH\r\n\r\n"),
        get("status 4 digits", b"HTTP/1.1 2000 OK\r\n\r\n"),
        head("head with length", b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"),
        head("head with chunked", b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"),
        head("head then a body anyway", b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"),
        stricter(
            "both framings",
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            Stricter::NoReuseAfterBothFramings,
        ),
        stricter(
            "bad length beside coding",
            b"HTTP/1.1 200 OK\r\ncontent-length: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            Stricter::BadLengthBesideCoding,
        ),
        stricter(
            "length list",
            b"HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\n\r\nok",
            Stricter::LengthList,
        ),
        stricter(
            "switching protocols",
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n",
            Stricter::Switching,
        ),
        stricter("very long chunk-size line", long_ext.as_bytes(), Stricter::LongLine),
        stricter(
            "no content, lengths disagree",
            b"HTTP/1.1 204 X\r\nContent-Length: 5\r\nContent-Length: 0\r\n\r\n",
            Stricter::BrokenFramingWithoutBody,
        ),
        AnswerCase {
            method: Method::HEAD,
            ..stricter(
                "head, http/1.0 chunked",
                b"HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                Stricter::BrokenFramingWithoutBody,
            )
        },
    ]
}
