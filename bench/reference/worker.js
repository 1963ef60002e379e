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
//   GET /floor/...       bench-only: one KV get, one D1 query or one cache match, nothing else
//
// Bindings: JWT_JWKS, JWT_ISSUER, JWT_AUDIENCE (vars), CARTS (KV), DB (D1), the default cache.
// Not a product: no CORS, no idempotency, minimal error bodies.
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
