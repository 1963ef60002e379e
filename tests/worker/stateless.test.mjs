// The stateless claims at the runtime tier (issue 8): nothing a user does depends on which
// worker process serves it, or on that process having served the user before.
//
// - Restart at any request: one scripted session (sign in, fill the cart, change a quantity,
//   check out with an Idempotency-Key, replay the checkout, list orders) with the workerd
//   process stopped and started between EVERY pair of steps, over the same state on disk.
// - No stickiness: the same session with its requests alternating between two independent
//   workerd processes over the same KV, Durable Object and D1 folders.
// Both must give what one long-lived process gives: the same statuses and bodies (modulo order
// ids and timestamps), one order, the stock taken once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startWorker } from './harness.mjs';

const TEA = 'stateless-tea';
const MUG = 'stateless-mug';

/** Puts the session's two products in D1 with plenty of stock. */
async function stock(w) {
  const db = await w.mf.getD1Database('DB');
  const insert = db.prepare(
    `INSERT INTO products (sku, name, description, price_minor, currency, stock, version, updated_at)
     VALUES (?1, ?2, '', ?3, 'EUR', 100, 1, '2026-11-29T08:00:00Z')`,
  );
  await db.batch([insert.bind(TEA, 'Sencha, 100 g', 1250), insert.bind(MUG, 'Mug', 800)]);
}

async function stockOf(w, sku) {
  const db = await w.mf.getD1Database('DB');
  return (await db.prepare('SELECT stock FROM products WHERE sku = ?1').bind(sku).first())?.stock;
}

async function orderRows(w) {
  const db = await w.mf.getD1Database('DB');
  return (await db.prepare('SELECT id FROM orders ORDER BY created_at').all()).results;
}

/** What a response says, with what legitimately differs between runs masked. */
async function observe(res) {
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text, (k, v) => {
      if (k === 'token' && typeof v === 'string') return '<token>';
      if (k === 'created_at' && typeof v === 'string') return '<time>';
      if (typeof v === 'string' && /^ord_[0-9a-f]{32}$/.test(v)) return '<order-id>';
      return v;
    });
  } catch {
    body = text;
  }
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    location: res.headers.get('location')?.replace(/ord_[0-9a-f]{32}/, '<order-id>') ?? null,
    replayed: res.headers.get('idempotent-replayed'),
    body,
  };
}

/**
 * The scripted session. `serve(i)` picks the worker for step i; `between()` runs between every
 * pair of steps (a restart, or nothing). Returns the transcript and the raw order ids seen.
 */
async function session({ serve, between, sub }) {
  const transcript = [];
  const ids = new Set();
  let token;
  let version;
  const key = randomUUID();
  const json = { 'content-type': 'application/json' };
  const auth = () => ({ authorization: `Bearer ${token}` });
  const steps = [
    ['sign in', () => ({ path: '/dev/token', method: 'POST', headers: json, body: JSON.stringify({ sub }) })],
    ['add 2 teas', () => ({ path: `/cart/items/${TEA}`, method: 'PUT', headers: { ...auth(), ...json }, body: '{"quantity":2}' })],
    ['add a mug', () => ({ path: `/cart/items/${MUG}`, method: 'PUT', headers: { ...auth(), ...json }, body: '{"quantity":1}' })],
    ['change the teas to 3', () => ({ path: `/cart/items/${TEA}`, method: 'PUT', headers: { ...auth(), ...json }, body: '{"quantity":3}' })],
    ['read the cart', () => ({ path: '/cart', method: 'GET', headers: auth() })],
    ['check out', () => ({ path: '/orders', method: 'POST', headers: { ...auth(), ...json, 'idempotency-key': key }, body: JSON.stringify({ cart_version: version }) })],
    ['replay the checkout', () => ({ path: '/orders', method: 'POST', headers: { ...auth(), ...json, 'idempotency-key': key }, body: JSON.stringify({ cart_version: version }) })],
    ['list orders', () => ({ path: '/orders', method: 'GET', headers: auth() })],
    ['read the emptied cart', () => ({ path: '/cart', method: 'GET', headers: auth() })],
  ];
  for (const [i, [name, build]] of steps.entries()) {
    if (i > 0) await between();
    const { path, ...init } = build();
    const res = await serve(i).fetch(path, init);
    const raw = await res.clone().text();
    for (const id of raw.match(/ord_[0-9a-f]{32}/g) ?? []) ids.add(id);
    if (name === 'sign in' && res.status === 200) token = JSON.parse(raw).token;
    if (name === 'read the cart' && res.status === 200) version = JSON.parse(raw).version;
    transcript.push({ step: name, ...(await observe(res)) });
  }
  return { transcript, ids };
}

