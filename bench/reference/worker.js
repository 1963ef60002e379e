// The JS reference worker for `npm run bench`: what an idiomatic Hono + jose worker does for
// the same routes as edgecart, with the same bindings, keys, storage keys and data, so that
// edgecart's throughput can be read as a ratio against it.
//
// It is deliberately a fair competitor, not a straw man: keys are imported once per isolate
// (jose's local JWK set caches imported CryptoKeys, HMAC keys are cached here), signatures
// go through workerd's native WebCrypto, the algorithm is pinned by the key entry (never by
// the token), and issuer / audience / exp are checked, as edgecart does.
//
// Routes (all mirror edgecart's contract in docs/product.md):
//   GET /health          the empty route: constant JSON, no storage (per-request overhead)
//   GET /me              bearer verification → {sub, iss, scopes, exp}, private, no-store
//   GET /products/:sku   Cache API hit, or D1 row → JSON stored via waitUntil; Cache-Status
//   GET /cart            bearer verification, KV read of `cart:<user_key>`, lines priced from
//                        D1 with one `IN (…)` query, as edgecart prices them
//   PUT /cart/items/:sku KV read of the cart, one D1 `IN (…)` query pricing the new cart (and
//                        checking the sku exists), KV write
//   GET /products        the first page (`?limit=`), cached like a product
//   POST /orders         Idempotency-Key kept in D1's idempotency_records (a Hono developer
//                        has D1 at hand: no Durable Object): claim with INSERT … ON CONFLICT
//                        DO NOTHING, replay what a completed record stored; else KV read of the
//                        cart, D1 pricing, one D1 batch (order, lines, stock, record), KV write
//   GET /orders          the caller's orders, then their lines: two D1 queries
//   GET /floor/...       bench-only: one KV get, one D1 query or one cache match, nothing else
//
// Bindings: JWT_JWKS, JWT_ISSUER, JWT_AUDIENCE (vars), CARTS (KV), DB (D1), the default cache.
// Every D1 query goes through the binding itself (no D1 session): at the primary.
// Not a product: no CORS, no rate limits, no If-Match, minimal error bodies.
import { Hono } from 'hono';
import { jwtVerify, createLocalJWKSet, importJWK } from 'jose';

const PRODUCT_COLUMNS =
  'sku, name, description, price_minor, currency, stock, version, updated_at';
const SKU = /^[a-z0-9-]{1,64}$/;

// Per-isolate state: parsed key sets and imported keys (public material, not user state).
let keyState;

function keys(env) {
  if (!keyState || keyState.source !== env.JWT_JWKS) {
    const jwks = JSON.parse(env.JWT_JWKS);
    const byKid = new Map(jwks.keys.map((k) => [k.kid, k]));
    const asymmetric = { keys: jwks.keys.filter((k) => k.kty !== 'oct') };
    keyState = {
      source: env.JWT_JWKS,
      byKid,
      local: createLocalJWKSet(asymmetric),
      hmac: new Map(),
      audiences: String(env.JWT_AUDIENCE)
        .split(',')
        .map((a) => a.trim())
        .filter(Boolean),
    };
  }
  return keyState;
}

function problem(c, status, type, title, headers = {}) {
  return c.body(JSON.stringify({ type, title, status }), status, {
    'content-type': 'application/problem+json',
    ...headers,
  });
}

const CHALLENGE = 'Bearer realm="edgecart"';

/** The verified identity, or a 401 Response. */
async function authenticate(c) {
  const header = c.req.header('authorization');
  const match = header && /^bearer ([^ ]+)$/i.exec(header);
  if (!match) {
    return problem(c, 401, '/problems/missing-token', 'Missing bearer token', {
      'www-authenticate': CHALLENGE,
    });
  }
  const ks = keys(c.env);
  try {
    // The key entry decides the algorithm; the token's header must agree with it.
    const resolve = async (header, token) => {
      const entry = typeof header.kid === 'string' ? ks.byKid.get(header.kid) : undefined;
      if (!entry || entry.alg !== header.alg) throw new Error('no key');
      if (entry.kty === 'oct') {
        let key = ks.hmac.get(entry.kid);
        if (!key) {
          key = await importJWK(entry, entry.alg);
          ks.hmac.set(entry.kid, key);
        }
        return key;
      }
      return ks.local(header, token);
    };
    const { payload } = await jwtVerify(match[1], resolve, {
      issuer: c.env.JWT_ISSUER,
      audience: ks.audiences,
      clockTolerance: 60,
      requiredClaims: ['exp', 'sub'],
    });
    const scopes =
      typeof payload.scope === 'string'
        ? payload.scope.split(' ').filter(Boolean)
        : Array.isArray(payload.scp)
          ? payload.scp.filter((s) => typeof s === 'string')
          : [];
    return { iss: payload.iss, sub: payload.sub, scopes, exp: payload.exp };
  } catch {
    return problem(c, 401, '/problems/invalid-token', 'Invalid token', {
      'www-authenticate': `${CHALLENGE}, error="invalid_token"`,
    });
  }
}

