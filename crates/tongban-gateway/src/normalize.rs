//! Envelope normalization, free of I/O: an upstream's answer either already is the envelope
//! (passed on with its code) or is replaced by a 30000-series envelope saying what went wrong.

use http::StatusCode;
use tongban_core::Code;

/// How an attempt at an upstream ended, as far as the client's answer is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No connection (refused, reset, unreachable): 30000.
    Connect,
    /// The connection was not made in time: 30002.
    ConnectTimeout,
    /// The attempt's answer did not arrive in time: 30003.
    ReadTimeout,
    /// The request's whole time ran out: 30001.
    TotalTimeout,
    /// The connection broke mid-answer: 30000.
    Broken,
}

/// The verdict on an answer that arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A well-formed envelope: pass it on; its code is recorded.
    Envelope(Code),
    /// Not an envelope: answer this code instead.
    Replace(Code),
}

// === impl Failure ===

impl Failure {
    pub fn code(self) -> Code {
        match self {
            Self::Connect | Self::Broken => Code::THIRD_PARTY_FAILED,
            Self::ConnectTimeout => Code::THIRD_PARTY_CONNECT_TIMEOUT,
            Self::ReadTimeout => Code::THIRD_PARTY_READ_TIMEOUT,
            Self::TotalTimeout => Code::THIRD_PARTY_TIMEOUT,
        }
    }
}

/// Judges an upstream answer by its status and (decoded) body.
pub fn judge(status: StatusCode, body: &[u8]) -> Verdict {
    if let Some(code) = envelope_code(body) {
        return Verdict::Envelope(code);
    }
    if status.is_success() {
        // 2xx but not the envelope: the upstream's data cannot be trusted as an answer.
        Verdict::Replace(Code::THIRD_PARTY_BAD_DATA)
    } else {
        Verdict::Replace(Code::THIRD_PARTY_NON_200)
    }
}

/// The code of a body that is exactly an envelope: a JSON object with an integer `code`, an
/// optional string `msg`, an optional `data`, and nothing else.
pub fn envelope_code(body: &[u8]) -> Option<Code> {
    match Scan::envelope(body) {
        Scanned::Envelope(code) => Some(code),
        Scanned::Not => None,
        Scanned::Unsure => envelope_code_parsed(body),
    }
}

/// [`envelope_code`] by serde_json, for the bodies the scanner leaves to it (escaped keys or
/// `msg`, a signed `code`, invalid UTF-8, nesting deeper than [`SCAN_DEPTH`]).
fn envelope_code_parsed(body: &[u8]) -> Option<Code> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Shape<'a> {
        code: u32,
        #[serde(borrow)]
        #[allow(dead_code)]
        msg: Option<std::borrow::Cow<'a, str>>,
        #[allow(dead_code)]
        data: Option<serde::de::IgnoredAny>,
    }
    // serde also reads a struct from an array (`[0,null,null]`); an envelope is an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    serde_json::from_slice::<Shape<'_>>(body)
        .ok()
        .map(|s| Code(s.code))
}

/// The scanner's finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scanned {
    Envelope(Code),
    Not,
    /// Valid or not by rules the scanner leaves to serde_json.
    Unsure,
}

/// A single pass over an answer body that decides the common envelope without parsing it
/// into anything: this runs on every answer, and serde_json's derived visitor cost about 780
/// instructions for `{"code":0,"data":{}}`. It accepts exactly what serde_json accepts for
/// the shape, or says it is unsure.
struct Scan<'a> {
    b: &'a [u8],
    at: usize,
}

#[derive(Clone, Copy)]
enum Member {
    Code,
    Msg,
    Data,
    Other,
}

/// Nesting past this is left to serde_json (which skips an ignored value without recursing).
const SCAN_DEPTH: u32 = 100;

/// What stops a scan early: not an envelope, or a case for serde_json.
type Step = Result<(), Scanned>;

impl<'a> Scan<'a> {
    fn envelope(b: &'a [u8]) -> Scanned {
        if !b.is_ascii() && std::str::from_utf8(b).is_err() {
            return Scanned::Unsure;
        }
        let mut s = Scan { b, at: 0 };
        match s.object() {
            Ok(code) => code,
            Err(stop) => stop,
        }
    }

