// Official vectors: GB/T 32905 (SM3), GB/T 32907 (SM4), RFC 8998 (SM4-GCM), GB/T 32918.5 (SM2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as sm from '../src/tongban-sm.js';

const { fromHex, toHex, utf8Bytes } = sm;

test('SM3 abc and abcd x16', () => {
  assert.equal(toHex(sm.sm3(utf8Bytes('abc'))), '66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0');
  assert.equal(toHex(sm.sm3(utf8Bytes('abcd'.repeat(16)))), 'debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732');
});

test('SM4 one block, decryption, and 1,000,000 iterations', () => {
  const key = fromHex('0123456789abcdeffedcba9876543210');
  const rk = sm.sm4KeySchedule(key);
  const ct = sm.sm4Block(rk, key);
  assert.equal(toHex(ct), '681edf34d206965e86b3e94f536e4246');
  assert.equal(toHex(sm.sm4Block(rk.slice().reverse(), ct)), toHex(key));
  let block = key;
  for (let i = 0; i < 1_000_000; i++) block = sm.sm4Block(rk, block);
  assert.equal(toHex(block), '595298c7c6fd271f0402f804c33d3f66');
});

test('SM4-GCM RFC 8998 A.1 and tampering', () => {
  const key = fromHex('0123456789ABCDEFFEDCBA9876543210');
  const iv = fromHex('00001234567800000000ABCD');
  const aad = fromHex('FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2');
  const pt = fromHex('AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD' +
    'EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA');
  const expected = '17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735' +
    'd82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d' +
    '83de3541e4c2b58177e065a9bf7b62ec';
  const sealed = sm.sm4GcmEncrypt(key, iv, pt, aad);
  assert.equal(toHex(sealed), expected);
  assert.equal(toHex(sm.sm4GcmDecrypt(key, iv, sealed, aad)), toHex(pt));
  for (const i of [0, 63, 64, 79]) {
    const bad = sealed.slice();
    bad[i] ^= 1;
    assert.throws(() => sm.sm4GcmDecrypt(key, iv, bad, aad));
  }
  assert.throws(() => sm.sm4GcmDecrypt(key, iv, sealed, utf8Bytes('other')));
  assert.throws(() => sm.sm4GcmDecrypt(key, iv, sealed.subarray(0, 15), aad));
  // Odd lengths (partial last block) round-trip.
  for (const n of [0, 1, 15, 17, 33]) {
    const m = sm.randomBytes(n);
    assert.equal(toHex(sm.sm4GcmDecrypt(key, iv, sm.sm4GcmEncrypt(key, iv, m))), toHex(m));
  }
});

const D = fromHex('3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8');
const PUB = '0409f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020' +
  'ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13';
const K = 0x59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21n;
const C1 = '0404ebfc718e8d1798620432268e77feb6415e2ede0e073c0f4f640ecd2e149a73' +
  'e858f9d81e5430a57b36daab8f950a3c64e6ee6a63094d99283aff767e124df0';
const C3 = '59983c18f809e262923c53aec295d30383b54e39d609d160afcb1908d0bd8766';
const C2 = '21886ca989ca9c7d58087307ca93092d651efa';

test('SM2 GB/T 32918.5 encryption example with fixed k, both orders', () => {
  assert.equal(toHex(sm.sm2PublicKey(D)), PUB);
  const msg = utf8Bytes('encryption standard');
  const pub = fromHex(PUB);
  assert.equal(toHex(sm.sm2Encrypt(pub, msg, { k: K })), C1 + C3 + C2);
  assert.equal(toHex(sm.sm2Encrypt(pub, msg, { k: K, order: 'C1C2C3' })), C1 + C2 + C3);
  assert.equal(toHex(sm.sm2Encrypt(pub, msg, { k: K, prefix: false })), (C1 + C3 + C2).slice(2));
  assert.equal(sm.fromUtf8(sm.sm2Decrypt(D, fromHex(C1 + C3 + C2))), 'encryption standard');
  assert.equal(sm.fromUtf8(sm.sm2Decrypt(D, fromHex((C1 + C3 + C2).slice(2)))), 'encryption standard');
  assert.equal(sm.fromUtf8(sm.sm2Decrypt(D, fromHex(C1 + C2 + C3), { order: 'C1C2C3' })), 'encryption standard');
  assert.throws(() => sm.sm2Decrypt(D, fromHex(C1 + C2 + C3)));
  const bad = fromHex(C1 + C3 + C2);
  bad[10] ^= 1;
  assert.throws(() => sm.sm2Decrypt(D, bad));
  assert.throws(() => sm.sm2Encrypt(fromHex('04' + '00'.repeat(64)), msg));
});

test('encodings: UTF-8 and Base64', () => {
  const s = 'Tongban 通办 ✓ 𠀀';
  assert.equal(toHex(utf8Bytes(s)), Buffer.from(s, 'utf8').toString('hex'));
  assert.equal(sm.fromUtf8(utf8Bytes(s)), s);
  assert.throws(() => sm.fromUtf8(Uint8Array.of(0xe4, 0xb8)));
  assert.throws(() => sm.fromUtf8(Uint8Array.of(0xc0, 0x80)));
  for (let n = 0; n < 40; n++) {
    const b = sm.randomBytes(n);
    assert.equal(sm.toBase64(b), Buffer.from(b).toString('base64'));
    assert.equal(toHex(sm.fromBase64(sm.toBase64(b))), toHex(b));
  }
  assert.throws(() => sm.fromBase64('abc'));
  assert.throws(() => sm.fromBase64('ab$='));
});

test('envelope round trip in JS, and tampering is refused', () => {
  const server = sm.sm2GenerateKeyPair();
  const { envelope, session } = sm.sealRequest(server.publicKey, 'k1', '{"name":"张三"}');
  assert.deepEqual(Object.keys(envelope), ['kid', 'key', 'iv', 'data']);
  assert.equal(sm.fromBase64(envelope.key)[0], 4);
  const opened = sm.openRequest(server.privateKey, envelope);
  assert.equal(sm.fromUtf8(opened.body), '{"name":"张三"}');
  const resp = sm.sealResponse(opened.session, '{"code":0}');
  assert.equal(sm.fromUtf8(sm.openResponse(session, resp)), '{"code":0}');
  assert.throws(() => sm.openRequest(server.privateKey, { ...envelope, kid: 'k2' }));
  assert.throws(() => sm.openRequest(server.privateKey, { ...envelope, iv: resp.iv, data: resp.data }));
});
