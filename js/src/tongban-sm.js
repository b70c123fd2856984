// Tongban SM client: SM2 encryption, SM3, SM4 and SM4-GCM, and the digital envelope.
//
// Runs in browsers and in the quick-app JS runtime: plain ES2020 (BigInt), no Node-only API,
// no dependency. Randomness comes from crypto.getRandomValues, or from setRandomSource() in
// runtimes without it. JavaScript BigInt arithmetic is not constant-time: this client only
// ever encrypts with the server's public key and ephemeral keys of its own, it holds no
// long-term secret. The wire formats are documented in docs/crypto.md.

// === bytes and text ===

const HEX = '0123456789abcdef';

/** Lowercase hex of a Uint8Array. */
export function toHex(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i] >> 4] + HEX[bytes[i] & 15];
  return s;
}

/** Bytes of a hex string (either case); throws on odd length or a non-hex digit. */
export function fromHex(hex) {
  if (hex.length % 2 !== 0 || /[^0-9a-fA-F]/.test(hex)) throw new Error('invalid hex');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

/** UTF-8 bytes of a string (the one string-to-bytes conversion, as on the server). */
export function utf8Bytes(str) {
  const out = [];
  for (let i = 0; i < str.length; i++) {
    let c = str.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < str.length) {
      const d = str.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c >= 0xd800 && c < 0xe000) c = 0xfffd; // lone surrogate
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return Uint8Array.from(out);
}

/** String of UTF-8 bytes; throws on invalid UTF-8 rather than guessing. */
export function fromUtf8(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i];
    let n = 0;
    let c = 0;
    if (b < 0x80) { c = b; n = 0; } else if (b >= 0xc2 && b < 0xe0) { c = b & 31; n = 1; } else if (b >= 0xe0 && b < 0xf0) { c = b & 15; n = 2; } else if (b >= 0xf0 && b < 0xf5) { c = b & 7; n = 3; } else throw new Error('invalid UTF-8');
    if (i + n >= bytes.length) throw new Error('invalid UTF-8');
    for (let j = 1; j <= n; j++) {
      const t = bytes[i + j];
      if ((t & 0xc0) !== 0x80) throw new Error('invalid UTF-8');
      c = (c << 6) | (t & 63);
    }
    if ((n === 2 && (c < 0x800 || (c >= 0xd800 && c < 0xe000))) || (n === 3 && (c < 0x10000 || c > 0x10ffff))) throw new Error('invalid UTF-8');
    s += String.fromCodePoint(c);
    i += n + 1;
  }
  return s;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Standard Base64 with padding. */
export function toBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    s += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
    s += i + 1 < bytes.length ? B64[(n >> 6) & 63] : '=';
    s += i + 2 < bytes.length ? B64[n & 63] : '=';
  }
  return s;
}

