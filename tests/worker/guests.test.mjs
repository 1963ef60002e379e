// Guest shoppers at the runtime tier: a cart before an account, with no session store. A guest
// session is a token edgecart signs (POST /session/guest); its cart lives in KV like any
// other; POST /cart/merge moves it into the account's cart at sign-in; a guest checks out
// with an email. Every bad guest token is 401 as a bearer token and 422 as a merge body.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AUDIENCE, ISSUER, devToken, startWorker } from './harness.mjs';
import { newKey, problem, shop, userKey } from './checkout-helpers.mjs';
import { flipBit, hmacToken } from './tokens.mjs';

const GUEST_ISSUER = 'edgecart:guest';

/** A guest session from the worker. */
async function guestSession(w) {
  const res = await w.fetch('/session/guest', { method: 'POST' });
  assert.equal(res.status, 201, await res.clone().text());
  assert.equal(res.headers.get('cache-control'), 'no-store');
  return res.json();
}

const bearer = (token) => ({ authorization: `Bearer ${token}` });

async function putLine(w, token, sku, quantity, headers = {}) {
  return w.fetch(`/cart/items/${sku}`, {
    method: 'PUT',
    headers: { ...bearer(token), 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ quantity }),
  });
}

async function cartOf(w, token) {
  const res = await w.fetch('/cart', { headers: bearer(token) });
  assert.equal(res.status, 200, await res.clone().text());
  return res.json();
}

