// D1 sessions at the runtime tier: cart pricing and order reads go through D1 sessions (a
// replica may answer on Cloudflare; Miniflare's D1 has none, but it runs sessions and hands
// out real bookmarks), with read-your-writes through bookmarks, bad bookmarks ignored, and a
// failing session retried once on the primary, then 503. The fallback cases run the built
// worker under tests/worker/d1-faults.mjs, which makes D1 calls fail on request and names
// the calls each request made; everything else is Miniflare's real D1 and KV.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ROOT, startWorker } from './harness.mjs';
import { newKey, problem, shop, userKey } from './checkout-helpers.mjs';

const BOOKMARK = /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/;
// Well-formed, but from no history this database has (far ahead of it).
const FOREIGN = 'ffffffff-ffffffff-ffffffff-ffffffffffffffffffffffffffffffff';
const BAD = ['garbage', 'first-primary', 'f'.repeat(5000), '00000000-00000001-00000000-0000000000000000000000000000000Z'];

describe('D1 sessions', () => {
  let w;
  let s;

  before(async () => {
    w = await startWorker({ scriptPath: join(ROOT, 'tests', 'worker', 'd1-faults.mjs'), modulesRoot: ROOT });
    s = shop(w);
    await s.stock('ses-tea', { price: 1250, stock: 10 });
    await s.stock('ses-mug', { price: 800, stock: 5 });
  });

  after(async () => {
    await w?.stop();
  });

  const get = async (sub, path, headers = {}) => w.fetch(path, { headers: { ...(await s.auth(sub)), ...headers } });
  const calls = (res) => res.headers.get('x-test-d1-calls').split(',').filter(Boolean);

  test('GET /cart and a cart write price through a session from any replica', async () => {
    const add = await w.fetch('/cart/items/ses-tea', {
      method: 'PUT',
      headers: { ...(await s.auth('reader')), 'content-type': 'application/json' },
      body: JSON.stringify({ quantity: 2 }),
    });
    assert.equal(add.status, 200);
    assert.deepEqual(calls(add), ['session(first-unconstrained)']);
    const res = await get('reader', '/cart');
    assert.equal(res.status, 200);
    assert.deepEqual(calls(res), ['session(first-unconstrained)']);
    const cart = await res.json();
    assert.equal(cart.subtotal_minor, 2500);
    assert.deepEqual(cart.items.map((l) => [l.sku, l.unit_price_minor, l.available]), [['ses-tea', 1250, true]]);
  });

  test('a checkout answers its bookmark, keeps it in the cart, and reads start from it', async () => {
    await s.add('ryw', 'ses-mug', 2);
    const res = await s.checkout('ryw');
    const order = await res.json();
    assert.equal(res.status, 201, JSON.stringify(order));
    const bookmark = res.headers.get('edgecart-bookmark');
    assert.match(bookmark, BOOKMARK);

    // The emptied cart carries it: the next pricing starts no older than the checkout.
    const stored = JSON.parse(await (await w.mf.getKVNamespace('CARTS')).get(`cart:${userKey('ryw')}`));
    assert.equal(stored.bookmark, bookmark);
    const refilled = await s.add('ryw', 'ses-mug', 1);
    assert.equal(refilled.items[0].unit_price_minor, 800);
    const cart = await get('ryw', '/cart');
    assert.equal(cart.status, 200);
    assert.deepEqual(calls(cart), [`session(${bookmark})`]);

    // The order shows in the list and by id when the reads send the bookmark back.
    const list = await get('ryw', '/orders', { 'edgecart-bookmark': bookmark });
    assert.equal(list.status, 200);
    assert.deepEqual(calls(list), [`session(${bookmark})`]);
    assert.deepEqual((await list.json()).items.map((o) => o.id), [order.id]);
    const one = await get('ryw', `/orders/${order.id}`, { 'edgecart-bookmark': bookmark });
    assert.equal(one.status, 200);
    assert.equal((await one.json()).status, 'confirmed');

    // A newer bookmark from the client wins over the cart's older one.
    const cancel = await w.fetch(`/orders/${order.id}/cancel`, { method: 'POST', headers: await s.auth('ryw') });
    assert.equal(cancel.status, 200);
    const newer = cancel.headers.get('edgecart-bookmark');
    assert.match(newer, BOOKMARK);
    assert.ok(newer > bookmark, `${newer} after ${bookmark}`);
    const priced = await get('ryw', '/cart', { 'edgecart-bookmark': newer });
    assert.deepEqual(calls(priced), [`session(${newer})`]);
    const older = await get('ryw', '/cart', { 'edgecart-bookmark': '00000000-00000000-00000000-00000000000000000000000000000000' });
    assert.deepEqual(calls(older), [`session(${bookmark})`]);
  });

  test('after a cancellation the order reads cancelled from the bookmark the cancel answered', async () => {
    await s.add('canceller', 'ses-tea', 1);
    const placed = await s.checkout('canceller');
    assert.equal(placed.status, 201);
    const order = await placed.json();
    const cancel = await w.fetch(`/orders/${order.id}/cancel`, { method: 'POST', headers: await s.auth('canceller') });
    assert.equal(cancel.status, 200);
    const bookmark = cancel.headers.get('edgecart-bookmark');
    assert.ok(bookmark > placed.headers.get('edgecart-bookmark'));
    const one = await get('canceller', `/orders/${order.id}`, { 'edgecart-bookmark': bookmark });
    assert.equal(one.status, 200);
    assert.deepEqual(calls(one), [`session(${bookmark})`]);
    assert.equal((await one.json()).status, 'cancelled');
    const list = await get('canceller', '/orders', { 'edgecart-bookmark': bookmark });
    assert.deepEqual((await list.json()).items.map((o) => [o.id, o.status]), [[order.id, 'cancelled']]);
    // Cancelling again changes nothing and names no new write.
    const again = await w.fetch(`/orders/${order.id}/cancel`, { method: 'POST', headers: await s.auth('canceller') });
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('edgecart-bookmark'), null);
  });

  test('a replayed checkout answers as the first one did, without a bookmark', async () => {
    await s.add('replayer', 'ses-tea', 1);
    const key = newKey();
    const first = await s.checkout('replayer', { key });
    assert.equal(first.status, 201);
    assert.match(first.headers.get('edgecart-bookmark'), BOOKMARK);
    const body = { cart_version: JSON.parse(await (await w.mf.getKVNamespace('CARTS')).get(`cart:${userKey('replayer')}`)).version - 1 };
    const replay = await s.checkout('replayer', { key, body });
    assert.equal(replay.status, 201);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.equal(replay.headers.get('edgecart-bookmark'), null);
  });

  test('a bookmark header that is not a bookmark is ignored: read on the primary, 200', async () => {
    await s.add('garbler', 'ses-tea', 1);
    const placed = await s.checkout('garbler');
    assert.equal(placed.status, 201);
    const order = await placed.json();
    await s.add('garbler', 'ses-mug', 3);
    for (const bad of BAD) {
      const h = { 'edgecart-bookmark': bad };
      const cart = await get('garbler', '/cart', h);
      assert.equal(cart.status, 200, bad);
      assert.deepEqual(calls(cart), ['session(first-primary)'], bad);
      assert.equal((await cart.json()).subtotal_minor, 2400, bad);
      const write = await w.fetch('/cart/items/ses-mug', {
        method: 'PUT',
        headers: { ...(await s.auth('garbler')), 'content-type': 'application/json', ...h },
        body: JSON.stringify({ quantity: 3 }),
      });
      assert.equal(write.status, 200, bad);
      assert.deepEqual(calls(write), ['session(first-primary)'], bad);
      const list = await get('garbler', '/orders', h);
      assert.equal(list.status, 200, bad);
      assert.deepEqual(calls(list), ['session(first-primary)'], bad);
      assert.deepEqual((await list.json()).items.map((o) => o.id), [order.id], bad);
      const one = await get('garbler', `/orders/${order.id}`, h);
      assert.equal(one.status, 200, bad);
    }
  });

  test('a well-formed foreign bookmark D1 refuses is retried once on the primary: 200', async () => {
    await s.add('foreigner', 'ses-tea', 1);
    const h = { 'edgecart-bookmark': FOREIGN, 'x-test-d1-fail': 'sessions' };
    const cart = await get('foreigner', '/cart', h);
    assert.equal(cart.status, 200);
    assert.deepEqual(calls(cart), [`session(${FOREIGN})`, 'primary']);
    assert.equal((await cart.json()).subtotal_minor, 1250);
    const list = await get('foreigner', '/orders', h);
    assert.equal(list.status, 200);
    assert.deepEqual(calls(list), [`session(${FOREIGN})`, 'primary']);
  });

  test('a failing replica falls back to the primary once; both failing is 503 with Retry-After', async () => {
    await s.add('unlucky', 'ses-tea', 1);
    const fallback = await get('unlucky', '/cart', { 'x-test-d1-fail': 'sessions' });
    assert.equal(fallback.status, 200);
    assert.deepEqual(calls(fallback), ['session(first-unconstrained)', 'primary']);

    for (const [method, path, body] of [
      ['GET', '/cart'],
      ['PUT', '/cart/items/ses-mug', JSON.stringify({ quantity: 1 })],
      ['GET', '/orders'],
      ['GET', '/orders/ord_0123456789abcdef0123456789abcdef'],
    ]) {
      const headers = { ...(await s.auth('unlucky')), 'x-test-d1-fail': 'all' };
      if (body) headers['content-type'] = 'application/json';
      const res = await w.fetch(path, { method, headers, body });
      assert.deepEqual(calls(res), ['session(first-unconstrained)', 'primary'], `${method} ${path}`);
      assert.equal(res.headers.get('retry-after'), '1', `${method} ${path}`);
      await problem(res, 503, '/problems/unavailable');
    }
    // The refused write changed nothing.
    assert.deepEqual((await s.cart('unlucky')).items.map((l) => [l.sku, l.quantity]), [['ses-tea', 1]]);
  });
});