function hex(buffer) {
  const bytes = new Uint8Array(buffer);
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

const encoder = new TextEncoder();

/** edgecart's `hash::sha256_parts`: SHA-256 over u64-BE-length-prefixed parts, hex. */
async function sha256Parts(parts) {
  const total = parts.reduce((n, p) => n + 8 + p.length, 0);
  const buf = new Uint8Array(total);
  const view = new DataView(buf.buffer);
  let at = 0;
  for (const p of parts) {
    view.setBigUint64(at, BigInt(p.length));
    buf.set(p, at + 8);
    at += 8 + p.length;
  }
  return hex(await crypto.subtle.digest('SHA-256', buf));
}

/** edgecart's `Identity::user_key`: `sha256_parts` of iss and sub. */
function userKey(iss, sub) {
  return sha256Parts([encoder.encode(iss), encoder.encode(sub)]);
}

/** edgecart's `cart::model::price`. */
function price(cart, products) {
  let subtotal = 0;
  const items = cart.lines.map((line) => {
    const p = products.find((x) => x.sku === line.sku);
    const usable = p && p.currency === cart.currency && p.price_minor >= 0;
    if (usable) {
      const total = p.price_minor * line.quantity;
      if (Number.isSafeInteger(total) && Number.isSafeInteger(subtotal + total)) {
        subtotal += total;
        return {
          sku: line.sku,
          name: p.name,
          unit_price_minor: p.price_minor,
          quantity: line.quantity,
          line_total_minor: total,
          available: true,
        };
      }
    }
    return {
      sku: line.sku,
      name: p ? p.name : line.name,
      unit_price_minor: null,
      quantity: line.quantity,
      line_total_minor: null,
      available: false,
    };
  });
  return { items, subtotal_minor: subtotal, currency: cart.currency ?? null, version: cart.version };
}

const app = new Hono();

app.get('/health', (c) =>
  c.json({ status: 'ok', version: '0.1.0' }, 200, { 'cache-control': 'no-store' }),
);

app.get('/me', async (c) => {
  const id = await authenticate(c);
  if (id instanceof Response) return id;
  return c.json(id, 200, { 'cache-control': 'private, no-store' });
});

// edgecart's cache scheme (src/catalogue/caching.rs, edge_cache.rs): every entry's key holds
// the catalogue generation, which each location mirrors in its own cache for 30 s and reads
// from D1 only when the mirror is missing. A hit is therefore two cache matches.
const CACHE_PREFIX = '/.edgecart-cache';
const GENERATION_TTL = 30;
const CACHE_CONTROL = 'public, max-age=60, s-maxage=300, stale-while-revalidate=60';

async function generation(c, origin) {
  const key = `${origin}${CACHE_PREFIX}/generation`;
  const mirrored = await caches.default.match(key);
  if (mirrored) {
    const g = Number((await mirrored.text()).trim());
    if (Number.isSafeInteger(g)) return g;
  }
  const row = await c.env.DB.prepare('SELECT generation FROM catalogue_meta WHERE id = 1').first();
  const g = row ? row.generation : 1;
  const mirror = new Response(String(g), {
    headers: {
      'content-type': 'text/plain',
      'cache-control': `public, max-age=${GENERATION_TTL}, s-maxage=${GENERATION_TTL}`,
    },
  });
  c.executionCtx.waitUntil(caches.default.put(key, mirror));
  return g;
}

app.get('/products/:sku', async (c) => {
  const sku = c.req.param('sku');
  if (!SKU.test(sku)) return problem(c, 400, '/problems/bad-request', 'Bad sku');
  const origin = new URL(c.req.url).origin;
  const key = `${origin}${CACHE_PREFIX}/g${await generation(c, origin)}/products/${sku}`;
  const hit = await caches.default.match(key);
  if (hit && hit.status === 200) {
    const res = new Response(hit.body, hit);
    res.headers.set('cache-status', 'edgecart; hit');
    return res;
  }
  const row = await c.env.DB.prepare(`SELECT ${PRODUCT_COLUMNS} FROM products WHERE sku = ?1`)
    .bind(sku)
    .first();
  if (!row) return problem(c, 404, '/problems/not-found', 'Not found');
  const body = JSON.stringify(row);
  const digest = await sha256Parts([encoder.encode(body)]);
  const now = new Date().toUTCString();
  const headers = {
    'content-type': 'application/json',
    'cache-control': CACHE_CONTROL,
    etag: `"${digest.slice(0, 32)}"`,
    'last-modified': new Date(row.updated_at).toUTCString(),
    date: now,
  };
  c.executionCtx.waitUntil(caches.default.put(key, new Response(body, { headers })));
  return c.body(body, 200, { ...headers, 'cache-status': 'edgecart; fwd=uri-miss; stored' });
});

app.get('/cart', async (c) => {
  const id = await authenticate(c);
  if (id instanceof Response) return id;
  const text = await c.env.CARTS.get(`cart:${await userKey(id.iss, id.sub)}`);
  const cart = text ? JSON.parse(text) : { version: 0, currency: null, lines: [] };
  let products = [];
  const skus = [...new Set(cart.lines.map((l) => l.sku))].sort();
  if (skus.length) {
    const marks = skus.map((_, i) => `?${i + 1}`).join(', ');
    const { results } = await c.env.DB.prepare(
      `SELECT ${PRODUCT_COLUMNS} FROM products WHERE sku IN (${marks}) ORDER BY sku`,
    )
      .bind(...skus)
      .all();
    products = results;
  }
  return c.json(price(cart, products), 200, {
    'cache-control': 'private, no-store',
    etag: `"${cart.version}"`,
  });
});

const CART_TTL = 2592000;

async function loadCart(c, key) {
  const text = await c.env.CARTS.get(key);
  return text ? JSON.parse(text) : { version: 0, currency: null, lines: [] };
}

async function productsFor(c, skus) {
  if (!skus.length) return [];
  const marks = skus.map((_, i) => `?${i + 1}`).join(', ');
  const { results } = await c.env.DB.prepare(
    `SELECT ${PRODUCT_COLUMNS} FROM products WHERE sku IN (${marks}) ORDER BY sku`,
  )
    .bind(...skus)
    .all();
  return results;
}

const cartSkus = (cart) => [...new Set(cart.lines.map((l) => l.sku))].sort();

app.put('/cart/items/:sku', async (c) => {
  const id = await authenticate(c);
  if (id instanceof Response) return id;
  const sku = c.req.param('sku');
  if (!SKU.test(sku)) return problem(c, 400, '/problems/bad-request', 'Bad sku');
  let body;
  try {
    body = await c.req.json();
  } catch {
    return problem(c, 400, '/problems/bad-request', 'Bad JSON');
  }
  const quantity = body?.quantity;
  if (!Number.isInteger(quantity) || quantity < 0 || quantity > 99) {
    return problem(c, 422, '/problems/invalid-value', 'Bad quantity');
  }
  const key = `cart:${await userKey(id.iss, id.sub)}`;
  const cart = await loadCart(c, key);
  const lines = cart.lines.filter((l) => l.sku !== sku);
  if (quantity > 0) lines.push({ sku, quantity, name: sku });
  const next = { ...cart, lines };
  // One query prices the new cart and says whether the sku exists.
  const products = await productsFor(c, cartSkus(next));
  const product = products.find((p) => p.sku === sku);
  if (quantity > 0) {
    if (!product) return problem(c, 422, '/problems/unknown-product', 'Unknown product');
    if (next.currency && next.currency !== product.currency) {
      return problem(c, 422, '/problems/currency-mismatch', 'Currency mismatch');
    }
    next.currency = product.currency;
    next.lines = lines.map((l) => (l.sku === sku ? { ...l, name: product.name } : l));
  }
  next.version = cart.version + 1;
  next.updated_at = new Date().toISOString();
  if (!next.lines.length) next.currency = null;
  await c.env.CARTS.put(key, JSON.stringify(next), { expirationTtl: CART_TTL });
  return c.json(price(next, products), 200, {
    'cache-control': 'private, no-store',
    etag: `"${next.version}"`,
  });
});

app.get('/products', async (c) => {
  const limit = Number(c.req.query('limit') ?? 20);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    return problem(c, 400, '/problems/bad-request', 'Bad limit');
  }
  const origin = new URL(c.req.url).origin;
  const key = `${origin}${CACHE_PREFIX}/g${await generation(c, origin)}/products?limit=${limit}`;
  const hit = await caches.default.match(key);
  if (hit && hit.status === 200) {
    const res = new Response(hit.body, hit);
    res.headers.set('cache-status', 'edgecart; hit');
    return res;
  }
  const { results } = await c.env.DB.prepare(
    `SELECT ${PRODUCT_COLUMNS} FROM products ORDER BY sku LIMIT ?1`,
  )
    .bind(limit + 1)
    .all();
  const items = results.slice(0, limit);
  const body = JSON.stringify({
    items,
    next_cursor: results.length > limit ? items[items.length - 1].sku : null,
  });
  const headers = { 'content-type': 'application/json', 'cache-control': CACHE_CONTROL, date: new Date().toUTCString() };
  c.executionCtx.waitUntil(caches.default.put(key, new Response(body, { headers })));
  return c.body(body, 200, { ...headers, 'cache-status': 'edgecart; fwd=uri-miss; stored' });
});

