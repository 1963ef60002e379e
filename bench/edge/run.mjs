// `npm run bench:edge`: edgecart and the JS reference under a model of the real topology. Both
// run on workerd through Miniflare with its real simulators, each wrapped by bench/edge/wrap.mjs,
// which counts every binding call and sleeps the latency of the location profile
// (bench/edge/latency.mjs: near = next to the D1 primary, far = another continent with a D1
// replica in its region) before forwarding it. Requests go one at a time (each waits for the
// previous one's waitUntil work), edgecart and the reference alternating, so the figure per
// route is dominated by the modelled round trips, not by this machine.
//
// Prints one line per profile and route:
//   edge <profile> <METHOD> <path> edgecart_p50_ms=… edgecart_p95_ms=… reference_p50_ms=…
//     primary_trips=… trips=… reference_p95_ms=… reference_primary_trips=… reference_trips=…
// and writes the figures as JSON to bench/results/edge-<date>.json (BENCH_OUT).
// BENCH_EDGE_QUICK=1: fewer samples (well under 3 minutes). BENCH_EDGE_SAMPLES=n overrides.
// Nothing here is a test: timings never gate anything (tests/worker/trips.test.mjs asserts the
// trip counts).
import { Miniflare } from 'miniflare';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUDIENCE, ISSUER, bundleReference, keysAndTokens } from '../bench.mjs';
import { COMPATIBILITY_DATE, ROOT, edgecartWorker, freePort, migrate, persistOptions, wranglerRatelimits } from '../../tests/worker/harness.mjs';
import { traced } from './client.mjs';
import { BENCH_PROFILES, PROFILES, SOURCES } from './latency.mjs';
import { tripString } from './wrap.mjs';

const QUICK = process.env.BENCH_EDGE_QUICK === '1';
const SAMPLES = Math.max(1, Number(process.env.BENCH_EDGE_SAMPLES ?? (QUICK ? 7 : 40)) | 0);
const WARMUP = QUICK ? 1 : 3;
const OUT = process.env.BENCH_OUT ?? join(ROOT, 'bench', 'results');
const log = (...a) => console.error('[bench:edge]', ...a);

// Limits no run reaches: every limited route pays its limit() call, none is refused.
const RATELIMITS = Object.fromEntries(
  Object.entries(wranglerRatelimits()).map(([name, r]) => [name, { ...r, simple: { ...r.simple, limit: 1e9 } }]),
);

async function start(kind, worker, persistRoot) {
  const port = await freePort();
  const persist = await mkdtemp(join(persistRoot, `${kind}-`));
  const tail = [];
  const mf = new Miniflare({
    host: '127.0.0.1',
    port,
    cf: false,
    handleRuntimeStdio(stdout, stderr) {
      for (const s of [stdout, stderr])
        s.on('data', (chunk) => {
          tail.push(String(chunk));
          if (tail.length > 20) tail.shift();
        });
    },
    ...persistOptions(persist),
    workers: [worker],
  });
  try {
    const url = (await mf.ready).toString().replace(/\/$/, '');
    return { kind, url, mf, tail };
  } catch (e) {
    log(`${kind} did not start:\n${tail.join('')}`);
    throw e;
  }
}

