//! Masking of personal information and secrets (clause 6.3.2.1 d) for anything that leaves the
//! process as text: logs, error details, `config check` output. It must never widen what is shown:
//! when unsure whether something is personal, mask it. So in log lines every run of two to four
//! Han characters is masked as a possible name: Tongban's own log messages are English, and
//! Chinese text in a log line came from data.

use std::borrow::Cow;
use std::io;

use serde_json::Value;

/// The replacement for secrets: nothing of the value, not even its length.
pub const SECRET_MASK: &str = "******";

/// What a field holds, judged by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Name,
    IdNumber,
    Phone,
    BankCard,
    Email,
    Address,
    Secret,
}

// Field names are compared lowercased with '-' folded to '_'; a name matches a kind when it
// equals one of these or ends with `_` + one of them (`user_phone`, `db_password`).
const NAME_KEYS: &[&str] = &[
    "name",
    "real_name",
    "realname",
    "full_name",
    "fullname",
    "username",
    "user_name",
    "xm",
    "cert_name",
    "certname",
    "contact",
    "contact_name",
    "姓名",
];
const ID_KEYS: &[&str] = &[
    "id_card",
    "idcard",
    "id_no",
    "idno",
    "id_number",
    "idnumber",
    "sfzh",
    "sfzhm",
    "cert_no",
    "certno",
    "cert_num",
    "identity",
    "identity_no",
    "身份证号",
];
const PHONE_KEYS: &[&str] = &[
    "phone",
    "mobile",
    "tel",
    "telephone",
    "sjh",
    "phone_number",
    "mobile_no",
    "手机号",
];
const CARD_KEYS: &[&str] = &["bank_card", "bankcard", "card_no", "cardno", "account_no"];
const EMAIL_KEYS: &[&str] = &["email", "e_mail", "mail"];
// Not `addr`: in logs that is a socket address far more often than a home.
const ADDRESS_KEYS: &[&str] = &["address", "home_address", "dz", "住址", "地址"];
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "authorization",
    "private_key",
    "client_secret",
    "credential",
    "credentials",
    "cookie",
    "set_cookie",
    "ticket",
    "session",
    "sessionid",
    "session_id",
    "secret_key",
    "signature",
    "sign",
    "otp",
    "code_verifier",
    "密码",
];

/// The kind of data a field of this name holds, if it is personal or secret.
pub fn kind_of_key(key: &str) -> Option<Kind> {
    // Called for every field of every log line: short ASCII keys are folded on the stack.
    let mut stack = [0u8; 48];
    let folded: String;
    let k: &str = if key.len() <= stack.len() && key.is_ascii() {
        for (d, c) in stack.iter_mut().zip(key.bytes()) {
            *d = if c == b'-' {
                b'_'
            } else {
                c.to_ascii_lowercase()
            };
        }
        std::str::from_utf8(&stack[..key.len()]).unwrap_or_default()
    } else {
        folded = key.to_ascii_lowercase().replace('-', "_");
        &folded
    };
    let hit = |list: &[&str]| {
        list.iter().any(|w| {
            k == *w
                || (k.len() > w.len()
                    && k.ends_with(w)
                    && k.as_bytes()[k.len() - w.len() - 1] == b'_')
        })
    };
    // Secrets first: `id_token` must not be read as an ID number.
    if hit(SECRET_KEYS) {
        Some(Kind::Secret)
    } else if hit(ID_KEYS) {
        Some(Kind::IdNumber)
    } else if hit(PHONE_KEYS) {
        Some(Kind::Phone)
    } else if hit(CARD_KEYS) {
        Some(Kind::BankCard)
    } else if hit(EMAIL_KEYS) {
        Some(Kind::Email)
    } else if hit(ADDRESS_KEYS) {
        Some(Kind::Address)
    } else if hit(NAME_KEYS) {
        Some(Kind::Name)
    } else {
        None
    }
}

/// Masks a value known to be of `kind`; a value that does not look like its kind is still masked.
pub fn mask_as(kind: Kind, v: &str) -> String {
    match kind {
        Kind::Name => mask_name(v),
        Kind::IdNumber => keep_ends(v, 3, 4),
        Kind::Phone => mask_phone(v),
        Kind::BankCard => keep_ends(v, 6, 4),
        Kind::Email => mask_email(v),
        Kind::Address => mask_address(v),
        Kind::Secret => SECRET_MASK.to_owned(),
    }
}

