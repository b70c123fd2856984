//! The one place that names the SM4 block cipher every mode in this crate runs on.

/// SM4 block cipher used by ECB/CBC/CTR, SM4-GCM, key wrapping, the vault and the envelope:
/// the crate's own constant-time implementation (AES-NI/GFNI/VAES with AVX2 where the CPU has
/// them, bitsliced elsewhere), verified against RustCrypto `sm4` in `tests/sm4.rs`.
pub(crate) type Sm4Block = crate::sm4::Sm4;
