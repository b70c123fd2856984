#!/usr/bin/env python3
"""Derives the constants of Tongban's SM4 S-box kernels (crates/tongban-crypto/src/sm4/).

SM4's S-box is S(x) = A·inv_f(A·x + C) + C over GF(2^8) mod f = x^8+x^7+x^6+x^5+x^4+x^2+1.
Mapping that field onto AES's (mod x^8+x^4+x^3+x+1) by a field isomorphism M gives
S(x) = Q·inv_aes(P·x + p) + C with P = M·A, p = M·C, Q = A·M^-1, which is what AES-NI
(AESENCLAST = SubBytes = A_aes·inv + 0x63), GFNI (GF2P8AFFINEINVQB) and the bitsliced
Boyar–Peralta circuit compute. Every table printed here is checked against the S-box.
Run: python3 bench/crypto/sm4_affine.py   (needs only the Python standard library)
"""

SBOX = bytes.fromhex(
    "d690e9fecce13db716b614c228fb2c052b679a762abe04c3aa441326498606999c4250f491ef987a33540b43edcfac62"
    "e4b31ca9c908e89580df94fa758f3fa64707a7fcf37317ba83593c19e6854fa8686b81b27164da8bf8eb0f4b70569d35"
    "1e240e5e6358d1a225227c3b01217887d40046579fd327524c3602e7a0c4c89eeabf8ad240c738b5a3f7f2cef96115a1"
    "e0ae5da49b341a55ad933230f58cb1e31df6e22e8266ca60c02923ab0d534e6fd5db3745defd8e2f03ff6a726d6c5b51"
    "8d1baf92bbddbc7f11d95c411f105ad80ac13188a5cd7bbd2d74d012b8e5b4b08969974a0c96777e65b9f109c56ec684"
    "18f07dec3adc4d2079ee5f3ed7cb3948"
)
assert len(SBOX) == 256


def gmul(a, b, poly):
    r = 0
    while b:
        if b & 1:
            r ^= a
        b >>= 1
        a <<= 1
        if a & 0x100:
            a ^= poly
    return r


def ginv(a, poly):
    r = 1 if a else 0
    for _ in range(254 if a else 0):
        r = gmul(r, a, poly)
    return r


# A matrix is 8 row masks: row i selects the input bits XORed into output bit i.
def mv(m, x):
    return sum((bin(m[i] & x).count("1") & 1) << i for i in range(8))


def from_fn(f):
    cols = [f(1 << j) for j in range(8)]
    return [sum(((cols[j] >> i) & 1) << j for j in range(8)) for i in range(8)]


def mm(a, b):
    return from_fn(lambda x: mv(a, mv(b, x)))


def madd(a, b):
    return [x ^ y for x, y in zip(a, b)]


def minv(a):
    t = {mv(a, x): x for x in range(256)}
    assert len(t) == 256
    return from_fn(lambda y: t[y])


I = from_fn(lambda x: x)
SHL2 = from_fn(lambda x: (x << 2) & 0xFF)
SHR6 = from_fn(lambda x: x >> 6)
rotl8 = lambda x, n: ((x << n) | (x >> (8 - n))) & 0xFF
AAES = from_fn(lambda x: x ^ rotl8(x, 1) ^ rotl8(x, 2) ^ rotl8(x, 3) ^ rotl8(x, 4))
AES_SBOX = [mv(AAES, ginv(x, 0x11B)) ^ 0x63 for x in range(256)]
SM4_POLY, C = 0x1F5, 0xD3
A = [rotl8(0xA7, i) for i in range(8)]  # circulant
assert all(mv(A, ginv(mv(A, x) ^ C, SM4_POLY)) ^ C == SBOX[x] for x in range(256))


def sm4_poly_at(b):
    r, pw = 0, 1
    for i in range(9):
        if (SM4_POLY >> i) & 1:
            r ^= pw
        pw = gmul(pw, b, 0x11B)
    return r


beta = min(b for b in range(2, 256) if sm4_poly_at(b) == 0)


def iso(x):
    r, pw = 0, 1
    for i in range(8):
        if (x >> i) & 1:
            r ^= pw
        pw = gmul(pw, beta, 0x11B)
    return r


