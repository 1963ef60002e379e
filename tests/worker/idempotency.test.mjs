// Idempotent checkout at the runtime tier, for both record stores (the per-user Durable Object
// and D1): replays, key reuse, user scoping, 50 concurrent duplicates, the race for the last
// unit, an attempt held in flight, and a server restart in the middle of a checkout — before
// and after its D1 write — with exactly one order in the end.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startWorker } from './harness.mjs';
import { newKey, problem, shop, snapshot, sleep } from './checkout-helpers.mjs';

for (const backend of ['durable_object', 'd1']) {
  describe(`idempotent checkout with the ${backend} store`, () => {
    let w;
    let s;

    before(async () => {
      w = await startWorker({ vars: { IDEMPOTENCY_BACKEND: backend } });
      s = shop(w);
      await s.stock('idem-tea', { price: 1250, stock: 1000 });
    });

    after(async () => {
      await w?.stop();
    });

    test('a retry replays the same status, headers and body, marked as replayed', async () => {
      const cart = await s.add('alice', 'idem-tea', 2);
      const key = newKey();
      const body = { cart_version: cart.version };
      const first = await snapshot(await s.checkout('alice', { key, body }));
      assert.equal(first.status, 201, first.body);
      assert.equal(first.replayed, null);
      const again = await s.checkout('alice', { key, body });
      assert.equal(again.headers.get('cache-control'), 'private, no-store');
      const second = await snapshot(again);
      assert.deepEqual(second, { ...first, replayed: 'true' });
      assert.equal(await s.orderCount('alice'), 1);
      assert.equal(await s.stockOf('idem-tea'), 998);
    });

    test('a replay after the cart changed still returns the original order', async () => {
      const cart = await s.add('bob', 'idem-tea', 1);
      const key = newKey();
      const body = { cart_version: cart.version };
      const first = await snapshot(await s.checkout('bob', { key, body }));
      assert.equal(first.status, 201);
      await s.add('bob', 'idem-tea', 5);
      const replay = await snapshot(await s.checkout('bob', { key, body }));
      assert.deepEqual(replay, { ...first, replayed: 'true' });
      assert.equal(await s.orderCount('bob'), 1);
      assert.equal((await s.cart('bob')).items[0].quantity, 5, 'the new cart is left alone');
    });

    test('the same key with another body is 422 idempotency-key-reused', async () => {
      const cart = await s.add('carol', 'idem-tea', 1);
      const key = newKey();
      assert.equal((await s.checkout('carol', { key, body: { cart_version: cart.version } })).status, 201);
      const res = await s.checkout('carol', { key, body: { cart_version: cart.version, email: 'c@example.com' } });
      await problem(res, 422, '/problems/idempotency-key-reused');
      assert.equal(await s.orderCount('carol'), 1);
    });

    test('the same key from two users is two records and two orders', async () => {
      const key = newKey();
      const a = await s.add('dan', 'idem-tea', 1);
      const b = await s.add('eve', 'idem-tea', 1);
      assert.equal(a.version, b.version);
      const ra = await snapshot(await s.checkout('dan', { key, body: { cart_version: a.version } }));
      const rb = await snapshot(await s.checkout('eve', { key, body: { cart_version: b.version } }));
      assert.equal(ra.status, 201);
      assert.equal(rb.status, 201);
      assert.equal(rb.replayed, null, 'eve never sees dan\'s response');
      assert.notEqual(JSON.parse(ra.body).id, JSON.parse(rb.body).id);
      assert.equal(await s.orderCount('dan'), 1);
      assert.equal(await s.orderCount('eve'), 1);
    });

    test('a deterministic refusal is stored and replayed; the cart changing later does not alter it', async () => {
      const cart = await s.add('fay', 'idem-tea', 1);
      const key = newKey();
      const body = { cart_version: cart.version + 7 };
      const first = await snapshot(await s.checkout('fay', { key, body }));
      assert.equal(first.status, 409);
      assert.equal(first.contentType, 'application/problem+json');
      assert.equal(first.cacheControl, 'no-store');
      assert.equal(JSON.parse(first.body).type, '/problems/cart-changed');
      const replay = await snapshot(await s.checkout('fay', { key, body }));
      assert.deepEqual(replay, { ...first, replayed: 'true' });
      assert.equal(await s.orderCount('fay'), 0);
    });

    for (const hold of [0, 300]) {
      test(`50 concurrent checkouts with one key place exactly one order (held ${hold} ms)`, async () => {
        const sub = `gil-${hold}`;
        await s.stock('idem-burst', { stock: 1000 });
        const cart = await s.add(sub, 'idem-burst', 3);
        const key = newKey();
        const body = { cart_version: cart.version };
        const headers = { ...(await s.auth(sub)), 'x-edgecart-test-delay-ms': String(hold) };
        const send = () =>
          w
            .fetch('/orders', {
              method: 'POST',
              headers: { ...headers, 'content-type': 'application/json', 'idempotency-key': key },
              body: JSON.stringify(body),
            })
            .then(snapshot);
        const results = await Promise.all(Array.from({ length: 50 }, send));
        const statuses = results.map((r) => r.status);
        if (process.env.EDGECART_TEST_VERBOSE) console.log(backend, hold, statuses.join(' '));
        assert.ok(statuses.every((st) => st === 201 || st === 409), `statuses: ${statuses}`);
        const created = results.filter((r) => r.status === 201);
        assert.ok(created.length >= 1);
        assert.equal(created.filter((r) => r.replayed === null).length, 1, 'one original response');
        assert.ok(created.every((r) => r.body === created[0].body), 'every 201 is the same order');
        for (const r of results.filter((r) => r.status === 409)) {
          assert.equal(JSON.parse(r.body).type, '/problems/request-in-flight');
          assert.ok(Number(r.retryAfter) >= 1);
        }
        assert.equal(await s.orderCount(sub), 1);
        assert.equal(await s.stockOf('idem-burst'), 1000 - 3);
        const late = await send();
        assert.equal(late.status, 201);
        assert.equal(late.body, created[0].body);
      });
    }

    test('two users racing for the last unit: one order, one out-of-stock, stock never negative', async () => {
      await s.stock('idem-last', { stock: 1 });
      const a = await s.add('hal', 'idem-last', 1);
      const b = await s.add('ida', 'idem-last', 1);
      const [ra, rb] = await Promise.all([
        s.checkout('hal', { body: { cart_version: a.version } }).then(snapshot),
        s.checkout('ida', { body: { cart_version: b.version } }).then(snapshot),
      ]);
      const statuses = [ra.status, rb.status].sort();
      assert.deepEqual(statuses, [201, 409], `${ra.body} / ${rb.body}`);
      const loser = [ra, rb].find((r) => r.status === 409);
      assert.equal(JSON.parse(loser.body).type, '/problems/out-of-stock');
      assert.equal(JSON.parse(loser.body).sku, 'idem-last');
      assert.equal(await s.stockOf('idem-last'), 0);
      assert.equal((await s.orderCount('hal')) + (await s.orderCount('ida')), 1);
    });

    test('a duplicate while the first is in flight gets 409 with Retry-After, then the replay', async () => {
      const cart = await s.add('jo', 'idem-tea', 1);
      const key = newKey();
      const body = { cart_version: cart.version };
      // Held for 4 s after its claim; the duplicate comes 1.5 s in, when the claim has long been
      // made even on a loaded machine.
      const slow = s.checkout('jo', { key, body, headers: { 'x-edgecart-test-delay-ms': '4000' } }).then(snapshot);
      await sleep(1500);
      const dup = await s.checkout('jo', { key, body });
      assert.equal(dup.headers.get('cache-control'), 'no-store');
      const retry = Number(dup.headers.get('retry-after'));
      await problem(dup, 409, '/problems/request-in-flight');
      assert.ok(retry >= 1 && retry <= 30, `Retry-After ${retry}`);
      const first = await slow;
      assert.equal(first.status, 201);
      const replay = await snapshot(await s.checkout('jo', { key, body }));
      assert.deepEqual(replay, { ...first, replayed: 'true' });
      assert.equal(await s.orderCount('jo'), 1);
    });
  });

  describe(`a restart in the middle of a checkout with the ${backend} store`, () => {
    let w;
    let s;

    before(async () => {
      w = await startWorker({ vars: { IDEMPOTENCY_BACKEND: backend, IDEMPOTENCY_LEASE_SECONDS: '2' } });
      s = shop(w);
      await s.stock('crash-tea', { price: 700, stock: 50 });
    });

    after(async () => {
      await w?.stop();
    });

    async function crashDuring(sub, at) {
      // Held for 8 s at `at`; the server is restarted after 1 s, killing the attempt.
      const cart = await s.add(sub, 'crash-tea', 2);
      const key = newKey();
      const body = { cart_version: cart.version };
      const held = s
        .checkout(sub, { key, body, headers: { 'x-edgecart-test-delay-ms': '8000', 'x-edgecart-test-delay-at': at } })
        .then((r) => r.status, () => 'killed');
      await sleep(1000); // the claim has happened
      if (at === 'after-write') {
        // The D1 write comes before the hold: wait for it (well inside the 8 s).
        for (let t = Date.now(); Date.now() - t < 5000 && (await s.orderCount(sub)) === 0; ) await sleep(50);
      }
      assert.equal(await s.orderCount(sub), at === 'after-write' ? 1 : 0, 'the order is written only after-write');
      await w.restart();
      assert.notEqual(await held, 201, 'the held attempt never answered');
      return { cart, key, body };
    }

    for (const at of ['before-write', 'after-write']) {
      test(`a retry after the lease ends finishes a checkout killed ${at}, with exactly one order`, async () => {
        const sub = `crash-${at}`;
        const stockBefore = await s.stockOf('crash-tea');
        const { cart, key, body } = await crashDuring(sub, at);
        const early = await s.checkout(sub, { key, body });
        if (early.status === 409) {
          await problem(early, 409, '/problems/request-in-flight');
        } else {
          assert.equal(early.status, 201, 'only possible if the restart outlasted the lease');
        }
        await sleep(2100);
        const retry = await snapshot(await s.checkout(sub, { key, body }));
        assert.equal(retry.status, 201, retry.body);
        const order = JSON.parse(retry.body);
        assert.equal(retry.location, `/orders/${order.id}`);
        const rows = await s.orders(sub);
        assert.equal(rows.length, 1, 'exactly one order');
        assert.equal(rows[0].id, order.id);
        assert.equal(await s.stockOf('crash-tea'), stockBefore - 2, 'stock decremented once');
        const emptied = await s.cart(sub);
        assert.deepEqual(emptied.items, []);
        assert.equal(emptied.version, cart.version + 1);
        const replay = await snapshot(await s.checkout(sub, { key, body }));
        assert.deepEqual(replay, { ...retry, replayed: 'true' });
      });
    }
  });
}

