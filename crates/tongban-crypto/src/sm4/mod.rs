//! SM4 (GB/T 32907) block cipher, constant-time, for the `cipher` 0.5 modes (CBC, CTR, GCM).
//!
//! On x86_64 with AVX2 the S-box is computed with GFNI, VAES or AES-NI sixteen blocks at a
//! time (`x86`); everywhere else a bitsliced circuit does it (`soft`). Neither path may branch
//! on or index memory with key or data bytes: this type sits under every stored personal record
//! and every enveloped request, where a cache-timing leak would expose the data key.
//!
//! ```
//! use tongban_crypto::sm4::Sm4;
//! use cipher::{BlockCipherEncrypt, KeyInit};
//!
//! let key = [0u8; 16];
//! let cipher = Sm4::new(&key.into());
//! let mut block = [0u8; 16].into();
//! cipher.encrypt_block(&mut block);
//! ```

use core::fmt;

use cipher::{
    AlgorithmName, Array, Block, BlockCipherDecBackend, BlockCipherDecClosure, BlockCipherDecrypt,
    BlockCipherEncBackend, BlockCipherEncClosure, BlockCipherEncrypt, BlockSizeUser, InOut,
    InOutBuf, Key, KeyInit, KeySizeUser, ParBlocks, ParBlocksSizeUser, consts::U16,
};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Runs the 32 rounds `x0 ^= T(x1 ^ x2 ^ x3 ^ rk)` with the word roles rotated by unrolling,
/// so the state stays in registers; `$step` gets `(x0, x1, x2, x3, rk)`, `x3` being the word
/// the previous round wrote.
macro_rules! sm4_rounds {
    ($x:ident, $rk:expr, $step:expr) => {
        for k in $rk.chunks_exact(4) {
            $x[0] = $step($x[0], $x[1], $x[2], $x[3], k[0]);
            $x[1] = $step($x[1], $x[2], $x[3], $x[0], k[1]);
            $x[2] = $step($x[2], $x[3], $x[0], $x[1], k[2]);
            $x[3] = $step($x[3], $x[0], $x[1], $x[2], k[3]);
        }
    };
}

mod soft;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86;

#[cfg(test)]
mod tests;

/// Which implementation an [`Sm4`] instance runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sm4Backend {
    /// Bitsliced portable code; available everywhere.
    Portable,
    /// x86_64 AVX2 with AES-NI.
    AesNiAvx2,
    /// x86_64 AVX2 with VAES.
    VaesAvx2,
    /// x86_64 AVX2 with GFNI.
    GfniAvx2,
}

impl Sm4Backend {
    /// Every backend, in order of preference (fastest first).
    pub const ALL: [Sm4Backend; 4] = [
        Sm4Backend::GfniAvx2,
        Sm4Backend::VaesAvx2,
        Sm4Backend::AesNiAvx2,
        Sm4Backend::Portable,
    ];

    /// Whether this CPU can run the backend.
    pub fn is_available(self) -> bool {
        Imp::select(self).is_some()
    }
}

/// SM4 block cipher with runtime CPU dispatch; round keys are zeroized on drop.
#[derive(Clone)]
pub struct Sm4 {
    enc: [u32; 32],
    dec: [u32; 32],
    imp: Imp,
}

#[derive(Clone, Copy)]
enum Imp {
    Soft,
    #[cfg(target_arch = "x86_64")]
    X86(x86::Simd),
}

// === impl Imp ===

impl Imp {
    fn best() -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = x86::Simd::best() {
            return Imp::X86(simd);
        }
        Imp::Soft
    }

    fn select(backend: Sm4Backend) -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        let level = match backend {
            Sm4Backend::Portable => return Some(Imp::Soft),
            Sm4Backend::AesNiAvx2 => x86::Level::AesNi,
            Sm4Backend::VaesAvx2 => x86::Level::Vaes,
            Sm4Backend::GfniAvx2 => x86::Level::Gfni,
        };
        #[cfg(target_arch = "x86_64")]
        return x86::Simd::new(level).map(Imp::X86);
        #[cfg(not(target_arch = "x86_64"))]
        return (backend == Sm4Backend::Portable).then_some(Imp::Soft);
    }

    fn backend(self) -> Sm4Backend {
        match self {
            Imp::Soft => Sm4Backend::Portable,
            #[cfg(target_arch = "x86_64")]
            Imp::X86(simd) => match simd.level() {
                x86::Level::AesNi => Sm4Backend::AesNiAvx2,
                x86::Level::Vaes => Sm4Backend::VaesAvx2,
                x86::Level::Gfni => Sm4Backend::GfniAvx2,
            },
        }
    }
}

// === impl Sm4 ===

