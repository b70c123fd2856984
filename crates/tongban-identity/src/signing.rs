//! Per-session request-signing keys (clause 6.2.2.1 b): derived, never stored, from the
//! keyring's `session-sign` key and the session id, and handed to the client at login, so no
//! static secret ships in any client. The key id names the session and the key version used:
//! `SESSION_ID.vN`, so a rotation of `session-sign` does not break sessions already open.

use tongban_crypto::encoding::hex_encode;
use tongban_crypto::keyring::{KeyLookup, Keyring};
use tongban_crypto::sm3::hmac_sm3;

/// The keyring key that session signing keys derive from.
pub const SESSION_SIGN_KEY: &str = "session-sign";

const LABEL: &[u8] = b"tongban/session-sign/v1";

/// A session's signing key id and key (hex), with the current `session-sign` version; `None`
/// when the keyring has no such key (signing is then unavailable, not silently weakened).
pub fn issue(ring: &Keyring, session_id: &str) -> Option<(String, String)> {
    let (version, key) = ring.current(SESSION_SIGN_KEY).ok()?;
    let mac = hmac_sm3(key.expose(), &[LABEL, session_id.as_bytes()]);
    Some((format!("{session_id}.v{version}"), hex_encode(&mac)))
}

/// The key for a key id made by [`issue`], if its version still decrypts; and the session id
/// it belongs to, which the caller must check against the request's session.
pub fn key_for(ring: &Keyring, key_id: &str) -> Option<(String, Vec<u8>)> {
    let (session_id, version) = key_id.rsplit_once(".v")?;
    let version: u32 = version.parse().ok()?;
    let key = ring.get(SESSION_SIGN_KEY, version).ok()?;
    Some((
        session_id.to_owned(),
        hmac_sm3(key.expose(), &[LABEL, session_id.as_bytes()]).to_vec(),
    ))
}
