// SM2 encrypt/decrypt of a 16-byte key with the npm `sm-crypto` package (the peer for the
// envelope's SM2 cases). Prints `peer <case> sm-crypto <ops/s> ops/s` lines.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../js/package.json', import.meta.url));
const { sm2 } = require('sm-crypto');

function opsPerSec(op) {
  const warm = Date.now();
  while (Date.now() - warm < 150) op();
  let best = 0;
  for (let r = 0; r < 5; r++) {
    const start = process.hrtime.bigint();
    let n = 0;
    while (Number(process.hrtime.bigint() - start) < 300e6) { op(); n++; }
    best = Math.max(best, n / (Number(process.hrtime.bigint() - start) / 1e9));
  }
  return best;
}

const { publicKey, privateKey } = sm2.generateKeyPairHex();
const key = '11'.repeat(16);
const ct = sm2.doEncrypt(key, publicKey, 1);
console.log(`peer sm2-encrypt sm-crypto ${opsPerSec(() => sm2.doEncrypt(key, publicKey, 1)).toFixed(0)} ops/s`);
console.log(`peer sm2-decrypt sm-crypto ${opsPerSec(() => sm2.doDecrypt(ct, privateKey, 1)).toFixed(0)} ops/s`);
