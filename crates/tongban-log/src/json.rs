//! JSON log lines masked field by field as they are formatted.
//!
//! Every value of every event and span passes through the masking rules on its way into the
//! line: by its field's name when that names personal or secret data, by shape otherwise (ID
//! numbers, phones, cards, e-mail, `key=value` secrets, Han names). No line is written before
//! its fields are masked, so, unlike masking finished lines (which parses every line back),
//! nothing has to be read twice. The shape is that of `tracing-subscriber`'s flattened JSON:
//! `timestamp`, `level`, the event's fields (`message` first), the `request_id` of the request
//! being served (see [`context`]), `target`, and `span` with the current span's fields and name.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::rc::Rc;

use tongban_core::mask;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::context;
#[cfg(test)]
use crate::escape::needs_escape;
use crate::escape::push_str_json;

/// The layer; `W` makes the sink of each line.
#[derive(Debug)]
pub struct MaskedJson<W> {
    writer: W,
}

/// A span's fields, already masked and written as JSON members (`"k":v,…`).
#[derive(Debug, Default)]
struct SpanFields(String);

impl<W> MaskedJson<W> {
    pub fn new(writer: W) -> Self {
        Self { writer }
    }
}

impl<S, W> tracing_subscriber::Layer<S> for MaskedJson<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut out = String::new();
        attrs.record(&mut Members::new(&mut out));
        span.extensions_mut().insert(SpanFields(out));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(SpanFields(prev)) = ext.get_mut::<SpanFields>() {
            values.record(&mut Members::new(prev));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        thread_local! {
            static LINE: RefCell<String> = const { RefCell::new(String::new()) };
        }
        LINE.with(|cell| {
            // A subscriber logging from inside a writer would find the buffer taken: format
            // into a fresh one then.
            let mut fresh = String::new();
            let mut borrowed = cell.try_borrow_mut();
            let line = match borrowed.as_deref_mut() {
                Ok(l) => l,
                Err(_) => &mut fresh,
            };
            line.clear();
            let meta = event.metadata();
            line.push_str("{\"timestamp\":\"");
            rfc3339_now(line);
            line.push_str("\",\"level\":\"");
            line.push_str(meta.level().as_str());
            line.push('"');
            // The fields go straight into the line (each after a comma, the line being
            // non-empty); a `message` kept apart is put in front of them afterwards.
            let fields_at = line.len();
            let mut fields = Members::new(line);
            event.record(&mut fields);
            // The request being served (masked and escaped when the request started).
            if let Some(id) = context::current() {
                fields.key("\"request_id\":");
                fields.out.push_str(id.json());
            }
            if let Some(m) = fields.message.take() {
                let mut member = String::with_capacity(m.len() + 16);
                member.push_str(",\"message\":");
                push_str_json(&mut member, &m);
                line.insert_str(fields_at, &member);
            }
            line.push_str(",\"target\":");
            push_str_json(line, meta.target());
            if let Some(span) = ctx.lookup_current() {
                line.push_str(",\"span\":{");
                if let Some(SpanFields(f)) = span.extensions().get::<SpanFields>()
                    && !f.is_empty()
                {
                    line.push_str(f);
                    line.push(',');
                }
                line.push_str("\"name\":");
                push_str_json(line, span.name());
                line.push('}');
            }
            line.push_str("}\n");
            let mut w = self.writer.make_writer_for(meta);
            // Nowhere to report a failing log sink but the sink itself.
            let _ = w.write_all(line.as_bytes());
        });
    }
}

/// Writes fields as masked JSON members onto `out`, each after a comma unless `out` is
/// empty; `message` is kept apart to lead the line.
struct Members<'a> {
    out: &'a mut String,
    message: Option<String>,
}

impl<'a> Members<'a> {
    fn new(out: &'a mut String) -> Self {
        Self { out, message: None }
    }

    fn key(&mut self, key: &str) {
        if !self.out.is_empty() {
            self.out.push(',');
        }
        self.out.push_str(key);
    }

    fn text(&mut self, name: &'static str, value: &str) {
        let info = field_info(name);
        let masked: Cow<'_, str> = match info.kind {
            Some(kind) => Cow::Owned(mask::mask_as(kind, value)),
            None => mask::mask_untrusted_cow(value),
        };
        if name == "message" {
            self.message = Some(masked.into_owned());
            return;
        }
        self.key(&info.key);
        push_str_json(self.out, &masked);
    }

    /// A number, unless its name or its digits make it personal (a phone logged as an
    /// integer): then the masked text.
    fn number(&mut self, field: &Field, digits: &str) {
        let info = field_info(field.name());
        match info.kind {
            Some(kind) => {
                self.key(&info.key);
                push_str_json(self.out, &mask::mask_as(kind, digits));
            }
            None => match mask::mask_text(digits) {
                Cow::Borrowed(d) => {
                    self.key(&info.key);
                    self.out.push_str(d);
                }
                Cow::Owned(m) => {
                    self.key(&info.key);
                    push_str_json(self.out, &m);
                }
            },
        }
    }
}