M = from_fn(iso)
P, p = mm(M, A), mv(M, C)
Q = mm(A, minv(M))
assert all(mv(Q, ginv(mv(P, x) ^ p, 0x11B)) ^ C == SBOX[x] for x in range(256))
POST_AESNI = mm(Q, minv(AAES))  # applied to AESENCLAST output, constant below
POST_AESNI_C = mv(POST_AESNI, 0x63) ^ C
assert all(mv(POST_AESNI, AES_SBOX[mv(P, x) ^ p]) ^ POST_AESNI_C == SBOX[x] for x in range(256))

# Single-block kernels keep the state as X = P·x so no input map sits on the round's critical
# path, and fold SM4's L (all but its byte rotations) into the output maps:
#   X0' = X0 ^ G0·inv(u) ^ rol8(G1·inv(u)) ^ rol16(G1·inv(u)) ^ rol24(G3·inv(u)) ^ P·0x4f,
#   u = X1 ^ X2 ^ X3 ^ (P·rk + p), since L(z) = (I^SHL2)z ^ rol8,16((SHL2^SHR6)z) ^ rol24((I^SHR6)z)
# and L(0xd3d3d3d3) = 0x4f4f4f4f.
G0 = mm(P, mm(madd(I, SHL2), Q))
G1 = mm(P, mm(madd(SHL2, SHR6), Q))
G3 = mm(P, mm(madd(I, SHR6), Q))
G0_C = mv(P, 0x4F)
PINV = minv(P)


def rol32(x, n):
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


def bytewise(m, w, c=0):
    return sum((mv(m, (w >> (8 * k)) & 0xFF) ^ c) << (8 * k) for k in range(4))


def inv_word(w):
    return sum(ginv((w >> (8 * k)) & 0xFF, 0x11B) << (8 * k) for k in range(4))


def sm4_words_reference(rk, x):
    x = list(x)
    for i in range(32):
        t = x[(i + 1) % 4] ^ x[(i + 2) % 4] ^ x[(i + 3) % 4] ^ rk[i]
        b = sum(SBOX[(t >> (8 * k)) & 0xFF] << (8 * k) for k in range(4))
        x[i % 4] ^= b ^ rol32(b, 2) ^ rol32(b, 10) ^ rol32(b, 18) ^ rol32(b, 24)
    return x


def sm4_words_domain(rk, x):
    X = [bytewise(P, w) for w in x]
    for i in range(32):
        u = X[(i + 1) % 4] ^ X[(i + 2) % 4] ^ X[(i + 3) % 4] ^ bytewise(P, rk[i], p)
        v = inv_word(u)
        a1 = bytewise(G1, v)
        X[i % 4] ^= bytewise(G0, v, G0_C) ^ rol32(a1, 8) ^ rol32(a1, 16) ^ rol32(bytewise(G3, v), 24)
    return [bytewise(PINV, w) for w in X]


import random

rng = random.Random(1)
for _ in range(20):
    rk = [rng.getrandbits(32) for _ in range(32)]
    x = [rng.getrandbits(32) for _ in range(4)]
    assert sm4_words_domain(rk, x) == sm4_words_reference(rk, x)


def nib(m, c=0):
    return [mv(m, i) ^ c for i in range(16)], [mv(m, i << 4) for i in range(16)]


def arr(t):
    return "[" + ", ".join("0x%02x" % v for v in t) + "]"


def gfni(m):
    return "0x%016x" % sum(m[i] << (8 * (7 - i)) for i in range(8))


for name, (lo, hi) in [
    ("PRE", nib(P, p)),
    ("POST", nib(POST_AESNI, POST_AESNI_C)),
    ("P", nib(P)),
    ("P_INV", nib(PINV)),
    ("H0", nib(mm(G0, minv(AAES)), mv(mm(G0, minv(AAES)), 0x63) ^ G0_C)),
    ("H1", nib(mm(G1, minv(AAES)), mv(mm(G1, minv(AAES)), 0x63))),
    ("H3", nib(mm(G3, minv(AAES)), mv(mm(G3, minv(AAES)), 0x63))),
]:
    print(f"{name}_LO: {arr(lo)}\n{name}_HI: {arr(hi)}")
print("GFNI P", gfni(P), "const 0x%02x" % p)
print("GFNI Q", gfni(Q), "const 0x%02x" % C)
print("GFNI P_INV", gfni(PINV))
print("GFNI G0", gfni(G0), "const 0x%02x" % G0_C)
print("GFNI G1", gfni(G1))
print("GFNI G3", gfni(G3))
print("BITSLICE PRE rows", arr(P), "const 0x%02x" % p)
print("BITSLICE POST rows", arr(mm(Q, minv(AAES))), "const 0x%02x" % C)