    fn object(&mut self) -> Result<Scanned, Scanned> {
        self.ws();
        self.expect(b'{')?;
        let (mut code, mut msg, mut data) = (None, false, false);
        self.ws();
        if self.peek() != Some(b'}') {
            loop {
                self.ws();
                let key = self.member()?;
                self.ws();
                self.expect(b':')?;
                self.ws();
                match key {
                    Member::Code if code.is_none() => code = Some(self.code()?),
                    Member::Msg if !msg => {
                        msg = true;
                        self.msg()?;
                    }
                    Member::Data if !data => {
                        data = true;
                        self.value(1)?;
                    }
                    // An unknown or repeated member.
                    _ => return Err(Scanned::Not),
                }
                self.ws();
                match self.next() {
                    Some(b',') => continue,
                    Some(b'}') => break,
                    _ => return Err(Scanned::Not),
                }
            }
        } else {
            self.at += 1;
        }
        self.ws();
        if self.at != self.b.len() {
            return Err(Scanned::Not);
        }
        Ok(code.map_or(Scanned::Not, Scanned::Envelope))
    }

    /// A member's name: one of the envelope's, or another (an escaped name may still spell
    /// one of them: serde decides).
    fn member(&mut self) -> Result<Member, Scanned> {
        let rest = &self.b[self.at..];
        let (member, len) = if rest.starts_with(b"\"code\"") {
            (Member::Code, 6)
        } else if rest.starts_with(b"\"data\"") {
            (Member::Data, 6)
        } else if rest.starts_with(b"\"msg\"") {
            (Member::Msg, 5)
        } else {
            self.expect(b'"')?;
            self.unescaped_rest()?;
            return Ok(Member::Other);
        };
        self.at += len;
        Ok(member)
    }

