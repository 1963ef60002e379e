// Orders at the runtime tier: the built worker in workerd with Miniflare's real KV, Durable
// Object and D1. Checkout (order, lines, stock and cart together), the owner-only reads and
// listing, and every kind of bad input — each a 4xx problem with nothing stored.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, importJWK } from 'jose';
import { lowS } from '../../scripts/es256-low-s.mjs';
import { AUDIENCE, ISSUER, startWorker, steadyHit } from './harness.mjs';
import { newKey, problem, shop } from './checkout-helpers.mjs';

describe('orders', () => {
  let w;
  let s;

  before(async () => {
    // Every request logged, so the privacy check below reads the lines of successful ones.
    w = await startWorker({ vars: { LOG_REQUESTS: 'all' } });
    s = shop(w);
    await s.stock('ord-tea', { price: 1250, stock: 100, name: 'Sencha, 100 g' });
    await s.stock('ord-mug', { price: 800, stock: 100 });
    await s.stock('ord-rare', { price: 5000, stock: 1 });
  });

  after(async () => {
    await w?.stop();
  });

  test('a checkout places the order, decrements stock and empties the cart', async () => {
    await s.add('alice', 'ord-tea', 2);
    const cart = await s.add('alice', 'ord-mug', 1);
    const res = await s.checkout('alice', {
      body: { cart_version: cart.version, email: 'alice@example.com', shipping_address: { line1: '1 Tea Road', city: 'Leeds' } },
    });
    const text = await res.text();
    assert.equal(res.status, 201, text);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.equal(res.headers.get('cache-control'), 'private, no-store');
    assert.equal(res.headers.get('idempotent-replayed'), null);
    const order = JSON.parse(text);
    assert.match(order.id, /^ord_[0-9a-f]{32}$/);
    assert.equal(res.headers.get('location'), `/orders/${order.id}`);
    assert.equal(order.status, 'confirmed');
    assert.deepEqual(order.items, [
      { sku: 'ord-tea', name: 'Sencha, 100 g', unit_price_minor: 1250, quantity: 2, line_total_minor: 2500, available: true },
      { sku: 'ord-mug', name: 'Name of ord-mug', unit_price_minor: 800, quantity: 1, line_total_minor: 800, available: true },
    ]);
    assert.equal(order.total_minor, 3300);
    assert.equal(order.currency, 'EUR');
    assert.match(order.created_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    assert.equal(order.email, 'alice@example.com');
    assert.deepEqual(order.shipping_address, { city: 'Leeds', line1: '1 Tea Road' });

    assert.equal(await s.stockOf('ord-tea'), 98);
    assert.equal(await s.stockOf('ord-mug'), 99);
    const rows = await s.orders('alice');
    assert.equal(rows.length, 1);
    assert.equal(rows[0].id, order.id);
    assert.equal(rows[0].total_minor, 3300);
    assert.deepEqual(await s.lines(order.id), [
      { sku: 'ord-tea', quantity: 2, unit_price_minor: 1250 },
      { sku: 'ord-mug', quantity: 1, unit_price_minor: 800 },
    ]);
    const after = await s.cart('alice');
    assert.deepEqual(after.items, []);
    assert.equal(after.version, cart.version + 1);
  });

  test('after a checkout that changes the band, the cached product page shows it at once', async () => {
    await s.stock('ord-cached', { price: 500, stock: 7 });
    const hit = await steadyHit(w, '/products/ord-cached');
    assert.equal(hit.headers.get('cache-status'), 'edgecart; hit');
    const shown = await hit.json();
    assert.equal(shown.availability, 'in_stock');
    assert.equal(shown.stock, undefined, 'shoppers never see the exact stock above the low band');
    const cart = await s.add('carol', 'ord-cached', 3);
    const res = await s.checkout('carol', { body: { cart_version: cart.version } });
    assert.equal(res.status, 201, await res.text());
    const next = await w.fetch('/products/ord-cached');
    assert.equal(next.headers.get('cache-status'), 'edgecart; fwd=uri-miss; stored');
    const now = await next.json();
    assert.deepEqual([now.availability, now.stock_left], ['low_stock', 4]);
  });

  test('email and shipping address never reach the log', async () => {
    const cart = await s.add('pia', 'ord-mug', 1);
    const res = await s.checkout('pia', {
      body: { cart_version: cart.version, email: 'pia.private@example.com', shipping_address: { street: 'Hidden Lane 7' } },
    });
    assert.equal(res.status, 201);
    await w.logLine((l) => l.includes(res.headers.get('x-request-id')) && l.includes('"status":201'));
    const log = w.logs.join('\n');
    assert.ok(w.logs.some((l) => l.includes('"route":"/orders"') && l.includes('"status":201')), log);
    assert.ok(!log.includes('pia.private'), 'email in log');
    assert.ok(!log.includes('Hidden Lane'), 'address in log');
  });

  test('prices come from the catalogue at checkout, not from when the cart was filled', async () => {
    await s.stock('ord-price', { price: 100, stock: 5 });
    const cart = await s.add('paul', 'ord-price', 2);
    await s.stock('ord-price', { price: 150, stock: 5 });
    const res = await s.checkout('paul', { body: { cart_version: cart.version } });
    assert.equal(res.status, 201);
    const order = await res.json();
    assert.equal(order.total_minor, 300);
    assert.equal(order.items[0].unit_price_minor, 150);
  });

  test('the owner reads an order; another user and malformed ids get 404', async () => {
    const cart = await s.add('olga', 'ord-tea', 1);
    const placed = await (await s.checkout('olga', { body: { cart_version: cart.version } })).json();
    const own = await w.fetch(`/orders/${placed.id}`, { headers: await s.auth('olga') });
    assert.equal(own.status, 200);
    assert.equal(own.headers.get('cache-control'), 'private, no-store');
    assert.deepEqual(await own.json(), placed);

    const other = await w.fetch(`/orders/${placed.id}`, { headers: await s.auth('mallory') });
    const otherBody = await problem(other, 404, '/problems/not-found');
    for (const id of ['ord_0123456789abcdef0123456789abcdef', 'nope', 'ord_%27%20OR%201=1', placed.id.toUpperCase()]) {
      const res = await w.fetch(`/orders/${id}`, { headers: await s.auth('olga') });
      const body = await problem(res, 404, '/problems/not-found');
      assert.deepEqual(body, otherBody, 'a foreign order reads exactly like a missing one');
    }
    await problem(await w.fetch(`/orders/${placed.id}`), 401, '/problems/missing-token');
  });

  test('the listing shows only the caller\'s orders, newest first, page by page', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const cart = await s.add('lena', 'ord-mug', i + 1);
      const res = await s.checkout('lena', { body: { cart_version: cart.version } });
      assert.equal(res.status, 201);
      ids.push((await res.json()).id);
      await new Promise((r) => setTimeout(r, 5));
    }
    const page1 = await w.fetch('/orders?limit=2', { headers: await s.auth('lena') });
    assert.equal(page1.status, 200);
    assert.equal(page1.headers.get('cache-control'), 'private, no-store');
    const body1 = await page1.json();
    assert.deepEqual(body1.items.map((o) => o.id), [ids[2], ids[1]]);
    assert.equal(typeof body1.next_cursor, 'string');
    const page2 = await w.fetch(`/orders?limit=2&cursor=${encodeURIComponent(body1.next_cursor)}`, {
      headers: await s.auth('lena'),
    });
    const body2 = await page2.json();
    assert.deepEqual(body2.items.map((o) => o.id), [ids[0]]);
    assert.equal(body2.next_cursor, null);
    assert.equal(body2.items[0].items[0].quantity, 1);

    const all = await (await w.fetch('/orders', { headers: await s.auth('lena') })).json();
    assert.deepEqual(all.items.map((o) => o.id), [...ids].reverse());
    const none = await (await w.fetch('/orders', { headers: await s.auth('nobody') })).json();
    assert.deepEqual(none, { items: [], next_cursor: null });
  });

  test('malformed listing queries are 400', async () => {
    for (const q of ['limit=0', 'limit=101', 'limit=abc', 'limit=1&limit=2', 'cursor=not-a-cursor', 'cursor=%FF']) {
      const res = await w.fetch(`/orders?${q}`, { headers: await s.auth('lena') });
      await problem(res, 400, '/problems/bad-request');
    }
  });

  test('a stale cart version is 409 cart-changed and changes nothing', async () => {
    const cart = await s.add('carl', 'ord-tea', 1);
    const before = await s.stockOf('ord-tea');
    const res = await s.checkout('carl', { body: { cart_version: cart.version - 1 } });
    const body = await problem(res, 409, '/problems/cart-changed');
    assert.equal(res.headers.get('retry-after'), null);
    assert.equal(body.status, 409);
    assert.equal(await s.orderCount('carl'), 0);
    assert.equal(await s.stockOf('ord-tea'), before);
    assert.deepEqual((await s.cart('carl')).version, cart.version);
  });

  test('an empty cart is 422 and no order is created', async () => {
    const res = await s.checkout('emma', { body: { cart_version: 0 } });
    await problem(res, 422, '/problems/invalid-value');
    assert.equal(await s.orderCount('emma'), 0);
  });

  test('not enough stock is 409 out-of-stock naming the sku; stock and cart are untouched', async () => {
    await s.stock('ord-short', { stock: 2 });
    const cart = await s.add('otto', 'ord-short', 3);
    const res = await s.checkout('otto', { body: { cart_version: cart.version } });
    const body = await problem(res, 409, '/problems/out-of-stock');
    assert.equal(body.sku, 'ord-short');
    assert.equal(await s.stockOf('ord-short'), 2);
    assert.equal(await s.orderCount('otto'), 0);
    assert.equal((await s.cart('otto')).version, cart.version);
  });

  test('a product deleted after it was put in the cart cannot be bought', async () => {
    await s.stock('ord-gone', { stock: 5 });
    const cart = await s.add('gus', 'ord-gone', 1);
    await (await w.mf.getD1Database('DB')).prepare("DELETE FROM products WHERE sku = 'ord-gone'").run();
    const res = await s.checkout('gus', { body: { cart_version: cart.version } });
    const body = await problem(res, 409, '/problems/out-of-stock');
    assert.equal(body.sku, 'ord-gone');
    assert.equal(await s.orderCount('gus'), 0);
  });

  test('checkout needs a bearer token', async () => {
    const res = await w.fetch('/orders', {
      method: 'POST',
      headers: { 'idempotency-key': newKey(), 'content-type': 'application/json' },
      body: '{"cart_version":0}',
    });
    await problem(res, 401, '/problems/missing-token');
    await problem(await w.fetch('/orders'), 401, '/problems/missing-token');
  });

  test('bad idempotency keys are 400, nothing is stored, and the key is still usable', async () => {
    const cart = await s.add('ken', 'ord-mug', 1);
    const body = { cart_version: cart.version };
    const cases = [
      ['missing', null, {}],
      ['empty', '', {}],
      ['empty sf-string', '""', {}],
      ['256 characters', 'k'.repeat(256), {}],
      ['non-ASCII', 'caf\u00e9', {}],
      ['a space inside', 'a b', {}],
      ['an unclosed sf-string', '"abc', {}],
    ];
    for (const [name, key, headers] of cases) {
      const res = await s.checkout('ken', { key, body, headers });
      const p = await problem(res, 400, '/problems/bad-request');
      assert.ok(p.detail.length > 0, name);
    }
    // Any visible ASCII is a key, in either form: a comma or a quote inside is not a second key.
    for (const key of ['a,b', '"c,d"', 'e"f']) {
      const c = await s.add('kim', 'ord-mug', 1);
      const res = await s.checkout('kim', { key, body: { cart_version: c.version } });
      assert.equal(res.status, 201, `${key}: ${await res.text()}`);
    }
    // Sent twice: the platform joins the values with ", ".
    const twice = new Headers({ ...(await s.auth('ken')), 'content-type': 'application/json' });
    twice.append('idempotency-key', 'first');
    twice.append('idempotency-key', 'second');
    await problem(await w.fetch('/orders', { method: 'POST', headers: twice, body: JSON.stringify(body) }), 400, '/problems/bad-request');
    assert.equal(await s.orderCount('ken'), 0);

    // The longest key and the sf-string form both work.
    const long = await s.checkout('ken', { key: 'k'.repeat(255), body });
    assert.equal(long.status, 201, await long.clone().text());
    const cart2 = await s.add('ken', 'ord-mug', 1);
    const quoted = await s.checkout('ken', { key: '"quoted-key-1"', body: { cart_version: cart2.version } });
    assert.equal(quoted.status, 201);
    const bare = await s.checkout('ken', { key: 'quoted-key-1', body: { cart_version: cart2.version } });
    assert.equal(bare.status, 201, 'the bare form names the same key');
    assert.equal(bare.headers.get('idempotent-replayed'), 'true');
    assert.equal(await s.orderCount('ken'), 2);
  });

  test('malformed bodies are refused before the claim: nothing stored, the key stays fresh', async () => {
    const cart = await s.add('bea', 'ord-mug', 1);
    const key = newKey();
    const cases = [
      ['{', 400, '/problems/bad-request'],
      ['not json', 400, '/problems/bad-request'],
      ['', 400, '/problems/bad-request'],
      ['[]', 422, '/problems/invalid-value'],
      ['{}', 422, '/problems/invalid-value'],
      ['{"cart_version":"1"}', 422, '/problems/invalid-value'],
      ['{"cart_version":-1}', 422, '/problems/invalid-value'],
      ['{"cart_version":1.5}', 422, '/problems/invalid-value'],
      [`{"cart_version":${cart.version},"email":42}`, 422, '/problems/invalid-value'],
      [`{"cart_version":${cart.version},"email":"not-an-email"}`, 422, '/problems/invalid-value'],
      [`{"cart_version":${cart.version},"shipping_address":"somewhere"}`, 422, '/problems/invalid-value'],
      [`{"cart_version":${cart.version},"shipping_address":{"zip":12345}}`, 422, '/problems/invalid-value'],
    ];
    for (const [body, status, type] of cases) {
      const res = await s.checkout('bea', { key, body });
      await problem(res, status, type);
      assert.equal(res.headers.get('idempotent-replayed'), null);
    }
    const big = await s.checkout('bea', { key, body: JSON.stringify({ cart_version: 1, pad: 'x'.repeat(17000) }) });
    await problem(big, 413, '/problems/payload-too-large');
    assert.equal(await s.orderCount('bea'), 0);
    const ok = await s.checkout('bea', { key, body: { cart_version: cart.version } });
    assert.equal(ok.status, 201, 'the key was never claimed by the refused requests');
  });

  test('the test delay header is validated in development', async () => {
    const res = await s.checkout('dora', { body: { cart_version: 0 }, headers: { 'x-edgecart-test-delay-ms': '10001' } });
    await problem(res, 400, '/problems/bad-request');
    const at = await s.checkout('dora', {
      body: { cart_version: 0 },
      headers: { 'x-edgecart-test-delay-ms': '1', 'x-edgecart-test-delay-at': 'sometime' },
    });
    await problem(at, 400, '/problems/bad-request');
  });
});

describe('orders in production mode', () => {
  let w;
  before(async () => {
    w = await startWorker({ vars: { ENVIRONMENT: 'production' } });
  });
  after(async () => {
    await w?.stop();
  });

  test('the test delay header is ignored outside development', async () => {
    // /dev/token is off in production, so sign a token with the same key set directly.
    const priv = JSON.parse(w.vars.DEV_TOKEN_KEY);
    const token = lowS(await new SignJWT({ sub: 'prod-user' })
      .setProtectedHeader({ alg: 'ES256', kid: priv.kid })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(await importJWK(priv, 'ES256')));
    const res = await w.fetch('/orders', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'idempotency-key': newKey(),
        'content-type': 'application/json',
        'x-edgecart-test-delay-ms': 'forever',
      },
      body: '{"cart_version":0}',
    });
    // Not 400 for the delay header: the request goes on to find the cart empty.
    await problem(res, 422, '/problems/invalid-value');
  });
});