/** The expectations every run shares, whatever served it. */
function assertCompleted({ transcript, ids }) {
  const status = Object.fromEntries(transcript.map((t) => [t.step, t.status]));
  assert.deepEqual(status, {
    'sign in': 200,
    'add 2 teas': 200,
    'add a mug': 200,
    'change the teas to 3': 200,
    'read the cart': 200,
    'check out': 201,
    'replay the checkout': 201,
    'list orders': 200,
    'read the emptied cart': 200,
  });
  const [checkout, replay, list] = ['check out', 'replay the checkout', 'list orders'].map((s) =>
    transcript.find((t) => t.step === s),
  );
  assert.equal(replay.replayed, 'true');
  assert.deepEqual(replay.body, checkout.body);
  assert.equal(checkout.body.total_minor, 3 * 1250 + 800);
  assert.equal(list.body.items.length, 1);
  assert.equal(ids.size, 1, 'one order id across checkout, replay and listing');
}

describe('stateless', () => {
  let baseline;

  describe('one long-lived worker (the reference run)', () => {
    let w;
    before(async () => {
      w = await startWorker();
      await stock(w);
    });
    after(async () => {
      await w?.stop();
    });

    test('the scripted session completes with one order and the stock taken once', async () => {
      baseline = await session({ serve: () => w, between: async () => {}, sub: 'shopper' });
      assertCompleted(baseline);
      assert.equal((await orderRows(w)).length, 1);
      assert.equal(await stockOf(w, TEA), 97);
      assert.equal(await stockOf(w, MUG), 99);
    });
  });

  describe('restart at any request', () => {
    let w;
    before(async () => {
      w = await startWorker();
      await stock(w);
    });
    after(async () => {
      await w?.stop();
    });

    test('a session with the worker restarted between every pair of steps ends as without restarts', async () => {
      let restarts = 0;
      const run = await session({
        serve: () => w,
        between: async () => {
          await w.restart();
          restarts++;
        },
        sub: 'shopper',
      });
      assert.equal(restarts, 8);
      assertCompleted(run);
      assert.deepEqual(run.transcript, baseline.transcript);
      assert.equal((await orderRows(w)).length, 1);
      assert.equal(await stockOf(w, TEA), 97);
      assert.equal(await stockOf(w, MUG), 99);
    });
  });

  describe('no stickiness', () => {
    let w1;
    let w2;
    before(async () => {
      w1 = await startWorker();
      await stock(w1);
      // A second, independent workerd process over the first one's state folders and keys.
      w2 = await startWorker({ persist: w1.persist, vars: w1.vars });
    });
    after(async () => {
      await w2?.stop();
      await w1?.stop();
    });

    test('the two processes really share the KV namespace and the D1 database', async () => {
      const kv1 = await w1.mf.getKVNamespace('CARTS');
      const kv2 = await w2.mf.getKVNamespace('CARTS');
      await kv1.put('stateless-probe', 'written by the first');
      assert.equal(await kv2.get('stateless-probe'), 'written by the first');
      await kv2.delete('stateless-probe');
      assert.equal(await kv1.get('stateless-probe'), null);
      assert.equal(await stockOf(w2, TEA), 100, 'D1 rows written through the first are read by the second');
    });

    test('a session alternating between two workers ends as on one', async () => {
      const run = await session({
        serve: (i) => (i % 2 === 0 ? w1 : w2),
        between: async () => {},
        sub: 'shopper',
      });
      assertCompleted(run);
      assert.deepEqual(run.transcript, baseline.transcript);
      for (const w of [w1, w2]) {
        assert.equal((await orderRows(w)).length, 1);
        assert.equal(await stockOf(w, TEA), 97);
      }
    });

    test('a replay served by the other worker than the checkout returns the same order', async () => {
      const sub = 'crossover';
      const token = await (
        await w1.fetch('/dev/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sub }) })
      ).json();
      const auth = { authorization: `Bearer ${token.token}`, 'content-type': 'application/json' };
      const put = await w2.fetch(`/cart/items/${MUG}`, { method: 'PUT', headers: auth, body: '{"quantity":2}' });
      const cart = await put.json();
      const key = randomUUID();
      const init = { method: 'POST', headers: { ...auth, 'idempotency-key': key }, body: JSON.stringify({ cart_version: cart.version }) };
      const first = await w1.fetch('/orders', init);
      const again = await w2.fetch('/orders', init);
      assert.equal(first.status, 201);
      assert.equal(again.status, 201);
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      assert.equal(await again.text(), await first.text());
      assert.equal((await orderRows(w1)).length, 2);
    });
  });
});
