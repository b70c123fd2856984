//! The one place that names the SM4 block cipher every mode in this crate runs on.

/// SM4 block cipher used by ECB/CBC/CTR, SM4-GCM, key wrapping, the vault and the envelope.
///
/// Switching to the crate's own constant-time implementation is this one line
/// (`pub(crate) type Sm4Block = crate::sm4::Sm4;`): everything else is generic over the
/// cipher 0.5 block traits.
pub(crate) type Sm4Block = ::sm4::Sm4;