impl Sm4 {
    /// A cipher pinned to `backend`, or `None` when this CPU cannot run it.
    ///
    /// Meant for tests and benchmarks; [`KeyInit::new`] picks the fastest backend.
    pub fn with_backend(key: &[u8; 16], backend: Sm4Backend) -> Option<Self> {
        Imp::select(backend).map(|imp| Self::with_imp(key, imp))
    }

    /// The backend this instance runs.
    pub fn backend(&self) -> Sm4Backend {
        self.imp.backend()
    }

    fn with_imp(key: &[u8; 16], imp: Imp) -> Self {
        let enc = soft::expand_key(key);
        let mut dec = enc;
        dec.reverse();
        Self { enc, dec, imp }
    }

    /// Runs the 32 rounds over `blocks` with `rk` (encryption or reversed order).
    fn crypt_blocks(&self, rk: &[u32; 32], blocks: &mut [[u8; 16]]) {
        match self.imp {
            Imp::Soft => soft::crypt_blocks(rk, blocks),
            #[cfg(target_arch = "x86_64")]
            Imp::X86(simd) => x86::crypt_blocks(simd, rk, blocks),
        }
    }

    fn crypt1(&self, rk: &[u32; 32], block: &mut [u8; 16]) {
        match self.imp {
            Imp::Soft => soft::crypt1(rk, block),
            #[cfg(target_arch = "x86_64")]
            Imp::X86(simd) => x86::crypt1(simd, rk, block),
        }
    }
}

impl KeySizeUser for Sm4 {
    type KeySize = U16;
}

impl KeyInit for Sm4 {
    fn new(key: &Key<Self>) -> Self {
        Self::with_imp(key.as_ref(), Imp::best())
    }
}

impl BlockSizeUser for Sm4 {
    type BlockSize = U16;
}

impl BlockCipherEncrypt for Sm4 {
    fn encrypt_with_backend(&self, f: impl BlockCipherEncClosure<BlockSize = U16>) {
        f.call(&Backend {
            cipher: self,
            rk: &self.enc,
        });
    }
}

impl BlockCipherDecrypt for Sm4 {
    fn decrypt_with_backend(&self, f: impl BlockCipherDecClosure<BlockSize = U16>) {
        f.call(&Backend {
            cipher: self,
            rk: &self.dec,
        });
    }
}

impl fmt::Debug for Sm4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sm4")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl AlgorithmName for Sm4 {
    fn write_alg_name(f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sm4")
    }
}

impl Drop for Sm4 {
    fn drop(&mut self) {
        self.enc.zeroize();
        self.dec.zeroize();
    }
}

impl ZeroizeOnDrop for Sm4 {}

/// The per-call backend handed to mode closures: one direction's round keys.
struct Backend<'a> {
    cipher: &'a Sm4,
    rk: &'a [u32; 32],
}

// === impl Backend ===

impl Backend<'_> {
    fn one(&self, block: InOut<'_, '_, Block<Self>>) {
        let b: &mut [u8; 16] = block.into_out_with_copied_in().as_mut();
        self.cipher.crypt1(self.rk, b);
    }

    fn many(&self, blocks: InOutBuf<'_, '_, Block<Self>>) {
        let out = blocks.into_out_with_copied_in();
        self.cipher
            .crypt_blocks(self.rk, Array::cast_slice_to_core_mut(out));
    }
}

impl BlockSizeUser for Backend<'_> {
    type BlockSize = U16;
}

impl ParBlocksSizeUser for Backend<'_> {
    // Both kernels fill their lanes with 16 blocks.
    type ParBlocksSize = U16;
}

impl BlockCipherEncBackend for Backend<'_> {
    #[inline]
    fn encrypt_block(&self, block: InOut<'_, '_, Block<Self>>) {
        self.one(block);
    }

    #[inline]
    fn encrypt_par_blocks(&self, blocks: InOut<'_, '_, ParBlocks<Self>>) {
        self.many(blocks.into_buf());
    }

    #[inline]
    fn encrypt_tail_blocks(&self, blocks: InOutBuf<'_, '_, Block<Self>>) {
        self.many(blocks);
    }
}

impl BlockCipherDecBackend for Backend<'_> {
    #[inline]
    fn decrypt_block(&self, block: InOut<'_, '_, Block<Self>>) {
        self.one(block);
    }

    #[inline]
    fn decrypt_par_blocks(&self, blocks: InOut<'_, '_, ParBlocks<Self>>) {
        self.many(blocks.into_buf());
    }

    #[inline]
    fn decrypt_tail_blocks(&self, blocks: InOutBuf<'_, '_, Block<Self>>) {
        self.many(blocks);
    }
}