impl Visit for Members<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field.name(), value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.text(field.name(), &s);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, itoa::Buffer::new().format(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, itoa::Buffer::new().format(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.number(field, itoa::Buffer::new().format(value));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.number(field, itoa::Buffer::new().format(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.number(field, ryu::Buffer::new().format_finite(value));
        } else {
            self.text(field.name(), &value.to_string());
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(&field_info(field.name()).key);
        self.out.push_str(if value { "true" } else { "false" });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The access line's fields come masked, as one value: written as they are.
        if let Some(line) = value.downcast_ref::<crate::access::Line>() {
            if !self.out.is_empty() {
                self.out.push(',');
            }
            line.write_json(self.out);
            return;
        }
        self.text(field.name(), &value.to_string());
    }
}

/// What a field's name decides: its masking kind and its JSON key.
#[derive(Clone)]
struct FieldInfo {
    /// [`mask::kind_of_key`] of the name.
    kind: Option<mask::Kind>,
    /// The name as a JSON member's key with its colon: `"name":`.
    key: Rc<str>,
}

impl FieldInfo {
    fn of(name: &str) -> Self {
        let mut key = String::with_capacity(name.len() + 3);
        push_str_json(&mut key, name);
        key.push(':');
        Self {
            kind: mask::kind_of_key(name),
            key: Rc::from(key),
        }
    }
}

/// [`FieldInfo`] of a field name, remembered per thread: names are the program's own
/// (`&'static`), so there are few of them, and matching one against every personal and secret
/// key name on every line was a tenth of the cost of logging (escaping it, another few per
/// cent).
fn field_info(name: &'static str) -> FieldInfo {
    // Keyed by where the name is and its length: hashing two words, not the text.
    type Infos = HashMap<(usize, usize), FieldInfo, foldhash::fast::FixedState>;
    thread_local! {
        static INFOS: RefCell<Infos> = RefCell::new(Infos::default());
    }
    INFOS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut infos) => infos
            .entry((name.as_ptr() as usize, name.len()))
            .or_insert_with(|| FieldInfo::of(name))
            .clone(),
        Err(_) => FieldInfo::of(name),
    })
}

/// The current UTC time as `2026-11-29T02:12:33.123456Z`.
fn rfc3339_now(out: &mut String) {
    thread_local! {
        /// The last second formatted, and its text: many lines share a second.
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    // Lines of one stamped poll share its time (see `tongban_core::clock`).
    let d = tongban_core::clock::wall();
    let (secs, micros) = (d.as_secs(), d.subsec_micros());
    let cached = SECOND.try_with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            c.1.clear();
            rfc3339(&mut c.1, secs, micros);
            c.0 = secs;
        }
        // `…:33.` then this line's own microseconds.
        out.push_str(&c.1[..20]);
    });
    if cached.is_err() {
        rfc3339(out, secs, micros);
        return;
    }
    let mut b = *b"000000Z";
    put_digits(&mut b[..6], u64::from(micros));
    out.extend(b.map(char::from));
}

fn rfc3339(out: &mut String, secs: u64, micros: u32) {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (year, month, day) = tongban_core::date::civil_from_days(days);
    // Digits put in place: `write!` with padded fields cost more than the rest of the line's
    // fixed parts together.
    let mut b = *b"0000-00-00T00:00:00.000000Z";
    put_digits(&mut b[0..4], u64::try_from(year).unwrap_or(0));
    put_digits(&mut b[5..7], u64::from(month));
    put_digits(&mut b[8..10], u64::from(day));
    put_digits(&mut b[11..13], rem / 3600);
    put_digits(&mut b[14..16], rem / 60 % 60);
    put_digits(&mut b[17..19], rem % 60);
    put_digits(&mut b[20..26], u64::from(micros));
    out.push_str(std::str::from_utf8(&b).unwrap_or_default());
}

