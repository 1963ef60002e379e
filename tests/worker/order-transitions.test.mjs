// Orders after checkout at the runtime tier: the owner's cancel (stock back in the same D1
// transaction) and the merchant's fulfilment (`orders:write`), each with its event in the
// outbox; repeats answer 200 unchanged, the other way 409, another user's order 404; two
// cancels at once make one transition; migration 0005 keeps rows and indexes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, devToken, splitSql, startWorker } from './harness.mjs';
import { problem, shop, userKey } from './checkout-helpers.mjs';

/** Checks out `qty` of `sku` for `sub`; returns the order. */
async function placeOrder(s, sub, sku, qty) {
  const cart = await s.add(sub, sku, qty);
  const res = await s.checkout(sub, { body: { cart_version: cart.version } });
  assert.equal(res.status, 201, await res.clone().text());
  return res.json();
}

describe('order transitions', () => {
  let w;
  let s;
  let merchant;

  const post = async (path, headers, init = {}) => w.fetch(path, { method: 'POST', headers, ...init });
  const events = async (orderId) =>
    (
      await (await w.mf.getD1Database('DB'))
        .prepare('SELECT id, type, body, delivery FROM order_events WHERE order_id = ?1 ORDER BY created_at, type')
        .bind(orderId)
        .all()
    ).results;

  before(async () => {
    w = await startWorker();
    s = shop(w);
    merchant = { authorization: `Bearer ${await devToken(w, { sub: 'merchant', scope: 'orders:write' })}` };
    await s.stock('tr-tea', { price: 1250, stock: 50 });
    await s.stock('tr-mug', { price: 800, stock: 50 });
  });

  after(async () => {
    await w?.stop();
  });

  test('the owner cancels a confirmed order: stock comes back, once, with an order.cancelled event', async () => {
    await s.add('alice', 'tr-tea', 3);
    const order = await placeOrder(s, 'alice', 'tr-mug', 2);
    assert.equal(await s.stockOf('tr-tea'), 47);
    assert.equal(await s.stockOf('tr-mug'), 48);

    const res = await post(`/orders/${order.id}/cancel`, await s.auth('alice'));
    const text = await res.text();
    assert.equal(res.status, 200, text);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.equal(res.headers.get('cache-control'), 'private, no-store');
    const cancelled = JSON.parse(text);
    assert.equal(cancelled.status, 'cancelled');
    assert.equal(cancelled.id, order.id);
    assert.deepEqual(cancelled.items, order.items);
    assert.equal(await s.stockOf('tr-tea'), 50);
    assert.equal(await s.stockOf('tr-mug'), 50);

    const again = await post(`/orders/${order.id}/cancel`, await s.auth('alice'));
    assert.equal(again.status, 200);
    assert.deepEqual(await again.json(), cancelled);
    assert.equal(await s.stockOf('tr-tea'), 50, 'a second cancel returns nothing');

    const rows = await events(order.id);
    assert.deepEqual(rows.map((r) => r.type).sort(), ['order.cancelled', 'order.confirmed']);
    const body = JSON.parse(rows.find((r) => r.type === 'order.cancelled').body);
    assert.deepEqual(Object.keys(body).sort(), ['data', 'timestamp', 'type']);
    assert.deepEqual(body.data, { id: order.id, status: 'cancelled', total_minor: order.total_minor, currency: 'EUR' });
    assert.match(body.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    for (const r of rows) assert.match(r.id, /^evt_[0-9a-f]{32}$/);

    const read = await w.fetch(`/orders/${order.id}`, { headers: await s.auth('alice') });
    assert.equal((await read.json()).status, 'cancelled');
  });

  test('fulfilment needs orders:write, named in the challenge', async () => {
    const order = await placeOrder(s, 'bob', 'tr-tea', 1);
    const none = await post(`/orders/${order.id}/fulfilment`, {});
    await problem(none, 401, '/problems/missing-token');
    const owner = await post(`/orders/${order.id}/fulfilment`, await s.auth('bob'));
    await problem(owner, 403, '/problems/insufficient-scope');
    assert.equal(
      owner.headers.get('www-authenticate'),
      'Bearer realm="edgecart", error="insufficient_scope", scope="orders:write"',
    );
    const catalogue = { authorization: `Bearer ${await devToken(w, { sub: 'cat', scope: 'catalog:write' })}` };
    await problem(await post(`/orders/${order.id}/fulfilment`, catalogue), 403, '/problems/insufficient-scope');
    assert.equal((await (await w.fetch(`/orders/${order.id}`, { headers: await s.auth('bob') })).json()).status, 'confirmed');
  });

  test('the merchant fulfils any user\'s order; again is 200 unchanged; then cancel is 409', async () => {
    const order = await placeOrder(s, 'bob', 'tr-mug', 4);
    const stock = await s.stockOf('tr-mug');
    const res = await post(`/orders/${order.id}/fulfilment`, merchant);
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const fulfilled = JSON.parse(text);
    assert.equal(fulfilled.status, 'fulfilled');
    const again = await post(`/orders/${order.id}/fulfilment`, merchant);
    assert.equal(again.status, 200);
    assert.equal((await again.json()).status, 'fulfilled');

    const cancel = await post(`/orders/${order.id}/cancel`, await s.auth('bob'));
    await problem(cancel, 409, '/problems/order-not-cancellable');
    assert.equal(await s.stockOf('tr-mug'), stock, 'a refused cancel returns no stock');
    assert.deepEqual((await events(order.id)).map((r) => r.type).sort(), ['order.confirmed', 'order.fulfilled']);
  });

  test('a cancelled order cannot be fulfilled: 409 order-not-fulfillable', async () => {
    const order = await placeOrder(s, 'carol', 'tr-tea', 1);
    assert.equal((await post(`/orders/${order.id}/cancel`, await s.auth('carol'))).status, 200);
    await problem(await post(`/orders/${order.id}/fulfilment`, merchant), 409, '/problems/order-not-fulfillable');
    assert.deepEqual((await events(order.id)).map((r) => r.type).sort(), ['order.cancelled', 'order.confirmed']);
  });

  test('another user\'s order, an unknown or malformed id: 404 for cancel and fulfilment', async () => {
    const order = await placeOrder(s, 'dave', 'tr-tea', 1);
    await problem(await post(`/orders/${order.id}/cancel`, await s.auth('eve')), 404, '/problems/not-found');
    assert.equal((await (await w.fetch(`/orders/${order.id}`, { headers: await s.auth('dave') })).json()).status, 'confirmed');
    for (const id of ['nope', 'ord_' + '0'.repeat(32), 'ord_' + 'A'.repeat(32), '%00', 'ord_' + 'a'.repeat(33)]) {
      await problem(await post(`/orders/${id}/cancel`, await s.auth('dave')), 404, '/problems/not-found');
      await problem(await post(`/orders/${id}/fulfilment`, merchant), 404, '/problems/not-found');
    }
    await problem(await post(`/orders/${order.id}/cancel`, {}), 401, '/problems/missing-token');
    const get = await w.fetch(`/orders/${order.id}/cancel`, { headers: await s.auth('dave') });
    await problem(get, 405, '/problems/method-not-allowed');
    assert.equal(get.headers.get('allow'), 'POST');
  });

  test('a body on cancel or fulfilment is ignored, never a 5xx', async () => {
    const order = await placeOrder(s, 'frank', 'tr-tea', 1);
    const junk = { 'content-type': 'application/json' };
    const res = await post(`/orders/${order.id}/cancel`, { ...(await s.auth('frank')), ...junk }, { body: '{"status": "fulfilled", oops' });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).status, 'cancelled');
    const big = await post(`/orders/${order.id}/fulfilment`, { ...merchant, ...junk }, { body: 'x'.repeat(100_000) });
    assert.ok(big.status < 500, `status ${big.status}`);
    await problem(big, 409, '/problems/order-not-fulfillable');
  });

  test('two cancels at once make one transition, one event, one stock return', async () => {
    await s.stock('tr-race', { price: 100, stock: 10 });
    const order = await placeOrder(s, 'gina', 'tr-race', 4);
    assert.equal(await s.stockOf('tr-race'), 6);
    const auth = await s.auth('gina');
    const all = await Promise.all(Array.from({ length: 6 }, () => post(`/orders/${order.id}/cancel`, auth)));
    for (const res of all) {
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal((await res.json()).status, 'cancelled');
    }
    assert.equal(await s.stockOf('tr-race'), 10);
    assert.deepEqual((await events(order.id)).map((r) => r.type).sort(), ['order.cancelled', 'order.confirmed']);
  });

  test('a cancel racing a fulfilment: exactly one wins, the other is 409', async () => {
    await s.stock('tr-duel', { price: 100, stock: 10 });
    const order = await placeOrder(s, 'hal', 'tr-duel', 2);
    const [c, f] = await Promise.all([
      post(`/orders/${order.id}/cancel`, await s.auth('hal')),
      post(`/orders/${order.id}/fulfilment`, merchant),
    ]);
    const statuses = [c.status, f.status].sort();
    assert.deepEqual(statuses, [200, 409]);
    const types = (await events(order.id)).map((r) => r.type);
    assert.equal(types.length, 2);
    assert.equal(await s.stockOf('tr-duel'), c.status === 200 ? 10 : 8);
  });

  test('the merchant reads any order with its events; the owner sees no events', async () => {
    const order = await placeOrder(s, 'ivy', 'tr-tea', 1);
    const owner = await (await w.fetch(`/orders/${order.id}`, { headers: await s.auth('ivy') })).json();
    assert.equal(owner.events, undefined);
    const res = await w.fetch(`/orders/${order.id}`, { headers: merchant });
    assert.equal(res.status, 200);
    const seen = await res.json();
    assert.equal(seen.id, order.id);
    assert.equal(seen.events.length, 1);
    const [e] = seen.events;
    assert.equal(e.type, 'order.confirmed');
    assert.match(e.id, /^evt_[0-9a-f]{32}$/);
    assert.equal(e.delivery, 'pending');
    assert.equal(e.attempts, 0);
    assert.equal(seen.email, undefined);
  });
});