async function merge(w, token, body, headers = {}) {
  return w.fetch('/cart/merge', {
    method: 'POST',
    headers: { ...bearer(token), 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const lines = (cart) => Object.fromEntries(cart.items.map((i) => [i.sku, i.quantity]));

describe('guest sessions', () => {
  let w;
  let s;
  let kid;

  before(async () => {
    w = await startWorker();
    s = shop(w);
    await s.stock('guest-tea', { price: 450, stock: 500 });
    await s.stock('guest-pot', { price: 3000, stock: 50 });
    const { token } = await guestSession(w);
    kid = JSON.parse(Buffer.from(token.split('.')[0], 'base64url')).kid;
  });

  after(async () => {
    await w?.stop();
  });

  /** A token signed with the guest key over chosen claims (the test knows the secret). */
  const forged = (claims, header = {}) =>
    hmacToken(
      Buffer.from(w.vars.GUEST_TOKEN_KEY),
      JSON.stringify({ alg: 'HS256', typ: 'JWT', kid, ...header }),
      JSON.stringify(claims),
    );
  const now = () => Math.floor(Date.now() / 1000);

  test('POST /session/guest issues a guest token that /me accepts, with no scopes and nothing stored', async () => {
    const kv = await w.mf.getKVNamespace('CARTS');
    const keysBefore = (await kv.list()).keys.length;
    const session = await guestSession(w);
    assert.match(session.sub, /^guest_[0-9a-f]{32}$/);
    const expires = Date.parse(session.expires_at);
    assert.ok(Math.abs(expires - (Date.now() + 7 * 86400 * 1000)) < 60_000, session.expires_at);
    const me = await w.fetch('/me', { headers: bearer(session.token) });
    assert.equal(me.status, 200);
    const body = await me.json();
    assert.deepEqual({ sub: body.sub, iss: body.iss, scopes: body.scopes }, { sub: session.sub, iss: GUEST_ISSUER, scopes: [] });
    assert.equal(body.exp, Math.floor(expires / 1000));
    assert.equal((await kv.list()).keys.length, keysBefore, 'issuing wrote nothing');
    const other = await guestSession(w);
    assert.notEqual(other.sub, session.sub, 'every session is a new guest');
  });

  test('a guest fills a cart, and checks out only with an email', async () => {
    const { token } = await guestSession(w);
    assert.equal((await putLine(w, token, 'guest-tea', 2)).status, 200);
    const cart = await cartOf(w, token);
    assert.deepEqual(lines(cart), { 'guest-tea': 2 });
    const key = newKey();
    const checkout = (body) =>
      w.fetch('/orders', {
        method: 'POST',
        headers: { ...bearer(token), 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify(body),
      });
    const refused = await problem(await checkout({ cart_version: cart.version }), 422, '/problems/invalid-value');
    assert.match(refused.detail, /email/);
    const ok = await checkout({
      cart_version: cart.version,
      email: 'guest@example.com',
      shipping_address: { name: 'G. Uest', line1: '1 Tea Street', city: 'Kyoto', postal_code: '600-8216', country: 'JP' },
    });
    assert.equal(ok.status, 201, await ok.clone().text());
    const order = await ok.json();
    assert.equal(order.email, 'guest@example.com');
    const list = await (await w.fetch('/orders', { headers: bearer(token) })).json();
    assert.deepEqual(list.items.map((o) => o.id), [order.id]);
    const one = await w.fetch(`/orders/${order.id}`, { headers: bearer(token) });
    assert.equal(one.status, 200);
    await one.arrayBuffer();
  });

  test('a guest never holds catalog:write, even in a token signed with the guest key', async () => {
    const token = forged({ iss: GUEST_ISSUER, aud: AUDIENCE, sub: 'guest_' + 'a'.repeat(32), iat: now(), exp: now() + 600, scope: 'catalog:write orders:write' });
    const me = await (await w.fetch('/me', { headers: bearer(token) })).json();
    assert.equal(me.iss, GUEST_ISSUER);
    const res = await w.fetch('/products/guest-tea', {
      method: 'PUT',
      headers: { ...bearer(token), 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x', description: '', price_minor: 1, currency: 'EUR', stock: 1 }),
    });
    await problem(res, 403, '/problems/insufficient-scope');
  });

  test('expired, tampered, wrong-issuer, wrong-audience and foreign-key guest tokens are 401 on every route', async () => {
    const sub = 'guest_' + 'b'.repeat(32);
    const { token: good } = await guestSession(w);
    const bad = {
      expired: forged({ iss: GUEST_ISSUER, aud: AUDIENCE, sub, iat: now() - 7200, exp: now() - 3600 }),
      tampered: flipBit(good, 1),
      'bad signature': flipBit(good, 2),
      'account issuer with the guest key': forged({ iss: ISSUER, aud: AUDIENCE, sub, iat: now(), exp: now() + 600 }),
      'wrong audience': forged({ iss: GUEST_ISSUER, aud: 'someone-else', sub, iat: now(), exp: now() + 600 }),
      'longer than GUEST_TOKEN_TTL_SECONDS': forged({ iss: GUEST_ISSUER, aud: AUDIENCE, sub, iat: now(), exp: now() + 8 * 86400 }),
      'guest issuer with the account key': await devTokenWithIssuer(w, GUEST_ISSUER),
    };
    for (const [name, token] of Object.entries(bad)) {
      for (const [method, path] of [['GET', '/me'], ['GET', '/cart'], ['DELETE', '/cart'], ['GET', '/orders']]) {
        const res = await w.fetch(path, { method, headers: bearer(token) });
        await problem(res, 401, '/problems/invalid-token');
        assert.match(res.headers.get('www-authenticate'), /error="invalid_token"/, `${name}: ${method} ${path}`);
      }
    }
  });

  test('sign-in merges the guest cart: quantities summed and capped at 99, the guest cart emptied, a second merge changes nothing', async () => {
    const alice = await devToken(w, { sub: 'merge-alice' });
    assert.equal((await putLine(w, alice, 'guest-tea', 60)).status, 200);
    const guest = await guestSession(w);
    assert.equal((await putLine(w, guest.token, 'guest-tea', 50)).status, 200);
    assert.equal((await putLine(w, guest.token, 'guest-pot', 1)).status, 200);
    const res = await merge(w, alice, { guest_token: guest.token });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get('cache-control'), 'private, no-store');
    const merged = await res.json();
    assert.deepEqual(lines(merged), { 'guest-tea': 99, 'guest-pot': 1 });
    assert.equal(res.headers.get('etag'), `"${merged.version}"`);
    assert.deepEqual(merged.merge.capped, [{ sku: 'guest-tea', requested: 110, quantity: 99 }]);
    assert.deepEqual(merged.merge.left_out, []);
    assert.equal(merged.subtotal_minor, 99 * 450 + 3000);
    assert.deepEqual(lines(await cartOf(w, guest.token)), {}, 'the guest cart is empty');
    // The same guest token again: nothing added twice; the guest token still works.
    const again = await (await merge(w, alice, { guest_token: guest.token })).json();
    assert.deepEqual(lines(again), lines(merged));
    assert.equal(again.version, merged.version);
    assert.equal((await putLine(w, guest.token, 'guest-pot', 2)).status, 200, 'a merged guest session goes on as an empty cart');
  });

  test('a merge that is refused leaves both carts as they were', async () => {
    const bob = await devToken(w, { sub: 'merge-bob' });
    await putLine(w, bob, 'guest-tea', 1);
    const guest = await guestSession(w);
    await putLine(w, guest.token, 'guest-pot', 3);
    const kv = await w.mf.getKVNamespace('CARTS');
    const snapshot = async () => [await kv.get(`cart:${userKey('merge-bob')}`), await kv.get(`cart:${userKey(guest.sub, GUEST_ISSUER)}`)];
    const before = await snapshot();
    assert.ok(before[1], 'the guest cart is stored under its own user key');
    const other = await guestSession(w);
    const cases = [
      [await merge(w, other.token, { guest_token: guest.token }), 403, '/problems/forbidden'],
      [await merge(w, bob, { guest_token: bob }), 422, '/problems/invalid-value'],
      [await merge(w, bob, { guest_token: flipBit(guest.token, 2) }), 422, '/problems/invalid-value'],
      [await merge(w, bob, { guest_token: forged({ iss: GUEST_ISSUER, aud: AUDIENCE, sub: guest.sub, iat: now() - 7200, exp: now() - 3600 }) }), 422, '/problems/invalid-value'],
      [await merge(w, bob, { guest_token: 'not a token' }), 422, '/problems/invalid-value'],
      [await merge(w, bob, { guest_token: 42 }), 422, '/problems/invalid-value'],
      [await merge(w, bob, {}), 422, '/problems/invalid-value'],
      [await merge(w, bob, [guest.token]), 422, '/problems/invalid-value'],
      [await merge(w, bob, { guest_token: guest.token, extra: 1 }), 422, '/problems/invalid-value'],
      [await merge(w, bob, '{"guest_token": '), 400, '/problems/bad-request'],
      [await merge(w, bob, JSON.stringify({ guest_token: 'x'.repeat(17 * 1024) })), 413, '/problems/payload-too-large'],
      [await merge(w, bob, { guest_token: guest.token }, { 'if-match': '"999"' }), 412, '/problems/precondition-failed'],
      [await w.fetch('/cart/merge', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ guest_token: guest.token }) }), 401, '/problems/missing-token'],
    ];
    for (const [res, status, type] of cases) await problem(res, status, type);
    assert.deepEqual(await snapshot(), before);
    const wrong = await w.fetch('/cart/merge', { headers: bearer(bob) });
    await problem(wrong, 405, '/problems/method-not-allowed');
    assert.equal(wrong.headers.get('allow'), 'POST');
  });

  test('without GUEST_TOKEN_KEY there are no guest sessions, and guest tokens do not verify', async () => {
    const { token } = await guestSession(w);
    const own = await startWorker({ vars: { GUEST_TOKEN_KEY: undefined, JWT_JWKS: w.vars.JWT_JWKS, DEV_TOKEN_KEY: w.vars.DEV_TOKEN_KEY } });
    try {
      await problem(await own.fetch('/session/guest', { method: 'POST' }), 404, '/problems/not-found');
      await problem(await own.fetch('/me', { headers: bearer(token) }), 401, '/problems/invalid-token');
      const alice = await devToken(own, { sub: 'no-guests' });
      await problem(await merge(own, alice, { guest_token: token }), 422, '/problems/invalid-value');
    } finally {
      await own.stop();
    }
  });
});

describe('a guest session is stateless', () => {
  test('it survives a worker restart between every step: session, add, add, sign in, merge, check out', { timeout: 120_000 }, async () => {
    const w = await startWorker();
    try {
      const s = shop(w);
      await s.stock('restart-tea', { price: 800, stock: 20 });
      await s.stock('restart-cup', { price: 1200, stock: 20 });
      const guest = await guestSession(w);
      await w.restart();
      assert.equal((await putLine(w, guest.token, 'restart-tea', 2)).status, 200);
      await w.restart();
      assert.equal((await putLine(w, guest.token, 'restart-cup', 1)).status, 200);
      await w.restart();
      const user = await devToken(w, { sub: 'restart-user' });
      await w.restart();
      const merged = await (await merge(w, user, { guest_token: guest.token })).json();
      assert.deepEqual(lines(merged), { 'restart-tea': 2, 'restart-cup': 1 });
      await w.restart();
      const res = await w.fetch('/orders', {
        method: 'POST',
        headers: { ...bearer(user), 'content-type': 'application/json', 'idempotency-key': newKey() },
        body: JSON.stringify({ cart_version: merged.version, expected_total_minor: 2 * 800 + 1200 }),
      });
      assert.equal(res.status, 201, await res.clone().text());
      assert.equal((await res.json()).total_minor, 2800);
    } finally {
      await w.stop();
    }
  });
});

/** A token signed by the account key (DEV_TOKEN_KEY) but naming the guest issuer. */
async function devTokenWithIssuer(w, iss) {
  const { importJWK, SignJWT } = await import('jose');
  const jwk = JSON.parse(w.vars.DEV_TOKEN_KEY);
  const key = await importJWK(jwk, 'ES256');
  return new SignJWT({ sub: 'guest_' + 'c'.repeat(32) })
    .setProtectedHeader({ alg: 'ES256', kid: jwk.kid })
    .setIssuer(iss)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(key);
}
