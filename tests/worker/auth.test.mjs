// Runtime specification of bearer-token authentication, against the built worker in workerd:
// GET /me, POST /dev/token, every accepted algorithm (tokens minted by jose), the attack
// catalogue A1–A25 (semantics.md §1; A24 belongs to the orders routes), PASETO v4.public, and
// key rotation through a local JWKS server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import { Response as MiniflareResponse } from 'miniflare';
import { devKeyVars, devToken, ISSUER, sha256Parts, startWorker } from './harness.mjs';
import {
  ALGS,
  assemble,
  b64u,
  claimsFor,
  flipBit,
  flipS,
  hmacToken,
  lowS,
  makeKeySet,
  pasetoClaims,
  pasetoKeyPair,
  P256_N,
  signatureS,
  signRaw,
} from './tokens.mjs';

const CHALLENGE = 'Bearer realm="edgecart"';
const INVALID = 'Bearer realm="edgecart", error="invalid_token"';

async function me(w, authorization) {
  const headers = authorization === undefined ? {} : { Authorization: authorization };
  return w.fetch('/me', { headers });
}

async function assertMissing(res, label = '') {
  assert.equal(res.status, 401, label);
  assert.equal(res.headers.get('www-authenticate'), CHALLENGE, label);
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, label);
  assert.equal((await res.json()).type, '/problems/missing-token', label);
}

/** A 503 problem with Retry-After: the remote key set cannot be used (not the client's fault). */
async function assertUnavailable(res, label = '') {
  assert.equal(res.status, 503, label);
  assert.match(res.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/, label);
  assert.equal(res.headers.get('www-authenticate'), null, label);
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, label);
  const body = await res.json();
  assert.equal(body.type, '/problems/unavailable', label);
  return body;
}

/** Calls `attempt` every 100 ms until it returns a value other than undefined (at most `ms`). */
async function until(attempt, label, ms = 20_000) {
  for (const started = Date.now(); Date.now() - started < ms; ) {
    const value = await attempt();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${label}: not within ${ms} ms`);
}

async function assertRefused(res, label = '') {
  assert.equal(res.status, 401, label);
  assert.equal(res.headers.get('www-authenticate'), INVALID, label);
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, label);
  const body = await res.json();
  assert.equal(body.type, '/problems/invalid-token', label);
  return body;
}

describe('development tokens and /me', () => {
  let w;
  before(async () => {
    w = await startWorker();
  });
  after(async () => w?.stop());

  test('a request without a token gets a challenge without an error', async () => {
    const res = await me(w);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), CHALLENGE);
    assert.equal((await res.json()).type, '/problems/missing-token');
  });

  test('a development token identifies the caller on /me, privately', async () => {
    const token = await devToken(w, { sub: 'alice', scope: 'catalog:write read' });
    const res = await me(w, `Bearer ${token}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'private, no-store');
    assert.match(res.headers.get('content-type'), /^application\/json/);
    const body = await res.json();
    assert.deepEqual(Object.keys(body).sort(), ['exp', 'iss', 'scopes', 'sub']);
    assert.equal(body.sub, 'alice');
    assert.equal(body.iss, ISSUER);
    assert.deepEqual(body.scopes, ['catalog:write', 'read']);
    const now = Math.floor(Date.now() / 1000);
    assert.ok(Math.abs(body.exp - (now + 3600)) < 30, `exp ${body.exp}`);
  });

  test('a development token has the documented header and claims', async () => {
    const token = await devToken(w, { sub: 'bob', ttl_seconds: 120 });
    const [h, p] = token.split('.').slice(0, 2).map((s) => JSON.parse(Buffer.from(s, 'base64url')));
    assert.equal(h.alg, 'ES256');
    assert.equal(h.typ, 'JWT');
    assert.equal(h.kid, JSON.parse(w.vars.DEV_TOKEN_KEY).kid);
    assert.equal(p.iss, ISSUER);
    assert.equal(p.aud, 'edgecart');
    assert.equal(p.sub, 'bob');
    assert.equal(p.exp - p.iat, 120);
    assert.equal(p.scope, undefined);
  });

  test('a development token request with bad values is refused with 422', async () => {
    for (const body of [{ sub: '' }, { sub: 'a', ttl_seconds: 0 }, { sub: 'a', ttl_seconds: 86401 }, { sub: 'x'.repeat(256) }, {}]) {
      const res = await w.fetch('/dev/token', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 422, JSON.stringify(body).slice(0, 40));
      assert.equal((await res.json()).type, '/problems/invalid-value');
    }
    const res = await w.fetch('/dev/token', { method: 'POST', body: '{"sub":' });
    assert.equal(res.status, 400);
  });

  test('development tokens are signed with low-S, and the high-S twin of one verifies too', async () => {
    for (let i = 0; i < 16; i += 1) {
      const token = await devToken(w, { sub: `low-s-${i}` });
      assert.ok(signatureS(token) <= P256_N / 2n, `token ${i} has a high s`);
      assert.equal((await me(w, `Bearer ${token}`)).status, 200, `token ${i}`);
      const twin = flipS(token);
      assert.ok(signatureS(twin) > P256_N / 2n);
      const res = await me(w, `Bearer ${twin}`);
      assert.equal(res.status, 200, `twin ${i}`);
      assert.equal((await res.json()).sub, `low-s-${i}`);
    }
  });

  test('the token is never echoed in an error body or a log line', async () => {
    const token = await devToken(w, { sub: 'carol' });
    const bad = flipBit(token);
    const res = await me(w, `Bearer ${bad}`);
    const text = await res.text();
    assert.equal(res.status, 401);
    assert.ok(!text.includes(bad.split('.')[2]));
    assert.ok(!w.logs.join('\n').includes(bad.split('.')[2]));
  });
});