    /// `code`: an unsigned integer that fits 32 bits.
    fn code(&mut self) -> Result<Code, Scanned> {
        let start = self.at;
        let mut n: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            self.at += 1;
            n = n * 10 + u64::from(d - b'0');
            if n > u64::from(u32::MAX) {
                return Err(Scanned::Not);
            }
        }
        let digits = &self.b[start..self.at];
        match (digits, self.peek()) {
            (_, Some(b'-')) if digits.is_empty() => Err(Scanned::Unsure),
            ([], _) | ([b'0', _, ..], _) => Err(Scanned::Not),
            // A fraction or an exponent makes it a float, which is not a code.
            (_, Some(b'.' | b'e' | b'E')) => Err(Scanned::Not),
            _ => Ok(Code(n as u32)),
        }
    }

    /// `msg`: `null` or a string; escapes are left to serde (it checks surrogates here).
    fn msg(&mut self) -> Step {
        if self.peek() == Some(b'n') {
            return self.literal(b"null");
        }
        self.expect(b'"')?;
        self.unescaped_rest()
    }

    /// The rest of a string decided here only without escapes (serde decides the others).
    fn unescaped_rest(&mut self) -> Step {
        loop {
            match self.next() {
                Some(b'"') => return Ok(()),
                Some(b'\\') => return Err(Scanned::Unsure),
                Some(c) if c >= 0x20 => {}
                _ => return Err(Scanned::Not),
            }
        }
    }

    /// Any JSON value, checked and skipped; `depth` counts the containers it is in.
    fn value(&mut self, depth: u32) -> Step {
        match self.peek() {
            Some(b'{') | Some(b'[') if depth >= SCAN_DEPTH => Err(Scanned::Unsure),
            Some(b'{') => {
                self.at += 1;
                self.ws();
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    self.string()?;
                    self.ws();
                    self.expect(b':')?;
                    self.ws();
                    self.value(depth + 1)?;
                    self.ws();
                    match self.next() {
                        Some(b',') => {}
                        Some(b'}') => return Ok(()),
                        _ => return Err(Scanned::Not),
                    }
                }
            }
            Some(b'[') => {
                self.at += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    self.value(depth + 1)?;
                    self.ws();
                    match self.next() {
                        Some(b',') => {}
                        Some(b']') => return Ok(()),
                        _ => return Err(Scanned::Not),
                    }
                }
            }
            Some(b'"') => self.string(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(Scanned::Not),
        }
    }

    /// A string in `data`: escapes checked as serde does for a value it ignores (`\u` needs
    /// four hex digits, surrogates unchecked).
    fn string(&mut self) -> Step {
        self.expect(b'"')?;
        loop {
            match self.next() {
                Some(b'"') => return Ok(()),
                Some(b'\\') => match self.next() {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                    Some(b'u') => {
                        for _ in 0..4 {
                            if !self.next().is_some_and(|c| c.is_ascii_hexdigit()) {
                                return Err(Scanned::Not);
                            }
                        }
                    }
                    _ => return Err(Scanned::Not),
                },
                Some(c) if c >= 0x20 => {}
                _ => return Err(Scanned::Not),
            }
        }
    }

    /// RFC 8259's number: `-`? (`0` | [1-9][0-9]*) (`.` [0-9]+)? ([eE] [+-]? [0-9]+)?
    fn number(&mut self) -> Step {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next() {
            Some(b'0') => {}
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Scanned::Not),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Ok(())
    }

    fn some_digits(&mut self) -> Step {
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return Err(Scanned::Not);
        }
        self.digits();
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Step {
        if self.b[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(Scanned::Not)
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Step {
        if self.next() == Some(c) {
            Ok(())
        } else {
            Err(Scanned::Not)
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek();
        if c.is_some() {
            self.at += 1;
        }
        c
    }
}

/// Whether an answer counts as a failure of the upstream (for breakers, outliers and retries).
pub fn is_upstream_failure(status: StatusCode, code: Code) -> bool {
    status.is_server_error() || (30_000..40_000).contains(&code.0) || code == Code::BUSY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_pass_with_their_code() {
        assert_eq!(
            judge(StatusCode::OK, br#"{"code":0,"data":{"a":1}}"#),
            Verdict::Envelope(Code(0))
        );
        assert_eq!(
            judge(
                StatusCode::BAD_REQUEST,
                r#"{"code":20003,"msg":"缺少参数"}"#.as_bytes()
            ),
            Verdict::Envelope(Code(20003))
        );
        assert_eq!(
            judge(StatusCode::OK, br#"{"code":0,"msg":null}"#),
            Verdict::Envelope(Code(0))
        );
    }

    #[test]
    fn everything_else_is_replaced() {
        assert_eq!(
            judge(StatusCode::OK, b"<html>hi</html>"),
            Verdict::Replace(Code(30011))
        );
        assert_eq!(
            judge(StatusCode::OK, br#"{"ok":true}"#),
            Verdict::Replace(Code(30011))
        );
        assert_eq!(
            judge(StatusCode::OK, br#"{"code":"0"}"#),
            Verdict::Replace(Code(30011))
        );
        assert_eq!(
            judge(StatusCode::OK, br#"{"code":0,"extra":1}"#),
            Verdict::Replace(Code(30011))
        );
        assert_eq!(
            judge(StatusCode::OK, br#"[1]"#),
            Verdict::Replace(Code(30011))
        );
        for body in [
            &br#"{"code":0,"msg":5}"#[..],
            br#"{"code":-1}"#,
            br#"{"code":1.5}"#,
            br#"{"code":4294967296}"#,
            br#"{"msg":"no code"}"#,
            br#"{"code":0,"code":1}"#,
            br#"{"code":0} trailing"#,
        ] {
            assert_eq!(
                judge(StatusCode::OK, body),
                Verdict::Replace(Code(30011)),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            judge(
                StatusCode::OK,
                br#"{"code":10000,"msg":"\u5931\u8d25","data":[{"a":null}]}"#
            ),
            Verdict::Envelope(Code(10000)),
            "escaped text and any data"
        );
        assert_eq!(
            judge(StatusCode::BAD_GATEWAY, b"Bad Gateway"),
            Verdict::Replace(Code(30013))
        );
        assert_eq!(
            judge(StatusCode::NOT_FOUND, b""),
            Verdict::Replace(Code(30013))
        );
    }

    #[test]
    fn arrays_are_not_envelopes() {
        // serde_json reads a struct from an array too; the scanner and the fallback refuse it.
        for body in [&br#"[0,null,null]"#[..], br#" [0,"ok",{}]"#] {
            assert_eq!(
                envelope_code(body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn the_scanner_leaves_the_rare_cases_to_serde() {
        for (body, code) in [
            (&br#"{"co\u0064e":7}"#[..], Some(Code(7))),
            (br#"{"code":7,"msg":"\u5931\u8d25"}"#, Some(Code(7))),
            (br#"{"code":7,"msg":"\ud800"}"#, None),
            (br#"{"code":-0}"#, None),
            (b"{\"code\":7,\"data\":\"\xff\"}", Some(Code(7))),
        ] {
            assert_eq!(Scan::envelope(body), Scanned::Unsure);
            assert_eq!(
                envelope_code(body),
                code,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let deep = format!(
            "{{\"code\":3,\"data\":{}{}}}",
            "[".repeat(150),
            "]".repeat(150)
        );
        assert_eq!(Scan::envelope(deep.as_bytes()), Scanned::Unsure);
        assert_eq!(envelope_code(deep.as_bytes()), Some(Code(3)));
        let fine = format!(
            "{{\"code\":3,\"data\":{}{}}}",
            "[".repeat(50),
            "]".repeat(50)
        );
        assert_eq!(Scan::envelope(fine.as_bytes()), Scanned::Envelope(Code(3)));
    }

    /// The scanner against serde_json on seed bodies and 60,000 random edits of them: where
    /// the scanner decides, it decides as serde_json does.
    #[test]
    fn the_scanner_agrees_with_serde_json() {
        let seeds: &[&[u8]] = &[
            br#"{"code":0,"data":{}}"#,
            br#"{"code":0,"msg":"ok","data":{"a":[1,-2.5e+3,true,false,null,"x\n\u00e9"]}}"#,
            br#" { "code" : 4294967295 , "msg" : null , "data" : null } "#,
            "{\"code\":20003,\"msg\":\"缺少参数\"}".as_bytes(),
            br#"{"data":[[],{},{"k":{"k":[0.5,1E9]}}],"code":12}"#,
            br#"{"code":10000,"msg":"\u5931\u8d25","data":[{"a":null}]}"#,
            br#"{}"#,
        ];
        let alphabet = b"{}[]\":,0123456789-+.eEatfnlrsu\\/ \n\t\r\x01\xc3\xa9x";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rand = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let (mut envelopes, mut refused) = (0, 0);
        for i in 0..60_000 {
            let mut b = seeds[i % seeds.len()].to_vec();
            for _ in 0..1 + rand(3) {
                let at = rand(b.len() + 1);
                let c = alphabet[rand(alphabet.len())];
                match rand(4) {
                    0 if at < b.len() => b[at] = c,
                    1 => b.insert(at, c),
                    2 if at < b.len() => {
                        b.remove(at);
                    }
                    _ => b.truncate(at),
                }
            }
            let by_serde = envelope_code_parsed(&b);
            let text = String::from_utf8_lossy(&b);
            match Scan::envelope(&b) {
                Scanned::Envelope(code) => {
                    assert_eq!(Some(code), by_serde, "{text:?}");
                    envelopes += 1;
                }
                Scanned::Not => {
                    assert_eq!(None, by_serde, "{text:?}");
                    refused += 1;
                }
                Scanned::Unsure => {}
            }
        }
        assert!(
            envelopes > 1_000 && refused > 40_000,
            "{envelopes} envelopes, {refused} refused"
        );
        for (i, seed) in seeds.iter().enumerate() {
            // Only the escaped `msg` of the sixth is left to serde.
            assert_eq!(Scan::envelope(seed) == Scanned::Unsure, i == 5, "seed {i}");
        }
    }

    #[test]
    fn failures_map_to_appendix_a() {
        assert_eq!(Failure::Connect.code(), Code(30000));
        assert_eq!(Failure::TotalTimeout.code(), Code(30001));
        assert_eq!(Failure::ConnectTimeout.code(), Code(30002));
        assert_eq!(Failure::ReadTimeout.code(), Code(30003));
        assert!(is_upstream_failure(StatusCode::OK, Code(30001)));
        assert!(is_upstream_failure(StatusCode::BAD_GATEWAY, Code(0)));
        assert!(!is_upstream_failure(StatusCode::BAD_REQUEST, Code(20000)));
    }
}