/// 张三 → 张*, 张三丰 → 张*丰, 欧阳娜娜 → 欧**娜.
pub fn mask_name(v: &str) -> String {
    let chars: Vec<char> = v.trim().chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".to_owned(),
        2 => format!("{}*", chars[0]),
        n => {
            let mut s = String::with_capacity(n * 3);
            s.push(chars[0]);
            s.extend(std::iter::repeat_n('*', n - 2));
            s.push(chars[n - 1]);
            s
        }
    }
}

/// 13812341234 → 138****1234; other lengths keep at most the first 3 and last 2.
pub fn mask_phone(v: &str) -> String {
    let digits: String = v.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if digits.len() == 11 && digits.is_ascii() {
        format!("{}****{}", &digits[..3], &digits[7..])
    } else {
        keep_ends(&digits, 3, 2)
    }
}

/// zhangsan@example.com → z*******@example.com.
pub fn mask_email(v: &str) -> String {
    match v.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            let n = local.chars().count().saturating_sub(1).max(1);
            format!("{first}{}@{domain}", "*".repeat(n))
        }
        None => keep_ends(v, 1, 0),
    }
}

/// Keeps the first six characters (province and city), masks the rest.
pub fn mask_address(v: &str) -> String {
    keep_ends(v, 6, 0)
}

/// Keeps `head` leading and `tail` trailing characters and stars the middle; a value too short
/// to keep both and still hide something keeps less.
pub fn keep_ends(v: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = v.chars().collect();
    let n = chars.len();
    if n == 0 {
        return String::new();
    }
    let (h, t) = if head + tail < n {
        (head, tail)
    } else {
        // Hide at least half.
        let keep = n / 4;
        (keep.min(head), 0)
    };
    let mut s = String::with_capacity(n * 3);
    s.extend(&chars[..h]);
    s.extend(std::iter::repeat_n('*', n - h - t));
    s.extend(&chars[n - t..]);
    s
}

/// GB 11643-1999: an 18-character resident ID number with a valid check character.
pub fn is_valid_id_number(v: &[u8]) -> bool {
    crate::idcard::is_valid(v)
}

fn luhn_valid(d: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, c) in d.iter().rev().enumerate() {
        let mut x = u32::from(c - b'0');
        if i % 2 == 1 {
            x *= 2;
            if x > 9 {
                x -= 9;
            }
        }
        sum += x;
    }
    sum.is_multiple_of(10)
}

fn is_mobile(d: &[u8]) -> bool {
    d.len() == 11 && d[0] == b'1' && (b'3'..=b'9').contains(&d[1])
}

/// Old 15-digit ID numbers: region code then a plausible YYMMDD.
fn is_old_id_number(d: &[u8]) -> bool {
    if d.len() != 15 {
        return false;
    }
    let n = |i: usize| u32::from(d[i] - b'0') * 10 + u32::from(d[i + 1] - b'0');
    let (m, day) = (n(8), n(10));
    d[0] != b'0' && (1..=12).contains(&m) && (1..=31).contains(&day)
}

