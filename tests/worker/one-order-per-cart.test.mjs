// One cart state is bought at most once, whatever the Idempotency-Key: two tabs, a client that
// makes a new key on retry, or a location still reading the un-emptied cart from KV must not
// place a second order. The guard is D1's unique index on (user, cart id, cart version), in
// the checkout batch; the loser is answered 409 /problems/cart-changed, stored and replayed
// under its own key. For both idempotency stores. Also: the total the shopper was shown
// (`expected_total_minor`), and the lease of a claim made after a slow upload.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startWorker } from './harness.mjs';
import { newKey, problem, shop, snapshot, sleep, userKey } from './checkout-helpers.mjs';

/** Polls `check` every 50 ms until it returns a truthy value or 10 s have passed. */
async function until(what, check) {
  for (let i = 0; i < 200; i++) {
    const value = await check();
    if (value) return value;
    await sleep(50);
  }
  assert.fail(`timed out waiting for ${what}`);
}

for (const backend of ['durable_object', 'd1']) {
  describe(`one order per cart version with the ${backend} store`, () => {
    let w;
    let s;

    before(async () => {
      w = await startWorker({ vars: { IDEMPOTENCY_BACKEND: backend } });
      s = shop(w);
      await s.stock('once-tea', { price: 700, stock: 1000 });
    });

    after(async () => {
      await w?.stop();
    });

    test('a second key while the first checkout is held before its D1 write: one order, the other is 409 cart-changed', async () => {
      const cart = await s.add('ann', 'once-tea', 2);
      const body = { cart_version: cart.version };
      const firstKey = newKey();
      const held = s
        .checkout('ann', { key: firstKey, body, headers: { 'x-edgecart-test-delay-ms': '2500' } })
        .then(snapshot);
      // The held checkout has claimed its key and waits (the probe is the other request).
      await until('the first checkout to wait on its delay', async () => {
        const rt = await (await w.fetch('/dev/runtime')).json();
        return rt.requests === 2 && rt.promises === 1;
      });
      const secondKey = newKey();
      const second = await snapshot(await s.checkout('ann', { key: secondKey, body }));
      const first = await held;
      const statuses = [first.status, second.status].sort();
      assert.deepEqual(statuses, [201, 409], `${first.body} / ${second.body}`);
      const loser = first.status === 409 ? first : second;
      assert.equal(JSON.parse(loser.body).type, '/problems/cart-changed');
      assert.equal(await s.orderCount('ann'), 1);
      assert.equal(await s.stockOf('once-tea'), 998, 'stock taken once');
    });

    test('a second key after the first checkout wrote its order (cart not yet emptied) is 409 cart-changed, replayed under its key', async () => {
      const cart = await s.add('ben', 'once-tea', 1);
      const before = await s.stockOf('once-tea');
      const body = { cart_version: cart.version };
      const held = s
        .checkout('ben', {
          body,
          headers: { 'x-edgecart-test-delay-ms': '3000', 'x-edgecart-test-delay-at': 'after-write' },
        })
        .then(snapshot);
      // The order row is written; the cart in KV still shows the version that was bought,
      // as a location that has not yet seen the emptied cart would.
      await until('the first order row', async () => (await s.orderCount('ben')) === 1);
      assert.equal((await s.cart('ben')).version, cart.version, 'the cart is not emptied yet');
      const key = newKey();
      const second = await snapshot(await s.checkout('ben', { key, body }));
      assert.equal(second.status, 409, second.body);
      assert.equal(JSON.parse(second.body).type, '/problems/cart-changed');
      const first = await held;
      assert.equal(first.status, 201, first.body);
      const replay = await snapshot(await s.checkout('ben', { key, body }));
      assert.deepEqual(replay, { ...second, replayed: 'true' }, 'the refusal is stored and replayed');
      assert.equal(await s.orderCount('ben'), 1);
      assert.equal(await s.stockOf('once-tea'), before - 1);
    });

    test('eight keys at once on one cart version: exactly one 201, seven 409 cart-changed, one order', async () => {
      const cart = await s.add('cat', 'once-tea', 3);
      const before = await s.stockOf('once-tea');
      const body = { cart_version: cart.version };
      const answers = await Promise.all(
        Array.from({ length: 8 }, () => s.checkout('cat', { body }).then(snapshot)),
      );
      const created = answers.filter((a) => a.status === 201);
      const refused = answers.filter((a) => a.status === 409);
      assert.equal(created.length, 1, answers.map((a) => `${a.status} ${a.body}`).join('\n'));
      assert.equal(refused.length, 7);
      for (const r of refused) assert.equal(JSON.parse(r.body).type, '/problems/cart-changed');
      assert.equal(await s.orderCount('cat'), 1);
      assert.equal(await s.stockOf('once-tea'), before - 3);
      const order = (await s.orders('cat'))[0];
      assert.match(order.cart_id, /^[0-9a-f]{32}$/, 'the order records the cart it bought');
    });

    test('a cart that expired and was refilled to the same version number checks out again', async () => {
      const kv = await w.mf.getKVNamespace('CARTS');
      const first = await s.add('dee', 'once-tea', 1);
      assert.equal((await s.checkout('dee', { body: { cart_version: first.version } })).status, 201);
      // KV's expiration_ttl ends the emptied cart; the next write starts over at version 1.
      await kv.delete(`cart:${userKey('dee')}`);
      const refilled = await s.add('dee', 'once-tea', 1);
      assert.equal(refilled.version, first.version, 'the same version number again');
      const again = await s.checkout('dee', { body: { cart_version: refilled.version } });
      assert.equal(again.status, 201, await again.clone().text());
      const orders = await s.orders('dee');
      assert.equal(orders.length, 2);
      assert.notEqual(orders[0].cart_id, orders[1].cart_id, 'a refilled cart is another cart');
    });

    test('a cart stored before carts had ids checks out once, and its next write gives it an id', async () => {
      const kv = await w.mf.getKVNamespace('CARTS');
      const key = `cart:${userKey('eli')}`;
      await kv.put(
        key,
        JSON.stringify({
          version: 4,
          updated_at: '2026-12-01T10:00:00Z',
          currency: 'EUR',
          lines: [{ sku: 'once-tea', quantity: 1, name: 'Name of once-tea' }],
        }),
      );
      const body = { cart_version: 4 };
      const answers = await Promise.all([1, 2].map(() => s.checkout('eli', { body }).then(snapshot)));
      assert.deepEqual(answers.map((a) => a.status).sort(), [201, 409], answers.map((a) => a.body).join('\n'));
      assert.equal(await s.orderCount('eli'), 1);
      await s.add('eli', 'once-tea', 2);
      assert.match(JSON.parse(await kv.get(key)).id, /^[0-9a-f]{32}$/);
    });

    test('expected_total_minor other than the total now is 409 price-changed with the total, stored and replayed', async () => {
      const cart = await s.add('fox', 'once-tea', 2);
      const key = newKey();
      const body = { cart_version: cart.version, expected_total_minor: 1300 };
      const res = await s.checkout('fox', { key, body });
      const p = await problem(res, 409, '/problems/price-changed');
      assert.equal(p.total_minor, 1400);
      assert.equal(p.currency, 'EUR');
      const replay = await s.checkout('fox', { key, body });
      assert.equal(replay.status, 409);
      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
      await replay.arrayBuffer();
      assert.equal(await s.orderCount('fox'), 0, 'nothing bought');
      const ok = await s.checkout('fox', { body: { cart_version: cart.version, expected_total_minor: 1400 } });
      assert.equal(ok.status, 201, await ok.clone().text());
      assert.equal((await ok.json()).total_minor, 1400);
    });
  });
}

