// `npm run bench`: edgecart's built worker against a JS reference worker (Hono + jose) doing
// the same work, on workerd through Miniflare, on loopback ports, driven by wrk.
//
// Why it is shaped like this:
// - Throughput on a shared 2-core machine moves by ±25 % from run to run, so absolute numbers
//   mean little. Each scenario runs edgecart and its reference back to back, ALTERNATING the
//   order every round, for several rounds; the figure that matters is the median of the
//   per-round ratios edgecart / reference.
// - workerd is driven directly (Miniflare on a port). `wrangler dev` puts a Node proxy in front
//   that caps throughput near 800 req/s, which would hide every difference.
// - Both workers get the same keys (one JWKS with HS256, RS256, ES256 and EdDSA keys), the same
//   tokens (minted once here with jose), the same D1 rows and the same KV cart, each in its own
//   fresh temporary state folder.
// - edgecart runs without the static-assets router in front (the reference has none); the
//   `health-assets` scenario measures what that router adds as deployed (the worker first), and
//   `health-assets` and `cart-assets` compare that with the router asking the assets first
//   (the configuration before run_worker_first).
//
// Environment: BENCH_SECONDS (per wrk run, default 3), BENCH_ROUNDS (default 5),
// BENCH_CONNECTIONS (default 8), BENCH_QUICK=1 (1 s, 1 round, 1 start-up sample: a smoke run),
// BENCH_ONLY=me,cart (scenario name prefixes), BENCH_OUT (results folder, default bench/results),
// BENCH_PAIRING=concurrent (run each scenario's targets at the same time instead of in turn),
// BENCH_BASELINE=<folder with build/> (the baseline-* scenarios: this build against that one).
//
// Only 127.0.0.1 is ever benchmarked. Nothing here is a test: timings never gate anything.
import { Miniflare } from 'miniflare';
import * as esbuild from 'esbuild';
import { SignJWT, exportJWK, generateKeyPair, generateSecret } from 'jose';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import {
  COMPATIBILITY_DATE,
  ROOT,
  edgecartWorker,
  freePort,
  migrate,
  persistOptions,
  wranglerRatelimits,
} from '../tests/worker/harness.mjs';