/// Masks what free text reveals by its shape: resident ID numbers (checksum-verified), mobile
/// numbers (also `+86…` and `138-1234-5678`), bank cards (Luhn), e-mail addresses, and the value
/// of any `key=value` / `"key": "value"` pair whose key names a secret or personal field.
pub fn mask_text(s: &str) -> Cow<'_, str> {
    let mut out: Option<String> = None;
    let b = s.as_bytes();
    let mut i = 0;
    let mut last = 0;
    let emit = |out: &mut Option<String>, from: usize, to: usize, repl: &str, last: &mut usize| {
        let o = out.get_or_insert_with(|| String::with_capacity(s.len() + 8));
        o.push_str(&s[*last..from]);
        o.push_str(repl);
        *last = to;
    };
    while i < b.len() {
        let c = b[i];
        // Most bytes cannot start anything masked: passed over with one table lookup.
        if !MAY_START[usize::from(c)] {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            // An ID number may end in X.
            if i - start == 17 && i < b.len() && (b[i] == b'X' || b[i] == b'x') {
                i += 1;
            }
            // 138-1234-5678 and 138 1234 5678.
            if i - start == 3
                && let Some(end) = split_phone(b, start)
            {
                let digits: String = s[start..end].chars().filter(char::is_ascii_digit).collect();
                if is_mobile(digits.as_bytes()) {
                    emit(&mut out, start, end, &mask_phone(&digits), &mut last);
                    i = end;
                    continue;
                }
            }
            let run = &b[start..i];
            if let Some(m) = mask_digit_run(run) {
                emit(&mut out, start, i, &m, &mut last);
            }
            continue;
        }
        if c == b'@'
            && let Some((from, to)) = email_span(b, i)
            && from >= last
        {
            let m = mask_email(&s[from..to]);
            emit(&mut out, from, to, &m, &mut last);
            i = to;
            continue;
        }
        if (c == b'=' || c == b':')
            && let Some((kind, vfrom, vto)) = keyed_value(b, i)
            && vfrom >= last
            && vto > vfrom
        {
            let m = mask_as(kind, &s[vfrom..vto]);
            emit(&mut out, vfrom, vto, &m, &mut last);
            i = vto;
            continue;
        }
        if (c == b'B' || c == b'b')
            && b.len() - i > 7
            && b[i..i + 7].eq_ignore_ascii_case(b"bearer ")
        {
            let vfrom = i + 7;
            let mut vto = vfrom;
            while vto < b.len() && !is_value_end(b[vto]) {
                vto += 1;
            }
            if vto > vfrom {
                emit(&mut out, vfrom, vto, SECRET_MASK, &mut last);
                i = vto;
                continue;
            }
        }
        i += 1;
    }
    match out {
        Some(mut o) => {
            o.push_str(&s[last..]);
            Cow::Owned(o)
        }
        None => Cow::Borrowed(s),
    }
}

/// The bytes at which [`mask_text`] may find something to mask: a digit run, an e-mail's `@`,
/// a `key=value` or `key: value` separator, a `Bearer` credential.
const MAY_START: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = b'0';
    while c <= b'9' {
        t[c as usize] = true;
        c += 1;
    }
    t[b'@' as usize] = true;
    t[b'=' as usize] = true;
    t[b':' as usize] = true;
    t[b'B' as usize] = true;
    t[b'b' as usize] = true;
    t
};

fn mask_digit_run(run: &[u8]) -> Option<String> {
    let as_str = || String::from_utf8_lossy(run).into_owned();
    let n = run.len();
    if n == 18 && is_valid_id_number(run) || is_old_id_number(run) {
        return Some(keep_ends(&as_str(), 3, 4));
    }
    if is_mobile(run) {
        return Some(mask_phone(&as_str()));
    }
    if n == 13 && run.starts_with(b"86") && is_mobile(&run[2..]) {
        return Some(format!(
            "86{}",
            mask_phone(&String::from_utf8_lossy(&run[2..]))
        ));
    }
    if (15..=19).contains(&n) && luhn_valid(run) {
        return Some(keep_ends(&as_str(), 6, 4));
    }
    // Longer runs may hide a number inside a concatenation: show almost nothing of them.
    if n > 19 {
        return Some(keep_ends(&as_str(), 2, 2));
    }
    None
}

