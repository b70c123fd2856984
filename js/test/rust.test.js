// Rust <-> JS round trips through crates/tongban-crypto/examples/envelope_tool.rs.
// Set TONGBAN_ENVELOPE_TOOL to a built binary to skip `cargo run`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import * as sm from '../src/tongban-sm.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function tool(request) {
  const input = JSON.stringify(request);
  const opts = { input, cwd: repo, encoding: 'utf8', maxBuffer: 1 << 20 };
  const out = process.env.TONGBAN_ENVELOPE_TOOL
    ? execFileSync(process.env.TONGBAN_ENVELOPE_TOOL, [], opts)
    : execFileSync('cargo', ['run', '-q', '-p', 'tongban-crypto', '--example', 'envelope_tool'], opts);
  return JSON.parse(out);
}

const BODY = '{"idNumber":"11010519491231002X","name":"张三"}';

test('JS seals a request, Rust opens it and seals the response, JS opens that', () => {
  const server = tool({ op: 'keygen' });
  for (const order of ['C1C3C2', 'C1C2C3']) {
    for (const prefix of [true, false]) {
      const { envelope, session } = sm.sealRequest(sm.fromHex(server.public), 'k1', BODY, { order, prefix });
      const res = tool({ op: 'open_request', secret: server.secret, kid: 'k1', envelope, order, response: '{"code":0,"data":"好"}' });
      assert.equal(res.plaintext, BODY);
      assert.equal(sm.fromUtf8(sm.openResponse(session, res.response)), '{"code":0,"data":"好"}');
    }
  }
});

test('Rust seals a request, JS opens it and seals the response, Rust opens that', () => {
  const server = sm.sm2GenerateKeyPair();
  for (const order of ['C1C3C2', 'C1C2C3']) {
    const sealed = tool({ op: 'seal_request', public: sm.toHex(server.publicKey), kid: 'k7', plaintext: BODY, order });
    const opened = sm.openRequest(server.privateKey, sealed.envelope, { order });
    assert.equal(sm.fromUtf8(opened.body), BODY);
    assert.equal(sm.toHex(opened.session.key), sealed.key);
    const response = sm.sealResponse(opened.session, 'ok ✓');
    const back = tool({ op: 'open_response', kid: 'k7', key: sealed.key, response });
    assert.equal(back.plaintext, 'ok ✓');
  }
});

test('SM2 ciphertext crosses both ways in both orders', () => {
  const server = tool({ op: 'keygen' });
  const msg = sm.randomBytes(45);
  for (const order of ['C1C3C2', 'C1C2C3']) {
    const ct = sm.sm2Encrypt(sm.fromHex(server.public), msg, { order, prefix: false });
    assert.equal(tool({ op: 'sm2_decrypt', secret: server.secret, ciphertext: sm.toHex(ct), order }).plaintext_hex, sm.toHex(msg));
  }
  const ours = sm.sm2GenerateKeyPair();
  for (const order of ['C1C3C2', 'C1C2C3']) {
    const { ciphertext } = tool({ op: 'sm2_encrypt', public: sm.toHex(ours.publicKey), plaintext_hex: sm.toHex(msg), order });
    assert.equal(sm.toHex(sm.sm2Decrypt(ours.privateKey, sm.fromHex(ciphertext), { order })), sm.toHex(msg));
  }
});

test('a tampered envelope is refused by Rust', () => {
  const server = tool({ op: 'keygen' });
  const { envelope } = sm.sealRequest(sm.fromHex(server.public), 'k1', BODY);
  const data = sm.fromBase64(envelope.data);
  data[3] ^= 1;
  assert.throws(() => tool({ op: 'open_request', secret: server.secret, kid: 'k1', envelope: { ...envelope, data: sm.toBase64(data) } }));
});
