// What an order invalidates of the cached catalogue, at the runtime tier (the built worker in
// workerd with Miniflare's real D1 and Cache API): only the pages whose shopper-visible data
// changed. A product's revision is bumped in the checkout's (or cancel's) own D1 transaction
// only when the product's stock band, or its count while low, moves, and only then does the
// order mark the product's cached page here as moved past; listing pages share the listing generation, bumped when any product's does (coarser
// than per page: the Cache API cannot tell which pages show a product). `Cache-Status` tells
// which answers came from the cache.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { devToken, startWorker, steadyHit } from './harness.mjs';
import { shop } from './checkout-helpers.mjs';

const HIT = 'edgecart; hit';
const STORED = 'edgecart; fwd=uri-miss; stored';
const LISTING = '/products?limit=100';

describe('catalogue invalidation by orders', () => {
  let w;
  let s;

  before(async () => {
    w = await startWorker();
    s = shop(w);
    // 10 left: in_stock, two units above the low band (1 to 5 left).
    await s.stock('inv-a', { price: 700, stock: 10 });
    await s.stock('inv-b', { price: 900, stock: 10 });
  });

  after(async () => {
    await w?.stop();
  });

  /** Warms the three pages until each is a steady hit; returns their bodies. */
  async function warm() {
    const bodies = {};
    for (const path of ['/products/inv-a', '/products/inv-b', LISTING]) {
      bodies[path] = await (await steadyHit(w, path)).json();
    }
    return bodies;
  }

  async function read(path) {
    const res = await w.fetch(path);
    assert.equal(res.status, 200, path);
    return { status: res.headers.get('cache-status'), body: await res.json() };
  }

  async function order(sub, sku, quantity) {
    const cart = await s.add(sub, sku, quantity);
    const res = await s.checkout(sub, { body: { cart_version: cart.version } });
    assert.equal(res.status, 201, await res.clone().text());
    return res.json();
  }

  test('an order that leaves every band alone leaves every page cached', async () => {
    const before = await warm();
    assert.equal(before['/products/inv-a'].availability, 'in_stock');
    await order('inv-shopper-1', 'inv-a', 2);
    assert.equal(await s.stockOf('inv-a'), 8, 'the order took its stock');
    for (const path of ['/products/inv-a', '/products/inv-b', LISTING]) {
      const now = await read(path);
      assert.equal(now.status, HIT, `${path} is still a hit`);
      assert.deepEqual(now.body, before[path], `${path} shows what it showed`);
    }
  });

  test('an order that moves a product into low_stock misses its page and the listing, not the other product', async () => {
    const before = await warm();
    await order('inv-shopper-2', 'inv-a', 4);
    assert.equal(await s.stockOf('inv-a'), 4);
    const a = await read('/products/inv-a');
    assert.equal(a.status, STORED, 'A changed: its page is read again');
    assert.deepEqual([a.body.availability, a.body.stock_left], ['low_stock', 4]);
    const b = await read('/products/inv-b');
    assert.equal(b.status, HIT, 'B did not change: still cached');
    assert.deepEqual(b.body, before['/products/inv-b']);
    const list = await read(LISTING);
    assert.equal(list.status, STORED, 'the listing generation moved with A');
    const listed = list.body.items.find((p) => p.sku === 'inv-a');
    assert.deepEqual([listed.availability, listed.stock_left], ['low_stock', 4]);
  });

  test('while low, every unit shows; out_of_stock shows too; a cancel brings the band back', async () => {
    await warm();
    await order('inv-shopper-3', 'inv-a', 1);
    const three = await read('/products/inv-a');
    assert.equal(three.status, STORED, 'the count while low is shopper-visible');
    assert.equal(three.body.stock_left, 3);
    assert.equal((await read('/products/inv-b')).status, HIT);

    await warm();
    const last = await order('inv-shopper-4', 'inv-a', 3);
    const out = await read('/products/inv-a');
    assert.equal(out.status, STORED);
    assert.deepEqual([out.body.availability, out.body.stock_left], ['out_of_stock', undefined]);

    await warm();
    const res = await w.fetch(`/orders/${last.id}/cancel`, { method: 'POST', headers: await s.auth('inv-shopper-4') });
    assert.equal(res.status, 200, await res.clone().text());
    const back = await read('/products/inv-a');
    assert.equal(back.status, STORED, 'the cancel moved the band back');
    assert.deepEqual([back.body.availability, back.body.stock_left], ['low_stock', 3]);
    assert.equal((await read('/products/inv-b')).status, HIT);
  });

  test('a merchant write changes only its product page (and the listing)', async () => {
    const before = await warm();
    const merchant = await devToken(w, { sub: 'inv-merchant', scope: 'catalog:write' });
    const put = await w.fetch('/products/inv-b', {
      method: 'PUT',
      headers: { authorization: `Bearer ${merchant}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Name of inv-b', price_minor: 990, currency: 'EUR', stock: 10 }),
    });
    assert.equal(put.status, 200, await put.clone().text());
    const b = await read('/products/inv-b');
    assert.equal(b.status, STORED);
    assert.equal(b.body.price_minor, 990);
    const a = await read('/products/inv-a');
    assert.equal(a.status, HIT, 'A is untouched by a write to B');
    assert.deepEqual(a.body, before['/products/inv-a']);
    assert.equal((await read(LISTING)).status, STORED);
  });
});