const QUICK = process.env.BENCH_QUICK === '1';
const SECONDS = Math.max(1, Number(process.env.BENCH_SECONDS ?? (QUICK ? 1 : 3)) | 0);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 5)) | 0);
const CONNECTIONS = Math.max(1, Number(process.env.BENCH_CONNECTIONS ?? 8) | 0);
const STARTUP_SAMPLES = QUICK ? 1 : 3;
const ONLY = (process.env.BENCH_ONLY ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const OUT = process.env.BENCH_OUT ?? join(ROOT, 'bench', 'results');
// A/A mode: the reference plays edgecart too, so every ratio should be 1.0; the spread shows
// how much of a difference this machine can resolve.
const AA = process.env.BENCH_AA === '1';
// Pairing: `alternating` (default) runs a scenario's targets one after the other, reversing
// the order every round; `concurrent` runs them at the same time, each with its own wrk, so
// both see the same moment of a shared machine (each gets part of the cores; the ratio is
// of throughput under equal contention).
const PAIRING = process.env.BENCH_PAIRING === 'concurrent' ? 'concurrent' : 'alternating';
// Another build folder (holding build/entry.mjs) to compare this build with, route by route:
// the `baseline-*` scenarios run only when it is set.
const BASELINE = process.env.BENCH_BASELINE ?? '';

/**
 * edgecart's rate limits in the bench: wrangler.toml's bindings with limits no run reaches,
 * so every limited route still pays its `limit()` call but is never refused.
 */
const BENCH_RATELIMITS = Object.fromEntries(
  Object.entries(wranglerRatelimits()).map(([name, binding]) => [name, { ...binding, simple: { ...binding.simple, limit: 1e9 } }]),
);

/**
 * Whether a scenario's targets run at the same time: only in concurrent pairing, and only for
 * exactly two targets on two different workers (a third would share the 2 cores unevenly, and
 * two targets of one worker would mix their CPU times). Others alternate as usual.
 */
function concurrent(s) {
  return PAIRING === 'concurrent' && s.targets.length === 2 && s.targets[0].worker !== s.targets[1].worker;
}

export const ISSUER = 'https://edgecart.test';
export const AUDIENCE = 'edgecart';
const SUB = 'bench-user';
// Checkout empties a cart, so orders use their own user and cart.
const BUYER = 'bench-buyer';
const ALGS = ['HS256', 'RS256', 'ES256', 'EdDSA'];
const UPDATED_AT = '2026-11-29T08:00:00Z';
export const HOT_SKU = 'tea-sencha-100g';
const PRODUCTS = [
  [HOT_SKU, 'Sencha, 100 g', 'A green tea from Shizuoka.', 1250, 'EUR', 42],
  ['tea-assam-250g', 'Assam, 250 g', 'A malty black tea.', 990, 'EUR', 17],
  ['cup-porcelain', 'Porcelain cup', 'White, 180 ml.', 1800, 'EUR', 5],
];
const CART_LINES = [
  [HOT_SKU, 2],
  ['tea-assam-250g', 1],
  ['cup-porcelain', 3],
];
const MISS_PREFIX = 'miss-';

const log = (...a) => console.error('[bench]', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Keys and tokens

// P-256 group order. WebCrypto signers (jose here) emit high-S ECDSA signatures about half
// the time; both workers accept them (semantics.md A19), but ES256 tokens are normalised to
// low S (s → n − s, the same cost to verify) so that they also verify with
// JWT_ES256_REQUIRE_LOW_S=true and the runs stay comparable with earlier ones.
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

function lowS(token) {
  const [h, p, sig] = token.split('.');
  const bytes = Buffer.from(sig, 'base64url');
  if (bytes.length !== 64) return token;
  const s = BigInt(`0x${bytes.subarray(32).toString('hex')}`);
  if (s <= P256_N / 2n) return token;
  const fixed = Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex');
  return `${h}.${p}.${Buffer.concat([bytes.subarray(0, 32), fixed]).toString('base64url')}`;
}

export async function keysAndTokens() {
  const publicKeys = [];
  const tokens = {};
  for (const alg of ALGS) {
    const kid = `bench-${alg.toLowerCase()}`;
    let signingKey;
    if (alg === 'HS256') {
      signingKey = await generateSecret('HS256', { extractable: true });
      publicKeys.push({ ...(await exportJWK(signingKey)), kid, alg, use: 'sig' });
    } else {
      const pair = await generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
      signingKey = pair.privateKey;
      publicKeys.push({ ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' });
    }
    const fix = alg === 'ES256' ? lowS : (t) => t;
    tokens[alg] = fix(await new SignJWT({ scope: 'catalog:write' })
      .setProtectedHeader({ alg, kid, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(SUB)
      .setIssuedAt()
      .setExpirationTime('6h')
      .sign(signingKey));
    if (alg === 'ES256') {
      tokens.buyer = fix(await new SignJWT({})
        .setProtectedHeader({ alg, kid, typ: 'JWT' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject(BUYER)
        .setIssuedAt()
        .setExpirationTime('6h')
        .sign(signingKey));
    }
  }
  return { jwks: JSON.stringify({ keys: publicKeys }), tokens };
}

/** edgecart's `Identity::user_key`: SHA-256 over u64-BE-length-prefixed iss and sub, hex. */
function userKey(iss, sub) {
  const h = createHash('sha256');
  for (const part of [iss, sub]) {
    const bytes = Buffer.from(part, 'utf8');
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(bytes.length));
    h.update(len).update(bytes);
  }
  return h.digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Workers

/** Bundles the reference worker (or another entry that imports it) into `dir`. */
export async function bundleReference(dir, entry = join(ROOT, 'bench', 'reference', 'worker.js'), name = 'reference.js') {
  const outfile = join(dir, name);
  await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    minify: false,
    outfile,
    logLevel: 'warning',
  });
  return outfile;
}

/** Miniflare options for one worker, with the worker's output drained (and the tail kept). */
export function options(kind, { port, persist, vars, scriptPath, assets = false, assetsFirst = false, inspectorPort }) {
  const tail = [];
  const drain = (stream) =>
    stream.on('data', (chunk) => {
      tail.push(String(chunk));
      if (tail.length > 20) tail.shift();
    });
  // Module names are relative to modulesRoot: the snapshot of build/ or the reference bundle
  // live in temp folders.
  let worker;
  if (kind.startsWith('edgecart') && !AA) {
    worker = {
      ...edgecartWorker({ vars, scriptPath, assets, ratelimits: BENCH_RATELIMITS }),
      name: kind,
      modulesRoot: dirname(scriptPath),
    };
    // The configuration before run_worker_first: the router asks the assets service whether a
    // path is a file before any request reaches the worker.
    if (assetsFirst && worker.assets) worker.assets.routerConfig = { has_user_worker: true };
  } else {
    worker = {
      name: kind,
      scriptPath,
      modules: true,
      modulesRoot: dirname(scriptPath),
      compatibilityDate: COMPATIBILITY_DATE,
      cache: true,
      bindings: vars,
    };
    if (kind !== 'bare') {
      worker.kvNamespaces = { CARTS: 'carts' };
      worker.d1Databases = { DB: 'edgecart-db' };
    }
  }
  return {
    tail,
    options: {
      host: '127.0.0.1',
      port,
      ...(inspectorPort ? { inspectorPort } : {}),
      // The placeholder `request.cf`: no fetch of cf.json in the start-up time.
      cf: false,
      handleRuntimeStdio(stdout, stderr) {
        drain(stdout);
        drain(stderr);
      },
      ...persistOptions(persist),
      workers: [worker],
    },
  };
}

/**
 * Where the workers' local storage lives: tmpfs when the machine has one. Miniflare's D1
 * simulator writes its SQLite WAL on every query, reads included (about 9 KiB per `GET /cart`),
 * and on a disk its checkpoints stall the whole workerd process for hundreds of milliseconds:
 * noise shared by both workers that has nothing to do with either (measured 2026-11-29:
 * reference `GET /cart` 692 req/s with state on ext4, 827 req/s on /dev/shm).
 */
const STATE_ROOT = process.env.BENCH_STATE_DIR || (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());

export async function startOne(kind, spec) {
  const port = await freePort();
  const persist = await mkdtemp(join(STATE_ROOT, `edgecart-bench-${kind}-`));
  const { options: opts, tail } = options(kind, { ...spec, port, persist });
  const mf = new Miniflare(opts);
  let url;
  try {
    url = (await mf.ready).toString().replace(/\/$/, '');
  } catch (e) {
    await sleep(100);
    log(`${kind} did not start; its last output:\n${tail.join('')}`);
    await rm(persist, { recursive: true, force: true });
    throw e;
  }
  return {
    kind,
    url,
    mf,
    tail,
    pid: await workerdPid(port),
    async stop() {
      await mf.dispose();
      await rm(persist, { recursive: true, force: true });
    },
  };
}

/** D1 rows and the KV cart, identical in every worker that has storage. */
export async function seed(w, missRows) {
  const db = await w.mf.getD1Database('DB');
  await migrate(db);
  const insert = db.prepare(
    'INSERT OR REPLACE INTO products (sku, name, description, price_minor, currency, stock, version, updated_at) ' +
      'VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7)',
  );
  await db.batch(PRODUCTS.map((p) => insert.bind(...p, UPDATED_AT)));
  // Rows for the cache-miss runs: each request asks for a sku never asked before.
  await db
    .prepare(
      `INSERT OR REPLACE INTO products (sku, name, description, price_minor, currency, stock, version, updated_at)
       WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
       SELECT '${MISS_PREFIX}' || i, 'Miss ' || i, 'A product read once.', 100 + i % 900, 'EUR', 10, 1, ?2 FROM n`,
    )
    .bind(missRows, UPDATED_AT)
    .run();
  const kv = await w.mf.getKVNamespace('CARTS');
  const cart = {
    version: 7,
    updated_at: UPDATED_AT,
    currency: 'EUR',
    lines: CART_LINES.map(([sku, quantity]) => ({
      sku,
      quantity,
      name: PRODUCTS.find((p) => p[0] === sku)[1],
    })),
  };
  await kv.put(`cart:${userKey(ISSUER, SUB)}`, JSON.stringify(cart));
  await kv.put(`cart:${userKey(ISSUER, BUYER)}`, JSON.stringify(cart));
}

// ---------------------------------------------------------------------------------------------
// CPU time of a worker's workerd process (it also runs Miniflare's entry worker and the KV,
// D1 and Cache simulators of that instance). Unlike req/s, CPU time per request barely moves
// when other processes compete for the cores, so it is the steadier comparison here.

const CLK_TCK = 100; // Linux USER_HZ

async function workerdPid(port) {
  const needle = `--socket-addr=entry=127.0.0.1:${port}`;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = await readFile(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.includes('workerd') && cmd.split('\0').includes(needle)) return Number(entry);
    } catch {
      // The process ended while we looked.
    }
  }
  return null;
}

/** User + system CPU time of a process, in ms; null when unknown. */
async function cpuMs(pid) {
  if (!pid) return null;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime); index 11 and 12 after the command name.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// wrk

export function wrkArgs(url, { headers = {}, script, scriptArgs = [] }, seconds) {
  const args = ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '--timeout', '5s'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  if (script) args.push('-s', script);
  args.push(url);
  if (script) args.push('--', ...scriptArgs);
  return args;
}

function toMs(text) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (!m) return null;
  const n = Number(m[1]);
  return { us: n / 1000, ms: n, s: n * 1000, m: n * 60000 }[m[2]];
}

function parseWrk(out) {
  const num = (re) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : 0;
  };
  const lat = (pct) => {
    const m = new RegExp(`^\\s+${pct}%\\s+(\\S+)`, 'm').exec(out);
    return m ? toMs(m[1]) : null;
  };
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    requests: num(/(\d+) requests in/),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    socketErrors: errors ? errors.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    p50: lat(50),
    p99: lat(99),
  };
}

export function runWrk(args) {
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { timeout: (SECONDS + 30) * 1000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`wrk failed: ${err.message}\n${stderr}`));
      else resolve(parseWrk(stdout));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/**
 * Each scenario: targets (worker + path + headers), which pairs to report as ratios, and the
 * goal of each ratio. `probe` checks a target answers as it should before it is measured.
 */
function scenarios(tokens) {
  const bearer = (alg) => ({ Authorization: `Bearer ${tokens[alg]}` });
  const list = [
    {
      name: 'health',
      what: 'GET /health: the empty route (per-request overhead)',
      targets: [
        { label: 'edgecart', worker: 'edgecart', path: '/health' },
        { label: 'reference', worker: 'reference', path: '/health' },
        { label: 'bare', worker: 'bare', path: '/' },
      ],
      ratios: [
        ['edgecart', 'reference', null],
        ['edgecart', 'bare', null],
      ],
    },
    {
      name: 'health-assets',
      what:
        'GET /health through the static-assets router as deployed (the worker first), vs without the router, and vs the router asking the assets first (the configuration before run_worker_first)',
      targets: [
        { label: 'edgecart+assets', worker: 'edgecart-assets', path: '/health' },
        { label: 'edgecart', worker: 'edgecart', path: '/health' },
        { label: 'edgecart+assets-first', worker: 'edgecart-assets-first', path: '/health' },
      ],
      ratios: [
        ['edgecart+assets', 'edgecart', null],
        ['edgecart+assets', 'edgecart+assets-first', null],
      ],
    },
    {
      name: 'cart-assets',
      what: 'GET /cart (3 lines, ES256) through the static-assets router: the worker first (as deployed) vs the assets first (before run_worker_first)',
      targets: [
        { label: 'edgecart+assets', worker: 'edgecart-assets', path: '/cart', headers: bearer('ES256') },
        { label: 'edgecart+assets-first', worker: 'edgecart-assets-first', path: '/cart', headers: bearer('ES256') },
      ],
      ratios: [['edgecart+assets', 'edgecart+assets-first', null]],
    },
    {
      name: 'log-line',
      what: "the reference's GET /health with and without one JSON console.log line per request, as edgecart writes with LOG_REQUESTS=all",
      targets: [
        { label: 'reference+log', worker: 'reference-log', path: '/health' },
        { label: 'reference', worker: 'reference', path: '/health' },
      ],
      ratios: [['reference+log', 'reference', null]],
    },
    {
      name: 'cf-read',
      what: "the reference's GET /health with and without reading request.cf, as workers-rs's Request::from does on every request",
      targets: [
        { label: 'reference+cf', worker: 'reference-cf', path: '/health' },
        { label: 'reference', worker: 'reference', path: '/health' },
      ],
      ratios: [['reference+cf', 'reference', null]],
    },
    ...ALGS.map((alg) => ({
      name: `me-${alg}`,
      what: `GET /me, ${alg} bearer token`,
      targets: [
        { label: 'edgecart', worker: 'edgecart', path: '/me', headers: bearer(alg) },
        { label: 'reference', worker: 'reference', path: '/me', headers: bearer(alg) },
      ],
      ratios: [['edgecart', 'reference', 1.0]],
      same: true,
    })),
    {
      name: 'product-hit',
      what: `GET /products/${HOT_SKU}, edge-cache hit`,
      targets: [
        { label: 'edgecart', worker: 'edgecart', path: `/products/${HOT_SKU}` },
        { label: 'bare', worker: 'bare', path: '/' },
        { label: 'reference', worker: 'reference', path: `/products/${HOT_SKU}` },
      ],
      ratios: [
        ['edgecart', 'bare', 0.8],
        ['edgecart', 'reference', null],
      ],
      expectHeader: ['cache-status', 'edgecart; hit'],
      same: true,
    },
    {
      name: 'product-miss',
      what: 'GET /products/{sku}, cache miss every request (D1 read + cache put)',
      targets: [
        { label: 'edgecart', worker: 'edgecart', miss: true },
        { label: 'reference', worker: 'reference', miss: true },
      ],
      ratios: [['edgecart', 'reference', null]],
    },
    {
      name: 'floor',
      what: 'storage floors: one KV get, one D1 query, one cache match per request (reference)',
      warm: [['reference', `/products/${HOT_SKU}`]],
      targets: [
        { label: 'kv get', worker: 'reference', path: `/floor/kv/cart:${userKey(ISSUER, SUB)}` },
        { label: 'd1 IN (3 skus)', worker: 'reference', path: `/floor/d1?skus=${CART_LINES.map((l) => l[0]).join(',')}` },
        { label: 'cache match', worker: 'reference', path: '/floor/cache' },
      ],
      ratios: [],
    },
    {
      name: 'cart',
      what: 'GET /cart, 3 lines, ES256 token (KV read + D1 pricing)',
      targets: [
        { label: 'edgecart', worker: 'edgecart', path: '/cart', headers: bearer('ES256') },
        { label: 'reference', worker: 'reference', path: '/cart', headers: bearer('ES256') },
      ],
      ratios: [['edgecart', 'reference', 1.0]],
      same: true,
    },
    {
      // For information: both workers writing one JSON log line per request (edgecart with
      // LOG_REQUESTS=all; by default it logs problem responses only, and neither logs above).
      name: 'cart-log',
      what: 'GET /cart as above, both writing one JSON log line per request (edgecart LOG_REQUESTS=all)',
      targets: [
        { label: 'edgecart+log', worker: 'edgecart-log', path: '/cart', headers: bearer('ES256') },
        { label: 'reference+log', worker: 'reference-log', path: '/cart', headers: bearer('ES256') },
      ],
      ratios: [['edgecart+log', 'reference+log', null]],
      same: true,
    },
  ];
  const buyer = `Bearer ${tokens.buyer}`;
  const replay = { body: JSON.stringify({ cart_version: 7 }), auth: buyer, key: 'bench-replay' };
  const fresh = { body: JSON.stringify({ cart_version: 8 }), auth: buyer, key: 'bench-new-', fresh: true };
  list.push(
    {
      name: 'orders-replay',
      what: 'POST /orders, the same Idempotency-Key again: a stored 201 replayed (ES256)',
      targets: [
        { label: 'durable_object', worker: 'edgecart', path: '/orders', post: replay, expect: [201] },
        { label: 'd1', worker: 'edgecart-d1', path: '/orders', post: replay, expect: [201] },
      ],
      ratios: [],
    },
    {
      name: 'orders-new-key',
      what: 'POST /orders, a new Idempotency-Key each time on the emptied cart: claim, cart read, refusal stored (409/422)',
      targets: [
        { label: 'durable_object', worker: 'edgecart', path: '/orders', post: fresh, expect: [409, 422] },
        { label: 'd1', worker: 'edgecart-d1', path: '/orders', post: fresh, expect: [409, 422] },
      ],
      ratios: [],
    },
  );
  if (BASELINE) {
    // This build against BENCH_BASELINE on the same routes (e.g. before and after a change).
    list.push(
      {
        name: 'baseline-me',
        what: 'GET /me, ES256: this build vs BENCH_BASELINE',
        targets: [
          { label: 'edgecart', worker: 'edgecart', path: '/me', headers: bearer('ES256') },
          { label: 'baseline', worker: 'edgecart-base', path: '/me', headers: bearer('ES256') },
        ],
        ratios: [['edgecart', 'baseline', null]],
        same: true,
      },
      {
        name: 'baseline-write',
        what: 'DELETE /cart/items/{sku} of a line the 3-line cart does not hold (a cart write that changes nothing), ES256: this build vs BENCH_BASELINE',
        targets: [
          { label: 'edgecart', worker: 'edgecart', path: '/cart/items/bench-absent', method: 'DELETE', headers: bearer('ES256') },
          { label: 'baseline', worker: 'edgecart-base', path: '/cart/items/bench-absent', method: 'DELETE', headers: bearer('ES256') },
        ],
        ratios: [['edgecart', 'baseline', null]],
        same: true,
      },
    );
  }
  return list.filter((s) => !ONLY.length || ONLY.some((o) => s.name.startsWith(o)));
}

/** One request as a probe: status, content type, selected header and parsed body. */
async function probe(url, target, header) {
  const init = target.post
    ? {
        method: 'POST',
        body: target.post.body,
        headers: {
          authorization: target.post.auth,
          'content-type': 'application/json',
          'idempotency-key': `"${target.post.key}${target.post.fresh ? 0 : ''}"`,
        },
      }
    : { method: target.method ?? 'GET', headers: target.headers ?? {} };
  const res = await fetch(url + target.path, init);
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    header: header ? res.headers.get(header) : null,
    body,
  };
}