describe('development tokens outside development', () => {
  let w;
  before(async () => {
    w = await startWorker({ vars: { ENVIRONMENT: 'production' } });
  });
  after(async () => w?.stop());

  test('POST /dev/token is 404 in production', async () => {
    const res = await w.fetch('/dev/token', { method: 'POST', body: '{"sub":"a"}' });
    assert.equal(res.status, 404);
  });
});

describe('an operator who requires low-S ES256 signatures', () => {
  let w;
  let set;
  before(async () => {
    set = await makeKeySet();
    // The dev key (for /dev/token) and the jose key set, side by side.
    const dev = await devKeyVars();
    const jwks = JSON.stringify({ keys: [...JSON.parse(dev.JWT_JWKS).keys, ...JSON.parse(set.jwks).keys] });
    w = await startWorker({ vars: { ...dev, JWT_JWKS: jwks, JWT_ES256_REQUIRE_LOW_S: 'true' } });
  });
  after(async () => w?.stop());

  test('with JWT_ES256_REQUIRE_LOW_S=true a low-S signature verifies and its high-S twin is refused', async () => {
    const token = await devToken(w, { sub: 'strict' });
    assert.ok(signatureS(token) <= P256_N / 2n);
    assert.equal((await me(w, `Bearer ${token}`)).status, 200);
    const twin = flipS(token);
    assert.ok(signatureS(twin) > P256_N / 2n);
    await assertRefused(await me(w, `Bearer ${twin}`), 'high-S twin');
    await assertRefused(await me(w, `Bearer ${flipBit(token)}`), 'flipped bit');
  });

  test('with JWT_ES256_REQUIRE_LOW_S=true a jose token verifies once normalised, and other algorithms are unaffected', async () => {
    const claims = claimsFor({ iss: ISSUER });
    for (let i = 0; i < 4; i += 1) {
      const token = lowS(await signRaw(set.keys.ES256.key, { alg: 'ES256', kid: 'es256' }, { ...claims, jti: `strict-${i}` }));
      assert.equal((await me(w, `Bearer ${token}`)).status, 200, `low ${i}`);
      await assertRefused(await me(w, `Bearer ${flipS(token)}`), `high ${i}`);
    }
    const eddsa = await signRaw(set.keys.EdDSA.key, { alg: 'EdDSA', kid: 'eddsa' }, claims);
    assert.equal((await me(w, `Bearer ${eddsa}`)).status, 200);
  });
});

