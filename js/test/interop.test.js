// Interoperability with the npm sm-crypto package (cipherMode 1 = C1C3C2, 0 = C1C2C3; no 04).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import smCrypto from 'sm-crypto';
import * as sm from '../src/tongban-sm.js';

const { sm2, sm3, sm4 } = smCrypto;
const { toHex, fromHex } = sm;
const ORDERS = [['C1C3C2', 1], ['C1C2C3', 0]];

test('SM2: ours encrypts, sm-crypto decrypts (both orders)', () => {
  const kp = sm2.generateKeyPairHex();
  for (const [order, mode] of ORDERS) {
    for (const n of [1, 16, 31, 32, 33, 100]) {
      const msg = sm.randomBytes(n);
      const ct = sm.sm2Encrypt(fromHex(kp.publicKey), msg, { order });
      assert.equal(ct[0], 4);
      const out = sm2.doDecrypt(toHex(ct).slice(2), kp.privateKey, mode, { output: 'array' });
      assert.equal(toHex(Uint8Array.from(out)), toHex(msg), `${order} n=${n}`);
    }
  }
});

test('SM2: sm-crypto encrypts, ours decrypts (both orders, no 04 prefix)', () => {
  const ours = sm.sm2GenerateKeyPair();
  for (const [order, mode] of ORDERS) {
    for (const n of [1, 16, 32, 77]) {
      const msg = sm.randomBytes(n);
      const ctHex = sm2.doEncrypt(Array.from(msg), toHex(ours.publicKey), mode);
      assert.equal(ctHex.length, (64 + 32 + n) * 2); // C1 without the 04 byte
      const out = sm.sm2Decrypt(ours.privateKey, fromHex(ctHex), { order });
      assert.equal(toHex(out), toHex(msg), `${order} n=${n}`);
      // With the 04 put back it decrypts too.
      assert.equal(toHex(sm.sm2Decrypt(ours.privateKey, fromHex('04' + ctHex), { order })), toHex(msg));
    }
  }
});

test('SM3 and SM4 agree with sm-crypto on random inputs', () => {
  for (let i = 0; i < 50; i++) {
    const msg = sm.randomBytes(i * 7);
    assert.equal(toHex(sm.sm3(msg)), sm3(Array.from(msg)));
    const key = sm.randomBytes(16);
    const block = sm.randomBytes(16);
    const theirs = sm4.encrypt(Array.from(block), Array.from(key), { padding: 'none', output: 'array' });
    assert.equal(toHex(sm.sm4Block(sm.sm4KeySchedule(key), block)), toHex(Uint8Array.from(theirs)));
  }
});

test('envelope key sealed by sm-crypto opens with ours', () => {
  // A client built on sm-crypto: SM2 with cipherMode 1 and no prefix, our GCM for the body.
  const server = sm.sm2GenerateKeyPair();
  const key = sm.randomBytes(16);
  const iv = sm.randomBytes(12);
  const wrappedHex = sm2.doEncrypt(Array.from(key), toHex(server.publicKey), 1);
  const data = sm.sm4GcmEncrypt(key, iv, sm.utf8Bytes('hello'), sm.utf8Bytes('tongban-envelope/v1/request/k1'));
  const envelope = { kid: 'k1', key: sm.toBase64(fromHex(wrappedHex)), iv: sm.toBase64(iv), data: sm.toBase64(data) };
  assert.equal(sm.fromUtf8(sm.openRequest(server.privateKey, envelope).body), 'hello');
});