describe('the idempotency lease counts from the claim', () => {
  let w;
  let s;

  before(async () => {
    w = await startWorker({ vars: { IDEMPOTENCY_BACKEND: 'd1', IDEMPOTENCY_LEASE_SECONDS: '2' } });
    s = shop(w);
    await s.stock('drip-tea', { price: 500, stock: 100 });
  });

  after(async () => {
    await w?.stop();
  });

  test('a body dripped in over longer than the lease still gets a full lease: a duplicate right after the claim is 409', { timeout: 60_000 }, async () => {
    const cart = await s.add('gus', 'drip-tea', 1);
    const key = newKey();
    const text = JSON.stringify({ cart_version: cart.version });
    const socket = connect(w.port, '127.0.0.1');
    socket.on('error', () => {});
    const reply = new Promise((resolve) => {
      let data = '';
      socket.on('data', (chunk) => {
        data += chunk;
        if (data.includes('\r\n\r\n')) resolve(data);
      });
    });
    await new Promise((r) => socket.on('connect', r));
    socket.write(
      `POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${await s.token('gus')}\r\n` +
        `Idempotency-Key: ${key}\r\nX-Edgecart-Test-Delay-Ms: 2500\r\nConnection: close\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n`,
    );
    // 3 s of upload: longer than the 2 s lease.
    const bytes = Buffer.from(text);
    for (let i = 0; i < bytes.length; i++) {
      socket.write(bytes.subarray(i, i + 1));
      await sleep(3000 / bytes.length);
    }
    const db = await w.mf.getD1Database('DB');
    await until('the claim', async () => {
      const row = await db.prepare("SELECT state FROM idempotency_records WHERE state = 'in_progress'").first();
      return row !== null;
    });
    const duplicate = await s.checkout('gus', { key, body: text });
    await problem(duplicate, 409, '/problems/request-in-flight');
    assert.match(await reply, /^HTTP\/1\.1 201 /);
    socket.destroy();
    assert.equal(await s.orderCount('gus'), 1);
  });
});