describe('every accepted algorithm and the attack catalogue', () => {
  let w;
  let set;
  let paseto;
  const claims = (extra = {}) => claimsFor({ iss: ISSUER, ...extra });
  const sign = (alg, payload = claims(), header = {}) =>
    signRaw(set.keys[alg].key, { alg, typ: 'JWT', kid: set.keys[alg].kid, ...header }, payload);

  before(async () => {
    set = await makeKeySet();
    paseto = pasetoKeyPair();
    w = await startWorker({
      vars: { JWT_JWKS: set.jwks, PASETO_V4_PUBLIC_KEYS: paseto.paserk, JWT_MAX_TOKEN_BYTES: '8192' },
    });
  });
  after(async () => w?.stop());

  test('a token of every accepted algorithm verifies, and with one flipped bit does not', async () => {
    for (const alg of ALGS) {
      const token = await sign(alg);
      const res = await me(w, `Bearer ${token}`);
      assert.equal(res.status, 200, alg);
      assert.equal((await res.json()).sub, 'alice', alg);
      await assertRefused(await me(w, `Bearer ${flipBit(token, 2)}`), `${alg} signature`);
      await assertRefused(await me(w, `Bearer ${flipBit(token, 1)}`), `${alg} payload`);
    }
  });

  test('the bearer scheme is case-insensitive', async () => {
    const token = await sign('ES256');
    for (const scheme of ['bearer', 'BEARER', 'Bearer']) {
      assert.equal((await me(w, `${scheme} ${token}`)).status, 200, scheme);
    }
  });

  test('A1: alg none in any case is refused', async () => {
    for (const alg of ['none', 'None', 'NONE']) {
      await assertRefused(await me(w, `Bearer ${assemble(JSON.stringify({ alg }), JSON.stringify(claims()))}`), alg);
      await assertRefused(await me(w, `Bearer ${assemble(JSON.stringify({ alg }), JSON.stringify(claims()), Buffer.alloc(32, 1))}`), alg);
    }
  });

  test('A2: HS256 signed with a public key is refused', async () => {
    for (const kid of ['rs256', 'es256', 'eddsa']) {
      const publicJwk = set.keys[kid.toUpperCase() === 'EDDSA' ? 'EdDSA' : kid.toUpperCase()].publicJwk;
      for (const secret of [JSON.stringify(publicJwk), Buffer.from(publicJwk.x ?? publicJwk.n, 'base64url')]) {
        const token = await signRaw(Buffer.from(secret), { alg: 'HS256', kid }, claims());
        await assertRefused(await me(w, `Bearer ${token}`), kid);
      }
    }
  });

  test('A3: a header alg other than the key entry\'s is refused', async () => {
    const token = await signRaw(set.keys.RS384.key, { alg: 'RS384', kid: 'rs256' }, claims());
    await assertRefused(await me(w, `Bearer ${token}`));
    const ps = await signRaw(set.keys.PS256.key, { alg: 'PS256', kid: 'rs256' }, claims());
    await assertRefused(await me(w, `Bearer ${ps}`));
  });

  test('A4 A5: unknown and injected kids are refused', async () => {
    for (const kid of ['nope', '../../etc/passwd', "' OR '1'='1", 'http://127.0.0.1/', 'k'.repeat(10_000)]) {
      const token = await sign('ES256', claims(), { kid });
      const res = await me(w, `Bearer ${token}`);
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), INVALID);
    }
  });

  test('A6 A7: jku, x5u, jwk and x5c are ignored, never trusted', async () => {
    const attacker = await generateKeyPair('ES256', { extractable: true });
    const attackerJwk = await exportJWK(attacker.publicKey);
    const headers = [
      { jku: 'http://127.0.0.1:1/jwks' },
      { x5u: 'http://127.0.0.1:1/cert' },
      { jwk: attackerJwk },
      { x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] },
    ];
    for (const extra of headers) {
      const ours = await sign('ES256', claims(), extra);
      assert.equal((await me(w, `Bearer ${ours}`)).status, 200, JSON.stringify(extra).slice(0, 30));
      const theirs = await signRaw(attacker.privateKey, { alg: 'ES256', kid: 'es256', ...extra }, claims());
      await assertRefused(await me(w, `Bearer ${theirs}`));
    }
  });

  test('A8: any crit header is refused', async () => {
    for (const crit of [['exp'], ['x-unknown'], [], 'exp', null]) {
      const token = hmacToken(set.keys.HS256.secret, JSON.stringify({ alg: 'HS256', kid: 'hs256', crit }), JSON.stringify(claims()));
      await assertRefused(await me(w, `Bearer ${token}`), JSON.stringify(crit));
    }
    const control = hmacToken(set.keys.HS256.secret, JSON.stringify({ alg: 'HS256', kid: 'hs256' }), JSON.stringify(claims()));
    assert.equal((await me(w, `Bearer ${control}`)).status, 200);
  });

  test('A9 A10: expiry, not-before and issued-at are enforced with the leeway', async () => {
    const now = Math.floor(Date.now() / 1000);
    await assertRefused(await me(w, `Bearer ${await sign('ES256', { ...claims(), exp: now - 62 })}`), 'expired');
    assert.equal((await me(w, `Bearer ${await sign('ES256', { ...claims(), exp: now - 50 })}`)).status, 200);
    const noExp = claims();
    delete noExp.exp;
    await assertRefused(await me(w, `Bearer ${await sign('ES256', noExp)}`), 'no exp');
    await assertRefused(await me(w, `Bearer ${await sign('ES256', { ...claims(), nbf: now + 120 })}`), 'nbf');
    await assertRefused(await me(w, `Bearer ${await sign('ES256', { ...claims(), iat: now + 120 })}`), 'iat');
  });

  test('A11: dates of the wrong type or range are refused', async () => {
    for (const bad of [String(Math.floor(Date.now() / 1000) + 600), true, null, 1e300, -1]) {
      for (const name of ['exp', 'nbf', 'iat']) {
        await assertRefused(await me(w, `Bearer ${await sign('ES256', { ...claims(), [name]: bad })}`), `${name}=${bad}`);
      }
    }
  });

  test('A12 A13: issuer and audience must match', async () => {
    for (const iss of [`${ISSUER}/`, ISSUER.toUpperCase(), ISSUER.slice(0, -1), `${ISSUER}.evil`, undefined]) {
      await assertRefused(await me(w, `Bearer ${await sign('ES256', { ...claims(), iss })}`), `iss ${iss}`);
    }
    for (const aud of ['other', ['a', 'b'], [], 7, undefined]) {
      await assertRefused(await me(w, `Bearer ${await sign('ES256', { ...claims(), aud })}`), `aud ${aud}`);
    }
    assert.equal((await me(w, `Bearer ${await sign('ES256', { ...claims(), aud: ['x', 'edgecart'] })}`)).status, 200);
  });

  test('A14 A21: other token types and content types are refused', async () => {
    for (const typ of ['id+jwt', 'refresh', 'secevent+jwt']) {
      await assertRefused(await me(w, `Bearer ${await sign('ES256', claims(), { typ })}`), typ);
    }
    assert.equal((await me(w, `Bearer ${await sign('ES256', claims(), { typ: 'at+jwt' })}`)).status, 200);
    for (const cty of ['JWT', 'CBOR']) {
      await assertRefused(await me(w, `Bearer ${await sign('ES256', claims(), { cty })}`), cty);
    }
  });

  test('A15: oversized tokens and dot floods are refused', async () => {
    const big = await sign('ES256', { ...claims(), pad: 'x'.repeat(9000) });
    await assertRefused(await me(w, `Bearer ${big}`), 'big');
    await assertRefused(await me(w, `Bearer ${'.'.repeat(5000)}`), 'dots');
    // The runtime refuses a 1 MB header with 431, and may close the connection while the
    // client is still sending it (then fetch rejects): either way the worker never serves it.
    const huge = await me(w, `Bearer ${'a'.repeat(1 << 20)}`).then(
      (res) => res.status,
      (e) => `closed (${e.cause?.code ?? e.message})`,
    );
    assert.ok([401, 431].includes(huge) || String(huge).startsWith('closed'), `1 MB: ${huge}`);
  });

  test('A16 A17 A18: encoding, JSON and duplicate-member errors are refused', async () => {
    const good = await sign('ES256');
    const [h, p, s] = good.split('.');
    const header = JSON.stringify({ alg: 'ES256', kid: 'es256' });
    const variants = [
      `${h}=.${p}.${s}`,
      `${h}.${p}.${s}==`,
      `${h}.${p}+/.${s}`,
      `.${p}.${s}`,
      `${h}..${s}`,
      `${h}.${p}`,
      `${good}.${s}`,
      `${h}.${p}.${s}.${s}.${s}`,
      `${b64u('["ES256"]')}.${p}.${s}`,
      `${h}.${b64u('[1]')}.${s}`,
      `${h}.${b64u(Buffer.from([0x7b, 0xff, 0x7d]))}.${s}`,
      `${b64u(`${header} x`)}.${p}.${s}`,
    ];
    for (const t of variants) await assertRefused(await me(w, `Bearer ${t}`), t.slice(0, 30));
    for (const headerText of ['{"alg":"ES256","alg":"HS256","kid":"es256"}', '{"alg":"ES256","\\u0061lg":"ES256","kid":"es256"}', '{"alg":"ES256","kid":"es256","kid":"x"}']) {
      const key = set.keys.ES256.key;
      const tokenText = await signRaw(key, { alg: 'ES256', kid: 'es256' }, claims());
      const [, payload, sig] = tokenText.split('.');
      await assertRefused(await me(w, `Bearer ${b64u(headerText)}.${payload}.${sig}`), headerText);
    }
    const dupSub = `{"sub":"mallory",${JSON.stringify(claims()).slice(1)}`;
    await assertRefused(await me(w, `Bearer ${await signRaw(set.keys.ES256.key, { alg: 'ES256', kid: 'es256' }, dupSub)}`), 'dup sub');
    const dupExp = `{"\\u0065xp":9999999999,${JSON.stringify(claims()).slice(1)}`;
    await assertRefused(await me(w, `Bearer ${await signRaw(set.keys.ES256.key, { alg: 'ES256', kid: 'es256' }, dupExp)}`), 'dup exp');
  });

  test('A19: malformed and zero ECDSA signatures are refused', async () => {
    const good = await sign('ES256');
    const input = good.slice(0, good.lastIndexOf('.'));
    for (const sig of [Buffer.alloc(0), Buffer.alloc(63, 1), Buffer.alloc(65, 1), Buffer.alloc(64, 0), Buffer.alloc(64, 0xff)]) {
      await assertRefused(await me(w, `Bearer ${input}.${b64u(sig)}`), `sig ${sig.length}`);
    }
  });

  test('A19: s or r equal to the group order is refused', async () => {
    const good = await sign('ES256');
    const input = good.slice(0, good.lastIndexOf('.'));
    const sig = Buffer.from(good.slice(good.lastIndexOf('.') + 1), 'base64url');
    const n = Buffer.from(P256_N.toString(16), 'hex');
    for (const bad of [Buffer.concat([sig.subarray(0, 32), n]), Buffer.concat([n, sig.subarray(32)]), Buffer.concat([sig.subarray(0, 32), Buffer.alloc(32)])]) {
      await assertRefused(await me(w, `Bearer ${input}.${b64u(bad)}`));
    }
  });

  test('A19: ES256 tokens as jose signs them (WebCrypto, not normalised) verify, high-S ones included', async () => {
    const tokens = [];
    for (let i = 0; i < 40; i += 1) tokens.push(await sign('ES256', claims({ jti: `jose-${i}` })));
    const high = tokens.filter((t) => signatureS(t) > P256_N / 2n).length;
    // All 40 low-S would happen once in 2^40 runs.
    assert.ok(high > 0, 'no high-S signature among 40');
    for (const [i, token] of tokens.entries()) {
      const res = await me(w, `Bearer ${token}`);
      assert.equal(res.status, 200, `token ${i} (${signatureS(token) > P256_N / 2n ? 'high' : 'low'}-S)`);
      await res.arrayBuffer();
    }
  });

  test('A19: the high-S twin (s\' = n − s) of a low-S ES256 signature verifies, and a flipped bit of it does not', async () => {
    for (let i = 0; i < 8; i += 1) {
      const token = lowS(await sign('ES256', claims({ jti: `low-s-${i}` })));
      assert.ok(signatureS(token) <= P256_N / 2n);
      assert.equal((await me(w, `Bearer ${token}`)).status, 200, `low ${i}`);
      const twin = flipS(token);
      assert.ok(signatureS(twin) > P256_N / 2n);
      assert.equal((await me(w, `Bearer ${twin}`)).status, 200, `high ${i}`);
      await assertRefused(await me(w, `Bearer ${flipBit(twin)}`), `flipped ${i}`);
    }
  });

  test('A22: a JWE is refused', async () => {
    const jwe = [JSON.stringify({ alg: 'RSA-OAEP', enc: 'A256GCM' }), 'k', 'iv', 'ct', 'tag'].map((x) => b64u(x)).join('.');
    await assertRefused(await me(w, `Bearer ${jwe}`));
  });

  test('A23: another scheme or an empty Authorization sends no bearer token (challenge without error)', async () => {
    await assertMissing(await me(w, `Basic ${b64u('alice:secret')}`), 'basic');
    await assertMissing(await me(w, 'Digest username="alice"'), 'digest');
    await assertMissing(await me(w, ''), 'empty');
  });

  test('A23: two tokens, extra parts and an empty bearer token are refused as invalid', async () => {
    const token = await sign('ES256');
    await assertRefused(await me(w, 'Bearer'), 'bearer alone');
    await assertRefused(await me(w, 'Bearer    '), 'bearer and spaces');
    await assertRefused(await me(w, `Basic ${b64u('alice:secret')}, Bearer ${token}`), 'basic and bearer');
    await assertRefused(await me(w, `Bearer ${token} extra`), 'extra');
    await assertRefused(await me(w, `Bearer ${token}, Bearer ${token}`), 'two in one');
    const res = await w.fetch('/me', { headers: [['Authorization', `Bearer ${token}`], ['Authorization', `Bearer ${token}`]] });
    await assertRefused(res, 'two headers');
  });

  test('A25: a PASETO v4.public token verifies, and tampered payload or footer does not', async () => {
    const good = paseto.sign(pasetoClaims({ iss: ISSUER }), '{"note":"x"}');
    const res = await me(w, `Bearer ${good}`);
    assert.equal(res.status, 200);
    assert.equal((await res.json()).sub, 'bob');
    const [v, purpose, body, footer] = good.split('.');
    const bytes = Buffer.from(body, 'base64url');
    bytes[bytes.indexOf('bob') + 1] ^= 1;
    await assertRefused(await me(w, `Bearer ${v}.${purpose}.${b64u(bytes)}.${footer}`), 'payload');
    await assertRefused(await me(w, `Bearer ${v}.${purpose}.${body}.${b64u('{"note":"y"}')}`), 'footer');
    await assertRefused(await me(w, `Bearer ${v}.${purpose}.${body}`), 'footer removed');
    const numericExp = paseto.sign({ ...pasetoClaims({ iss: ISSUER }), exp: Math.floor(Date.now() / 1000) + 600 });
    await assertRefused(await me(w, `Bearer ${numericExp}`), 'numeric exp');
    await assertRefused(await me(w, `Bearer ${pasetoKeyPair().sign(pasetoClaims({ iss: ISSUER }))}`), 'other key');
  });
});