describe('retention with the d1 store', () => {
  let w;
  let s;

  before(async () => {
    w = await startWorker({ vars: { IDEMPOTENCY_BACKEND: 'd1', IDEMPOTENCY_RETENTION_SECONDS: '60' } });
    s = shop(w);
    await s.stock('ret-tea', { stock: 10 });
  });

  after(async () => {
    await w?.stop();
  });

  test('a record past retention is not replayed: the key starts a new checkout', async () => {
    const db = await w.mf.getD1Database('DB');
    const cart = await s.add('rita', 'ret-tea', 1);
    const key = newKey();
    const body = { cart_version: cart.version };
    const first = await snapshot(await s.checkout('rita', { key, body }));
    assert.equal(first.status, 201);
    const { results } = await db.prepare('SELECT key, expires_at, created_at FROM idempotency_records').all();
    assert.equal(results.length, 1);
    assert.equal(results[0].expires_at - results[0].created_at, 60_000);
    // Age the record past retention (as 61 s of waiting would).
    await db.prepare('UPDATE idempotency_records SET created_at = created_at - 61000, expires_at = expires_at - 61000').run();
    const again = await snapshot(await s.checkout('rita', { key, body }));
    assert.equal(again.replayed, null, 'not a replay');
    assert.equal(again.status, 409, 'the old cart version is stale now: a fresh checkout ran');
    assert.equal(JSON.parse(again.body).type, '/problems/cart-changed');
    assert.equal(await s.orderCount('rita'), 1);
  });
});

