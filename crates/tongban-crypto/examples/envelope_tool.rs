//! Envelope and SM2 interop tool for the JS tests: one JSON request on stdin, one JSON answer on stdout.
//!
//! Operations (`op`): `keygen`; `seal_request` {public, kid, plaintext, order?, prefix?};
//! `open_request` {secret, kid, envelope, response?}; `open_response` {kid, key, response};
//! `sm2_encrypt` {public, plaintext_hex, order?, prefix?}; `sm2_decrypt` {secret, ciphertext, order?}.
//! Keys and binary values are hex; texts are UTF-8 strings.

use std::io::Read;

use serde_json::{Value, json};
use tongban_crypto::{
    Sm4Key,
    encoding::{hex_decode, hex_encode},
    envelope::{EnvelopeKeySet, EnvelopeSession, RequestEnvelope, ResponseEnvelope},
    sm2::{CipherOrder, Sm2CipherFormat, Sm2PrivateKey, Sm2PublicKey},
};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let req: Value = serde_json::from_str(&input)?;
    let out = run(&req)?;
    println!("{out}");
    Ok(())
}

fn text<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string field {key}").into())
}

fn hex(v: &Value, key: &str) -> Result<Vec<u8>> {
    Ok(hex_decode(text(v, key)?, "hex field")?)
}

fn format(v: &Value) -> Sm2CipherFormat {
    Sm2CipherFormat {
        order: match v.get("order").and_then(Value::as_str) {
            Some("C1C2C3") => CipherOrder::C1C2C3,
            _ => CipherOrder::C1C3C2,
        },
        emit_prefix: v.get("prefix").and_then(Value::as_bool).unwrap_or(true),
        accept_either_prefix: true,
    }
}

fn run(req: &Value) -> Result<Value> {
    match text(req, "op")? {
        "keygen" => {
            let key = Sm2PrivateKey::generate()?;
            Ok(json!({
                "secret": hex_encode(key.to_bytes().as_slice()),
                "public": hex_encode(&key.public_key().to_bytes()),
            }))
        }
        "seal_request" => {
            let public = Sm2PublicKey::from_bytes(&hex(req, "public")?)?;
            let (env, session) = tongban_crypto::envelope::seal_request(
                &public,
                text(req, "kid")?,
                text(req, "plaintext")?.as_bytes(),
                format(req),
            )?;
            Ok(json!({ "envelope": env, "key": hex_encode(session.key().expose()) }))
        }
        "open_request" => {
            let mut keys = EnvelopeKeySet::new();
            keys.insert(
                text(req, "kid")?,
                Sm2PrivateKey::from_bytes(&hex(req, "secret")?)?,
            );
            let env: RequestEnvelope = serde_json::from_value(req["envelope"].clone())?;
            let (plain, session) =
                tongban_crypto::envelope::open_request(&keys, &env, format(req))?;
            let response = match req.get("response").and_then(Value::as_str) {
                Some(body) => serde_json::to_value(session.seal_response(body.as_bytes())?)?,
                None => Value::Null,
            };
            Ok(json!({
                "plaintext": String::from_utf8(plain.to_vec())?,
                "response": response,
            }))
        }
        "open_response" => {
            let key = Sm4Key::from_slice(&hex(req, "key")?)?;
            let session = EnvelopeSession::from_parts(text(req, "kid")?, key);
            let resp: ResponseEnvelope = serde_json::from_value(req["response"].clone())?;
            let plain = session.open_response(&resp)?;
            Ok(json!({ "plaintext": String::from_utf8(plain.to_vec())? }))
        }
        "sm2_encrypt" => {
            let public = Sm2PublicKey::from_bytes(&hex(req, "public")?)?;
            let ct = public.encrypt(&hex(req, "plaintext_hex")?, format(req))?;
            Ok(json!({ "ciphertext": hex_encode(&ct) }))
        }
        "sm2_decrypt" => {
            let key = Sm2PrivateKey::from_bytes(&hex(req, "secret")?)?;
            let plain = key.decrypt(&hex(req, "ciphertext")?, format(req))?;
            Ok(json!({ "plaintext_hex": hex_encode(&plain) }))
        }
        other => Err(format!("unknown op {other}").into()),
    }
}