/// `v`'s last `dst.len()` decimal digits, zero-padded.
fn put_digits(dst: &mut [u8], mut v: u64) {
    for d in dst.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_time_is_formatted_whole_on_every_line() {
        for _ in 0..3 {
            let mut s = String::new();
            rfc3339_now(&mut s);
            assert_eq!(s.len(), "2026-11-29T02:12:33.123456Z".len(), "{s}");
            assert!(s.starts_with("20") && s.ends_with('Z') && s.as_bytes()[19] == b'.');
        }
    }

    #[test]
    fn dates_match_known_instants() {
        let mut s = String::new();
        rfc3339(&mut s, 0, 0);
        assert_eq!(s, "1970-01-01T00:00:00.000000Z");
        s.clear();
        // 2026-11-28T00:00:00Z and a leap day.
        rfc3339(&mut s, 1_795_824_000, 7);
        assert_eq!(s, "2026-11-28T00:00:00.000007Z");
        s.clear();
        rfc3339(&mut s, 951_782_400 + 3661, 999_999);
        assert_eq!(s, "2000-02-29T01:01:01.999999Z");
    }

    #[test]
    fn every_byte_that_needs_escaping_is_found_in_any_position() {
        for b in 0u8..=0x7f {
            let special = b < 0x20 || b == 0x7f || b == b'"' || b == b'\\';
            for pos in 0..8 {
                let mut chunk = *b"abcdefgh";
                chunk[pos] = b;
                assert_eq!(
                    needs_escape(u64::from_le_bytes(chunk)),
                    special,
                    "byte {b:#x} at {pos}"
                );
            }
        }
        // UTF-8 continuation and lead bytes never need it.
        assert!(!needs_escape(u64::from_le_bytes(
            *"é张abc".as_bytes().first_chunk().expect("8 bytes")
        )));
        assert!(!needs_escape(u64::from_le_bytes([
            0x80, 0x9f, 0xa0, 0xbf, 0xc2, 0xe4, 0xf0, 0xff
        ])));
    }

    proptest! {
        #[test]
        fn any_text_round_trips_through_json(text in any::<String>()) {
            let mut s = String::new();
            push_str_json(&mut s, &text);
            let v: serde_json::Value = serde_json::from_str(&s).expect("valid JSON");
            prop_assert_eq!(v.as_str(), Some(text.as_str()));
        }
    }

    #[test]
    fn strings_are_escaped_as_json() {
        let mut s = String::new();
        push_str_json(&mut s, "a\"b\\c\nd\u{1}é张");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é张""#);
        let v: serde_json::Value = serde_json::from_str(&s).expect("valid JSON");
        assert_eq!(v, "a\"b\\c\nd\u{1}é张");
    }

    use proptest::prelude::*;
    use tracing_subscriber::layer::SubscriberExt;

    use crate::Capture;

    fn logged(f: impl FnOnce()) -> String {
        let sink = Capture::default();
        let sub = tracing_subscriber::registry().with(MaskedJson::new(sink.clone()));
        tracing::subscriber::with_default(sub, f);
        sink.text()
    }

    #[test]
    fn a_line_leads_with_time_level_and_message_then_the_fields_in_order() {
        let out = logged(|| {
            tracing::info!(count = 3, kind = "a", "Counted.");
            tracing::warn!(count = 4);
        });
        let lines: Vec<&str> = out.lines().collect();
        let rest = lines[0].split_once(r#""level":"INFO","#).expect("level").1;
        assert!(
            rest.starts_with(r#""message":"Counted.","count":3,"kind":"a","target":"#),
            "{out}"
        );
        // No message: the fields follow the level.
        let rest = lines[1].split_once(r#""level":"WARN","#).expect("level").1;
        assert!(rest.starts_with(r#""count":4,"target":"#), "{out}");
        for l in lines {
            let _: serde_json::Value = serde_json::from_str(l).expect("valid JSON");
        }
    }

    #[derive(Debug)]
    struct Person {
        #[allow(dead_code)]
        name: String,
        #[allow(dead_code)]
        id: String,
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever way a value reaches a line (message, named field, unnamed text, Debug of
        /// a struct, integer, span field, error), it is masked and the line stays valid JSON.
        #[test]
        fn no_pii_survives_any_field(
            region in 110_000u32..660_000, y in 1930u32..2020, m in 1u32..13, d in 1u32..29,
            seq in 0u32..1000, second in 3u8..10, rest in 0u64..1_000_000_000,
            name in "[张王李赵欧陈刘黄][\u{4e00}-\u{9fa5}]{1,2}", noise in "[a-z \\\"]{0,12}",
        ) {
            let id = tongban_core::idcard::with_check_char(
                &format!("{region:06}{y:04}{m:02}{d:02}{seq:03}")).expect("17 digits");
            let phone = format!("1{second}{rest:09}");
            let phone_n: u64 = phone.parse().expect("digits");
            let person = Person { name: name.clone(), id: id.clone() };
            let err = std::io::Error::other(format!("lookup of {id} failed"));
            let out = logged(|| {
                let span = tracing::info_span!("request", request_id = "r1", holder = %name);
                let _g = span.enter();
                tracing::info!(%noise, "{noise} {id} {phone} {name}");
                tracing::warn!(id_card = %id, mobile = phone_n, note = %format!("{noise}{phone}"));
                tracing::error!(?person, error = &err as &(dyn std::error::Error + 'static), "failed");
                tracing::info!(query = %format!("xm={name}&sfzh={id}"), "q");
            });
            for line in out.lines() {
                let v: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| TestCaseError::fail(format!("{e}: {line}")))?;
                prop_assert_eq!(&v["span"]["name"], "request");
                prop_assert_eq!(&v["span"]["request_id"], "r1");
            }
            prop_assert_eq!(out.lines().count(), 4);
            prop_assert!(!out.contains(&id), "id leaked: {}", out);
            prop_assert!(!out.contains(&phone), "phone leaked: {}", out);
            prop_assert!(!out.contains(&name), "name leaked: {}", out);
        }
    }
}