const IDEMPOTENCY_RETENTION_MS = 86_400_000;
const IDEMPOTENCY_LEASE_MS = 30_000;

function replay(c, record) {
  return c.body(record.body, record.status, {
    'content-type': record.content_type,
    ...(record.location ? { location: record.location } : {}),
    'idempotent-replayed': 'true',
    'cache-control': 'private, no-store',
  });
}

app.post('/orders', async (c) => {
  const id = await authenticate(c);
  if (id instanceof Response) return id;
  const idemKey = c.req.header('idempotency-key');
  if (!idemKey || idemKey.length > 255) return problem(c, 400, '/problems/bad-request', 'Idempotency-Key');
  const text = await c.req.text();
  let request;
  try {
    request = JSON.parse(text);
  } catch {
    return problem(c, 400, '/problems/bad-request', 'Bad JSON');
  }
  const user = await userKey(id.iss, id.sub);
  const recordKey = await sha256Parts([user, 'POST', '/orders', idemKey].map((p) => encoder.encode(p)));
  const fingerprint = await sha256Parts([encoder.encode(text)]);
  const now = Date.now();
  const attempt = crypto.randomUUID();
  // The claim: one statement; a conflict means the key was seen before.
  const claim = await c.env.DB.prepare(
    `INSERT INTO idempotency_records (key, fingerprint, state, attempt, created_at, expires_at, locked_until)
     VALUES (?1, ?2, 'in_progress', ?3, ?4, ?5, ?6) ON CONFLICT (key) DO NOTHING`,
  )
    .bind(recordKey, fingerprint, attempt, now, now + IDEMPOTENCY_RETENTION_MS, now + IDEMPOTENCY_LEASE_MS)
    .run();
  if (claim.meta.changes === 0) {
    const record = await c.env.DB.prepare(
      'SELECT fingerprint, state, status, content_type, location, body FROM idempotency_records WHERE key = ?1',
    )
      .bind(recordKey)
      .first();
    if (!record) return problem(c, 409, '/problems/request-in-flight', 'Retry');
    if (record.fingerprint !== fingerprint) {
      return problem(c, 422, '/problems/idempotency-key-reused', 'Idempotency-Key reused');
    }
    if (record.state !== 'completed') return problem(c, 409, '/problems/request-in-flight', 'In flight');
    return replay(c, record);
  }
  const forget = () =>
    c.env.DB.prepare('DELETE FROM idempotency_records WHERE key = ?1 AND attempt = ?2').bind(recordKey, attempt).run();
  const cartKey = `cart:${user}`;
  const cart = await loadCart(c, cartKey);
  if (request.cart_version !== cart.version) {
    await forget();
    return problem(c, 409, '/problems/cart-changed', 'Cart changed');
  }
  const priced = price(cart, await productsFor(c, cartSkus(cart)));
  const items = priced.items.filter((i) => i.available);
  if (!items.length || items.length !== priced.items.length) {
    await forget();
    return problem(c, 409, '/problems/cart-not-orderable', 'Cart cannot be ordered');
  }
  const orderId = `ord_${recordKey.slice(0, 32)}`;
  const order = {
    id: orderId,
    status: 'confirmed',
    items: items.map(({ sku, name, unit_price_minor, quantity, line_total_minor }) => ({
      sku,
      name,
      unit_price_minor,
      quantity,
      line_total_minor,
    })),
    total_minor: priced.subtotal_minor,
    currency: priced.currency,
    created_at: new Date(now).toISOString(),
  };
  const body = JSON.stringify(order);
  const db = c.env.DB;
  // One transaction: the order, its lines, the stock and the completed record.
  await db.batch([
    db
      .prepare(
        `INSERT INTO orders (id, user_key, status, currency, total_minor, line_count, cart_version, created_at)
         VALUES (?1, ?2, 'confirmed', ?3, ?4, ?5, ?6, ?7)`,
      )
      .bind(orderId, user, order.currency, order.total_minor, items.length, cart.version, now),
    ...order.items.map((l, i) =>
      db
        .prepare(
          `INSERT INTO order_lines (order_id, position, sku, name, unit_price_minor, quantity, line_total_minor)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)`,
        )
        .bind(orderId, i, l.sku, l.name, l.unit_price_minor, l.quantity, l.line_total_minor),
    ),
    ...order.items.map((l) =>
      db.prepare('UPDATE products SET stock = stock - ?2 WHERE sku = ?1 AND stock >= ?2').bind(l.sku, l.quantity),
    ),
    db
      .prepare(
        `UPDATE idempotency_records SET state = 'completed', status = 201, content_type = 'application/json',
         location = ?2, body = ?3 WHERE key = ?1`,
      )
      .bind(recordKey, `/orders/${orderId}`, body),
  ]);
  await c.env.CARTS.put(
    cartKey,
    JSON.stringify({ version: cart.version + 1, updated_at: new Date().toISOString(), currency: null, lines: [] }),
    { expirationTtl: CART_TTL },
  );
  return c.body(body, 201, {
    'content-type': 'application/json',
    location: `/orders/${orderId}`,
    'cache-control': 'private, no-store',
  });
});

