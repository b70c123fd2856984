//! Differential tests: the same bytes read by Tongban's HTTP/1.1 and by hyper's, which it
//! replaced and must agree with. Requests go through our `server::serve` and hyper's
//! `http1` server, each calling an echo service that notes what it was given; answers go
//! through our `client::parse_head` with the body framing it decides, and through hyper's
//! `http1` client. Where the two disagree, the only disagreements allowed are those listed
//! in [`Stricter`]: we refuse, hyper goes on, and the reason is written there.

// The harness and corpus live beside this file, in `differential/`.
#[path = "differential/answers.rs"]
mod answers;
#[path = "differential/corpus.rs"]
mod corpus;
#[path = "differential/generate.rs"]
mod generate;
#[path = "differential/requests.rs"]
mod requests;

use std::path::Path;

use http::Method;
use proptest::prelude::*;
use proptest::sample::Index;

use answers::{AnswerVerdict, answer_verdict, both_read, explain_answer};
use corpus::{answer_cases, request_cases};
use generate::{gen_answer, gen_stream, mutate};
use requests::{Verdict, both_serve, explain, verdict, whole};

/// The disagreements with hyper that are ours on purpose: each is a message we refuse (or a
/// connection we do not reuse) where hyper goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stricter {
    /// A request without `Host` in HTTP/1.1, or with two: RFC 9112 §3.2 requires exactly
    /// one, and routes match on it, so two could send one request down two routes.
    Host,
    /// A request with both `Transfer-Encoding` and `Content-Length`: the CL.TE and TE.CL
    /// smuggling shapes. hyper reads it as chunked and closes after; RFC 9112 §6.3 allows
    /// refusing it, and a front end that guesses is what smuggling relies on.
    CodingWithLength,
    /// A request `Transfer-Encoding` other than one line of `chunked` alone (`gzip,
    /// chunked`, `chunked, chunked`, `, chunked`, `identity` then `chunked` on two lines).
    /// hyper de-chunks whenever the last coding of the last line is `chunked`, and hands
    /// the application the bytes of the other codings as if they were the content; readers
    /// combine several lines differently.
    Coding,
    /// A chunk-size or trailer line longer than 4 KiB: hyper allows 16 KiB of extensions
    /// and trailers in all; no client needs a line that long, and a reader buffering lines
    /// holds less per connection.
    LongLine,
    /// A bare LF where a CRLF belongs in a chunked body's trailer section (`0\r\n\n`, or a
    /// trailer line ended by LF alone). hyper takes the LF for part of a trailer and reads on
    /// to the next CRLF CRLF, so in `0\r\n\n` the next request's head is swallowed as
    /// trailers; RFC 9112 §7.1 wants CRLF there and we refuse the body.
    BareLfInTrailers,
    /// A request head larger than 64 KiB: hyper's buffer takes about 400 KiB; this
    /// platform's clients send heads of a few hundred bytes.
    LargeHead,
    /// An answer `101 Switching Protocols`: the gateway never asks for an upgrade, so one
    /// offered is a broken or hostile upstream.
    Switching,
    /// An answer's `Content-Length` written as a list (`5, 5`): RFC 9110 §8.6 lets a
    /// recipient take it as one length or refuse it; one value is what HTTP/1.1 servers
    /// send.
    LengthList,
    /// An answer whose `Content-Length` is not a number beside a `Transfer-Encoding`: hyper
    /// ignores the length for the coding; such an answer is broken either way.
    BadLengthBesideCoding,
    /// An answer without a body (to HEAD, or 204, 304) whose framing headers are broken
    /// (lengths that disagree or are no number, a coding in HTTP/1.0): hyper looks at them
    /// only when a body follows; we read them the same way for every answer, and such an
    /// upstream is broken either way.
    BrokenFramingWithoutBody,
    /// An answer with both `Transfer-Encoding` and `Content-Length`: read by its coding as
    /// hyper does, but the connection is not used again (RFC 9112 §6.3, 3: ought to be
    /// handled as an error; hyper reuses it).
    NoReuseAfterBothFramings,
}