describe('garbage collection by the Durable Object alarm', () => {
  const slow = !process.env.EDGECART_SLOW_TESTS && 'waits 65 s: set EDGECART_SLOW_TESTS=1 to run';
  let w;
  let s;

  before(async () => {
    if (slow) return;
    w = await startWorker({ vars: { IDEMPOTENCY_RETENTION_SECONDS: '60' } });
    s = shop(w);
    await s.stock('gc-tea', { stock: 10 });
  });

  after(async () => {
    await w?.stop();
  });

  /** Rows of every Durable Object's `records` table, read from the persisted SQLite files. */
  async function storedRecords() {
    const { execFileSync } = await import('node:child_process');
    const { readdirSync } = await import('node:fs');
    const { join } = await import('node:path');
    const root = join(w.persist, 'do');
    const files = readdirSync(root, { recursive: true }).filter((f) => String(f).endsWith('.sqlite'));
    let n = 0;
    for (const f of files) {
      const out = execFileSync('sqlite3', [join(root, String(f)), "SELECT count(*) FROM sqlite_master WHERE name = 'records'"]).toString().trim();
      if (out === '1') n += Number(execFileSync('sqlite3', [join(root, String(f)), 'SELECT count(*) FROM records']).toString().trim());
    }
    return n;
  }

  test('expired records (and the personal data in their bodies) are deleted by the alarm', { skip: slow, timeout: 120_000 }, async () => {
    const cart = await s.add('gwen', 'gc-tea', 1);
    const res = await s.checkout('gwen', { body: { cart_version: cart.version, email: 'gwen@example.com' } });
    assert.equal(res.status, 201);
    assert.equal(await storedRecords(), 1);
    await sleep(65_000);
    assert.equal(await storedRecords(), 0);
  });
});