app.get('/orders', async (c) => {
  const id = await authenticate(c);
  if (id instanceof Response) return id;
  const user = await userKey(id.iss, id.sub);
  const { results: orders } = await c.env.DB.prepare(
    `SELECT id, status, currency, total_minor, created_at FROM orders WHERE user_key = ?1
     ORDER BY created_at DESC, id DESC LIMIT 20`,
  )
    .bind(user)
    .all();
  let lines = [];
  if (orders.length) {
    const marks = orders.map((_, i) => `?${i + 1}`).join(', ');
    ({ results: lines } = await c.env.DB.prepare(
      `SELECT order_id, sku, name, unit_price_minor, quantity, line_total_minor FROM order_lines
       WHERE order_id IN (${marks}) ORDER BY order_id, position`,
    )
      .bind(...orders.map((o) => o.id))
      .all());
  }
  const items = orders.map((o) => ({
    ...o,
    created_at: new Date(o.created_at).toISOString(),
    items: lines.filter((l) => l.order_id === o.id).map(({ order_id, ...l }) => l),
  }));
  return c.json({ items, next_cursor: null }, 200, { 'cache-control': 'private, no-store' });
});

// Storage floors: one binding call each and a constant answer, to show how much of a route's
// time the local simulators (Miniflare's KV, D1 and Cache services) take by themselves.
app.get('/floor/kv/:key', async (c) => {
  const text = await c.env.CARTS.get(c.req.param('key'));
  return c.text(text ? 'found' : 'absent');
});

