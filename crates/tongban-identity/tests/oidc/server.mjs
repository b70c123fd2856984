// A real OpenID provider (npm oidc-provider) on loopback for tongban-identity's relying-party
// tests. Usage: node server.mjs <redirect_uri>. Prints one JSON line {"issuer"} when ready.
//
// Two confidential clients (RS256 and ES256 ID tokens), PKCE required, a login form whose
// result carries acr and amr, consent granted automatically, and POST /test/sign to mint
// ID tokens with chosen claims under the provider's own keys (or a foreign key with the same
// kid) so the tests can check the relying party's validation.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const redirectUri = process.argv[2];
if (!redirectUri) {
  console.error('usage: node server.mjs <redirect_uri>');
  process.exit(2);
}

const jwk = (keyObject, kid, alg) => ({ ...keyObject.export({ format: 'jwk' }), kid, alg, use: 'sig' });
const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const foreign = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const keys = { RS256: { key: rsa.privateKey, kid: 'rsa-1' }, ES256: { key: ec.privateKey, kid: 'ec-1' } };

const users = {
  'citizen-1': { password: 'correct horse', acr: 'urn:tongban:loa:real-name', amr: ['pwd', 'sms'] },
  'visitor-2': { password: 'battery staple', acr: 'urn:tongban:loa:basic', amr: ['pwd'] },
};

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: ['RS256', 'ES256'].map((alg) => ({
    client_id: `tongban-${alg.toLowerCase()}`,
    client_secret: 'tongban-test-secret',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: alg,
  })),
  jwks: { keys: [jwk(rsa.privateKey, 'rsa-1', 'RS256'), jwk(ec.privateKey, 'ec-1', 'ES256')] },
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  acrValues: ['urn:tongban:loa:real-name', 'urn:tongban:loa:basic'],
  // acr and amr with every ID token, as a national platform reports its assurance level.
  claims: { openid: ['sub', 'acr', 'amr', 'auth_time'] },
  cookies: { keys: ['tongban-identity-test-cookie-key'] },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
});

const readBody = (req) => new Promise((resolve, reject) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  req.on('error', reject);
});

const b64u = (buf) => Buffer.from(buf).toString('base64url');

function sign({ alg = 'RS256', kid, claims, foreignKey = false, header = {} }) {
  const k = keys[alg];
  const h = { alg, typ: 'JWT', kid: kid ?? k?.kid, ...header };
  const input = `${b64u(JSON.stringify(h))}.${b64u(JSON.stringify(claims))}`;
  if (alg === 'none') return `${input}.`;
  const key = foreignKey ? foreign.privateKey : k.key;
  const sig = alg === 'ES256'
    ? crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
    : crypto.sign('sha256', Buffer.from(input), key);
  return `${input}.${b64u(sig)}`;
}

provider.use(async (ctx, next) => {
  const m = ctx.path.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (ctx.path === '/test/sign' && ctx.method === 'POST') {
    ctx.body = { token: sign(JSON.parse(await readBody(ctx.req))) };
    return;
  }
  if (!m) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt, params, session } = details;
  if (prompt.name === 'login' && ctx.method === 'GET') {
    ctx.type = 'html';
    ctx.body = `<!doctype html><form method="post" action="/interaction/${details.uid}/login">
<input name="login"><input name="password" type="password"><button>登录</button></form>`;
    return;
  }
  let result;
  if (prompt.name === 'login' && ctx.method === 'POST' && m[2]) {
    const form = new URLSearchParams(await readBody(ctx.req));
    const user = users[form.get('login')];
    if (!user || user.password !== form.get('password')) {
      result = { error: 'access_denied', error_description: 'wrong credentials' };
    } else {
      result = { login: { accountId: form.get('login'), acr: user.acr, amr: user.amr } };
    }
  } else if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    result = { consent: { grantId: await grant.save() } };
  } else {
    ctx.status = 400;
    ctx.body = 'unexpected interaction';
    return;
  }
  const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  ctx.status = 303;
  ctx.redirect(to);
});

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
process.on('SIGTERM', () => process.exit(0));