for (const backend of ['durable_object', 'd1']) {
  describe(`a checkout whose client goes away (${backend} store)`, () => {
    let w;
    let s;

    before(async () => {
      w = await startWorker({ vars: { IDEMPOTENCY_BACKEND: backend } });
      s = shop(w);
      await s.stock('gone-tea', { price: 300, stock: 5 });
    });

    after(async () => {
      await w?.stop();
    });

    // Every await of a checkout (the idempotency claim, D1, the Durable Object, the cache,
    // the test delay) goes through `runtime::settled`, so a request whose I/O is torn down
    // while it waits is dropped once its abandoned promise is collected (the foundation test
    // "a request whose awaited promise never settles…" shows that mechanism). Here the client
    // leaves while the checkout waits on its test delay: locally workerd lets the request run
    // on, so the order is placed once and the retry replays it.
    test('waits through runtime::settled, and finishes once though the client left', { timeout: 60_000 }, async () => {
      const inFlight = async () => (await w.fetch('/dev/runtime')).json();
      const cart = await s.add('gina', 'gone-tea', 1);
      const key = newKey();
      const body = { cart_version: cart.version };
      const text = JSON.stringify(body);
      const socket = connect(w.port, '127.0.0.1');
      socket.on('error', () => {});
      await new Promise((r) => socket.on('connect', r));
      socket.write(
        `POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${await s.token('gina')}\r\n` +
          `Idempotency-Key: ${key}\r\nX-Edgecart-Test-Delay-Ms: 1500\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
      );
      // Claimed and waiting (the probe is the other request).
      let held;
      for (let i = 0; i < 100; i++) {
        held = await inFlight();
        if (held.requests === 2) break;
        await sleep(20);
      }
      assert.deepEqual(held, { requests: 2, promises: 1 }, 'the checkout waits on one settled promise');
      socket.destroy();
      // A promise the checkout awaited can leave the table a moment after the request does
      // (a full run once read `{ requests: 1, promises: 1 }` here): wait for both to end.
      for (let i = 0; i < 100; i++) {
        held = await inFlight();
        if (held.requests === 1 && held.promises === 0) break;
        await sleep(100);
      }
      assert.deepEqual(held, { requests: 1, promises: 0 }, 'the checkout ended');
      assert.equal(await s.orderCount('gina'), 1, 'one order');
      const retry = await s.checkout('gina', { key, body });
      assert.equal(retry.status, 201, await retry.clone().text());
      assert.equal(retry.headers.get('idempotent-replayed'), 'true');
      assert.equal(await s.orderCount('gina'), 1);
    });
  });
}
