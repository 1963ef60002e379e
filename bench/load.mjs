// The load run (issue 8): a mixed storefront workload for LOAD_SECONDS (60) at
// LOAD_CONNECTIONS (32) concurrent connections against workerd directly (Miniflare on a
// port, no wrangler proxy): catalogue reads, cart reads and writes, and checkouts each retried
// with the same Idempotency-Key (a sequential replay, or a concurrent duplicate).
//
// Pass conditions: no 5xx and no connection error; every checkout exactly once — the orders
// in D1 are exactly the distinct keys that were answered 201, and every answer for one key
// names the same order. Published: throughput and latency percentiles (p50/p90/p99) per kind
// of request and overall, on stdout and in bench/results/load-<date>.json.
//
// Each of the 32 lanes shops as its own 8 users in turn (256 users), so a user's cart is
// written by one lane only (no cart-changed races between lanes) and well under once a second
// (Workers KV allows one write per second per key). Products get ample stock, so checkouts
// are never refused for stock.
//
// The events mode (LOAD_MODE=events, or `npm run bench:load -- --events`, issue 21) adds
// cancellations (a fifth of the placed orders, half of them by two cancels at once) and a
// loopback webhook receiver (tests/worker/receiver.mjs) that answers 500 to one delivery in
// ten; after the run it waits for the queue to drain. Its pass conditions: every event row in
// D1 (one order.confirmed per order, one order.cancelled per cancelled order) delivered; the
// receiver saw exactly those webhook-ids, each with a valid Standard Webhooks signature, and no
// (order, type) under two ids. Published: events per second and the delivery delay (commit
// to first 2xx) p50/p95.
//
// Usage: node bench/load.mjs (needs build/entry.mjs). Environment: LOAD_SECONDS,
// LOAD_CONNECTIONS, LOAD_MODE, BENCH_OUT. Exit code 1 when a pass condition fails. Not part of
// `npm test`.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from '../tests/worker/harness.mjs';
import { Webhook } from 'standardwebhooks';
import { startReceiver } from '../tests/worker/receiver.mjs';
import { minter, start } from './memory.mjs';

const SECONDS = Number(process.env.LOAD_SECONDS ?? 60);
const CONNECTIONS = Number(process.env.LOAD_CONNECTIONS ?? 32);
const USERS_PER_LANE = 8;
const OUT = process.env.BENCH_OUT ?? join(ROOT, 'bench', 'results');
const EVENTS = process.env.LOAD_MODE === 'events' || process.argv.includes('--events');
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

