// The catalogue's reads at the edge, at the runtime tier: the built worker in workerd with
// Miniflare's real D1 and Cache API, wrapped by tests/worker/stand-in-edge.mjs (test
// infrastructure: a replica that refuses one kind of bookmark, and a stand-in Workers Cache
// `ctx.cache` that records purges).
//
// A product's key holds its page or, after a write here, a mark: the new revision and the
// write's bookmark. A miss reads D1 through a session: from the mark's bookmark (never older
// than that write), else "first-unconstrained"; an answer older than the mark's revision, or a
// session that fails, is read again at the primary. A malformed mark is ignored, never a 5xx.
// Miniflare's D1 is one database: it returns a bookmark after every query and ignores the one
// it is given, so "older than the mark" is staged here with a mark that names a revision D1
// does not have yet.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Response as MiniflareResponse } from 'miniflare';
import { ROOT, devToken, startWorker } from './harness.mjs';

const STORED = 'edgecart; fwd=uri-miss; stored';
const BOOKMARK = /^[0-9a-f][0-9a-f-]{7,127}$/;

describe('catalogue reads through D1 sessions', () => {
  let w;
  let merchant;
  let caches;

  before(async () => {
    w = await startWorker({ scriptPath: join(ROOT, 'tests', 'worker', 'stand-in-edge.mjs'), modulesRoot: ROOT });
    merchant = await devToken(w, { sub: 'edge-merchant', scope: 'catalog:write' });
    caches = (await w.mf.getCaches()).default;
  });

  after(async () => {
    await w?.stop();
  });

  const standIn = async () => (await w.fetch('/__stand-in/log')).json();
  const mirrorKey = (sku) => `${w.url}/.edgecart-cache/products/${sku}`;
  const mirrorText = async (key) => (await caches.match(key))?.text();
  async function plantMirror(sku, text) {
    await caches.put(mirrorKey(sku), new MiniflareResponse(text, { headers: { 'cache-control': 'public, max-age=30, s-maxage=30' } }));
  }
  async function revisionInD1(sku) {
    const db = await w.mf.getD1Database('DB');
    return (await db.prepare('SELECT revision FROM products WHERE sku = ?1').bind(sku).first())?.revision;
  }
  async function put(sku, fields = {}) {
    const res = await w.fetch(`/products/${sku}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${merchant}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: `Name of ${sku}`, price_minor: 500, currency: 'EUR', stock: 40, ...fields }),
    });
    assert.ok(res.status === 200 || res.status === 201, `${res.status} ${await res.clone().text()}`);
    return res.json();
  }
  async function get(sku) {
    const res = await w.fetch(`/products/${sku}`);
    return { res, status: res.status, cacheStatus: res.headers.get('cache-status'), body: await res.json() };
  }

  test('a write marks the product with its revision and bookmark, and the next miss reads from it', async () => {
    await put('edge-bm', { price_minor: 510 });
    await standIn();
    const mirrored = await mirrorText(mirrorKey('edge-bm'));
    const [value, bookmark] = (mirrored ?? '').split(' ');
    assert.equal(Number(value), await revisionInD1('edge-bm'), mirrored);
    assert.match(bookmark ?? '', BOOKMARK, 'Miniflare returns a bookmark after the write');
    const generation = await mirrorText(`${w.url}/.edgecart-cache/generation`);
    assert.equal(generation?.split(' ')[1], bookmark, 'the listing generation carries the same write');

    const read = await get('edge-bm');
    assert.equal(read.status, 200);
    assert.equal(read.cacheStatus, STORED);
    assert.equal(read.body.price_minor, 510);
    assert.deepEqual((await standIn()).sessions, [bookmark], 'one session, from the write\'s bookmark');
  });

  test('a delete marks the product too, so the next read starts from the delete\'s bookmark', async () => {
    await put('edge-gone');
    await (await w.fetch('/products/edge-gone')).arrayBuffer();
    const res = await w.fetch('/products/edge-gone', { method: 'DELETE', headers: { authorization: `Bearer ${merchant}` } });
    assert.equal(res.status, 204);
    await standIn();
    const [value, bookmark] = ((await mirrorText(mirrorKey('edge-gone'))) ?? '').split(' ');
    assert.ok(Number(value) > 0, 'the mark names the delete\'s generation');
    assert.match(bookmark ?? '', BOOKMARK);
    const read = await w.fetch('/products/edge-gone');
    assert.equal(read.status, 404);
    await read.arrayBuffer();
    assert.deepEqual((await standIn()).sessions, [bookmark], 'a replica behind the delete is never asked without it');
  });

  test('without a mark a miss reads "first-unconstrained", and the page it stores is the next hit', async () => {
    await put('edge-cold');
    await caches.delete(mirrorKey('edge-cold'));
    await standIn();
    const read = await get('edge-cold');
    assert.equal(read.status, 200);
    assert.deepEqual((await standIn()).sessions, ['first-unconstrained']);
    // The page is stored after the response (waitUntil): wait for it, bounded.
    let stored;
    for (let i = 0; i < 100 && !stored; i++) {
      stored = await caches.match(mirrorKey('edge-cold'));
      if (!stored) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(stored, 'the page is stored under the product\'s key');
    assert.equal(stored.headers.get('cache-control'), 'public, max-age=30, s-maxage=30', 'kept for the generation\'s lifetime only');
    assert.deepEqual(JSON.parse(await stored.text()), read.body);
    const hit = await get('edge-cold');
    assert.equal(hit.cacheStatus, 'edgecart; hit');
    assert.match(hit.res.headers.get('cache-control'), /s-maxage=300/, 'a hit tells clients the configured lifetime');
    assert.deepEqual(hit.body, read.body);
    assert.deepEqual((await standIn()).sessions, [], 'a hit reads no D1');
  });

  test('a malformed mark is ignored, never a 5xx, and never reaches D1 as a bookmark', async () => {
    await put('edge-bad', { price_minor: 530 });
    const revision = await revisionInD1('edge-bad');
    for (const text of [`${revision} first-primary`, `${revision} <script>`, `${revision} ${'0'.repeat(500)}`, 'garbage', '']) {
      await plantMirror('edge-bad', text);
      await standIn();
      const read = await get('edge-bad');
      assert.equal(read.status, 200, `${JSON.stringify(text)}: ${JSON.stringify(read.body)}`);
      assert.equal(read.body.price_minor, 530);
      // A hit (an earlier iteration's page landed over the mark) starts no session; a miss starts one
      // with no bookmark: the malformed text never reaches D1.
      const { sessions } = await standIn();
      assert.ok(sessions.length <= 1 && sessions.every((c) => c === 'first-unconstrained'), `${JSON.stringify(text)}: ${sessions}`);
    }
  });

  test('a bookmark the replica cannot serve is read again at the primary', async () => {
    await put('edge-foreign', { price_minor: 540 });
    const revision = await revisionInD1('edge-foreign');
    const foreign = 'ffffffff-00000000-00000000-00000000000000000000000000000000';
    await plantMirror('edge-foreign', `${revision + 1000} ${foreign}`);
    await standIn();
    const read = await get('edge-foreign');
    assert.equal(read.status, 200, JSON.stringify(read.body));
    assert.equal(read.body.price_minor, 540);
    assert.deepEqual((await standIn()).sessions, [foreign, 'first-primary']);
  });

  test('an answer older than the revision a mark names is read again at the primary', async () => {
    await put('edge-behind', { price_minor: 550 });
    const revision = await revisionInD1('edge-behind');
    // The mark names a revision D1 has not reached, as a replica behind the write would be.
    await plantMirror('edge-behind', String(revision + 1));
    await standIn();
    const read = await get('edge-behind');
    assert.equal(read.status, 200);
    assert.deepEqual((await standIn()).sessions, ['first-unconstrained', 'first-primary']);
  });
});

// Workers Cache where the platform provides `ctx.cache` (here the stand-in's, on requests that
// carry `x-stand-in-workers-cache: 1`): catalogue responses carry `Cache-Tag`, are read at the
// primary (a refill right after a global purge must not read a replica behind the write) and
// bypass the per-location Cache API; writes that change what shoppers see purge by tag.
describe('catalogue behind Workers Cache (a stand-in ctx.cache)', () => {
  const WORKERS_CACHE = { 'x-stand-in-workers-cache': '1' };
  const BYPASS = 'edgecart; fwd=bypass; detail=workers-cache';
  let w;
  let s;
  let merchant;

  before(async () => {
    w = await startWorker({ scriptPath: join(ROOT, 'tests', 'worker', 'stand-in-edge.mjs'), modulesRoot: ROOT });
    s = (await import('./checkout-helpers.mjs')).shop(w);
    merchant = await devToken(w, { sub: 'wc-merchant', scope: 'catalog:write' });
    await s.stock('wc-a', { price: 700, stock: 10 });
    await s.stock('wc-b', { price: 800, stock: 10 });
  });

  after(async () => {
    await w?.stop();
  });

  const standIn = async () => (await w.fetch('/__stand-in/log')).json();

  async function order(sub, sku, quantity) {
    const cart = await s.add(sub, sku, quantity);
    const res = await s.checkout(sub, { body: { cart_version: cart.version }, headers: WORKERS_CACHE });
    assert.equal(res.status, 201, await res.clone().text());
  }

  test('a product page carries its tag and says edgecart\'s cache was bypassed', async () => {
    await standIn();
    for (let i = 0; i < 2; i++) {
      const res = await w.fetch('/products/wc-a', { headers: WORKERS_CACHE });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('cache-tag'), 'product:wc-a');
      assert.equal(res.headers.get('cache-status'), BYPASS, 'never a hit of the per-location cache');
      assert.equal(res.headers.get('cache-control'), 'public, max-age=60, s-maxage=300, stale-while-revalidate=60');
      assert.equal((await res.json()).availability, 'in_stock');
    }
    const log = await standIn();
    assert.deepEqual(log.sessions, ['first-primary', 'first-primary'], 'each refill reads the primary');
    assert.deepEqual(log.purges, [], 'a read purges nothing');
  });

  test('a listing page carries `listing` and the tag of every product it shows', async () => {
    const res = await w.fetch('/products?limit=100', { headers: WORKERS_CACHE });
    assert.equal(res.status, 200);
    const { items } = await res.json();
    assert.ok(items.some((p) => p.sku === 'wc-a'));
    assert.equal(res.headers.get('cache-tag'), ['listing', ...items.map((p) => `product:${p.sku}`)].join(','));
    assert.equal(res.headers.get('cache-status'), BYPASS);
  });

  test('without ctx.cache the same routes take the Cache API path, untagged', async () => {
    const res = await w.fetch('/products/wc-b');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-tag'), null);
    assert.match(res.headers.get('cache-status'), /^edgecart; (hit|fwd=uri-miss; stored)$/);
    await res.arrayBuffer();
  });

  test('a price change purges the product\'s tag; a new product purges the listings too', async () => {
    await standIn();
    const put = (sku, body) =>
      w.fetch(`/products/${sku}`, {
        method: 'PUT',
        headers: { ...WORKERS_CACHE, authorization: `Bearer ${merchant}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const changed = await put('wc-b', { name: 'Name of wc-b', price_minor: 850, currency: 'EUR', stock: 10 });
    assert.equal(changed.status, 200, await changed.clone().text());
    assert.deepEqual((await standIn()).purges, [{ tags: ['product:wc-b'] }]);
    const created = await put('wc-new', { name: 'New', price_minor: 100, currency: 'EUR', stock: 3 });
    assert.equal(created.status, 201, await created.clone().text());
    assert.deepEqual((await standIn()).purges, [{ tags: ['product:wc-new', 'listing'] }]);
    const deleted = await w.fetch('/products/wc-new', { method: 'DELETE', headers: { ...WORKERS_CACHE, authorization: `Bearer ${merchant}` } });
    assert.equal(deleted.status, 204);
    assert.deepEqual((await standIn()).purges, [{ tags: ['product:wc-new'] }]);
  });

  test('an order purges only the products whose band it moved, and nothing when none moved', async () => {
    await standIn();
    await order('wc-shopper-1', 'wc-a', 2);
    assert.equal(await s.stockOf('wc-a'), 8);
    assert.deepEqual((await standIn()).purges, [], 'in_stock before and after: nothing visible changed');
    await order('wc-shopper-2', 'wc-a', 4);
    assert.deepEqual((await standIn()).purges, [{ tags: ['product:wc-a'] }], 'in_stock to low_stock');
    const res = await w.fetch('/products/wc-a', { headers: WORKERS_CACHE });
    assert.deepEqual(((b) => [b.availability, b.stock_left])(await res.json()), ['low_stock', 4]);
  });
});
