// The foundation at the runtime tier: routing, problem+json, health probes that really reach
// KV, the Durable Object and D1, persistence across a restart, and a panic that costs one
// request only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { devToken, startWorker } from './harness.mjs';

async function problem(res, status, type) {
  assert.equal(res.status, status);
  assert.equal(res.headers.get('content-type'), 'application/problem+json');
  const body = await res.json();
  assert.equal(body.status, status);
  assert.equal(body.type, type);
  assert.equal(typeof body.title, 'string');
  assert.equal(typeof body.detail, 'string');
  return body;
}

describe('the foundation', () => {
  let w;
  before(async () => {
    w = await startWorker();
  });
  after(async () => {
    await w?.stop();
  });

  test('GET /health answers ok without touching storage, never cached', async () => {
    const res = await w.fetch('/health');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.match(res.headers.get('x-request-id'), /^[0-9a-f]{32}$/);
    assert.deepEqual(await res.json(), { status: 'ok', version: '0.1.0' });
  });

  test('HEAD /health has the headers of GET and no body', async () => {
    const res = await w.fetch('/health', { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.equal(await res.text(), '');
  });

  test('GET /health/ready reaches KV, the Durable Object, D1 and the rate limiters', async () => {
    const res = await w.fetch('/health/ready');
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      status: 'ok',
      checks: { kv: { ok: true }, durable_object: { ok: true }, d1: { ok: true }, rate_limits: { ok: true } },
    });
  });

  test('a missing binding makes readiness a 503 problem naming it in checks, and a route that needs it a 503 with Retry-After', async () => {
    for (const [binding, check] of [['DB', 'd1'], ['CARTS', 'kv'], ['IDEMPOTENCY', 'durable_object']]) {
      const own = await startWorker({ without: [binding] });
      try {
        const res = await own.fetch('/health/ready');
        assert.equal(res.status, 503, binding);
        assert.equal(res.headers.get('content-type'), 'application/problem+json');
        assert.match(res.headers.get('retry-after') ?? '', /^\d+$/);
        const body = await res.json();
        assert.equal(body.status, 503);
        assert.equal(body.type, '/problems/unavailable');
        for (const name of ['kv', 'durable_object', 'd1']) {
          assert.equal(body.checks[name].ok, name !== check, `${binding}: ${name}`);
        }
        const live = await own.fetch('/health');
        assert.equal(live.status, 200, 'liveness touches no binding');
        await live.arrayBuffer();
        if (binding === 'DB') {
          const product = await own.fetch('/products/tea-sencha-100g');
          assert.equal(product.status, 503);
          assert.equal(product.headers.get('content-type'), 'application/problem+json');
          assert.ok(product.headers.get('retry-after'));
          await product.arrayBuffer();
        }
        if (binding === 'CARTS') {
          const token = await devToken(own, { sub: 'no-kv' });
          const cart = await own.fetch('/cart', { headers: { authorization: `Bearer ${token}` } });
          assert.equal(cart.status, 503);
          assert.equal(cart.headers.get('content-type'), 'application/problem+json');
          assert.ok(cart.headers.get('retry-after'));
          await cart.arrayBuffer();
        }
      } finally {
        await own.stop();
      }
    }
  });

  test('in production a failed readiness check says only that it failed; the runtime\'s text goes to the log', async () => {
    const own = await startWorker({ vars: { ENVIRONMENT: 'production', DEV_TOKEN_KEY: undefined }, without: ['DB'] });
    try {
      const res = await own.fetch('/health/ready');
      assert.equal(res.status, 503);
      const body = await res.json();
      assert.deepEqual(body.checks.d1, { ok: false, error: 'unreachable' });
      assert.deepEqual(body.checks.kv, { ok: true });
      const line = await own.logLine((l) => l.includes('readiness probe failed'));
      const logged = JSON.parse(line.slice(line.indexOf('{')));
      assert.equal(logged.level, 'warn');
      assert.equal(typeof logged.detail.d1, 'string');
      assert.notEqual(logged.detail.d1, 'unreachable', 'the log has the runtime\'s own text');
      assert.deepEqual(Object.keys(logged.detail), ['d1']);
    } finally {
      await own.stop();
    }
    // In development the body carries the text too.
    const dev = await startWorker({ without: ['DB'] });
    try {
      const body = await (await dev.fetch('/health/ready')).json();
      assert.equal(body.checks.d1.ok, false);
      assert.notEqual(body.checks.d1.error, 'unreachable');
    } finally {
      await dev.stop();
    }
  });

  test('every response carries X-Content-Type-Options: nosniff', async () => {
    const token = await devToken(w, { sub: 'sniff' });
    const auth = { authorization: `Bearer ${token}` };
    const cases = [
      ['/health', {}],
      ['/health/ready', {}],
      ['/me', { headers: auth }],
      ['/me', {}],
      ['/cart', { headers: auth }],
      ['/products', {}],
      ['/products/tea-sencha-100g', {}],
      ['/products/tea-sencha-100g', { method: 'HEAD' }],
      ['/orders', { headers: auth }],
      ['/openapi.json', {}],
      ['/problems/not-found', {}],
      ['/nope', {}],
      ['/health', { method: 'POST', body: '{}' }],
      ['/', {}],
    ];
    for (const [path, init] of cases) {
      const res = await w.fetch(path, init);
      await res.arrayBuffer();
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', `${init.method ?? 'GET'} ${path} (${res.status})`);
    }
  });

  test('an unknown path is a 404 problem', async () => {
    for (const path of ['/nope', '/health/extra', '/products/a/b', '/%ff%fe', '/' + 'x'.repeat(8000), '/products/', '/cart/items/', '/orders/', '/health/']) {
      await problem(await w.fetch(path), 404, '/problems/not-found');
    }
  });

  test('a wrong method is a 405 problem with Allow', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await w.fetch('/health', { method, body: method === 'DELETE' ? undefined : '{}' });
      await problem(res, 405, '/problems/method-not-allowed');
      assert.equal(res.headers.get('allow'), 'GET, HEAD');
    }
  });

  test('a method outside the worker crate’s list (PURGE, PROPFIND, SEARCH) is a 405, never a read', async () => {
    // (workerd itself answers a method outside its own list, e.g. FOO or a lower-case patch, with
    // 501 before any worker runs: RFC 9110's answer to a method the server does not recognise.)
    const cases = [
      ['PURGE', '/products/tea-sencha-100g', 'GET, HEAD, PUT, DELETE'],
      ['PROPFIND', '/health', 'GET, HEAD'],
      ['SEARCH', '/orders', 'GET, HEAD, POST'],
      ['MKCOL', '/cart', 'GET, HEAD, DELETE'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await w.fetch(path, { method });
      await problem(res, 405, '/problems/method-not-allowed');
      assert.equal(res.headers.get('allow'), allow, `${method} ${path}`);
      const line = await w.logLine((l) => l.includes(res.headers.get('x-request-id')));
      assert.ok(line.includes(`"method":"${method}"`), line);
    }
    await problem(await w.fetch('/nowhere', { method: 'PURGE' }), 404, '/problems/not-found');
  });

  test('a large body on a route that takes none is refused, not a crash', async () => {
    const res = await w.fetch('/health', { method: 'POST', body: 'x'.repeat(2 * 1024 * 1024) });
    await problem(res, 405, '/problems/method-not-allowed');
    assert.equal((await w.fetch('/health')).status, 200);
  });

  test('a body refused before it was read does not break the next request on the connection', async () => {
    for (let i = 0; i < 20; i++) {
      const refused = await w.fetch('/cart/items/mug', { method: 'PUT', body: JSON.stringify({ quantity: 1, pad: 'x'.repeat(12000) }) });
      assert.equal(refused.status, 401);
      await refused.arrayBuffer();
      const tooBig = await w.fetch('/cart/items/mug', { method: 'PUT', headers: { authorization: 'Basic eA==' }, body: 'x'.repeat(40 * 1024) });
      assert.equal(tooBig.status, 401);
      await tooBig.arrayBuffer();
      // A method the worker crate would read as GET, with a body (PROPFIND usually has one).
      const propfind = await w.fetch('/health', { method: 'PROPFIND', body: 'x'.repeat(40 * 1024) });
      assert.equal(propfind.status, 405);
      await propfind.arrayBuffer();
      const next = await w.fetch('/health');
      assert.equal(next.status, 200);
      await next.arrayBuffer();
    }
  });

  test('huge headers get a 4xx from the platform or the worker, never a 5xx', async () => {
    const big = await w.fetch('/health', { headers: { 'x-big': 'a'.repeat(100 * 1024) } });
    assert.ok(big.status < 500, `100 KB header: ${big.status}`);
    let status;
    try {
      status = (await w.fetch('/health', { headers: { 'x-big': 'a'.repeat(1024 * 1024) } })).status;
    } catch {
      status = 431; // the runtime may close the connection instead of answering
    }
    assert.ok(status >= 400 && status < 500, `1 MB header: ${status}`);
    assert.equal((await w.fetch('/health')).status, 200);
  });

  test('every problem type has an explanation page', async () => {
    const res = await w.fetch('/problems/cart-changed');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/plain/);
    assert.match(await res.text(), /Cart changed/);
    await problem(await w.fetch('/problems/no-such-kind'), 404, '/problems/not-found');
  });

  test('a panic answers 500 and the next request succeeds', async () => {
    const res = await w.fetch('/dev/panic');
    assert.equal(res.status, 500);
    const next = await w.fetch('/health/ready');
    assert.equal(next.status, 200);
  });

  test('a panic after an await (in a resumed request) answers 500 and the next request succeeds', async () => {
    const res = await w.fetch('/dev/panic?after-await');
    assert.equal(res.status, 500);
    await res.arrayBuffer();
    const next = await w.fetch('/health/ready');
    assert.equal(next.status, 200);
    assert.equal((await w.fetch('/health')).status, 200);
  });

  // Bounded: a hang here (the inspector, workerd's hang detection) fails in a minute, not ten.
  test('a request whose awaited promise never settles is let go of once workerd gives up on it', { timeout: 60_000 }, async () => {
    // On Cloudflare a client that goes away tears down its request's I/O, and the promises of
    // that I/O stay pending for good; /dev/hang awaits such a promise. The isolate must not
    // keep those requests (their futures, their promise slots) for the rest of its life.
    const own = await startWorker({ inspect: true });
    try {
      const inFlight = async () => (await own.fetch('/dev/runtime')).json();
      assert.deepEqual(await inFlight(), { requests: 1, promises: 0 }, 'the probe itself, nothing else');
      const hung = await Promise.all([1, 2, 3, 4].map(() => own.fetch('/dev/hang')));
      for (const res of hung) {
        // workerd's own answer to a request nothing can finish.
        assert.equal(res.status, 500);
        assert.match(await res.text(), /hung/);
      }
      // Freed when the abandoned promises are collected: at the latest after a full GC.
      let held;
      for (let i = 0; i < 5; i++) {
        await own.collectGarbage();
        held = await inFlight();
        if (held.requests === 1 && held.promises === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(held, { requests: 1, promises: 0 });
      // And the isolate serves as before.
      assert.equal((await own.fetch('/health')).status, 200);
    } finally {
      await own.stop();
    }
  });

  test('by default only problem responses write a log line, one JSON line each', async () => {
    const ok = await w.fetch('/problems/out-of-stock', { headers: { authorization: 'Bearer secret-token-value' } });
    assert.equal(ok.status, 200);
    const refused = await w.fetch('/cart', { headers: { authorization: 'Bearer secret-token-value' } });
    assert.equal(refused.status, 401);
    const linesOf = (res) => w.logs.filter((l) => l.includes(res.headers.get('x-request-id')));
    // The refused request's line, written after the first request's answer, is there first.
    await w.logLine((l) => l.includes(refused.headers.get('x-request-id')));
    assert.equal(linesOf(ok).length, 0, w.logs.join('\n'));
    const lines = linesOf(refused);
    assert.equal(lines.length, 1, w.logs.join('\n'));
    const entry = JSON.parse(lines[0].slice(lines[0].indexOf('{')));
    assert.equal(entry.method, 'GET');
    assert.equal(entry.route, '/cart');
    assert.equal(entry.status, 401);
    assert.equal(entry.problem, 'invalid-token');
    assert.equal(typeof entry.duration_ms, 'number');
    assert.ok(!w.logs.some((l) => l.includes('secret-token-value')));
  });

  test('LOG_REQUESTS=all writes one line for every request, with route template, status and request id', async () => {
    const all = await startWorker({ vars: { LOG_REQUESTS: 'all' } });
    try {
      const res = await all.fetch('/problems/out-of-stock', { headers: { authorization: 'Bearer secret-token-value' } });
      const id = res.headers.get('x-request-id');
      await all.logLine((l) => l.includes(id));
      const lines = all.logs.filter((l) => l.includes(id));
      assert.equal(lines.length, 1, all.logs.join('\n'));
      const entry = JSON.parse(lines[0].slice(lines[0].indexOf('{')));
      assert.equal(entry.method, 'GET');
      assert.equal(entry.route, '/problems/{kind}');
      assert.equal(entry.status, 200);
      assert.equal(entry.request_id, id);
      assert.equal(typeof entry.duration_ms, 'number');
      assert.ok(!all.logs.some((l) => l.includes('secret-token-value')));
    } finally {
      await all.stop();
    }
  });

  test('a cf-ray header becomes the request id', async () => {
    const res = await w.fetch('/health', { headers: { 'cf-ray': '8c1f2a3b4c5d6e7f-AMS' } });
    assert.equal(res.headers.get('x-request-id'), '8c1f2a3b4c5d6e7f-AMS');
  });
});

