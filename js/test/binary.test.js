// The JS client against the running binary, as an H5 page uses it: sign in through the test
// profile's identity-platform simulator, fetch the envelope keys, send the real-name form
// sealed, open the sealed answer. TB_BINARY names the built binary (scripts/test sets it; a
// TONGBAN_ name would be read by the server as configuration). Plain HTTP on loopback, which
// the test profile allows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import * as sm from '../src/tongban-sm.js';

const DEVICE = 'js-client-device-01';

/** Starts `tongban serve` on loopback ports of its own; resolves with its public base URL. */
function startServer() {
  const dir = mkdtempSync(path.join(tmpdir(), 'tongban-js-'));
  const config = path.join(dir, 'tongban.toml');
  writeFileSync(config, [
    '[server]',
    'public_addr = "127.0.0.1:0"',
    'admin_addr = "127.0.0.2:0"',
    'plain_http = true',
    '',
  ].join('\n'));
  // TONGBAN_* variables are configuration overrides to the server: none of the test's reach it.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TONGBAN_')));
  const child = spawn(process.env.TB_BINARY, ['serve', '--config', config, '--data-dir', path.join(dir, 'data')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env,
  });
  const stop = () => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { stop(); reject(new Error('server did not start in 30 s')); }, 30_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      let v;
      try { v = JSON.parse(line); } catch { return; }
      if (v.message === 'Listening.' && v.listener === 'public') {
        clearTimeout(timer);
        resolve({ base: `http://${v.addr}`, stop });
      }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited: ${code}`)); });
  });
}

async function json(res) {
  const text = await res.text();
  try { return JSON.parse(text); } catch { throw new Error(`not JSON (${res.status}): ${text}`); }
}

test('the JS client seals the real-name form for the running binary and opens its answer', {
  skip: process.env.TB_BINARY ? false : 'TB_BINARY is not set',
}, async () => {
  const { base, stop } = await startServer();
  try {
    // Sign in as the registered, not yet real-name checked test account.
    const begin = await json(await fetch(`${base}/api/v1/login-requests`, { method: 'POST', headers: { 'X-Device-Id': DEVICE } }));
    assert.equal(begin.code, 0);
    const chosen = await fetch(`${begin.data.authorize_url}&user=zhang-wei`, { redirect: 'manual' });
    const back = new URL(chosen.headers.get('location'));
    const session = await json(await fetch(`${base}${back.pathname}${back.search}`, { headers: { 'X-Device-Id': DEVICE } }));
    assert.equal(session.code, 0);
    assert.equal(session.data.level, 'anonymous');
    const auth = { Authorization: `Bearer ${session.data.access_token}`, 'X-Device-Id': DEVICE };

    const keys = await json(await fetch(`${base}/api/v1/envelope-keys`));
    const current = keys.data.keys.find((k) => k.current);
    const form = JSON.stringify({ name: '张伟', id_number: '110105199003070017' });
    const { envelope, session: sealing } = sm.sealRequest(sm.fromHex(current.public_key), current.kid, form);

    // A tampered envelope is refused with 20004.
    const bad = { ...envelope, data: (envelope.data[0] === 'A' ? 'B' : 'A') + envelope.data.slice(1) };
    const refused = await json(await fetch(`${base}/api/v1/real-name-verifications`, {
      method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify(bad),
    }));
    assert.equal(refused.code, 20004);

    const answer = await json(await fetch(`${base}/api/v1/real-name-verifications`, {
      method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify(envelope),
    }));
    assert.equal(answer.code, 0, JSON.stringify(answer));
    const opened = JSON.parse(sm.fromUtf8(sm.openResponse(sealing, answer.data)));
    assert.equal(opened.level, 'real_name');
    assert.ok(!JSON.stringify(answer).includes('张伟'));

    const now = await json(await fetch(`${base}/api/v1/sessions/current`, { headers: auth }));
    assert.equal(now.data.level, 'real_name');
  } finally {
    stop();
  }
});
