//! Reading a third party's answer, free of I/O: a 2xx status, then the envelope
//! `{"code": 0, "msg"?, "data"?}`, then `data` as the caller's type.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::Reason;

/// The answer's `data`, or why there is none.
pub(crate) fn read<T: DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, Reason> {
    if !(200..300).contains(&status) {
        // The body of a failed answer is neither read nor kept: it may be an error page that
        // echoes the request, personal data included.
        return Err(Reason::Status(status));
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| Reason::BadData("not JSON"))?;
    let Value::Object(mut map) = value else {
        return Err(Reason::BadData("not an envelope"));
    };
    let code = match map.get("code") {
        Some(Value::Number(n)) => n.as_i64().ok_or(Reason::BadData("not an envelope"))?,
        _ => return Err(Reason::BadData("not an envelope")),
    };
    if code != 0 {
        let msg = map.get("msg").and_then(Value::as_str);
        return Err(Reason::error_code(code, msg));
    }
    // An absent `data` reads as null, so `()` and `Option<_>` accept it and anything else
    // refuses it.
    let data = map.remove("data").unwrap_or(Value::Null);
    T::deserialize(data).map_err(|_| Reason::BadData("data not of the expected type"))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Verdict {
        passed: bool,
    }

    #[test]
    fn code_zero_gives_the_data() {
        let v: Verdict = read(200, br#"{"code":0,"data":{"passed":true}}"#).expect("data");
        assert_eq!(v, Verdict { passed: true });
        let none: Option<Verdict> = read(200, br#"{"code":0,"msg":"ok"}"#).expect("no data");
        assert_eq!(none, None);
        let unit: () = read(204, br#"{"code":0,"data":null}"#).expect("unit");
        assert_eq!(unit, ());
    }

    #[test]
    fn anything_but_the_envelope_is_bad_data() {
        for body in [
            &b"<html>busy</html>"[..],
            b"",
            b"{\"code\":0,\"data\":",
            b"[1,2]",
            b"{\"data\":{\"passed\":true}}",
            b"{\"code\":\"0\",\"data\":{\"passed\":true}}",
            b"{\"code\":0.5}",
            b"{\"code\":0,\"data\":{\"passed\":\"yes\"}}",
            b"{\"code\":0}",
        ] {
            let r = read::<Verdict>(200, body);
            assert!(
                matches!(r, Err(Reason::BadData(_))),
                "{}: {r:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_non_zero_code_keeps_the_systems_code_and_message() {
        let r = read::<Verdict>(200, "{\"code\":40401,\"msg\":\"查无此人\"}".as_bytes());
        assert_eq!(
            r,
            Err(Reason::ErrorCode {
                code: 40401,
                msg: Some("查无此人".to_owned())
            })
        );
        let r = read::<Verdict>(200, br#"{"code":-1,"msg":7}"#);
        assert_eq!(
            r,
            Err(Reason::ErrorCode {
                code: -1,
                msg: None
            })
        );
    }

    #[test]
    fn a_status_other_than_2xx_wins_over_the_body() {
        let r = read::<Verdict>(500, br#"{"code":0,"data":{"passed":true}}"#);
        assert_eq!(r, Err(Reason::Status(500)));
        assert_eq!(read::<Verdict>(302, b""), Err(Reason::Status(302)));
    }
}