app.get('/floor/d1', async (c) => {
  const skus = (c.req.query('skus') ?? '').split(',').filter(Boolean).sort();
  const marks = skus.map((_, i) => `?${i + 1}`).join(', ');
  const { results } = await c.env.DB.prepare(
    `SELECT ${PRODUCT_COLUMNS} FROM products WHERE sku IN (${marks}) ORDER BY sku`,
  )
    .bind(...skus)
    .all();
  return c.text(String(results.length));
});

app.get('/floor/cache', async (c) => {
  // The generation mirror: present once any product was read.
  const hit = await caches.default.match(`${new URL(c.req.url).origin}${CACHE_PREFIX}/generation`);
  if (!hit) return c.text('miss', 404);
  await hit.arrayBuffer();
  return c.text('hit');
});

app.notFound((c) => problem(c, 404, '/problems/not-found', 'Not found'));

// With LOG_REQUESTS=all, one JSON log line per request, shaped like edgecart's: the bench's
// `log-line` scenario uses it to price that line on its own (no build of edgecart needed), and
// `cart-log` compares it with edgecart run with the same setting. Neither flag is set in the
// other comparisons with edgecart (which by default logs problem responses only).
async function logged(request, env, ctx) {
  const started = Date.now();
  const response = await app.fetch(request, env, ctx);
  console.log(
    JSON.stringify({
      level: response.status >= 500 ? 'error' : 'info',
      request_id: crypto.randomUUID().replaceAll('-', ''),
      method: request.method,
      route: new URL(request.url).pathname,
      status: response.status,
      duration_ms: Date.now() - started,
    }),
  );
  return response;
}

export default {
  fetch(request, env, ctx) {
    // With READ_CF=1, `request.cf` is read once per request, as workers-rs's
    // `Request::from(web_sys::Request)` does eagerly (the bench's `cf-read` scenario).
    if (env.READ_CF === '1') void request.cf;
    return env.LOG_REQUESTS === 'all' ? logged(request, env, ctx) : app.fetch(request, env, ctx);
  },
};
