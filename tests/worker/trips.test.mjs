// The round trips each route makes, counted on the built worker (never timed).
//
// A trip is one call from the worker to a binding that leaves the isolate: a KV get or put, a
// Cache API match / put / delete, a call on a Durable Object stub, a D1 query or `batch()` (one
// round trip and one transaction, however many statements), a queue send, a Rate Limiting
// `limit()` (kept on the machine on Cloudflare, but counted). `prepare`, `bind`, DO ids and
// stubs are local and are no trip. The worker runs as deployed, wrapped by
// bench/edge/wrap.mjs (bench/edge/edgecart.mjs: test and bench infrastructure, never in the
// deployed bundle), which counts each call by kind with no delay (profile `zero`). A D1 call is
// `d1_primary` unless it goes through a D1 session that may read a replica (`d1_replica`): the
// public catalogue's misses, cart pricing and order reads go through a session
// (first-unconstrained, or a bookmark); writes and checkout pricing are primary trips. At a
// far location each primary trip costs a cross-continent round trip, a replica trip a
// regional one (bench/edge/latency.mjs).
//
// Every call of a request counts, its waitUntil work included (a cache store after the
// response is still a call): the wrapper reports a request's calls once that work settled.
// The table below is what the worker does today, measured and then written down; a change
// that adds (or removes) a trip fails here and must update the table on purpose. Why each
// route has its count:
//
// - GET /me: the token is verified in the isolate (inline JWKS): no trip.
// - GET /cart, empty: the cart's KV read; nothing to price, so no D1 query.
// - GET /cart, one line: the KV read, then one D1 query pricing every line (`IN (…)`), in a
//   session that may read a replica (the cart's bookmark says how new it must be).
// - PUT /cart/items/{sku}: the write limit (ratelimit), the cart's KV read, one D1 query for
//   the product (price, currency, existence) in a replica session, the cart's KV write.
// - GET /products/{sku}, a miss: the product's key (one cache match: its page or a mark),
//   the product and its revision in one D1 read through a session (a replica may answer),
//   then in waitUntil the page's store (one cache put) under that same key.
// - GET /products/{sku}, a hit: the product's key (one cache match), nothing else.
// - GET /products/{sku}, another product: its own key, so a miss as the first.
// - GET /products (first page), a miss with no generation mirror, then a hit: the
//   generation's mirror and the page (two matches on a hit; on a miss, the page and the
//   generation in one read, then two cache puts).
// - PUT /products/{sku} (the merchant): the write as one D1 batch in a session (product,
//   revision, generation) at the primary, then, before answering, the generation's mirror
//   and the product's key (a mark over its page) overwritten with the write's revision and
//   bookmark (two cache puts).
// - GET /products/{sku} after it: the product's key (one match: the mark), the row read
//   through a session from the write's bookmark (a replica at least as new as the write), the
//   page stored over the mark.
// - POST /orders, a new Idempotency-Key: the write limit; the claim in the user's Durable
//   Object; the cart's KV read; one D1 query pricing it on the primary; the checkout as one D1
//   batch on the primary, in a `first-primary` session that reports its bookmark (order, its
//   order.confirmed event in the outbox, lines, stock with the revisions of products whose
//   band moved, the generation bumped only then, verification); the event sent to the
//   ORDER_EVENTS queue (one sendBatch); the emptied cart's KV write; the record completed in
//   the Durable Object. Two of 42 Sencha leave it in_stock: no cache call (a band change would
//   add one mark put per changed product and one for the listing generation). The queue's
//   consumer (the webhook delivery) runs outside the request and
//   is not counted.
// - POST /orders, the same key again (a replay): the write limit and the claim, which answers
//   with the stored response: no D1, no KV.
// - GET /orders: orders and their lines in one D1 batch, in a session that may read a replica.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ROOT, devToken, startWorker } from './harness.mjs';
import { traced } from '../../bench/edge/client.mjs';

