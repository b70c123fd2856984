//! Audit records of key operations, hash-chained with SM3 so edits, deletions and reordering
//! are detectable. Records name keys by id and version, never their material.

use serde::{Deserialize, Serialize};

use crate::{encoding::hex_encode, sm3::sm3_parts};

/// `prev_hash` of the first record.
pub const GENESIS_HASH: [u8; 32] = [0u8; 32];

/// Domain label hashed into every record so a chain hash cannot be confused with another SM3 use.
const CHAIN_LABEL: &[u8] = b"tongban/key-audit/v1";

/// A key operation, before it is placed in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Who asked (operator name, `system`, a service id).
    pub actor: String,
    /// When, in Unix milliseconds (supplied by the caller's clock).
    pub at_unix_ms: i64,
    /// What was done, e.g. `create`, `rotate`, `retire`, `rewrap`, `assemble-root`.
    pub operation: String,
    /// Key id concerned (`root` for the root key).
    pub key_id: String,
    /// Key version concerned (0 when not applicable).
    pub version: u32,
}

/// An event placed in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 0 with no gaps.
    pub seq: u64,
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// Hash of the previous record ([`GENESIS_HASH`] for the first).
    #[serde(with = "hex32")]
    pub prev_hash: [u8; 32],
    /// SM3 over the label, `prev_hash`, `seq` and every event field.
    #[serde(with = "hex32")]
    pub hash: [u8; 32],
}

/// Where a chain first fails to verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A record's content no longer matches its hash (edited).
    #[error("audit record {seq} was modified")]
    Modified {
        /// Sequence number of the record.
        seq: u64,
    },
    /// A record does not follow the one before it (deleted or reordered records).
    #[error("audit chain broken before record {seq}: records deleted or reordered")]
    Broken {
        /// Sequence number of the first record out of place.
        seq: u64,
    },
    /// The chain ends before the expected head (records removed from the end).
    #[error("audit chain ends at {found:?}, expected head {expected}")]
    Truncated {
        /// Expected last sequence number.
        expected: u64,
        /// Last sequence number present.
        found: Option<u64>,
    },
}

// === impl AuditRecord ===

impl AuditRecord {
    /// Places `event` after `prev` (or first in the chain when `prev` is `None`).
    pub fn append(prev: Option<&AuditRecord>, event: AuditEvent) -> Self {
        let (seq, prev_hash) = match prev {
            Some(p) => (p.seq + 1, p.hash),
            None => (0, GENESIS_HASH),
        };
        let hash = record_hash(seq, &prev_hash, &event);
        Self {
            seq,
            event,
            prev_hash,
            hash,
        }
    }

    /// Hex of the hash, for display and for anchoring the head elsewhere.
    pub fn hash_hex(&self) -> String {
        hex_encode(&self.hash)
    }
}

fn record_hash(seq: u64, prev_hash: &[u8; 32], e: &AuditEvent) -> [u8; 32] {
    let lp = |s: &str| (s.len() as u64).to_be_bytes();
    sm3_parts(&[
        CHAIN_LABEL,
        prev_hash,
        &seq.to_be_bytes(),
        &lp(&e.actor),
        e.actor.as_bytes(),
        &e.at_unix_ms.to_be_bytes(),
        &lp(&e.operation),
        e.operation.as_bytes(),
        &lp(&e.key_id),
        e.key_id.as_bytes(),
        &e.version.to_be_bytes(),
    ])
}

/// Verifies a whole chain from its first record.
///
/// Deleting records from the end leaves a valid shorter chain; pass the last known
/// `(seq, hash)` as `expected_head` (kept outside the database, e.g. in the ops log or a
/// metric) to detect that too.
pub fn verify_chain(
    records: &[AuditRecord],
    expected_head: Option<(u64, [u8; 32])>,
) -> Result<(), AuditError> {
    let mut prev_hash = GENESIS_HASH;
    for (i, r) in records.iter().enumerate() {
        let position = i as u64;
        if r.seq != position || r.prev_hash != prev_hash {
            return Err(AuditError::Broken { seq: r.seq });
        }
        if record_hash(r.seq, &r.prev_hash, &r.event) != r.hash {
            return Err(AuditError::Modified { seq: r.seq });
        }
        prev_hash = r.hash;
    }
    if let Some((seq, hash)) = expected_head {
        match records.last() {
            Some(last) if last.seq == seq && last.hash == hash => {}
            Some(last) if last.seq > seq => {
                // Longer than the anchor: fine as long as the anchored record is in the chain.
                let anchored = usize::try_from(seq)
                    .ok()
                    .and_then(|i| records.get(i))
                    .is_some_and(|r| r.hash == hash);
                if !anchored {
                    return Err(AuditError::Broken { seq });
                }
            }
            last => {
                return Err(AuditError::Truncated {
                    expected: seq,
                    found: last.map(|r| r.seq),
                });
            }
        }
    }
    Ok(())
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::encoding::hex_encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        crate::encoding::hex_decode(&text, "hash")
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| D::Error::custom("expected 64 hex digits"))
    }
}