const log = (...a) => console.error('[load]', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Every request: its kind, status (or 'error') and latency. */
const records = [];

async function timed(w, kind, path, init = {}) {
  const t0 = performance.now();
  let status;
  let body = '';
  let headers = new Headers();
  try {
    const res = await w.fetch(path, init);
    body = await res.text();
    status = res.status;
    headers = res.headers;
  } catch (e) {
    status = 'error';
    body = e.cause?.message ?? e.message;
  }
  records.push({ kind, status, ms: performance.now() - t0 });
  return { status, body, headers };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main() {
  const receiver = EVENTS ? await startReceiver() : null;
  // One delivery in ten fails: the retries are part of the run.
  receiver?.answer(() => (Math.random() < 0.1 ? 500 : 'ok'));
  const w = await start({
    inspector: false,
    vars: EVENTS
      ? { ORDER_WEBHOOK_URL: receiver.url, ORDER_WEBHOOK_SECRET: SECRET, ORDER_WEBHOOK_RETRY_BASE_SECONDS: '1' }
      : {},
  });
  /** Orders answered 201 and the cancels sent. */
  const placed = new Set();
  const cancelled = new Set();
  try {
    const db = await w.mf.getD1Database('DB');
    await db.prepare('UPDATE products SET stock = 1000000').run();
    const skus = (await db.prepare('SELECT sku FROM products ORDER BY sku').all()).results.map((r) => r.sku);
    const mint = await minter(w.vars);
    const tokens = await Promise.all(
      Array.from({ length: CONNECTIONS * USERS_PER_LANE }, (_, i) => mint(`load-${i}`)),
    );

    /** key → { order ids answered 201, statuses } */
    const keys = new Map();
    const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];

    async function checkout(token, cartVersion, key) {
      const init = {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ cart_version: cartVersion }),
      };
      // Until it is answered (a duplicate in flight is told 409 + Retry-After).
      for (let attempt = 0; attempt < 20; attempt++) {
        const r = await timed(w, 'checkout', '/orders', init);
        const k = keys.get(key);
        k.statuses.push(r.status);
        if (r.status === 201) {
          k.ids.add(JSON.parse(r.body).id);
          placed.add(JSON.parse(r.body).id);
          return r;
        }
        if (r.status !== 409 || !r.headers.get('retry-after')) return r;
        await sleep(100);
      }
      return null;
    }

    const deadline = Date.now() + SECONDS * 1000;
    const t0 = Date.now();
    log(`${CONNECTIONS} connections for ${SECONDS} s, ${tokens.length} users, ${skus.length} products`);
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async (_, lane) => {
        const mine = tokens.slice(lane * USERS_PER_LANE, (lane + 1) * USERS_PER_LANE);
        const filled = new Array(mine.length).fill(false);
        for (let n = 0; Date.now() < deadline; n++) {
          const u = n % mine.length;
          const token = mine[u];
          const auth = { authorization: `Bearer ${token}` };
          const roll = Math.random();
          if (roll < 0.3) {
            await timed(w, 'product', `/products/${pick(skus)}`);
          } else if (roll < 0.45) {
            await timed(w, 'listing', `/products?limit=20`);
          } else if (roll < 0.7) {
            await timed(w, 'cart read', '/cart', { headers: auth });
          } else if (roll < 0.85 || !filled[u]) {
            const r = await timed(w, 'cart write', `/cart/items/${pick(skus)}`, {
              method: 'PUT',
              headers: { ...auth, 'content-type': 'application/json' },
              body: JSON.stringify({ quantity: 1 + Math.floor(Math.random() * 3) }),
            });
            if (r.status === 200) filled[u] = true;
          } else {
            const cart = await timed(w, 'cart read', '/cart', { headers: auth });
            if (cart.status !== 200) continue;
            const version = JSON.parse(cart.body).version;
            const key = randomUUID();
            keys.set(key, { ids: new Set(), statuses: [] });
            if (Math.random() < 0.5) {
              // The client lost the answer and retries: a sequential replay.
              await checkout(token, version, key);
              await checkout(token, version, key);
            } else {
              // The client sent twice at once: one runs, the other waits (409) then replays.
              await Promise.all([checkout(token, version, key), checkout(token, version, key)]);
            }
            filled[u] = false;
            const id = [...(keys.get(key)?.ids ?? [])][0];
            if (EVENTS && id && Math.random() < 0.2) {
              const cancel = () => timed(w, 'cancel', `/orders/${id}/cancel`, { method: 'POST', headers: auth });
              const answers = Math.random() < 0.5 ? [await cancel()] : await Promise.all([cancel(), cancel()]);
              if (answers.some((a) => a.status === 200)) cancelled.add(id);
            }
          }
        }
      }),
    );
    const seconds = (Date.now() - t0) / 1000;

    const orders = await db.prepare('SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS ids FROM orders').first();
    const answered = [...keys.values()].filter((k) => k.ids.size > 0);
    const allIds = new Set(answered.flatMap((k) => [...k.ids]));
    const splitKeys = answered.filter((k) => k.ids.size > 1).length;
    const unanswered = keys.size - answered.length;
    const serverErrors = records.filter((r) => r.status === 'error' || r.status >= 500).length;

    const events = EVENTS ? await drainEvents(db, receiver, placed, cancelled, t0) : null;

    const kinds = ['product', 'listing', 'cart read', 'cart write', 'checkout', ...(EVENTS ? ['cancel'] : []), 'all'];
    const rows = kinds.map((kind) => {
      const rs = kind === 'all' ? records : records.filter((r) => r.kind === kind);
      const ms = rs.map((r) => r.ms).sort((a, b) => a - b);
      const statuses = {};
      for (const r of rs) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      return {
        kind,
        requests: rs.length,
        rps: rs.length / seconds,
        p50: percentile(ms, 50),
        p90: percentile(ms, 90),
        p99: percentile(ms, 99),
        statuses,
      };
    });
    const ok =
      serverErrors === 0 &&
      splitKeys === 0 &&
      unanswered === 0 &&
      orders.n === answered.length &&
      orders.ids === allIds.size &&
      allIds.size === answered.length &&
      (events === null || events.ok);

    const result = {
      date: new Date().toISOString(),
      ok,
      seconds,
      connections: CONNECTIONS,
      users: tokens.length,
      rows,
      checkouts: {
        keys: keys.size,
        keys_answered_201: answered.length,
        keys_never_answered: unanswered,
        keys_with_two_orders: splitKeys,
        orders_in_d1: orders.n,
        distinct_order_ids_in_d1: orders.ids,
      },
      ...(events ? { events } : {}),
    };
    await mkdir(OUT, { recursive: true });
    const file = join(OUT, `load-${result.date.replace(/[:.]/g, '-')}.json`);
    await writeFile(file, JSON.stringify(result, null, 2));

    console.log(`## Mixed load: ${CONNECTIONS} connections, ${seconds.toFixed(1)} s, ${tokens.length} users, workerd direct\n`);
    console.log('| requests | count | req/s | p50 ms | p90 ms | p99 ms | statuses |');
    console.log('|---|---|---|---|---|---|---|');
    for (const r of rows) {
      console.log(
        `| ${r.kind} | ${r.requests} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p90.toFixed(1)} | ${r.p99.toFixed(1)} | ${JSON.stringify(r.statuses)} |`,
      );
    }
    const c = result.checkouts;
    console.log(
      `\n- checkouts: ${c.keys} idempotency keys, ${c.keys_answered_201} answered 201, ${c.orders_in_d1} orders in D1 ` +
        `(${c.distinct_order_ids_in_d1} distinct ids); keys never answered: ${c.keys_never_answered}; keys with two orders: ${c.keys_with_two_orders}`,
    );
    console.log(`- 5xx or connection errors: ${serverErrors}`);
    if (events) {
      const e = events;
      console.log(
        `- events: ${e.rows_in_d1} in D1 (${e.expected} expected: ${placed.size} confirmed + ${cancelled.size} cancelled), ` +
          `${e.delivered_in_d1} delivered, ${e.distinct_ids_received} webhook-ids received in ${e.requests} requests ` +
          `(${e.retried} retried deliveries, ${e.duplicates} duplicate deliveries of one id); lost: ${e.lost}; ` +
          `unknown ids: ${e.unknown}; (order, type) under two ids: ${e.split}; bad signatures: ${e.bad_signatures}`,
      );
      console.log(
        `- delivery: ${e.events_per_second.toFixed(1)} events/s over ${e.seconds.toFixed(1)} s; delay commit → first 2xx ` +
          `p50 ${e.delay_ms.p50.toFixed(0)} ms, p95 ${e.delay_ms.p95.toFixed(0)} ms, max ${e.delay_ms.max.toFixed(0)} ms`,
      );
    }
    console.log(`- ${ok ? 'PASS' : 'FAIL'}; raw figures in ${file}`);
    process.exitCode = ok ? 0 : 1;
  } finally {
    await w.stop();
    await receiver?.stop();
  }
}