function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return null;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function stableJson(v) {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

// ---------------------------------------------------------------------------------------------
// Size and start-up

async function wasmSizes(dir, base) {
  const out = [];
  const walk = async (d) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.wasm')) {
        const bytes = await readFile(p);
        out.push({ file: p.slice(base.length + 1), raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length });
      }
    }
  };
  await walk(dir);
  return out;
}

/** Time from `new Miniflare` to the first 200 from GET /health (or / for bare), in ms. */
async function startupMs(kind, spec, path) {
  const samples = [];
  for (let i = 0; i < STARTUP_SAMPLES; i++) {
    const t0 = performance.now();
    const w = await startOne(kind, spec);
    let ok = false;
    for (let attempt = 0; attempt < 200 && !ok; attempt++) {
      try {
        const res = await fetch(w.url + path);
        await res.arrayBuffer();
        ok = res.status === 200;
      } catch {
        await sleep(10);
      }
    }
    const t1 = performance.now();
    await w.stop();
    if (ok) samples.push(t1 - t0);
  }
  return { median: median(samples), samples };
}

// ---------------------------------------------------------------------------------------------
// Main

const fmt = (n, d = 0) => (n == null ? '–' : Number(n).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));

async function main() {
  const started = Date.now();
  if (!AA && !existsSync(join(ROOT, 'build', 'entry.mjs'))) {
    throw new Error('build/entry.mjs is missing: run `npm run build` first');
  }
  const tmp = await mkdtemp(join(tmpdir(), 'edgecart-bench-'));
  const referencePath = await bundleReference(tmp);
  const barePath = join(ROOT, 'bench', 'reference', 'bare.js');
  const { jwks, tokens } = await keysAndTokens();
  const vars = { ENVIRONMENT: 'production', JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWT_JWKS: jwks };
  // A snapshot of build/: a rebuild during the run (others work in this tree) cannot change
  // what is measured half-way.
  if (!AA) {
    await cp(join(ROOT, 'build'), join(tmp, 'build'), {
      recursive: true,
      filter: (p) => !/[\\/]\.tmp([\\/]|$)/.test(p),
    });
  }
  const edgecartScript = AA ? referencePath : join(tmp, 'build', 'entry.mjs');
  const specs = {
    edgecart: { scriptPath: edgecartScript, vars },
    'edgecart-assets': { scriptPath: edgecartScript, vars, assets: true },
    'edgecart-assets-first': { scriptPath: edgecartScript, vars, assets: true, assetsFirst: true },
    'edgecart-d1': { scriptPath: edgecartScript, vars: { ...vars, IDEMPOTENCY_BACKEND: 'd1' } },
    reference: { scriptPath: referencePath, vars },
    'edgecart-log': { scriptPath: edgecartScript, vars: { ...vars, LOG_REQUESTS: 'all' } },
    'reference-log': { scriptPath: referencePath, vars: { ...vars, LOG_REQUESTS: 'all' } },
    'reference-cf': { scriptPath: referencePath, vars: { ...vars, READ_CF: '1' } },
    bare: { scriptPath: barePath, vars: {} },
  };
  if (BASELINE) {
    await cp(join(BASELINE, 'build'), join(tmp, 'baseline', 'build'), {
      recursive: true,
      filter: (p) => !/[\\/]\.tmp([\\/]|$)/.test(p),
    });
    specs['edgecart-base'] = { scriptPath: join(tmp, 'baseline', 'build', 'entry.mjs'), vars };
  }

  // Enough miss rows for every miss run at a rate no worker here reaches (4,000 req/s; the
  // local D1 and Cache simulators allow a few hundred).
  const missRows = Math.max(20_000, 4_000 * (SECONDS * ROUNDS + 2));
  const list = scenarios(tokens);
  const needed = new Set(list.flatMap((s) => s.targets.map((t) => t.worker)));

  const sizes = AA ? [] : await wasmSizes(join(tmp, 'build'), tmp);
  log('wasm:', sizes.map((s) => `${s.file} ${s.raw} B raw, ${s.gzip} B gzip`).join('; '));

  log(`start-up time, ${STARTUP_SAMPLES} sample(s) each`);
  const startup = {
    edgecart: await startupMs('edgecart', specs.edgecart, '/health'),
    reference: await startupMs('reference', specs.reference, '/health'),
    bare: await startupMs('bare', specs.bare, '/'),
  };
  log('start-up ms:', Object.entries(startup).map(([k, v]) => `${k} ${fmt(v.median)}`).join(', '));

  const workers = {};
  try {
    for (const kind of needed) {
      workers[kind] = await startOne(kind, specs[kind]);
      if (kind !== 'bare') await seed(workers[kind], missRows);
    }
    // Per worker and kind (`miss` skus, `post` keys): the next never-used number.
    const missNext = {};
    const counter = (t) => `${t.worker}:${t.post ? 'post' : 'miss'}`;
    for (const k of Object.keys(workers)) {
      missNext[`${k}:miss`] = 0;
      missNext[`${k}:post`] = 0;
    }

    // Probe every target once; warm the cache for the hit scenario; keep what works.
    const runnable = [];
    const skipped = [];
    for (const s of list) {
      const problems = [];
      const bodies = [];
      for (const [worker, path] of s.warm ?? []) {
        await probe(workers[worker].url, { path });
        await sleep(200);
      }
      for (const t of s.targets) {
        if (t.miss) {
          const p = await probe(workers[t.worker].url, { path: `/products/${MISS_PREFIX}${++missNext[counter(t)]}` }, 'cache-status');
          if (p.status !== 200) problems.push(`${t.label} answered ${p.status} ${p.type ?? ''}`);
          continue;
        }
        let p = await probe(workers[t.worker].url, t, s.expectHeader?.[0]);
        if (s.expectHeader && p.status === 200 && t.worker !== 'bare') {
          // The first request fills the cache (stored via waitUntil); give it a moment.
          for (let i = 0; i < 50 && p.header !== s.expectHeader[1]; i++) {
            await sleep(20);
            p = await probe(workers[t.worker].url, t, s.expectHeader[0]);
          }
          if (p.header !== s.expectHeader[1]) {
            problems.push(`${t.label}: ${s.expectHeader[0]} is ${JSON.stringify(p.header)} after warming`);
          }
        }
        if (!(t.expect ?? [200]).includes(p.status)) {
          problems.push(`${t.label} answered ${p.status} ${p.type ?? ''} ${typeof p.body === 'object' ? p.body?.type ?? '' : ''}`.trim());
        }
        if (t.worker !== 'bare') bodies.push([t.label, p.body]);
      }
      if (s.same && bodies.length >= 2 && !problems.length) {
        const [a, b] = bodies;
        const strip = (v) => (v && typeof v === 'object' ? { ...v, updated_at: undefined } : v);
        if (stableJson(strip(a[1])) !== stableJson(strip(b[1]))) {
          log(`note: ${s.name}: bodies differ:\n  ${a[0]}: ${JSON.stringify(a[1])}\n  ${b[0]}: ${JSON.stringify(b[1])}`);
          s.bodiesDiffer = true;
        }
      }
      if (problems.length) {
        log(`skip ${s.name}: ${problems.join('; ')}`);
        skipped.push({ name: s.name, what: s.what, why: problems.join('; ') });
      } else {
        runnable.push(s);
      }
    }

    const runTarget = async (s, t, seconds) => {
      const w = workers[t.worker];
      let args;
      if (t.post) {
        const { body, auth, key, fresh } = t.post;
        const scriptArgs = [t.path, body, auth, key];
        if (fresh) scriptArgs.push(String(++missNext[counter(t)]));
        args = wrkArgs(w.url, { script: join(ROOT, 'bench', 'wrk', 'post.lua'), scriptArgs }, seconds);
      } else if (t.miss) {
        args = wrkArgs(w.url, {
          script: join(ROOT, 'bench', 'wrk', 'sequence.lua'),
          scriptArgs: [`/products/${MISS_PREFIX}`, String(missNext[counter(t)])],
        }, seconds);
      } else if (t.method === 'DELETE') {
        args = wrkArgs(w.url + t.path, { headers: t.headers, script: join(ROOT, 'bench', 'wrk', 'delete.lua') }, seconds);
      } else {
        args = wrkArgs(w.url + t.path, { headers: t.headers }, seconds);
      }
      const before = await cpuMs(w.pid);
      const r = await runWrk(args);
      const after = await cpuMs(w.pid);
      r.cpuUsPerReq = before != null && after != null && r.requests ? ((after - before) * 1000) / r.requests : null;
      if (t.miss || t.post?.fresh) {
        // wrk counts completed requests; a few more may have reached the worker.
        missNext[counter(t)] += r.requests + CONNECTIONS * 4;
        if (t.miss && missNext[counter(t)] > missRows) log(`warning: ${t.worker} ran past the seeded miss rows`);
      }
      return r;
    };

    // Warm-up: one short run per target, not recorded (JIT, wasm tiers, SQLite pages).
    log(`warm-up: ${runnable.length} scenario(s)`);
    for (const s of runnable) for (const t of s.targets) await runTarget(s, t, 1);

    const results = Object.fromEntries(
      runnable.map((s) => [s.name, Object.fromEntries(s.targets.map((t) => [t.label, []]))]),
    );
    for (let round = 0; round < ROUNDS; round++) {
      log(`round ${round + 1}/${ROUNDS}`);
      for (const s of runnable) {
        const order = round % 2 ? [...s.targets].reverse() : s.targets;
        const together = concurrent(s);
        const runs = together ? await Promise.all(order.map((t) => runTarget(s, t, SECONDS))) : [];
        for (const [i, t] of order.entries()) {
          const r = together ? runs[i] : await runTarget(s, t, SECONDS);
          results[s.name][t.label].push(r);
          const bad = (t.expect?.some((x) => x >= 300) ? 0 : r.non2xx) + r.socketErrors;
          log(`  ${s.name.padEnd(14)} ${t.label.padEnd(16)} ${fmt(r.rps).padStart(7)} req/s  ${fmt(r.cpuUsPerReq).padStart(5)} µs CPU/req  p50 ${fmt(r.p50, 2)} ms  p99 ${fmt(r.p99, 2)} ms${bad ? `  (${bad} errors/non-2xx)` : ''}`);
        }
      }
    }

    // Summaries: medians per target, and per-round ratios (paired runs) → median, min, max.
    const summary = runnable.map((s) => {
      const targets = Object.fromEntries(
        s.targets.map((t) => {
          const runs = results[s.name][t.label];
          return [
            t.label,
            {
              rps: median(runs.map((r) => r.rps)),
              cpu_us_per_req: median(runs.map((r) => r.cpuUsPerReq)),
              p50_ms: median(runs.map((r) => r.p50)),
              p99_ms: median(runs.map((r) => r.p99)),
              errors: runs.reduce((n, r) => n + (t.expect?.some((x) => x >= 300) ? 0 : r.non2xx) + r.socketErrors, 0),
              runs: runs.map((r) => Math.round(r.rps)),
            },
          ];
        }),
      );
      const ratios = s.ratios.map(([a, b, goal]) => {
        const per = results[s.name][a].map((r, i) => r.rps / results[s.name][b][i].rps);
        const value = median(per);
        // CPU ratio the same way round, so > 1 means edgecart is cheaper: other / edgecart.
        const cpuPer = results[s.name][a].map((r, i) => results[s.name][b][i].cpuUsPerReq / r.cpuUsPerReq);
        return {
          cpu_ratio: median(cpuPer),
          of: a,
          to: b,
          value,
          min: Math.min(...per),
          max: Math.max(...per),
          goal,
          met: goal == null ? null : value >= goal,
        };
      });
      return { name: s.name, what: s.what, targets, ratios, bodies_differ: !!s.bodiesDiffer };
    });

    const report = {
      date: new Date().toISOString(),
      settings: { seconds: SECONDS, rounds: ROUNDS, connections: CONNECTIONS, threads: 1, quick: QUICK, aa: AA, pairing: PAIRING, state: STATE_ROOT },
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
      wasm: sizes,
      startup_ms: Object.fromEntries(Object.entries(startup).map(([k, v]) => [k, { median: v.median, samples: v.samples.map(Math.round) }])),
      scenarios: summary,
      skipped,
      duration_s: Math.round((Date.now() - started) / 1000),
    };
    const md = markdown(report);
    await mkdir(OUT, { recursive: true });
    const stamp = report.date.replace(/[:]/g, '-').replace(/\..*$/, '');
    await writeFile(join(OUT, `${stamp}.md`), md);
    await writeFile(join(OUT, `${stamp}.json`), JSON.stringify(report, null, 2));
    process.stdout.write(md);
    process.stdout.write(`\n<details><summary>JSON</summary>\n\n\`\`\`json\n${JSON.stringify(report, null, 2)}\n\`\`\`\n</details>\n`);
    log(`wrote ${join(OUT, `${stamp}.md`)} and .json (${report.duration_s} s)`);
  } finally {
    for (const w of Object.values(workers)) await w.stop().catch(() => {});
    await rm(tmp, { recursive: true, force: true });
  }
}

