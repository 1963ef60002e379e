// edgecart's own rate limits at the runtime tier, on Miniflare's simulation of the Workers
// Rate Limiting binding (not a mock; fixed windows aligned to the clock). Each class: writes
// per user (a second user unaffected), token minting per client address, failed tokens per
// client address (refused before verification once over the limit); the 429's shape; a
// refused write changes nothing; a missing or malformed binding (readiness, 503); the
// catalogue is never limited; wrangler.toml's periods are the Retry-After the worker sends.
//
// Window boundaries: a burst either starts right after a boundary (`freshWindow`) or asserts
// only what holds across one (at least one 429 among more than twice the limit).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { devToken, startWorker, wranglerRatelimits } from './harness.mjs';
import { problem, shop } from './checkout-helpers.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits until a window of `period` seconds has just begun (Miniflare aligns them to the clock). */
async function freshWindow(period) {
  const ms = period * 1000;
  const left = ms - (Date.now() % ms);
  if (left < ms - 200) await sleep(left + 20);
}

/** Asserts a 429 from edgecart's own limits and returns its body. */
async function limited(res, retryAfter) {
  assert.equal(res.headers.get('retry-after'), String(retryAfter));
  assert.equal(res.headers.get('www-authenticate'), null);
  const body = await problem(res, 429, '/problems/rate-limited');
  assert.equal(body.title, 'Too many requests');
  assert.match(body.detail, /Retry-After/);
  return body;
}

const ip = (address) => ({ 'cf-connecting-ip': address });

/** `token` with the first character of its signature changed: well-formed, signature wrong. */
function forged(token) {
  const parts = token.split('.');
  parts[2] = (parts[2][0] === 'A' ? 'B' : 'A') + parts[2].slice(1);
  return parts.join('.');
}

describe('rate limits with wrangler.toml\'s values', () => {
  let w;
  let s;
  const limits = wranglerRatelimits();
  const write = (sub, sku, quantity) =>
    s.auth(sub).then((auth) =>
      w.fetch(`/cart/items/${sku}`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ quantity }),
      }),
    );

  before(async () => {
    w = await startWorker();
    s = shop(w);
    await s.stock('limit-tea', { stock: 100 });
  });
  after(async () => {
    await w?.stop();
  });

  test('wrangler.toml declares the three classes with periods of 10 or 60 s, and the document lists them', async () => {
    assert.deepEqual(Object.keys(limits).sort(), ['BAD_TOKEN_LIMITER', 'MINT_LIMITER', 'WRITE_LIMITER']);
    const doc = await (await w.fetch('/openapi.json')).json();
    const documented = doc['x-rate-limits'];
    for (const [binding, { simple }] of Object.entries(limits)) {
      assert.ok([10, 60].includes(simple.period), binding);
      const entry = Object.values(documented).find((c) => c.binding === binding);
      assert.ok(entry, `x-rate-limits documents ${binding}`);
      assert.equal(entry.limit, simple.limit, binding);
      assert.equal(entry.period_seconds, simple.period, `${binding}: the worker's Retry-After is wrangler.toml's period`);
    }
  });

  test('150 cart writes in a row from one user meet 429 (Retry-After = the period); a second user at the same time is unaffected', async () => {
    const { limit, period } = limits.WRITE_LIMITER.simple;
    assert.ok(limit < 150);
    await s.auth('burst-a');
    await s.auth('burst-b');
    await freshWindow(period);
    const statuses = [];
    let first429;
    for (let i = 0; i < 150; i++) {
      const res = await write('burst-a', 'limit-tea', (i % 9) + 1);
      statuses.push(res.status);
      if (res.status === 429 && !first429) first429 = res;
      else await res.arrayBuffer();
      // The second user writes in the middle of the burst.
      if (i % 30 === 29) {
        const other = await write('burst-b', 'limit-tea', (i % 5) + 1);
        assert.equal(other.status, 200, 'the second user is unaffected');
        await other.arrayBuffer();
      }
    }
    assert.ok(first429, `statuses: ${statuses.join(' ')}`);
    assert.equal(statuses.indexOf(429), limit, 'the first refusal is the one past the limit');
    await limited(first429, period);
  });
});