describe('claim checks the configuration sets: several audiences, a maximum lifetime, scopes from scp', () => {
  let w;
  let set;
  const sign = (payload) => signRaw(set.keys.ES256.key, { alg: 'ES256', typ: 'JWT', kid: set.keys.ES256.kid }, payload);

  before(async () => {
    set = await makeKeySet();
    w = await startWorker({
      vars: { JWT_JWKS: set.jwks, JWT_AUDIENCE: 'shop-web, shop-app', JWT_MAX_LIFETIME_SECONDS: '900' },
    });
  });
  after(async () => w?.stop());

  test('any of the configured audiences is accepted, and no other', async () => {
    for (const aud of ['shop-web', 'shop-app', ['other', 'shop-app']]) {
      const res = await me(w, `Bearer ${await sign(claimsFor({ iss: ISSUER, aud }))}`);
      assert.equal(res.status, 200, JSON.stringify(aud));
      await res.arrayBuffer();
    }
    for (const aud of ['edgecart', 'shop-web, shop-app', ['other'], 'SHOP-WEB']) {
      await assertRefused(await me(w, `Bearer ${await sign(claimsFor({ iss: ISSUER, aud }))}`), JSON.stringify(aud));
    }
  });

  test('a lifetime (exp - iat) above JWT_MAX_LIFETIME_SECONDS is refused', async () => {
    const ok = await me(w, `Bearer ${await sign(claimsFor({ iss: ISSUER, aud: 'shop-web', ttl: 900 }))}`);
    assert.equal(ok.status, 200);
    await ok.arrayBuffer();
    await assertRefused(await me(w, `Bearer ${await sign(claimsFor({ iss: ISSUER, aud: 'shop-web', ttl: 901 }))}`), '901 s');
    await assertRefused(await me(w, `Bearer ${await sign(claimsFor({ iss: ISSUER, aud: 'shop-web', ttl: 86_400 }))}`), 'a day');
  });

  test('scopes come from scp (an array) and grant catalog:write', async () => {
    const scp = await sign(claimsFor({ iss: ISSUER, aud: 'shop-web', sub: 'scp-admin', scp: ['catalog:write', 'read'] }));
    const res = await me(w, `Bearer ${scp}`);
    assert.equal(res.status, 200);
    assert.deepEqual((await res.json()).scopes, ['catalog:write', 'read']);
    const body = { name: 'Scp tea', description: '', price_minor: 100, currency: 'EUR', stock: 1 };
    const put = await w.fetch('/products/scp-tea', {
      method: 'PUT',
      headers: { authorization: `Bearer ${scp}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(put.status, 201, await put.clone().text());
    await put.arrayBuffer();
    const reader = await sign(claimsFor({ iss: ISSUER, aud: 'shop-web', sub: 'scp-reader', scp: ['read'] }));
    const refused = await w.fetch('/products/scp-tea', { method: 'DELETE', headers: { authorization: `Bearer ${reader}` } });
    assert.equal(refused.status, 403);
    assert.equal(
      refused.headers.get('www-authenticate'),
      'Bearer realm="edgecart", error="insufficient_scope", scope="catalog:write"',
    );
    await refused.arrayBuffer();
  });
});

describe('remote key set rotation', () => {
  let w;
  let server;
  let fetches = 0;
  let serving = null;
  let down = false;
  let jwksUrl;
  const keys = {};

  async function key(kid) {
    const pair = await generateKeyPair('ES256', { extractable: true });
    keys[kid] = { ...pair, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg: 'ES256' } };
  }
  const tokenFor = (kid, sub = 'remote-user') =>
    signRaw(keys[kid].privateKey, { alg: 'ES256', kid, typ: 'JWT' }, claimsFor({ iss: ISSUER, sub }));

  before(async () => {
    await key('k1');
    await key('k2');
    serving = ['k1'];
    server = createServer((req, res) => {
      fetches += 1;
      if (down) {
        res.writeHead(503).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ keys: serving.map((k) => keys[k].jwk) }));
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${server.address().port}/jwks`;
    w = await startWorker({ vars: { JWT_JWKS: '', JWT_JWKS_URL: url } });
    jwksUrl = url;
  });
  after(async () => {
    await w?.stop();
    server?.close();
  });

  /**
   * Waits until the worker's persisted copy of the set (a Cache API entry written through
   * waitUntil, after the response that fetched it) lists `kid`.
   */
  async function persisted(kid) {
    const cacheKey = `https://edgecart.internal/jwks/${sha256Parts(jwksUrl)}`;
    const cache = (await w.mf.getCaches()).default;
    for (let started = Date.now(); Date.now() - started < 10_000; ) {
      const res = await cache.match(cacheKey);
      const text = res ? await res.text() : '';
      if (text.includes(`"kid":"${kid}"`)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`the persisted key set never listed ${kid}`);
  }

  test('a key from the remote set verifies after one fetch', async () => {
    assert.equal((await me(w, `Bearer ${await tokenFor('k1')}`)).status, 200);
    assert.equal((await me(w, `Bearer ${await tokenFor('k1')}`)).status, 200);
    assert.equal(fetches, 1);
  });

  test('a flood of random kids causes at most one fetch per cooldown', async () => {
    const before = fetches;
    for (let i = 0; i < 25; i += 1) {
      const kid = `random-${i}-${Math.random()}`;
      const token = await signRaw(keys.k1.privateKey, { alg: 'ES256', kid }, claimsFor({ iss: ISSUER }));
      await assertRefused(await me(w, `Bearer ${token}`), kid);
    }
    assert.ok(fetches - before <= 1, `fetched ${fetches - before} times`);
  });

  test('a new kid is picked up after rotation once the cooldown has passed', { timeout: 60_000 }, async () => {
    serving = ['k2'];
    await new Promise((r) => setTimeout(r, 31_000));
    assert.equal((await me(w, `Bearer ${await tokenFor('k2')}`)).status, 200);
    // The old key is gone from the set.
    await assertRefused(await me(w, `Bearer ${await tokenFor('k1')}`), 'old key');
  });

  test('an outage keeps verifying with the cached set, also after a restart', async () => {
    down = true;
    assert.equal((await me(w, `Bearer ${await tokenFor('k2')}`)).status, 200);
    // The copy that survives the restart is the one the rotation's fetch wrote.
    await persisted('k2');
    await w.restart();
    assert.equal((await me(w, `Bearer ${await tokenFor('k2')}`)).status, 200);
  });
});

describe('remote key set revocation and bounded staleness', () => {
  // The set lives 1 s (JWT_JWKS_DEV_FRESH_SECONDS, development only; the refetch cooldown
  // shrinks with it) and verifies for at most 2 s more while refetches fail.
  let w;
  let server;
  let jwksUrl;
  let body;
  let down = false;
  let fetches = 0;
  let pair;
  let jwk;
  const tokenFor = (sub = 'revocable') =>
    signRaw(pair.privateKey, { alg: 'ES256', kid: 'k1', typ: 'JWT' }, claimsFor({ iss: ISSUER, sub }));
  const serve = (keys) => {
    body = JSON.stringify({ keys });
  };

  before(async () => {
    pair = await generateKeyPair('ES256', { extractable: true });
    jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' };
    serve([jwk]);
    server = createServer((req, res) => {
      fetches += 1;
      if (down) res.writeHead(503).end();
      else res.writeHead(200, { 'Content-Type': 'application/json' }).end(body);
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${server.address().port}/jwks`;
    w = await startWorker({
      vars: { JWT_JWKS: '', JWT_JWKS_URL: jwksUrl, JWT_JWKS_DEV_FRESH_SECONDS: '1', JWT_JWKS_MAX_STALE_SECONDS: '2' },
    });
  });
  after(async () => {
    await w?.stop();
    server?.close();
  });

  /** GET /me with a fresh token until `accept(res)` holds; the response. */
  const meUntil = (label, accept) =>
    until(async () => {
      const res = await me(w, `Bearer ${await tokenFor()}`);
      if (await accept(res)) return res;
      await res.arrayBuffer();
      return undefined;
    }, label);

  test('a published key set without the key revokes it: a token that verified before gets 401', async () => {
    const token = await tokenFor();
    assert.equal((await me(w, `Bearer ${token}`)).status, 200);
    for (const revoking of [[], [{ kty: 'oct', kid: 'k1', alg: 'HS256', k: 'A'.repeat(43) }, { kty: 'XYZ', kid: 'k1', alg: 'ES999' }]]) {
      serve(revoking);
      const before = fetches;
      await meUntil(`revoked by ${JSON.stringify(revoking).slice(0, 30)}`, (res) => res.status === 401);
      assert.ok(fetches > before);
      await assertRefused(await me(w, `Bearer ${token}`), 'the token that verified before');
      serve([jwk]);
      await meUntil('the key is back', (res) => res.status === 200);
    }
  });

  test('a key server down past JWT_JWKS_MAX_STALE_SECONDS gives 503 with Retry-After, and the token verifies again once it is back', async () => {
    serve([jwk]);
    await meUntil('verifies', (res) => res.status === 200);
    down = true;
    const seen = new Set();
    const res = await meUntil('503 once the set is too stale', (r) => {
      seen.add(r.status);
      return r.status === 503;
    });
    // Until then the last good set kept verifying: never a 401.
    assert.deepEqual([...seen].filter((s) => s !== 200 && s !== 503), []);
    await assertUnavailable(res);
    const line = await w.logLine((l) => l.includes('"problem":"unavailable"'));
    assert.ok(line.includes('JWT_JWKS_MAX_STALE_SECONDS') && line.includes('status 503'), line);
    down = false;
    await meUntil('verifies again', (r) => r.status === 200);
  });

  test('after a restart, a persisted copy older than the bound does not verify', async () => {
    // The copy a key set fetched 10 s ago left in the Cache API (kept there for a day, so
    // only its recorded fetch time can refuse it).
    down = true;
    const cache = (await w.mf.getCaches()).default;
    const key = `https://edgecart.internal/jwks/${sha256Parts(jwksUrl)}`;
    await cache.put(
      key,
      new MiniflareResponse(JSON.stringify({ keys: [jwk] }), {
        headers: {
          'Content-Type': 'application/json',
          'Cache-Control': 'max-age=86400',
          'X-Edgecart-Fetched-At': String(Date.now() - 10_000),
        },
      }),
    );
    assert.ok(await cache.match(key), 'the copy was stored');
    await w.restart();
    const logged = w.logs.length;
    await assertUnavailable(await me(w, `Bearer ${await tokenFor()}`), 'old copy');
    // The worker read the copy (it knows when it was fetched) and refused it for its age.
    const line = await w.logLine((l) => w.logs.indexOf(l) >= logged && l.includes('"problem":"unavailable"'));
    assert.match(line, /the key set was fetched \d+ s ago/);
    down = false;
    await meUntil('verifies again', (r) => r.status === 200);
  });
});

describe('remote key set failures', () => {
  let server;
  let base;
  let pair;
  let jwk;
  const hits = {};
  const hanging = [];
  const keySet = (kids) => JSON.stringify({ keys: kids.map((kid) => ({ ...jwk, kid, alg: 'ES256' })) });
  const routes = {
    '/redirect': (req, res) => res.writeHead(302, { Location: `${base}/target` }).end(),
    '/target': (req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(keySet(['k1'])),
    '/hang': (req, res) => hanging.push(res),
    '/missing': (req, res) => res.writeHead(404, { 'Content-Type': 'application/json' }).end(keySet(['k1'])),
    // A valid set padded past 64 KiB: once with Content-Length, once chunked without it.
    '/big-declared': (req, res) => {
      const body = JSON.stringify({ pad: ' '.repeat(70 * 1024), keys: JSON.parse(keySet(['k1'])).keys });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
    },
    '/big-chunked': (req, res) => {
      const body = JSON.stringify({ pad: ' '.repeat(70 * 1024), keys: JSON.parse(keySet(['k1'])).keys });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      for (let i = 0; i < body.length; i += 8192) res.write(body.slice(i, i + 8192));
      res.end();
    },
    '/error': (req, res) => res.writeHead(500, { 'Content-Type': 'application/json' }).end(keySet(['k1'])),
    '/html': (req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html>maintenance</html>'),
    '/no-keys': (req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"jwks":[]}'),
    '/duplicate-keys': (req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(`{"keys":[],${keySet(['k1']).slice(1)}`),
    '/empty': (req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"keys":[]}'),
    '/unusable': (req, res) =>
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(
        JSON.stringify({ keys: [{ kty: 'oct', kid: 'k1', alg: 'HS256', k: 'A'.repeat(43) }, { kty: 'XYZ', kid: 'k1', alg: 'ES999' }] }),
      ),
    // 70 entries (one key material under 70 kids): the first 64 are kept.
    '/many': (req, res) =>
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(keySet(Array.from({ length: 70 }, (_, i) => `m${i}`))),
  };
  const tokenFor = (kid) => signRaw(pair.privateKey, { alg: 'ES256', kid, typ: 'JWT' }, claimsFor({ iss: ISSUER, sub: 'remote' }));

  /** Runs `fn` against a fresh worker whose JWT_JWKS_URL is `path` on the local key server. */
  async function withRemote(path, fn) {
    const w = await startWorker({ vars: { JWT_JWKS: '', JWT_JWKS_URL: `${base}${path}` } });
    try {
      await fn(w);
    } finally {
      await w.stop();
    }
  }

  before(async () => {
    pair = await generateKeyPair('ES256', { extractable: true });
    jwk = await exportJWK(pair.publicKey);
    server = createServer((req, res) => {
      hits[req.url] = (hits[req.url] ?? 0) + 1;
      (routes[req.url] ?? ((_, r) => r.writeHead(500).end()))(req, res);
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${server.address().port}`;
  });
  after(async () => {
    for (const res of hanging) res.destroy();
    server?.closeAllConnections();
    server?.close();
  });

  test('a redirect from the key server is not followed: no key set, so 503', async () => {
    await withRemote('/redirect', async (w) => {
      await assertUnavailable(await me(w, `Bearer ${await tokenFor('k1')}`));
      assert.equal(hits['/redirect'], 1);
      assert.equal(hits['/target'], undefined, 'the redirect target was fetched');
    });
  });

  test('a key server that never answers gives 503 after the 5 s timeout, not a hang', { timeout: 20_000 }, async () => {
    await withRemote('/hang', async (w) => {
      const started = Date.now();
      await assertUnavailable(await me(w, `Bearer ${await tokenFor('k1')}`));
      const elapsed = Date.now() - started;
      assert.equal(hits['/hang'], 1);
      // The bound only tells a timeout from a hang: a cold isolate on a loaded machine adds seconds.
      assert.ok(elapsed >= 4_000 && elapsed < 15_000, `took ${elapsed} ms`);
    });
  });

  test('a 404 from the key server yields no keys: 503', async () => {
    await withRemote('/missing', async (w) => {
      await assertUnavailable(await me(w, `Bearer ${await tokenFor('k1')}`));
      assert.equal(hits['/missing'], 1);
    });
  });

  test('a response that is no key set (500, HTML, no keys array, duplicate members) is a failed fetch: 503, and the log says why', async () => {
    for (const [path, why] of [
      ['/error', 'status 500'],
      ['/html', 'not a key set'],
      ['/no-keys', 'not a key set'],
      ['/duplicate-keys', 'not a key set'],
    ]) {
      await withRemote(path, async (w) => {
        const token = await tokenFor('k1');
        await assertUnavailable(await me(w, `Bearer ${token}`), path);
        const line = await w.logLine((l) => l.includes('"problem":"unavailable"'));
        assert.ok(line.includes('remote key set') && line.includes(why), `${path}: ${line}`);
        assert.ok(!w.logs.join('\n').includes(token.split('.')[2]), 'a token in the log');
        assert.equal(hits[path], 1, path);
      });
    }
  });

  test('a key set with no usable key (empty, only oct or unknown entries) is a key set: 401, not 503', async () => {
    for (const path of ['/empty', '/unusable']) {
      await withRemote(path, async (w) => {
        await assertRefused(await me(w, `Bearer ${await tokenFor('k1')}`), path);
        assert.equal(hits[path], 1, path);
      });
    }
  });

  test('a key set over 64 KiB is refused, whether its length is declared or not: 503', async () => {
    for (const path of ['/big-declared', '/big-chunked']) {
      await withRemote(path, async (w) => {
        await assertUnavailable(await me(w, `Bearer ${await tokenFor('k1')}`), path);
        assert.equal(hits[path], 1, path);
      });
    }
  });

  test('a remote set of more than 64 keys keeps the first 64', async () => {
    await withRemote('/many', async (w) => {
      const res = await me(w, `Bearer ${await tokenFor('m5')}`);
      assert.equal(res.status, 200);
      assert.equal((await res.json()).sub, 'remote');
      assert.equal((await me(w, `Bearer ${await tokenFor('m63')}`)).status, 200);
      await assertRefused(await me(w, `Bearer ${await tokenFor('m64')}`), 'the 65th key');
    });
  });
});