/// A runtime for one exchange: each case gets a fresh one, so no state leaks between them.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn hand_picked_requests_are_read_as_hyper_reads_them() {
    let cases = request_cases();
    let mut failures = Vec::new();
    for c in &cases {
        let (ours, hypers) = both_serve(&c.stream);
        let v = verdict(&ours, &hypers);
        let expected = match c.stricter {
            None => Verdict::Same,
            Some(_) => Verdict::OursStopped(whole(&ours).len()),
        };
        let served = whole(&hypers).len();
        if v != expected || served != c.hyper_serves || (c.stricter.is_some() && v == Verdict::Same)
        {
            failures.push(format!(
                "{}: {v:?}, hyper served {served} (expected {}), documented {:?}\n  ours:  {ours:?}\n  hyper: {hypers:?}",
                c.name, c.hyper_serves, c.stricter
            ));
        }
        // A documented refusal is recognised from the bytes as the generated streams' are.
        if let (Some(why), Verdict::OursStopped(k)) = (c.stricter, &v)
            && explain(&c.stream, &whole(&hypers)[*k]) != Some(why)
        {
            failures.push(format!("{}: not recognised as {why:?}", c.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} streams disagree:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn hand_picked_answers_are_read_as_hyper_reads_them() {
    let cases = answer_cases();
    let mut failures = Vec::new();
    for c in &cases {
        let (ours, hypers, headers) = both_read(&c.answer, &c.method);
        let v = answer_verdict(&ours, &hypers);
        let ok = match c.stricter {
            None => v == AnswerVerdict::Same,
            Some(why) => explain_answer(&c.answer, &c.method, &v, &hypers, &headers) == Some(why),
        };
        if !ok {
            failures.push(format!(
                "{}: {v:?}, documented {:?}\n  ours:  {ours:?}\n  hyper: {hypers:?}",
                c.name, c.stricter
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} answers disagree:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Checks one request stream: the same reading, or a documented refusal of ours.
fn check_stream(stream: &[u8], exact: Option<usize>) -> Result<(), TestCaseError> {
    let (ours, hypers) = both_serve(stream);
    let v = verdict(&ours, &hypers);
    if let Some(n) = exact {
        prop_assert_eq!(&v, &Verdict::Same, "ours {:?}\nhyper {:?}", ours, hypers);
        prop_assert_eq!(whole(&hypers).len(), n, "hyper {:?}", hypers);
        return Ok(());
    }
    match v {
        Verdict::Same => Ok(()),
        Verdict::OursStopped(k) => {
            let why = explain(stream, &whole(&hypers)[k]);
            prop_assert!(
                why.is_some(),
                "we stopped at request {} with no documented reason\nours {:?}\nhyper {:?}\nstream {:?}",
                k,
                ours,
                hypers,
                String::from_utf8_lossy(stream)
            );
            Ok(())
        }
        Verdict::Differs => Err(TestCaseError::fail(format!(
            "readings differ\nours {ours:?}\nhyper {hypers:?}\nstream {:?}",
            String::from_utf8_lossy(stream)
        ))),
    }
}

/// Checks one answer: the same reading, or a documented refusal of ours.
fn check_answer(answer: &[u8], method: &Method, exact: bool) -> Result<(), TestCaseError> {
    let (ours, hypers, headers) = both_read(answer, method);
    let v = answer_verdict(&ours, &hypers);
    if exact || v == AnswerVerdict::Same {
        prop_assert_eq!(
            &v,
            &AnswerVerdict::Same,
            "ours {:?}\nhyper {:?}",
            ours,
            hypers
        );
        return Ok(());
    }
    prop_assert!(
        explain_answer(answer, method, &v, &hypers, &headers).is_some(),
        "{:?} with no documented reason\nours {:?}\nhyper {:?}\nanswer {:?}",
        v,
        ours,
        hypers,
        String::from_utf8_lossy(answer)
    );
    Ok(())
}

proptest! {
    // Failures are kept as hand-picked cases above, not in a regressions file. 256 cases
    // each unless PROPTEST_CASES says otherwise.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Well-formed pipelined requests with any framing are served alike, all of them.
    #[test]
    fn generated_requests_are_served_as_hyper_serves_them((stream, served) in gen_stream()) {
        check_stream(&stream, Some(served))?;
    }

    /// The same streams with bytes changed: read alike, or refused by us for a listed reason.
    #[test]
    fn mutated_requests_are_served_as_hyper_serves_them(
        (stream, _) in gen_stream(),
        mutations in prop::collection::vec((any::<Index>(), any::<u8>(), any::<Index>()), 1..4),
    ) {
        let mut stream = stream;
        mutate(&mut stream, &mutations);
        check_stream(&stream, None)?;
    }

    /// Well-formed answers are read alike, and end in the same place.
    #[test]
    fn generated_answers_are_read_as_hyper_reads_them(answer in gen_answer()) {
        check_answer(&answer.encode(), &answer.method(), true)?;
    }

    /// The same answers with bytes changed: read alike, or refused by us for a listed reason.
    #[test]
    fn mutated_answers_are_read_as_hyper_reads_them(
        answer in gen_answer(),
        mutations in prop::collection::vec((any::<Index>(), any::<u8>(), any::<Index>()), 1..4),
    ) {
        let mut bytes = answer.encode();
        mutate(&mut bytes, &mutations);
        check_answer(&bytes, &answer.method(), false)?;
    }
}

/// Writes the fuzz targets' seed corpus, `fuzz/corpus/<target>/`, from the hand-picked
/// cases (at most 95 files, each at most 2 KiB, so that libFuzzer's inputs stay short).
#[test]
#[ignore = "writes the committed seed corpus: run by hand when the cases change"]
fn write_fuzz_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let requests = request_cases();
    let answers = answer_cases();
    let short = |b: &Vec<u8>| b.len() <= 2048;
    let heads: Vec<Vec<u8>> = requests
        .iter()
        .map(|c| c.stream.clone())
        .filter(short)
        .collect();
    // The chunked target's input: a limit (0: none), a seed for the pieces, the bytes.
    let bodies: Vec<Vec<u8>> = requests
        .iter()
        .filter(|c| {
            String::from_utf8_lossy(&c.stream)
                .to_ascii_lowercase()
                .contains("chunked")
        })
        .filter_map(|c| {
            let end = c.stream.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
            let body = &c.stream[end..];
            let body = body.strip_suffix(corpus::NEXT.as_bytes()).unwrap_or(body);
            Some(body.to_vec())
        })
        .enumerate()
        .map(|(i, body)| [vec![0, i as u8], body].concat())
        .filter(short)
        .collect();
    // The answer target's input: the method (0: GET, 1: HEAD), the answer.
    let answers: Vec<Vec<u8>> = answers
        .iter()
        .map(|c| [vec![u8::from(c.method == Method::HEAD)], c.answer.clone()].concat())
        .filter(short)
        .collect();
    write_seeds(&root.join("request_head"), &spread(heads, 40));
    write_seeds(&root.join("chunked"), &spread(bodies, 25));
    write_seeds(&root.join("response_head"), &spread(answers, 30));
}

/// At most `n` of `items`, spread evenly over them.
fn spread(items: Vec<Vec<u8>>, n: usize) -> Vec<Vec<u8>> {
    if items.len() <= n {
        return items;
    }
    (0..n).map(|i| items[i * items.len() / n].clone()).collect()
}

/// Replaces the files of `dir` with `inputs`, named by index.
fn write_seeds(dir: &Path, inputs: &[Vec<u8>]) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("seed directory");
    for (i, input) in inputs.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:02}")), input).expect("seed written");
    }
}