function markdown(r) {
  const lines = [];
  lines.push(`# edgecart benchmark, ${r.date}${r.settings.aa ? ' (A/A: the reference plays edgecart)' : ''}`);
  lines.push('');
  lines.push(
    `workerd through Miniflare on 127.0.0.1 (storage state in ${r.settings.state}), wrk 1 thread, ${r.settings.connections} connections, ` +
      `${r.settings.seconds} s per run, ${r.settings.rounds} round(s) ` +
      (r.settings.pairing === 'concurrent'
        ? 'with two compared workers loaded at the same time (concurrent pairing; scenarios ' +
          'with more targets, or two targets of one worker, alternate); '
        : 'alternating the order; ') +
      `${r.machine.cpus} CPUs shared with wrk, Node ${r.machine.node}. Ratios are the median of the ` +
      'per-round ratios (paired runs), with their range. CPU µs/req is the user + system time of ' +
      "the worker's workerd process (which also runs Miniflare's KV, D1 and Cache simulators) per " +
      'request: steadier than req/s when other processes compete for the cores; its ratio is ' +
      'other / edgecart, so above 1 means edgecart spends less.',
  );
  lines.push('');
  lines.push('| scenario | edgecart req/s | compared with | req/s | ratio (range) | goal | CPU µs/req edgecart / other (ratio) | p50 / p99 ms (edgecart) |');
  lines.push('|---|---:|---|---:|---|---|---|---|');
  for (const s of r.scenarios) {
    for (const q of s.ratios) {
      const a = s.targets[q.of];
      const b = s.targets[q.to];
      const goal = q.goal == null ? '' : `≥ ${q.goal.toFixed(1)}× ${q.met ? '✅' : '❌'}`;
      const errs = a.errors || b.errors ? ` ⚠ ${a.errors + b.errors} non-2xx/errors` : '';
      lines.push(
        `| ${s.name} (${q.of}) | ${fmt(a.rps)} | ${q.to} | ${fmt(b.rps)} | ${fmt(q.value, 2)}× (${fmt(q.min, 2)}–${fmt(q.max, 2)}) | ${goal} | ${fmt(a.cpu_us_per_req)} / ${fmt(b.cpu_us_per_req)} (${fmt(q.cpu_ratio, 2)}×) | ${fmt(a.p50_ms, 2)} / ${fmt(a.p99_ms, 2)}${errs}${s.bodies_differ ? ' (bodies differ)' : ''} |`,
      );
    }
  }
  lines.push('');
  const info = r.scenarios.filter((s) => !s.ratios.length);
  if (info.length) {
    lines.push('| measured alone | req/s | CPU µs/req | p50 / p99 ms |');
    lines.push('|---|---:|---:|---|');
    for (const s of info) {
      for (const [label, t] of Object.entries(s.targets)) {
        lines.push(`| ${s.name}: ${label} | ${fmt(t.rps)} | ${fmt(t.cpu_us_per_req)} | ${fmt(t.p50_ms, 2)} / ${fmt(t.p99_ms, 2)} |`);
      }
    }
    lines.push('');
  }
  if (r.skipped.length) {
    lines.push('Skipped (edgecart or the reference did not answer as expected):');
    lines.push('');
    for (const s of r.skipped) lines.push(`- ${s.name} (${s.what}): ${s.why}`);
    lines.push('');
  }
  lines.push('| wasm | raw | gzip |');
  lines.push('|---|---:|---:|');
  for (const w of r.wasm) lines.push(`| ${w.file} | ${fmt(w.raw / 1024, 1)} KiB | ${fmt(w.gzip / 1024, 1)} KiB |`);
  lines.push('');
  lines.push('Start-up (new Miniflare → first 200, includes spawning workerd), median ms: ' +
    Object.entries(r.startup_ms).map(([k, v]) => `${k} ${fmt(v.median)} (${v.samples.join(', ')})`).join('; ') + '.');
  lines.push('');
  lines.push('Scenarios: ' + r.scenarios.map((s) => `${s.name}: ${s.what}`).join('; ') + '.');
  lines.push('');
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