/** Route → the trips it makes today. */
const TABLE = [
  ['GET /health', 'GET', '/health', {}],
  ['GET /me', 'GET', '/me', {}],
  ['GET /cart (empty)', 'GET', '/cart', { kv_read: 1 }],
  ['PUT /cart/items/{sku}', 'PUT', '/cart/items/tea-sencha-100g', { ratelimit: 1, kv_read: 1, d1_replica: 1, kv_write: 1 }],
  ['GET /cart (one line)', 'GET', '/cart', { kv_read: 1, d1_replica: 1 }],
  ['GET /products/{sku} (miss)', 'GET', '/products/tea-sencha-100g', { cache_match: 1, d1_replica: 1, cache_put: 1 }],
  ['GET /products/{sku} (hit)', 'GET', '/products/tea-sencha-100g', { cache_match: 1 }],
  ['GET /products/{sku} (another product, miss)', 'GET', '/products/tea-gyokuro-50g', { cache_match: 1, d1_replica: 1, cache_put: 1 }],
  ['GET /products (miss)', 'GET', '/products', { cache_match: 1, d1_replica: 1, cache_put: 2 }],
  ['GET /products (hit)', 'GET', '/products', { cache_match: 2 }],
  ['PUT /products/{sku}', 'PUT', '/products/tea-sencha-100g', { d1_primary: 1, cache_put: 2 }],
  ['GET /products/{sku} (miss after the write, from its bookmark)', 'GET', '/products/tea-sencha-100g', { cache_match: 1, d1_replica: 1, cache_put: 1 }],
  [
    'POST /orders (new key)',
    'POST',
    '/orders',
    { ratelimit: 1, do_call: 2, kv_read: 1, d1_primary: 2, queue_send: 1, kv_write: 1 },
  ],
  ['POST /orders (replay)', 'POST', '/orders', { ratelimit: 1, do_call: 1 }],
  ['GET /orders', 'GET', '/orders', { d1_replica: 1 }],
];

let w;
let token;
let merchant;

before(async () => {
  w = await startWorker({ scriptPath: join(ROOT, 'bench', 'edge', 'edgecart.mjs'), modulesRoot: ROOT });
  token = await devToken(w, { sub: 'trip-counter' });
  merchant = await devToken(w, { sub: 'trip-merchant', scope: 'catalog:write' });
});

after(async () => {
  await w?.stop();
});

/** The request each row sends: a bearer, and the bodies the writes need. */
async function requestOf(method, path, cartVersion) {
  const headers = { authorization: `Bearer ${token}` };
  if (method === 'PUT' && path.startsWith('/products/')) {
    // The seed's own values: the cart priced above still checks out below.
    const product = { name: 'Sencha, 100 g', description: 'A new description.', price_minor: 1250, currency: 'EUR', stock: 42 };
    return { headers: { authorization: `Bearer ${merchant}`, 'content-type': 'application/json' }, body: JSON.stringify(product) };
  }
  if (method === 'PUT') {
    return { headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ quantity: 2 }) };
  }
  if (method === 'POST') {
    return {
      headers: { ...headers, 'content-type': 'application/json', 'idempotency-key': 'trips-checkout-1' },
      body: JSON.stringify({ cart_version: cartVersion }),
    };
  }
  return { headers };
}

test('each route makes the trips of the table, at the primary or a replica as listed', async () => {
  let cartVersion = 0;
  for (const [name, method, path, expected] of TABLE) {
    const r = await traced(w.url, method, path, await requestOf(method, path, cartVersion));
    assert.ok(r.status < 300, `${name}: status ${r.status}: ${r.text.slice(0, 300)}`);
    if (method === 'GET' && path === '/cart') cartVersion = JSON.parse(r.text).version;
    if (name === 'POST /orders (replay)') assert.equal(r.headers.get('idempotent-replayed'), 'true', name);
    const calls = r.calls.map((c) => `${c.kind}${c.afterResponse ? ' (after the response)' : ''}: ${c.what}`);
    assert.deepEqual(r.trips, expected, `${name}: the calls were\n  ${calls.join('\n  ')}`);
    assert.equal(r.primaryTrips, expected.d1_primary ?? 0, name);
  }
});

test('the wrapper keeps the answer and names the trips in a header', async () => {
  // The checkout above emptied the cart: one KV read, nothing to price.
  const r = await traced(w.url, 'GET', '/cart', { headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.text).items, []);
  assert.equal(r.headers.get('x-edge-trips'), 'kv_read:1');
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
});