/// `ddd[- ]dddd[- ]dddd` starting at `start`; returns its end.
fn split_phone(b: &[u8], start: usize) -> Option<usize> {
    let sep = *b.get(start + 3)?;
    if sep != b'-' && sep != b' ' {
        return None;
    }
    let digits = |from: usize, n: usize| {
        b.get(from..from + n)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    if digits(start + 4, 4) && b.get(start + 8) == Some(&sep) && digits(start + 9, 4) {
        let end = start + 13;
        if b.get(end).is_none_or(|c| !c.is_ascii_digit()) {
            return Some(end);
        }
    }
    None
}

fn email_span(b: &[u8], at: usize) -> Option<(usize, usize)> {
    let local = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-');
    let mut from = at;
    while from > 0 && local(b[from - 1]) {
        from -= 1;
    }
    let mut to = at + 1;
    let mut dot = false;
    while to < b.len() && (b[to].is_ascii_alphanumeric() || b[to] == b'.' || b[to] == b'-') {
        dot |= b[to] == b'.';
        to += 1;
    }
    (from < at && dot && to > at + 2).then_some((from, to))
}

fn is_value_end(c: u8) -> bool {
    matches!(
        c,
        b'&' | b',' | b';' | b'"' | b'\'' | b'}' | b']' | b')' | b'<' | b'>'
    ) || c.is_ascii_whitespace()
}

/// For a separator at `sep` (`=` or `:`), the kind named by the key before it and the span of
/// the value after it.
fn keyed_value(b: &[u8], sep: usize) -> Option<(Kind, usize, usize)> {
    // Key: identifier characters, possibly quoted, possibly followed by spaces.
    let mut kend = sep;
    while kend > 0 && b[kend - 1] == b' ' {
        kend -= 1;
    }
    if kend > 0 && (b[kend - 1] == b'"' || b[kend - 1] == b'\'') {
        kend -= 1;
    }
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c >= 0x80;
    let mut kstart = kend;
    while kstart > 0 && ident(b[kstart - 1]) {
        kstart -= 1;
    }
    if kstart == kend {
        return None;
    }
    // Only up to the last 40 bytes of a key are looked at; char boundary is safe because we
    // stopped on ASCII or at a byte >= 0x80 run start which from_utf8 below validates.
    let key = std::str::from_utf8(&b[kstart..kend]).ok()?;
    let kind = kind_of_key(key)?;
    let mut vfrom = sep + 1;
    // "key": "value" and key = value.
    while vfrom < b.len() && b[vfrom] == b' ' {
        vfrom += 1;
    }
    if vfrom < b.len() && (b[vfrom] == b'"' || b[vfrom] == b'\'') {
        let q = b[vfrom];
        vfrom += 1;
        let mut vto = vfrom;
        while vto < b.len() && b[vto] != q {
            if b[vto] == b'\\' {
                vto += 1;
            }
            vto += 1;
        }
        return Some((kind, vfrom, vto.min(b.len())));
    }
    // `//` after a colon is a URL scheme, not a value.
    if b.get(sep) == Some(&b':') && b.get(sep + 1..sep + 3) == Some(b"//") {
        return None;
    }
    let mut vto = vfrom;
    while vto < b.len() && !is_value_end(b[vto]) {
        vto += 1;
    }
    // `Authorization: Bearer xyz`: the secret is the credential after the scheme word.
    let scheme = &b[vfrom..vto];
    if kind == Kind::Secret
        && b.get(vto) == Some(&b' ')
        && [&b"bearer"[..], b"basic", b"digest", b"token"]
            .iter()
            .any(|w| scheme.eq_ignore_ascii_case(w))
    {
        vto += 1;
        while vto < b.len() && !is_value_end(b[vto]) {
            vto += 1;
        }
    }
    // is_value_end only stops on ASCII, so vto is a char boundary.
    Some((kind, vfrom, vto))
}

/// Masks a value that came from outside (query value, header): everything [`mask_text`] does,
/// and runs of two to four Han characters, which may be a name.
pub fn mask_untrusted(s: &str) -> String {
    mask_untrusted_cow(s).into_owned()
}

/// [`mask_untrusted`], borrowing `s` when nothing in it needed masking (the common case of a
/// log field).
pub fn mask_untrusted_cow(s: &str) -> Cow<'_, str> {
    let t = mask_text(s);
    // ASCII (checked a word at a time) holds no Han name.
    if t.is_ascii() || !t.chars().any(is_han) {
        return t;
    }
    let mut out = String::with_capacity(t.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let n = run.chars().count();
        if (2..=4).contains(&n) {
            out.push_str(&mask_name(run));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in t.chars() {
        if is_han(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    Cow::Owned(out)
}

fn is_han(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2EBEF)
}

/// Percent-decodes (and `+` → space) for masking; invalid UTF-8 becomes U+FFFD.
pub fn percent_decode(s: &str, plus_is_space: bool) -> Cow<'_, str> {
    let b = s.as_bytes();
    // Most paths and queries have nothing to decode: no copy then.
    if !b.iter().any(|&c| c == b'%' || (plus_is_space && c == b'+')) {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = |c: u8| (c as char).to_digit(16);
                match (h(b[i + 1]), h(b[i + 2])) {
                    (Some(x), Some(y)) => {
                        out.push((x * 16 + y) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    Cow::Owned(
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

/// A query string as it may be logged: decoded, values masked by their key's kind or by shape.
pub fn mask_query(q: &str) -> String {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k, true);
            let v = percent_decode(v, true);
            let v = match kind_of_key(&k) {
                Some(kind) => mask_as(kind, &v),
                None => mask_untrusted(&v),
            };
            format!("{}={v}", mask_untrusted(&k))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A path as it may be logged: decoded, then masked by shape (an ID number in a path segment).
pub fn mask_path(p: &str) -> String {
    mask_untrusted(&percent_decode(p, false))
}

/// A URL (with scheme, host, userinfo) as it may be logged or printed: the password of the
/// userinfo and secret query values are masked.
pub fn mask_url(u: &str) -> String {
    let (base, query) = u.split_once('?').unwrap_or((u, ""));
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (auth, tail) = rest
                .split_once('/')
                .map_or((rest, None), |(a, t)| (a, Some(t)));
            let auth = match auth.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                    if userinfo.contains(':') {
                        format!("{user}:{SECRET_MASK}@{host}")
                    } else {
                        format!("{user}@{host}")
                    }
                }
                None => auth.to_owned(),
            };
            match tail {
                Some(t) => format!("{scheme}://{auth}/{}", mask_path(t)),
                None => format!("{scheme}://{auth}"),
            }
        }
        None => mask_path(base),
    };
    if query.is_empty() {
        base
    } else {
        format!("{base}?{}", mask_query(query))
    }
}

/// Masks a JSON value in place: fields named as personal or secret by their kind, every other
/// string by shape.
pub fn mask_json(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                match kind_of_key(k) {
                    Some(kind) => mask_json_as(kind, val),
                    None => mask_json(val),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_json),
        // Log text is English by convention; Han text in it came from data and may be a name.
        Value::String(s) => *s = mask_untrusted(s),
        Value::Number(n) => {
            let s = n.to_string();
            if let Cow::Owned(m) = mask_text(&s) {
                *v = Value::String(m);
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

fn mask_json_as(kind: Kind, v: &mut Value) {
    match v {
        Value::String(s) => *s = mask_as(kind, s),
        Value::Number(n) => *v = Value::String(mask_as(kind, &n.to_string())),
        Value::Object(_) | Value::Array(_) if kind == Kind::Secret => {
            *v = Value::String(SECRET_MASK.to_owned());
        }
        Value::Object(_) | Value::Array(_) => mask_json(v),
        Value::Null | Value::Bool(_) => {}
    }
}

/// Masks one log line: a JSON object is masked field by field, anything else by shape.
pub fn mask_line(line: &str) -> String {
    if line.trim_start().starts_with('{')
        && let Ok(mut v) = serde_json::from_str::<Value>(line)
    {
        mask_log_json(&mut v);
        return v.to_string();
    }
    mask_untrusted(line)
}

/// Masks a log record; a span's `name` is the span's static name (`request`), not a person's.
fn mask_log_json(v: &mut Value) {
    let spans: Vec<(&str, Value)> = match v.as_object_mut() {
        Some(obj) => ["span", "spans"]
            .into_iter()
            .filter_map(|k| obj.remove(k).map(|s| (k, s)))
            .collect(),
        None => Vec::new(),
    };
    mask_json(v);
    if let Some(obj) = v.as_object_mut() {
        for (k, mut sp) in spans {
            mask_span(&mut sp);
            obj.insert(k.to_owned(), sp);
        }
    }
}

fn mask_span(sp: &mut Value) {
    match sp {
        Value::Array(items) => items.iter_mut().for_each(mask_span),
        Value::Object(o) => {
            let name = o.remove("name");
            mask_json(sp);
            if let (Some(n), Value::Object(o)) = (name, sp) {
                o.insert("name".to_owned(), n);
            }
        }
        other => mask_json(other),
    }
}

/// A writer that masks every line before it reaches `inner`: the last gate before any log sink,
/// so nothing unmasked gets out whichever code wrote it.
#[derive(Debug)]
pub struct MaskingWriter<W: io::Write> {
    inner: W,
    buf: Vec<u8>,
}

// === impl MaskingWriter ===

impl<W: io::Write> MaskingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            buf: Vec::new(),
        }
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let text = String::from_utf8_lossy(line);
        let masked = mask_line(text.trim_end_matches(['\n', '\r']));
        self.inner.write_all(masked.as_bytes())?;
        self.inner.write_all(b"\n")
    }
}

impl<W: io::Write> io::Write for MaskingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        while let Some(pos) = self.buf.iter().position(|&c| c == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            self.write_line(&line)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            self.write_line(&line)?;
        }
        self.inner.flush()
    }
}

impl<W: io::Write> Drop for MaskingWriter<W> {
    fn drop(&mut self) {
        // A partial line must still be masked and written, never dropped or written raw.
        let _ = io::Write::flush(self);
    }
}

#[cfg(test)]
mod tests;