describe('production mode', () => {
  let w;
  before(async () => {
    w = await startWorker({ vars: { ENVIRONMENT: 'production', DEV_TOKEN_KEY: undefined } });
  });
  after(async () => {
    await w?.stop();
  });

  test('development routes do not exist', async () => {
    for (const path of ['/dev/panic', '/dev/hang', '/dev/runtime']) {
      await problem(await w.fetch(path), 404, '/problems/not-found');
    }
  });
});

describe('a malformed configuration', () => {
  for (const [env, detailed] of [['development', true], ['production', false]]) {
    test(`is a 500 misconfigured problem that names the variable only in ${env}`, async () => {
      const w = await startWorker({ vars: { ENVIRONMENT: env, JWT_LEEWAY_SECONDS: 'sixty' } });
      try {
        const res = await w.fetch('/health/ready');
        // In production the ENVIRONMENT itself parses, so this is the leeway's fault either way.
        const body = await problem(res, 500, '/problems/misconfigured');
        assert.equal(body.detail.includes('JWT_LEEWAY_SECONDS'), detailed);
        assert.ok(!body.detail.includes('sixty'));
        await w.logLine((l) => l.includes('JWT_LEEWAY_SECONDS')); // the log names the variable
        assert.equal((await w.fetch('/health')).status, 200);
      } finally {
        await w.stop();
      }
    });
  }
});

describe('state on disk', () => {
  test('KV, Durable Object and D1 writes survive a restart of the worker', async () => {
    const w = await startWorker();
    try {
      const kv = await w.mf.getKVNamespace('CARTS');
      await kv.put('persist-check', 'kept', { expirationTtl: 3600 });
      const db = await w.mf.getD1Database('DB');
      await db.prepare('UPDATE catalogue_meta SET generation = 42 WHERE id = 1').run();
      const ns = await w.mf.getDurableObjectNamespace('IDEMPOTENCY');
      const stub = ns.get(ns.idFromName('edgecart:ready-probe'));
      assert.equal((await stub.fetch('https://idempotency.internal/probe')).status, 200);

      await w.restart();

      assert.equal(await (await w.mf.getKVNamespace('CARTS')).get('persist-check'), 'kept');
      const row = await (await w.mf.getD1Database('DB')).prepare('SELECT generation FROM catalogue_meta').first();
      assert.equal(row.generation, 42);
      const ready = await w.fetch('/health/ready');
      assert.equal(ready.status, 200);
    } finally {
      await w.stop();
    }
  });
});