/** Bytes of standard padded Base64; throws on anything else. */
export function fromBase64(str) {
  if (str.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(str)) throw new Error('invalid base64');
  const pad = str.endsWith('==') ? 2 : str.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((str.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < str.length; i += 4) {
    const n = (B64.indexOf(str[i]) << 18) | (B64.indexOf(str[i + 1]) << 12) |
      ((str[i + 2] === '=' ? 0 : B64.indexOf(str[i + 2])) << 6) | (str[i + 3] === '=' ? 0 : B64.indexOf(str[i + 3]));
    if (o < out.length) out[o++] = (n >> 16) & 255;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

// === randomness ===

let randomSource = (buf) => {
  const c = globalThis.crypto;
  if (!c || typeof c.getRandomValues !== 'function') throw new Error('no crypto.getRandomValues; call setRandomSource()');
  c.getRandomValues(buf);
  return buf;
};

/** Replaces the random source (fn fills and returns a Uint8Array), for runtimes without Web Crypto. */
export function setRandomSource(fn) {
  randomSource = fn;
}

/** `n` random bytes. */
export function randomBytes(n) {
  return randomSource(new Uint8Array(n));
}

// === SM3 (GB/T 32905) ===

const rotl = (x, n) => ((x << n) | (x >>> (32 - n))) >>> 0;

/** SM3 digest of a Uint8Array (32 bytes). */
export function sm3(msg) {
  const len = msg.length;
  const padded = new Uint8Array(((len + 9 + 63) >> 6) << 6);
  padded.set(msg);
  padded[len] = 0x80;
  const bits = len * 8;
  const dv = new DataView(padded.buffer);
  dv.setUint32(padded.length - 8, Math.floor(bits / 0x100000000));
  dv.setUint32(padded.length - 4, bits >>> 0);
  const V = [0x7380166f, 0x4914b2b9, 0x172442d7, 0xda8a0600, 0xa96f30bc, 0x163138aa, 0xe38dee4d, 0xb0fb0e4e];
  const W = new Uint32Array(68);
  const W1 = new Uint32Array(64);
  for (let off = 0; off < padded.length; off += 64) {
    for (let j = 0; j < 16; j++) W[j] = dv.getUint32(off + j * 4);
    for (let j = 16; j < 68; j++) {
      const x = W[j - 16] ^ W[j - 9] ^ rotl(W[j - 3], 15);
      W[j] = (x ^ rotl(x, 15) ^ rotl(x, 23) ^ rotl(W[j - 13], 7) ^ W[j - 6]) >>> 0;
    }
    for (let j = 0; j < 64; j++) W1[j] = (W[j] ^ W[j + 4]) >>> 0;
    let [A, B, C, D, E, F, G, H] = V;
    for (let j = 0; j < 64; j++) {
      const T = j < 16 ? 0x79cc4519 : 0x7a879d8a;
      const SS1 = rotl((rotl(A, 12) + E + rotl(T, j % 32)) >>> 0, 7);
      const SS2 = (SS1 ^ rotl(A, 12)) >>> 0;
      const FF = j < 16 ? A ^ B ^ C : (A & B) | (A & C) | (B & C);
      const GG = j < 16 ? E ^ F ^ G : (E & F) | (~E & G);
      const TT1 = (FF + D + SS2 + W1[j]) >>> 0;
      const TT2 = (GG + H + SS1 + W[j]) >>> 0;
      D = C; C = rotl(B, 9); B = A; A = TT1;
      H = G; G = rotl(F, 19); F = E; E = (TT2 ^ rotl(TT2, 9) ^ rotl(TT2, 17)) >>> 0;
    }
    V[0] ^= A; V[1] ^= B; V[2] ^= C; V[3] ^= D; V[4] ^= E; V[5] ^= F; V[6] ^= G; V[7] ^= H;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  V.forEach((v, i) => ov.setUint32(i * 4, v >>> 0));
  return out;
}

// === SM4 (GB/T 32907) ===

const SBOX = fromHex(
  'd690e9fecce13db716b614c228fb2c052b679a762abe04c3aa441326498606999c4250f491ef987a33540b43edcfac62' +
  'e4b31ca9c908e89580df94fa758f3fa64707a7fcf37317ba83593c19e6854fa8686b81b27164da8bf8eb0f4b70569d35' +
  '1e240e5e6358d1a225227c3b01217887d40046579fd327524c3602e7a0c4c89eeabf8ad240c738b5a3f7f2cef96115a1' +
  'e0ae5da49b341a55ad933230f58cb1e31df6e22e8266ca60c02923ab0d534e6fd5db3745defd8e2f03ff6a726d6c5b51' +
  '8d1baf92bbddbc7f11d95c411f105ad80ac13188a5cd7bbd2d74d012b8e5b4b08969974a0c96777e65b9f109c56ec684' +
  '18f07dec3adc4d2079ee5f3ed7cb3948',
);
const FK = [0xa3b1bac6, 0x56aa3350, 0x677d9197, 0xb27022dc];

function tau(a) {
  return ((SBOX[a >>> 24] << 24) | (SBOX[(a >>> 16) & 255] << 16) | (SBOX[(a >>> 8) & 255] << 8) | SBOX[a & 255]) >>> 0;
}

/** SM4 round keys of a 16-byte key. */
export function sm4KeySchedule(key) {
  if (key.length !== 16) throw new Error('SM4 key must be 16 bytes');
  const dv = new DataView(key.buffer, key.byteOffset, 16);
  const K = [0, 1, 2, 3].map((i) => (dv.getUint32(i * 4) ^ FK[i]) >>> 0);
  const rk = new Uint32Array(32);
  for (let i = 0; i < 32; i++) {
    let ck = 0;
    for (let j = 0; j < 4; j++) ck = (ck << 8) | (((4 * i + j) * 7) & 255);
    const t = tau((K[1] ^ K[2] ^ K[3] ^ ck) >>> 0);
    const k = (K[0] ^ t ^ rotl(t, 13) ^ rotl(t, 23)) >>> 0;
    rk[i] = k;
    K.shift();
    K.push(k);
  }
  return rk;
}

/** Encrypts one 16-byte block with round keys `rk` (decrypt: pass the round keys reversed). */
export function sm4Block(rk, block) {
  const dv = new DataView(block.buffer, block.byteOffset, 16);
  const X = [0, 1, 2, 3].map((i) => dv.getUint32(i * 4));
  for (let i = 0; i < 32; i++) {
    const t = tau((X[1] ^ X[2] ^ X[3] ^ rk[i]) >>> 0);
    const x = (X[0] ^ t ^ rotl(t, 2) ^ rotl(t, 10) ^ rotl(t, 18) ^ rotl(t, 24)) >>> 0;
    X.shift();
    X.push(x);
  }
  const out = new Uint8Array(16);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) ov.setUint32(i * 4, X[3 - i]);
  return out;
}

// === SM4-GCM (RFC 8998) ===

// GF(2^128) multiplication of GCM (NIST SP 800-38D, algorithm 1) on four 32-bit words.
function gmul(X, Y) {
  const Z = [0, 0, 0, 0];
  const V = Y.slice();
  for (let i = 0; i < 128; i++) {
    if ((X[i >> 5] >>> (31 - (i & 31))) & 1) {
      Z[0] ^= V[0]; Z[1] ^= V[1]; Z[2] ^= V[2]; Z[3] ^= V[3];
    }
    const lsb = V[3] & 1;
    V[3] = ((V[3] >>> 1) | (V[2] << 31)) >>> 0;
    V[2] = ((V[2] >>> 1) | (V[1] << 31)) >>> 0;
    V[1] = ((V[1] >>> 1) | (V[0] << 31)) >>> 0;
    V[0] = (V[0] >>> 1) >>> 0;
    if (lsb) V[0] = (V[0] ^ 0xe1000000) >>> 0;
  }
  return Z.map((z) => z >>> 0);
}

const words = (b, o = 0) => {
  const dv = new DataView(b.buffer, b.byteOffset + o, 16);
  return [0, 1, 2, 3].map((i) => dv.getUint32(i * 4));
};

function ghash(H, aad, ct) {
  let Y = [0, 0, 0, 0];
  const absorb = (data) => {
    for (let o = 0; o < data.length; o += 16) {
      const block = new Uint8Array(16);
      block.set(data.subarray(o, o + 16));
      const w = words(block);
      Y = gmul([Y[0] ^ w[0], Y[1] ^ w[1], Y[2] ^ w[2], Y[3] ^ w[3]], H);
    }
  };
  absorb(aad);
  absorb(ct);
  const lens = new Uint8Array(16);
  const dv = new DataView(lens.buffer);
  dv.setUint32(0, Math.floor((aad.length * 8) / 0x100000000));
  dv.setUint32(4, (aad.length * 8) >>> 0);
  dv.setUint32(8, Math.floor((ct.length * 8) / 0x100000000));
  dv.setUint32(12, (ct.length * 8) >>> 0);
  absorb(lens);
  return Y;
}

function gcmCtr(rk, j0, data) {
  const out = new Uint8Array(data.length);
  const ctr = j0.slice();
  const dv = new DataView(ctr.buffer);
  for (let o = 0; o < data.length; o += 16) {
    dv.setUint32(12, (dv.getUint32(12) + 1) >>> 0);
    const ks = sm4Block(rk, ctr);
    for (let i = 0; i < 16 && o + i < data.length; i++) out[o + i] = data[o + i] ^ ks[i];
  }
  return out;
}

function gcmTag(rk, j0, aad, ct) {
  const H = words(sm4Block(rk, new Uint8Array(16)));
  const S = ghash(H, aad, ct);
  const ek = words(sm4Block(rk, j0));
  const tag = new Uint8Array(16);
  const dv = new DataView(tag.buffer);
  for (let i = 0; i < 4; i++) dv.setUint32(i * 4, (S[i] ^ ek[i]) >>> 0);
  return tag;
}

function j0Of(nonce) {
  if (nonce.length !== 12) throw new Error('GCM nonce must be 12 bytes');
  const j0 = new Uint8Array(16);
  j0.set(nonce);
  j0[15] = 1;
  return j0;
}

/** SM4-GCM encryption: returns ciphertext followed by the 16-byte tag. */
export function sm4GcmEncrypt(key, nonce, plaintext, aad = new Uint8Array(0)) {
  const rk = sm4KeySchedule(key);
  const j0 = j0Of(nonce);
  const ct = gcmCtr(rk, j0, plaintext);
  return concat(ct, gcmTag(rk, j0, aad, ct));
}

/** SM4-GCM decryption of ciphertext || tag; throws when authentication fails. */
export function sm4GcmDecrypt(key, nonce, sealed, aad = new Uint8Array(0)) {
  if (sealed.length < 16) throw new Error('SM4-GCM authentication failed');
  const rk = sm4KeySchedule(key);
  const j0 = j0Of(nonce);
  const ct = sealed.subarray(0, sealed.length - 16);
  const tag = gcmTag(rk, j0, aad, ct);
  let diff = 0;
  for (let i = 0; i < 16; i++) diff |= tag[i] ^ sealed[sealed.length - 16 + i];
  if (diff !== 0) throw new Error('SM4-GCM authentication failed');
  return gcmCtr(rk, j0, ct);
}

// === SM2 (GB/T 32918) on sm2p256v1 ===

const P = 0xfffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffffn;
const A = P - 3n;
const B = 0x28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93n;
const N = 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n;
const G = [
  0x32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7n,
  0xbc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0n,
];

const mod = (a, m = P) => { const r = a % m; return r < 0n ? r + m : r; };

function inv(a, m = P) {
  let [r0, r1] = [mod(a, m), m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new Error('not invertible');
  return mod(s0, m);
}

// Jacobian coordinates (X, Y, Z) with x = X/Z^2, y = Y/Z^3; Z = 0 is the point at infinity.
function jDouble([X, Y, Z]) {
  if (Z === 0n || Y === 0n) return [0n, 1n, 0n];
  const YY = mod(Y * Y);
  const S = mod(4n * X * YY);
  const ZZ = mod(Z * Z);
  const M = mod(3n * X * X + A * ZZ * ZZ);
  const X3 = mod(M * M - 2n * S);
  return [X3, mod(M * (S - X3) - 8n * YY * YY), mod(2n * Y * Z)];
}

function jAdd(p1, p2) {
  if (p1[2] === 0n) return p2;
  if (p2[2] === 0n) return p1;
  const [X1, Y1, Z1] = p1;
  const [X2, Y2, Z2] = p2;
  const Z1Z1 = mod(Z1 * Z1);
  const Z2Z2 = mod(Z2 * Z2);
  const U1 = mod(X1 * Z2Z2);
  const U2 = mod(X2 * Z1Z1);
  const S1 = mod(Y1 * Z2 * Z2Z2);
  const S2 = mod(Y2 * Z1 * Z1Z1);
  const H = mod(U2 - U1);
  const R = mod(S2 - S1);
  if (H === 0n) return R === 0n ? jDouble(p1) : [0n, 1n, 0n];
  const HH = mod(H * H);
  const HHH = mod(H * HH);
  const X3 = mod(R * R - HHH - 2n * U1 * HH);
  return [X3, mod(R * (U1 * HH - X3) - S1 * HHH), mod(H * Z1 * Z2)];
}

function toAffine([X, Y, Z]) {
  if (Z === 0n) throw new Error('point at infinity');
  const zi = inv(Z);
  const zi2 = mod(zi * zi);
  return [mod(X * zi2), mod(Y * zi2 * zi)];
}

// Montgomery ladder: the same add/double sequence for every bit of k.
function mul(k, [x, y]) {
  let R0 = [0n, 1n, 0n];
  let R1 = [x, y, 1n];
  for (let i = 255; i >= 0; i--) {
    if ((k >> BigInt(i)) & 1n) { R0 = jAdd(R0, R1); R1 = jDouble(R1); } else { R1 = jAdd(R0, R1); R0 = jDouble(R0); }
  }
  return toAffine(R0);
}

function onCurve([x, y]) {
  return x < P && y < P && mod(y * y - (x * x * x + A * x + B)) === 0n;
}

const bigOf = (bytes) => (bytes.length ? BigInt('0x' + toHex(bytes)) : 0n);
const bytes32 = (v) => fromHex(v.toString(16).padStart(64, '0'));

function parsePoint(bytes) {
  let b = bytes;
  if (b.length === 65 && b[0] === 4) b = b.subarray(1);
  if (b.length !== 64) throw new Error('invalid SM2 point');
  const pt = [bigOf(b.subarray(0, 32)), bigOf(b.subarray(32))];
  if (!onCurve(pt)) throw new Error('invalid SM2 point');
  return pt;
}

function kdf(z, len) {
  const out = new Uint8Array(len);
  for (let ct = 1, o = 0; o < len; ct++, o += 32) {
    const c = new Uint8Array(4);
    new DataView(c.buffer).setUint32(0, ct);
    out.set(sm3(concat(z, c)).subarray(0, Math.min(32, len - o)), o);
  }
  return out;
}

function randomScalar() {
  for (;;) {
    const k = bigOf(randomBytes(32));
    if (k > 0n && k < N) return k;
  }
}

/** Public key `04 || x || y` of a 32-byte private key. */
export function sm2PublicKey(privateKey) {
  const d = bigOf(privateKey);
  if (privateKey.length !== 32 || d <= 0n || d >= N - 1n) throw new Error('invalid SM2 private key');
  const [x, y] = mul(d, G);
  return concat(Uint8Array.of(4), bytes32(x), bytes32(y));
}

/** A fresh SM2 key pair `{privateKey, publicKey}` (for tests; clients never need one). */
export function sm2GenerateKeyPair() {
  for (;;) {
    const d = randomScalar();
    if (d < N - 1n) {
      const privateKey = bytes32(d);
      return { privateKey, publicKey: sm2PublicKey(privateKey) };
    }
  }
}

/**
 * SM2 encryption to `publicKey` (65 bytes with 04, or 64 without).
 * Options: order 'C1C3C2' (default) or 'C1C2C3'; prefix true (default) writes the 04 byte.
 * `k` is for the published known-answer test only.
 */
export function sm2Encrypt(publicKey, message, { order = 'C1C3C2', prefix = true, k } = {}) {
  if (message.length === 0) throw new Error('SM2 cannot encrypt an empty message');
  const Pb = parsePoint(publicKey);
  for (;;) {
    const kk = k ?? randomScalar();
    const [x1, y1] = mul(kk, G);
    const [x2, y2] = mul(kk, Pb);
    const x2b = bytes32(x2);
    const y2b = bytes32(y2);
    const t = kdf(concat(x2b, y2b), message.length);
    if (t.every((b) => b === 0)) { if (k !== undefined) throw new Error('bad k'); continue; }
    const c2 = message.map((m, i) => m ^ t[i]);
    const c3 = sm3(concat(x2b, message, y2b));
    const c1 = concat(prefix ? Uint8Array.of(4) : new Uint8Array(0), bytes32(x1), bytes32(y1));
    return order === 'C1C2C3' ? concat(c1, c2, c3) : concat(c1, c3, c2);
  }
}

/**
 * SM2 decryption with a 32-byte private key; accepts C1 with or without the 04 byte.
 * Throws on a malformed ciphertext, a point off the curve or a failed C3 check.
 */
export function sm2Decrypt(privateKey, ciphertext, { order = 'C1C3C2' } = {}) {
  const d = bigOf(privateKey);
  let body = ciphertext;
  const tryPoint = (b) => { try { return parsePoint(b); } catch { return null; } };
  let C1 = body.length > 97 && body[0] === 4 ? tryPoint(body.subarray(1, 65)) : null;
  if (C1) body = body.subarray(65);
  else {
    C1 = body.length >= 97 ? tryPoint(body.subarray(0, 64)) : null;
    if (!C1) throw new Error('SM2 decryption failed');
    body = body.subarray(64);
  }
  const [c3, c2] = order === 'C1C2C3'
    ? [body.subarray(body.length - 32), body.subarray(0, body.length - 32)]
    : [body.subarray(0, 32), body.subarray(32)];
  const [x2, y2] = mul(d, C1);
  const x2b = bytes32(x2);
  const y2b = bytes32(y2);
  const t = kdf(concat(x2b, y2b), c2.length);
  const m = c2.map((c, i) => c ^ t[i]);
  const u = sm3(concat(x2b, m, y2b));
  let diff = 0;
  for (let i = 0; i < 32; i++) diff |= u[i] ^ c3[i];
  if (diff !== 0) throw new Error('SM2 decryption failed');
  return m;
}

// === digital envelope ===

const REQUEST_AAD = 'tongban-envelope/v1/request/';
const RESPONSE_AAD = 'tongban-envelope/v1/response/';

/**
 * Seals a request body (Uint8Array or string) to the server key `kid`.
 * Returns `{envelope: {kid, key, iv, data}, session: {kid, key}}`; keep `session` to open the response.
 */
export function sealRequest(serverPublicKey, kid, body, options = {}) {
  const plaintext = typeof body === 'string' ? utf8Bytes(body) : body;
  const key = randomBytes(16);
  const iv = randomBytes(12);
  const wrapped = sm2Encrypt(serverPublicKey, key, options);
  const data = sm4GcmEncrypt(key, iv, plaintext, utf8Bytes(REQUEST_AAD + kid));
  return {
    envelope: { kid, key: toBase64(wrapped), iv: toBase64(iv), data: toBase64(data) },
    session: { kid, key },
  };
}

/** Opens a response `{iv, data}` with the session of the request; throws when it does not authenticate. */
export function openResponse(session, response) {
  return sm4GcmDecrypt(session.key, fromBase64(response.iv), fromBase64(response.data), utf8Bytes(RESPONSE_AAD + session.kid));
}

/** Server side, for tests and JS servers: opens a request with the private key of its `kid`. */
export function openRequest(privateKey, envelope, options = {}) {
  const key = sm2Decrypt(privateKey, fromBase64(envelope.key), options);
  if (key.length !== 16) throw new Error('digital envelope rejected');
  const body = sm4GcmDecrypt(key, fromBase64(envelope.iv), fromBase64(envelope.data), utf8Bytes(REQUEST_AAD + envelope.kid));
  return { body, session: { kid: envelope.kid, key } };
}

/** Server side: seals a response with the request's session key and a fresh nonce. */
export function sealResponse(session, body) {
  const plaintext = typeof body === 'string' ? utf8Bytes(body) : body;
  const iv = randomBytes(12);
  return { iv: toBase64(iv), data: toBase64(sm4GcmEncrypt(session.key, iv, plaintext, utf8Bytes(RESPONSE_AAD + session.kid))) };
}