/** Waits (up to 120 s) until no event is pending, then checks deliveries against D1. */
async function drainEvents(db, receiver, placed, cancelled, t0) {
  const drainStart = Date.now();
  for (;;) {
    const { n } = await db.prepare("SELECT COUNT(*) AS n FROM order_events WHERE delivery = 'pending'").first();
    if (n === 0 || Date.now() - drainStart > 120_000) break;
    await sleep(200);
  }
  const rows = (await db.prepare('SELECT id, order_id, type, delivery, created_at FROM order_events').all()).results;
  const inD1 = new Map(rows.map((r) => [r.id, r]));
  const ok2xx = receiver.requests.filter((q) => q.action === 'ok');
  const firstOk = new Map();
  for (const q of ok2xx) if (!firstOk.has(q.id)) firstOk.set(q.id, q.at);
  const received = new Set(receiver.requests.map((q) => q.id));
  const wh = new Webhook(SECRET);
  let badSignatures = 0;
  const idsOf = new Map();
  for (const q of receiver.requests) {
    let body;
    try {
      body = wh.verify(q.body, q.headers);
    } catch {
      badSignatures++;
      continue;
    }
    const k = `${body.data.id} ${body.type}`;
    if (!idsOf.has(k)) idsOf.set(k, new Set());
    idsOf.get(k).add(q.id);
  }
  const delays = rows.filter((r) => firstOk.has(r.id)).map((r) => firstOk.get(r.id) - r.created_at).sort((a, b) => a - b);
  const lastOk = Math.max(...firstOk.values());
  const expected = placed.size + cancelled.size;
  const result = {
    expected,
    rows_in_d1: rows.length,
    delivered_in_d1: rows.filter((r) => r.delivery === 'delivered').length,
    requests: receiver.requests.length,
    distinct_ids_received: received.size,
    retried: receiver.requests.filter((q) => q.action !== 'ok').length,
    duplicates: ok2xx.length - firstOk.size,
    lost: rows.filter((r) => !firstOk.has(r.id)).length,
    unknown: [...received].filter((id) => !inD1.has(id)).length,
    split: [...idsOf.values()].filter((ids) => ids.size > 1).length,
    bad_signatures: badSignatures,
    seconds: (lastOk - t0) / 1000,
    events_per_second: firstOk.size / ((lastOk - t0) / 1000),
    delay_ms: { p50: percentile(delays, 50), p95: percentile(delays, 95), max: delays.at(-1) ?? NaN },
  };
  result.ok =
    rows.length === expected &&
    result.delivered_in_d1 === rows.length &&
    result.lost === 0 &&
    result.unknown === 0 &&
    result.split === 0 &&
    result.bad_signatures === 0;
  return result;
}

await main();