describe('the write limit', () => {
  let w;
  let s;
  const LIMIT = 4;

  before(async () => {
    w = await startWorker({ ratelimits: { WRITE_LIMITER: { limit: LIMIT } } });
    s = shop(w);
    await s.stock('limit-tea', { stock: 100 });
  });
  after(async () => {
    await w?.stop();
  });

  const cart = (sub) => s.auth(sub).then((headers) => w.fetch('/cart', { headers }));
  const send = (sub, method, path, body) =>
    s.auth(sub).then((auth) =>
      w.fetch(path, {
        method,
        headers: { ...auth, 'content-type': 'application/json', 'idempotency-key': crypto.randomUUID() },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    );

  test('every write route counts per verified user; a refused write leaves the cart and its version as they were', async () => {
    const sub = 'writer';
    const guest = await w.fetch('/session/guest', { method: 'POST' });
    assert.equal(guest.status, 201);
    const { token: guest_token } = await guest.json();
    const writes = [
      ['PUT', '/cart/items/limit-tea', { quantity: 2 }],
      ['DELETE', '/cart/items/other-tea'],
      ['DELETE', '/cart'],
      ['POST', '/orders', { cart_version: 1 }],
      ['POST', '/cart/merge', { guest_token }],
      // No such order: 404 within the limit, 429 past it (the limit comes before the read).
      ['POST', '/orders/ord_0123456789abcdef0123456789abcdef/cancel'],
      ['PUT', '/cart/items/limit-tea', { quantity: 3 }],
    ];
    // More than twice the limit within 10 s: at least one refusal even across a window boundary.
    const statuses = [];
    const refusedRoutes = new Set();
    for (let round = 0; round < 3; round++) {
      for (const [method, path, body] of writes) {
        const snapshot = await (await cart(sub)).json();
        const res = await send(sub, method, path, body);
        statuses.push(res.status);
        if (res.status === 429) {
          await limited(res, 10);
          refusedRoutes.add(`${method} ${path}`);
          const now = await (await cart(sub)).json();
          assert.deepEqual(now, snapshot, `a refused ${method} ${path} changed nothing`);
        } else {
          await res.arrayBuffer();
        }
      }
    }
    assert.ok(statuses.includes(429), `statuses: ${statuses.join(' ')}`);
    assert.ok(refusedRoutes.size >= 5, `refused on ${[...refusedRoutes]}`);
    // Reads are not write-limited.
    const read = await cart(sub);
    assert.equal(read.status, 200);
    await read.arrayBuffer();
    // Another user is unaffected (fewer writes than the limit, in whatever window).
    const other = await send('bystander', 'PUT', '/cart/items/limit-tea', { quantity: 1 });
    assert.equal(other.status, 200);
    await other.arrayBuffer();
  });

  test('a refusal is logged once a minute per class, not per request', async () => {
    const sub = 'logged';
    let refused = 0;
    for (let i = 0; i < 3 * LIMIT + 2; i++) {
      const res = await send(sub, 'DELETE', '/cart');
      if (res.status === 429) refused++;
      await res.arrayBuffer();
    }
    assert.ok(refused >= 2, `refused ${refused}`);
    await sleep(200);
    const lines = w.logs.filter((l) => l.includes('"rate limited"'));
    assert.equal(lines.length, 1, lines.join('\n'));
    const logged = JSON.parse(lines[0].slice(lines[0].indexOf('{')));
    assert.equal(logged.level, 'warn');
    assert.equal(logged.detail.class, 'write');
    assert.equal(w.logs.filter((l) => l.includes('"status":429')).length, 0, 'no request line for a refusal');
  });
});

describe('the mint limit (POST /dev/token)', () => {
  let w;
  const LIMIT = 3;

  before(async () => {
    w = await startWorker({ ratelimits: { MINT_LIMITER: { limit: LIMIT, period: 60 } } });
  });
  after(async () => {
    await w?.stop();
  });

  const mint = (headers = {}) =>
    w.fetch('/dev/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ sub: 'minted' }),
    });

  test('counts per client address (CF-Connecting-IP); another address is unaffected', async () => {
    const statuses = [];
    for (let i = 0; i < 2 * LIMIT + 1; i++) {
      const res = await mint(ip('203.0.113.10'));
      statuses.push(res.status);
      if (res.status === 429) await limited(res, 60);
      else await res.arrayBuffer();
    }
    assert.ok(statuses.includes(429), `statuses: ${statuses.join(' ')}`);
    for (const other of ['203.0.113.11', '2001:db8:77::1']) {
      const res = await mint(ip(other));
      assert.equal(res.status, 200, other);
      await res.arrayBuffer();
    }
  });

  test('guest sessions (POST /session/guest) share the mint limit with development tokens', async () => {
    const address = '198.51.100.40';
    const guest = () => w.fetch('/session/guest', { method: 'POST', headers: ip(address) });
    const statuses = [];
    for (let i = 0; i < 2 * LIMIT + 1; i++) {
      const res = i % 2 ? await mint(ip(address)) : await guest();
      statuses.push(res.status);
      if (res.status === 429) {
        await limited(res, 60);
      } else {
        assert.equal(res.status, i % 2 ? 200 : 201, `request ${i}`);
        await res.arrayBuffer();
      }
    }
    // At most LIMIT successes per window, and 2 * LIMIT + 1 requests span at most two windows.
    const granted = statuses.filter((status) => status !== 429).length;
    assert.ok(granted <= 2 * LIMIT, `statuses: ${statuses.join(' ')}`);
    assert.ok(statuses.includes(429), `statuses: ${statuses.join(' ')}`);
    const elsewhere = await w.fetch('/session/guest', { method: 'POST', headers: ip('198.51.100.41') });
    assert.equal(elsewhere.status, 201);
    await elsewhere.arrayBuffer();
  });

  test('an address that is no IP address shares one key (limited, never unlimited)', async () => {
    const statuses = [];
    for (let i = 0; i < 2 * LIMIT + 1; i++) {
      const res = await mint(ip(i % 2 ? 'not-an-address' : '1.2.3.4, 5.6.7.8'));
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    assert.ok(statuses.includes(429), `statuses: ${statuses.join(' ')}`);
  });
});

describe('the bad-token limit', () => {
  let w;
  let good;
  const LIMIT = 3;

  before(async () => {
    w = await startWorker({ ratelimits: { BAD_TOKEN_LIMITER: { limit: LIMIT, period: 60 } } });
    good = await devToken(w, { sub: 'honest' });
  });
  after(async () => {
    await w?.stop();
  });

  const me = (token, address) => w.fetch('/me', { headers: { authorization: `Bearer ${token}`, ...ip(address) } });

  test('failed tokens count per address; past the limit the address is refused before verification, good tokens too; other addresses are unaffected', async () => {
    const address = '198.51.100.7';
    const statuses = [];
    for (let i = 0; i < 2 * LIMIT + 1; i++) {
      const res = await me(forged(good), address);
      statuses.push(res.status);
      if (res.status === 429) await limited(res, 60);
      else await res.arrayBuffer();
    }
    assert.equal(statuses[0], 401, 'the first failures are 401');
    assert.ok(statuses.includes(429), `statuses: ${statuses.join(' ')}`);
    // The isolate remembers the address: a good token is not even verified.
    const refused = await me(good, address);
    const body = await limited(refused, Number(refused.headers.get('retry-after')));
    assert.ok(Number(refused.headers.get('retry-after')) <= 60);
    assert.equal(body.type, '/problems/rate-limited');
    // Malformed tokens and other routes alike.
    const cart = await w.fetch('/cart', { headers: { authorization: 'Bearer nonsense', ...ip(address) } });
    assert.equal(cart.status, 429);
    await cart.arrayBuffer();
    // Another address with the good token is served.
    const other = await me(good, '198.51.100.8');
    assert.equal(other.status, 200);
    await other.arrayBuffer();
    // No token at all is no failed token: still the challenge.
    const none = await w.fetch('/me', { headers: ip('198.51.100.9') });
    assert.equal(none.status, 401);
    await none.arrayBuffer();
  });

  test('a good token from an address that never failed costs no count', async () => {
    for (let i = 0; i < 3 * LIMIT; i++) {
      const res = await me(good, '198.51.100.20');
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
  });
});

describe('the catalogue is never limited', () => {
  let w;

  before(async () => {
    w = await startWorker({
      ratelimits: { WRITE_LIMITER: { limit: 1 }, MINT_LIMITER: { limit: 1 }, BAD_TOKEN_LIMITER: { limit: 1 } },
    });
  });
  after(async () => {
    await w?.stop();
  });

  test('GET /products and /products/{sku} with limits of 1, from one address, even with a bad token', async () => {
    for (let i = 0; i < 25; i++) {
      for (const path of ['/products', '/products/limit-none']) {
        const res = await w.fetch(path, { headers: { ...ip('192.0.2.1'), authorization: 'Bearer nonsense' } });
        assert.ok([200, 404].includes(res.status), `${path}: ${res.status}`);
        await res.arrayBuffer();
      }
    }
  });
});

describe('a missing or malformed rate-limit binding', () => {
  for (const [name, opts] of [
    ['missing', { without: ['WRITE_LIMITER'] }],
    ['malformed', { without: ['WRITE_LIMITER'], vars: { WRITE_LIMITER: 'not a limiter' } }],
  ]) {
    test(`${name}: readiness reports rate_limits, limited routes answer 503, reads and the catalogue are served`, async () => {
      const w = await startWorker(opts);
      try {
        const ready = await w.fetch('/health/ready');
        assert.equal(ready.status, 503);
        const body = await ready.json();
        assert.equal(body.type, '/problems/unavailable');
        assert.deepEqual(
          Object.fromEntries(Object.entries(body.checks).map(([k, v]) => [k, v.ok])),
          { kv: true, durable_object: true, d1: true, rate_limits: false },
        );
        assert.match(body.checks.rate_limits.error, /WRITE_LIMITER/, 'development shows which binding');
        const s = shop(w);
        await s.stock('limit-tea');
        const res = await w.fetch('/cart/items/limit-tea', {
          method: 'PUT',
          headers: { ...(await s.auth('nobinding')), 'content-type': 'application/json' },
          body: JSON.stringify({ quantity: 1 }),
        });
        await problem(res.clone(), 503, '/problems/unavailable');
        assert.match(res.headers.get('retry-after') ?? '', /^\d+$/);
        for (const path of ['/cart', '/products', '/products/limit-tea', '/me']) {
          const read = await w.fetch(path, { headers: await s.auth('nobinding') });
          assert.equal(read.status, 200, path);
          await read.arrayBuffer();
        }
      } finally {
        await w.stop();
      }
    });
  }

  test('in production readiness names no binding', async () => {
    const w = await startWorker({ without: ['BAD_TOKEN_LIMITER'], vars: { ENVIRONMENT: 'production', DEV_TOKEN_KEY: undefined } });
    try {
      const body = await (await w.fetch('/health/ready')).json();
      assert.deepEqual(body.checks.rate_limits, { ok: false, error: 'unreachable' });
      // A failed token then cannot be counted: 503, not an unlimited 401.
      const res = await w.fetch('/me', { headers: { authorization: 'Bearer nonsense' } });
      assert.equal(res.status, 503);
      await res.arrayBuffer();
    } finally {
      await w.stop();
    }
  });
});