describe('migration 0005', () => {
  test('keeps existing orders, lines, columns and every index, and widens the status check', async () => {
    const w = await startWorker({ migrations: false });
    try {
      const db = await w.mf.getD1Database('DB');
      const dir = join(ROOT, 'migrations');
      const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
      const apply = async (f) => {
        const stmts = splitSql(await readFile(join(dir, f), 'utf8'));
        await db.batch(stmts.map((q) => db.prepare(q)));
      };
      for (const f of files.filter((f) => f < '0005')) await apply(f);
      const id = 'ord_' + 'ab'.repeat(16);
      await db.batch([
        db.prepare(
          `INSERT INTO orders (id, user_key, status, currency, total_minor, line_count, lines_verified, cart_version, email, created_at, cart_id)
           VALUES (?1, ?2, 'confirmed', 'EUR', 2500, 1, 1, 3, 'old@example.com', 1700000000000, 'cart-1')`,
        ).bind(id, userKey('old')),
        db.prepare(
          `INSERT INTO order_lines (order_id, position, sku, name, unit_price_minor, quantity, line_total_minor)
           VALUES (?1, 0, 'tea', 'Tea', 1250, 2, 2500)`,
        ).bind(id),
      ]);
      for (const f of files.filter((f) => f >= '0005')) await apply(f);

      const row = await db.prepare('SELECT * FROM orders WHERE id = ?1').bind(id).first();
      assert.equal(row.email, 'old@example.com');
      assert.equal(row.cart_id, 'cart-1');
      assert.equal(row.status, 'confirmed');
      const lines = (await db.prepare('SELECT * FROM order_lines WHERE order_id = ?1').bind(id).all()).results;
      assert.equal(lines.length, 1);
      assert.equal(lines[0].quantity, 2);
      const indexes = (await db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name").all()).results.map((r) => r.name);
      for (const name of ['orders_by_user', 'orders_one_per_cart', 'order_events_by_order', 'order_events_pending', 'idempotency_records_by_expiry']) {
        assert.ok(indexes.includes(name), `${name} in ${indexes}`);
      }
      const fks = (await db.prepare("SELECT * FROM pragma_foreign_key_list('order_lines')").all()).results;
      assert.equal(fks[0].table, 'orders');
      await db.prepare("UPDATE orders SET status = 'cancelled' WHERE id = ?1").bind(id).run();
      await assert.rejects(db.prepare("UPDATE orders SET status = 'lost' WHERE id = ?1").bind(id).run(), /CHECK/);
      await assert.rejects(
        db.prepare(`INSERT INTO orders (id, user_key, status, currency, total_minor, line_count, cart_version, created_at, cart_id)
                    VALUES (?1, ?2, 'confirmed', 'EUR', 1, 1, 3, 1, 'cart-1')`).bind('ord_' + 'cd'.repeat(16), userKey('old')).run(),
        /UNIQUE/,
      );
    } finally {
      await w.stop();
    }
  });
});
