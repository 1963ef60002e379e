// Request bodies and paths read exactly as the OpenAPI document describes them, at the runtime
// tier: a body is one JSON object (an array is never read as a struct's fields in order), a member
// named twice is refused however it is spelt, a member a strict body does not name is refused, and
// a path with an empty segment names nothing (404, and nothing reaches the edge cache).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { devToken, startWorker } from './harness.mjs';
import { newKey, problem, shop } from './checkout-helpers.mjs';

describe('request bodies and paths', () => {
  let w;
  let s;
  let writer;

  before(async () => {
    w = await startWorker();
    s = shop(w);
    writer = await devToken(w, { sub: 'bodies-admin', scope: 'catalog:write' });
    await s.stock('body-tea', { price: 1250, stock: 50 });
  });

  after(async () => {
    await w?.stop();
  });

  const json = (token, init) => ({
    ...init,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers },
  });
  const product = { name: 'Body tea', description: '', price_minor: 1250, currency: 'EUR', stock: 50 };

  test('POST /orders with the body [1] is refused and places no order', async () => {
    const cart = await s.add('array-alice', 'body-tea', 1);
    assert.equal(cart.version, 1, 'the cart is at version 1, which [1] would have named');
    for (const body of ['[1]', '[1, null, null]', '1', '"x"', 'null', 'true']) {
      const res = await s.checkout('array-alice', { body });
      const p = await problem(res, 422, '/problems/invalid-value');
      assert.match(p.detail, /must be a JSON object/, body);
    }
    assert.equal(await s.orderCount('array-alice'), 0);
    const after = await s.cart('array-alice');
    assert.equal(after.version, 1);
    assert.equal(after.items.length, 1);
    assert.equal(await s.stockOf('body-tea'), 50);
  });

  test('a member named twice is 400 on every body route, also when spelt with an escape', async () => {
    const user = await s.token('dup-bob');
    await s.add('dup-bob', 'body-tea', 1);
    const routes = [
      ['PUT', '/cart/items/body-tea', user, '{"quantity":1,"quantity":2}'],
      ['PUT', '/cart/items/body-tea', user, '{"quantity":1,"\\u0071uantity":2}'],
      ['POST', '/orders', user, '{"cart_version":2,"cart_version":2}'],
      ['POST', '/orders', user, '{"cart_version":2,"\\u0063art_version":2}'],
      ['POST', '/orders', user, '{"cart_version":2,"shipping_address":{"city":"Leeds","\\u0063ity":"York"}}'],
      ['PUT', '/products/body-dup', writer, JSON.stringify(product).replace('{', '{"name":"Other",')],
      ['PUT', '/products/body-dup', writer, JSON.stringify(product).replace('{', '{"\\u006eame":"Other",')],
      ['POST', '/dev/token', user, '{"sub":"a","sub":"b"}'],
      ['POST', '/dev/token', user, '{"sub":"a","\\u0073ub":"b"}'],
    ];
    for (const [method, path, token, body] of routes) {
      const headers = path === '/orders' ? { 'idempotency-key': newKey() } : {};
      const res = await w.fetch(path, json(token, { method, body, headers }));
      const p = await problem(res, 400, '/problems/bad-request');
      assert.match(p.detail, /names a member twice \(line 1, column \d+\)/, `${method} ${path} ${body}`);
    }
    // Nothing was written: the cart line kept its quantity, no order, no product.
    const cart = await s.cart('dup-bob');
    assert.equal(cart.items[0].quantity, 1);
    assert.equal(await s.orderCount('dup-bob'), 0);
    assert.equal((await w.fetch('/products/body-dup')).status, 404);
  });

  test('a refused checkout body stores no idempotency record: the same key then checks out', async () => {
    const cart = await s.add('dup-carol', 'body-tea', 2);
    const key = newKey();
    await problem(await s.checkout('dup-carol', { key, body: `{"cart_version":${cart.version},"cart_version":0}` }), 400, '/problems/bad-request');
    const res = await s.checkout('dup-carol', { key, body: { cart_version: cart.version } });
    assert.equal(res.status, 201, await res.clone().text());
    assert.equal(res.headers.get('idempotent-replayed'), null);
  });

  test('malformed JSON keeps its 400 with line and column', async () => {
    const user = await s.token('dup-dave');
    const res = await w.fetch('/cart/items/body-tea', json(user, { method: 'PUT', body: '{\n  "quantity": 1,\n  oops\n}' }));
    const p = await problem(res, 400, '/problems/bad-request');
    assert.match(p.detail, /not valid JSON \(line 3, column 3\)/);
  });

  test('members a strict body does not name, and null for an optional member, are 422', async () => {
    const cart = await s.add('strict-erin', 'body-tea', 1);
    const user = await s.token('strict-erin');
    for (const body of [
      { cart_version: cart.version, note: 'gift' },
      { cart_version: cart.version, emial: 'erin@example.com' },
      { cart_version: cart.version, email: null },
      { cart_version: cart.version, expected_total_minor: null },
    ]) {
      await problem(await s.checkout('strict-erin', { body }), 422, '/problems/invalid-value');
    }
    assert.equal(await s.orderCount('strict-erin'), 0);
    for (const [path, body] of [
      ['/cart/items/body-tea', { quantity: 1, note: 'gift' }],
      ['/dev/token', { sub: 'a', admin: true }],
      ['/dev/token', { sub: 'a', ttl_seconds: null }],
      ['/dev/token', { sub: 'a', scope: null }],
    ]) {
      const res = await w.fetch(path, json(user, { method: path === '/dev/token' ? 'POST' : 'PUT', body: JSON.stringify(body) }));
      await problem(res, 422, '/problems/invalid-value');
    }
    // The product body accepts (and ignores) the server fields, but nothing else.
    const ok = await w.fetch('/products/body-roundtrip', json(writer, {
      method: 'PUT', body: JSON.stringify({ ...product, sku: 'body-roundtrip', version: 99, updated_at: 'whenever' }),
    }));
    assert.equal(ok.status, 201, await ok.clone().text());
    assert.equal((await ok.json()).version, 1);
    const colour = await w.fetch('/products/body-roundtrip', json(writer, { method: 'PUT', body: JSON.stringify({ ...product, colour: 'red' }) }));
    await problem(colour, 422, '/problems/invalid-value');
  });

  test('a whole number is one number however it is written', async () => {
    const user = await s.token('whole-fay');
    const res = await w.fetch('/cart/items/body-tea', json(user, { method: 'PUT', body: '{"quantity": 2.0}' }));
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal((await res.json()).items[0].quantity, 2);
    const frac = await w.fetch('/cart/items/body-tea', json(user, { method: 'PUT', body: '{"quantity": 2.5}' }));
    await problem(frac, 422, '/problems/invalid-value');
    const token = await w.fetch('/dev/token', json(user, { method: 'POST', body: '{"sub": "whole", "ttl_seconds": 6e1}' }));
    assert.equal(token.status, 200, await token.clone().text());
  });

  test('a path with an empty segment anywhere is a 404 problem, and nothing is cached for it', async () => {
    const user = await s.token('path-gus');
    const cases = [
      ['GET', '//products/body-tea'],
      ['HEAD', '//products/body-tea'],
      ['GET', '/products//body-tea'],
      ['GET', '//products'],
      ['GET', '/products/'],
      ['GET', '//health'],
      ['GET', '//cart'],
      ['PUT', '/cart//items/body-tea'],
      ['DELETE', '/cart/items//body-tea'],
      ['POST', '//orders'],
      ['GET', '/orders//'],
      ['PUT', '//products/body-tea'],
    ];
    for (const [method, path] of cases) {
      const body = ['PUT', 'POST'].includes(method) ? '{"quantity":1}' : undefined;
      const res = await w.fetch(path, json(user, { method, body }));
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(res.headers.get('cache-status'), null, `${method} ${path}`);
      if (method !== 'HEAD') await problem(res, 404, '/problems/not-found');
    }
    // The product itself answers; asked again through `//`, still a 404, never a cached copy.
    const real = await w.fetch('/products/body-tea');
    assert.equal(real.status, 200);
    const again = await w.fetch('//products/body-tea');
    assert.equal(again.status, 404);
    assert.equal(again.headers.get('cache-status'), null);
    // A write is seen at the one URL there is; no other spelling kept the old price.
    const put = await w.fetch('/products/body-tea', json(writer, { method: 'PUT', body: JSON.stringify({ ...product, price_minor: 1300 }) }));
    assert.equal(put.status, 200, await put.clone().text());
    assert.equal((await (await w.fetch('/products/body-tea')).json()).price_minor, 1300);
    assert.equal((await w.fetch('//products/body-tea')).status, 404);
    // The write left the cart untouched by the refused `PUT /cart//items/…`.
    assert.deepEqual((await s.cart('path-gus')).items, []);
  });
});
