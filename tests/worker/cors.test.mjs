// CORS at the HTTP level: preflights, actual responses, refused origins, the edge cache, and
// CORS switched off. (The browser's own verdict is checked in storefront.test.mjs.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { devToken, startWorker, steadyHit } from './harness.mjs';

const SHOP = 'https://shop.example';
const LOCAL = 'http://127.0.0.1:5555';
const EVIL = 'https://evil.example';

function corsHeaders(res) {
  return [...res.headers.keys()].filter((k) => k.startsWith('access-control-'));
}

function varyNames(res) {
  return (res.headers.get('vary') ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
}

function preflight(w, path, origin, method = 'PUT', headers = 'authorization, content-type, if-match') {
  const h = { 'access-control-request-method': method, 'access-control-request-headers': headers };
  if (origin) h.origin = origin;
  return w.fetch(path, { method: 'OPTIONS', headers: h });
}

describe('CORS for listed origins', () => {
  let w;
  before(async () => {
    // Entries are normalised: case and a trailing slash do not matter.
    w = await startWorker({ vars: { CORS_ALLOW_ORIGINS: `${SHOP}, HTTP://127.0.0.1:5555/` } });
  });
  after(async () => {
    await w?.stop();
  });

  test('a preflight from a listed origin is 204 with the allowed methods, headers and max age', async () => {
    const res = await preflight(w, '/cart/items/tea', SHOP);
    assert.equal(res.status, 204);
    assert.equal(await res.text(), '');
    assert.equal(res.headers.get('access-control-allow-origin'), SHOP);
    const methods = res.headers.get('access-control-allow-methods').split(',').map((s) => s.trim());
    for (const m of ['GET', 'PUT', 'POST', 'DELETE']) assert.ok(methods.includes(m), m);
    assert.equal(
      res.headers.get('access-control-allow-headers'),
      'Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, Edgecart-Bookmark',
    );
    assert.match(res.headers.get('access-control-max-age'), /^\d+$/);
    assert.deepEqual(varyNames(res), ['origin']);
    assert.equal(res.headers.get('access-control-allow-credentials'), null);
  });

  test('every known route answers a preflight, including checkout and the catalogue', async () => {
    for (const path of ['/orders', '/products/tea', '/cart', '/me', '/health', '/openapi.json', '/orders/ord_x']) {
      const res = await preflight(w, path, LOCAL, 'POST', 'authorization, idempotency-key, content-type');
      assert.equal(res.status, 204, path);
      assert.equal(res.headers.get('access-control-allow-origin'), LOCAL, path);
    }
  });

  test('a preflight from an origin that is not listed gets 204 and no CORS headers', async () => {
    for (const origin of [EVIL, `${SHOP}.evil.example`, 'http://shop.example', 'null']) {
      const res = await preflight(w, '/orders', origin);
      assert.equal(res.status, 204, origin);
      assert.deepEqual(corsHeaders(res), [], origin);
    }
  });

  test('a preflight on an unknown route is 404', async () => {
    const res = await preflight(w, '/nope', SHOP);
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('content-type'), 'application/problem+json');
  });

  test('an actual response to a listed origin names it and exposes the API headers', async () => {
    const res = await w.fetch('/health', { headers: { origin: SHOP } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), SHOP);
    assert.equal(
      res.headers.get('access-control-expose-headers'),
      'ETag, Location, Idempotent-Replayed, Cache-Status, Retry-After, X-Request-Id, WWW-Authenticate, Allow, Edgecart-Bookmark',
    );
    assert.ok(varyNames(res).includes('origin'));
    assert.equal(res.headers.get('access-control-allow-methods'), null);
  });

  test('a problem response to a listed origin is readable by the page too', async () => {
    const res = await w.fetch('/cart', { headers: { origin: SHOP } });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('access-control-allow-origin'), SHOP);
    assert.match(res.headers.get('www-authenticate'), /^Bearer realm="edgecart"/);
  });

  test('an origin that is not listed gets no CORS headers, only Vary: Origin', async () => {
    for (const headers of [{ origin: EVIL }, { origin: 'null' }, {}]) {
      const res = await w.fetch('/health', { headers });
      assert.equal(res.status, 200);
      assert.deepEqual(corsHeaders(res), [], JSON.stringify(headers));
      assert.ok(varyNames(res).includes('origin'));
    }
  });

  test('CORS headers never come out of the edge cache for another origin', async () => {
    const admin = await devToken(w, { sub: 'cors-admin', scope: 'catalog:write' });
    const put = await w.fetch('/products/cors-tea', {
      method: 'PUT',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ sku: 'cors-tea', name: 'Tea', description: '', price_minor: 500, currency: 'EUR', stock: 3 }),
    });
    assert.ok([200, 201].includes(put.status), `PUT answered ${put.status}`);
    const first = await w.fetch('/products/cors-tea', { headers: { origin: SHOP } });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('access-control-allow-origin'), SHOP);
    await first.arrayBuffer();
    const fromEvil = await w.fetch('/products/cors-tea', { headers: { origin: EVIL } });
    assert.equal(fromEvil.status, 200);
    assert.deepEqual(corsHeaders(fromEvil), []);
    const fromLocal = await steadyHit(w, '/products/cors-tea', { headers: { origin: LOCAL } });
    assert.equal(fromLocal.headers.get('access-control-allow-origin'), LOCAL);
    assert.equal(varyNames(fromLocal).filter((v) => v === 'origin').length, 1);
  });
});

describe('CORS switched off (no CORS_ALLOW_ORIGINS)', () => {
  let w;
  before(async () => {
    w = await startWorker({ vars: { CORS_ALLOW_ORIGINS: undefined } });
  });
  after(async () => {
    await w?.stop();
  });

  test('no response carries a CORS header or Vary: Origin', async () => {
    const pre = await preflight(w, '/orders', SHOP);
    assert.equal(pre.status, 204);
    assert.deepEqual(corsHeaders(pre), []);
    const res = await w.fetch('/health', { headers: { origin: SHOP } });
    assert.deepEqual(corsHeaders(res), []);
    assert.ok(!varyNames(res).includes('origin'));
  });
});