/** D1 rows both workers share: the migrations, stock nobody runs out of, rows for misses. */
async function seed(w, missRows) {
  const db = await w.mf.getD1Database('DB');
  await migrate(db);
  await db.prepare('UPDATE products SET stock = 1000000').run();
  await db
    .prepare(
      `INSERT INTO products (sku, name, description, price_minor, currency, stock, version, updated_at)
       WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
       SELECT 'miss-' || i, 'Miss ' || i, 'A product read once.', 100 + i % 900, 'EUR', 10, 1, '2026-11-29T08:00:00Z' FROM n`,
    )
    .bind(missRows)
    .run();
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
const round = (x) => Math.round(x * 10) / 10;

async function main() {
  const started = Date.now();
  if (!existsSync(join(ROOT, 'build', 'entry.mjs'))) throw new Error('build/entry.mjs is missing: run `npm run build` first');
  const tmp = await mkdtemp(join(tmpdir(), 'edgecart-bench-edge-'));
  const stateRoot = existsSync('/dev/shm') ? await mkdtemp('/dev/shm/edgecart-bench-edge-') : tmp;
  // A snapshot of build/ and the wrapper: a rebuild during the run cannot change what is measured.
  await cp(join(ROOT, 'build'), join(tmp, 'build'), { recursive: true, filter: (p) => !/[\\/]\.tmp([\\/]|$)/.test(p) });
  await mkdir(join(tmp, 'bench'), { recursive: true });
  await cp(join(ROOT, 'bench', 'edge'), join(tmp, 'bench', 'edge'), { recursive: true });
  const referencePath = await bundleReference(tmp, join(ROOT, 'bench', 'edge', 'reference.mjs'), 'reference-edge.js');
  const { jwks, tokens } = await keysAndTokens();
  const vars = { ENVIRONMENT: 'production', JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWT_JWKS: jwks };
  const workers = {};
  try {
    workers.edgecart = await start(
      'edgecart',
      {
        ...edgecartWorker({ vars, scriptPath: join(tmp, 'bench', 'edge', 'edgecart.mjs'), assets: false, ratelimits: RATELIMITS }),
        modulesRoot: tmp,
      },
      stateRoot,
    );
    workers.reference = await start(
      'reference',
      {
        name: 'reference',
        scriptPath: referencePath,
        modules: true,
        modulesRoot: tmp,
        compatibilityDate: COMPATIBILITY_DATE,
        cache: true,
        bindings: vars,
        kvNamespaces: { CARTS: 'carts' },
        d1Databases: { DB: 'edgecart-db' },
      },
      stateRoot,
    );
    const missRows = (SAMPLES + WARMUP) * BENCH_PROFILES.length + 10;
    for (const w of Object.values(workers)) await seed(w, missRows);

    const auth = (t) => ({ authorization: `Bearer ${t}` });
    const json = { 'content-type': 'application/json' };
    const user = auth(tokens.ES256);
    const buyer = auth(tokens.buyer);
    const missSku = {};
    let keyNo = 0;
    /** Per worker: the state a scenario's next request needs (prepared at profile zero). */
    const replayKey = {};
    const scenarios = [
      { method: 'GET', label: '/me', req: () => ({ path: '/me', headers: user }) },
      { method: 'GET', label: '/cart', req: () => ({ path: '/cart', headers: user }) },
      {
        method: 'PUT',
        label: '/cart/items/{sku}',
        req: (_w, i) => ({
          path: '/cart/items/tea-sencha-100g',
          headers: { ...user, ...json },
          body: JSON.stringify({ quantity: 1 + (i % 5) }),
        }),
      },
      { method: 'GET', label: '/products/{sku}[hit]', req: () => ({ path: '/products/tea-sencha-100g' }) },
      {
        method: 'GET',
        label: '/products/{sku}[miss]',
        req: (w) => {
          missSku[w.kind] = (missSku[w.kind] ?? 0) + 1;
          return { path: `/products/miss-${missSku[w.kind]}` };
        },
      },
      { method: 'GET', label: '/products[hit]', req: () => ({ path: '/products' }) },
      {
        method: 'POST',
        label: '/orders[new-key]',
        prepare: async (w) => {
          // A cart to check out (not timed, no delays), and its version.
          const put = await traced(w.url, 'PUT', '/cart/items/gift-card-25-eur', {
            headers: { ...buyer, ...json },
            body: JSON.stringify({ quantity: 1 }),
          });
          if (put.status !== 200) throw new Error(`${w.kind}: cart for checkout: ${put.status} ${put.text}`);
          return JSON.parse(put.text).version;
        },
        req: (w, _i, version) => {
          const key = `bench-edge-${++keyNo}`;
          replayKey[w.kind] = { key, version };
          return {
            path: '/orders',
            headers: { ...buyer, ...json, 'idempotency-key': key },
            body: JSON.stringify({ cart_version: version }),
          };
        },
      },
      {
        method: 'POST',
        label: '/orders[replay]',
        req: (w) => ({
          path: '/orders',
          headers: { ...buyer, ...json, 'idempotency-key': replayKey[w.kind].key },
          body: JSON.stringify({ cart_version: replayKey[w.kind].version }),
        }),
      },
      { method: 'GET', label: '/orders', req: () => ({ path: '/orders', headers: buyer }) },
    ];

    // Fill the cart GET /cart reads (three lines) and warm the catalogue caches at zero delay.
    for (const w of Object.values(workers)) {
      for (const [sku, q] of [['tea-sencha-100g', 2], ['tea-gyokuro-50g', 1], ['acc-gaiwan-150ml', 3]]) {
        const r = await traced(w.url, 'PUT', `/cart/items/${sku}`, { headers: { ...user, ...json }, body: JSON.stringify({ quantity: q }) });
        if (r.status !== 200) throw new Error(`${w.kind}: seeding the cart: ${r.status} ${r.text}`);
      }
    }

    const results = [];
    for (const profile of BENCH_PROFILES) {
      for (const s of scenarios) {
        const per = { edgecart: { ms: [], trips: new Set(), last: null }, reference: { ms: [], trips: new Set(), last: null } };
        for (let i = 0; i < WARMUP + SAMPLES; i++) {
          // Alternate which worker goes first.
          const order = i % 2 ? ['reference', 'edgecart'] : ['edgecart', 'reference'];
          for (const kind of order) {
            const w = workers[kind];
            const prepared = s.prepare ? await s.prepare(w) : undefined;
            const { path, headers, body } = s.req(w, i, prepared);
            const r = await traced(w.url, s.method, path, { headers, body, profile });
            if (r.status >= 300) throw new Error(`${kind} ${profile} ${s.method} ${path}: ${r.status} ${r.text.slice(0, 300)}`);
            if (i < WARMUP) continue;
            per[kind].ms.push(r.ms);
            per[kind].trips.add(tripString(r.trips));
            per[kind].last = r;
          }
        }
        const e = per.edgecart;
        const ref = per.reference;
        const trips = (p) => (p.trips.size === 1 ? [...p.trips][0] || 'none' : `varies(${[...p.trips].join('|')})`);
        const row = {
          profile,
          method: s.method,
          path: s.label,
          samples: SAMPLES,
          edgecart_p50_ms: round(pct(e.ms, 50)),
          edgecart_p95_ms: round(pct(e.ms, 95)),
          reference_p50_ms: round(pct(ref.ms, 50)),
          reference_p95_ms: round(pct(ref.ms, 95)),
          primary_trips: e.last.primaryTrips,
          trips: trips(e),
          reference_primary_trips: ref.last.primaryTrips,
          reference_trips: trips(ref),
        };
        results.push(row);
        console.log(
          `edge ${profile} ${row.method} ${row.path} edgecart_p50_ms=${row.edgecart_p50_ms} edgecart_p95_ms=${row.edgecart_p95_ms} ` +
            `reference_p50_ms=${row.reference_p50_ms} primary_trips=${row.primary_trips} trips=${row.trips} ` +
            `reference_p95_ms=${row.reference_p95_ms} reference_primary_trips=${row.reference_primary_trips} reference_trips=${row.reference_trips}`,
        );
      }
    }
    await mkdir(OUT, { recursive: true });
    const file = join(OUT, `edge-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    await writeFile(
      file,
      JSON.stringify({ date: new Date().toISOString(), quick: QUICK, samples: SAMPLES, warmup: WARMUP, profiles: PROFILES, sources: SOURCES, results }, null, 2),
    );
    log(`wrote ${file} in ${Math.round((Date.now() - started) / 1000)} s`);
  } finally {
    for (const w of Object.values(workers)) await w.mf.dispose().catch(() => {});
    await rm(tmp, { recursive: true, force: true });
    if (stateRoot !== tmp) await rm(stateRoot, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
