// The "no per-user memory" run (issue 8): 100,000 requests from 20,000 distinct users (cart
// reads and writes, /me) through ONE workerd process, with that process's resident memory
// (VmRSS from /proc/<pid>/status) recorded before, during and after.
//
// What it shows: a stateless worker keeps nothing per user, so memory after 20,000 users is
// what it was after the first few hundred. If the worker (or anything in the request path)
// kept per-user state — a cache of verified tokens, a map of carts, an idempotency table in
// memory — RSS would grow in proportion to the users seen.
//
// What is measured, and the bound:
// - workerd RSS (VmRSS) before, during (every 0.5 s) and after, and at every tenth of the
//   users, each reading after a forced GC of the worker's isolate (through the inspector), so
//   garbage not yet collected does not count.
// - RSS alone cannot be flat locally: Miniflare's KV, D1 and Durable Object simulators run
//   INSIDE the same workerd process, and the KV simulator's memory grows with every key stored
//   (measured with MEM_WORKER=control, a 15-line JS worker doing the same KV gets and puts and
//   nothing else: about 29 KB of RSS per new user). So RSS is reported, with that control to
//   compare against, and the gate is on the memory that belongs to the worker: its isolate's
//   JS heap plus its WebAssembly linear memory (where every Rust allocation lives), both
//   read from V8 through the inspector.
// - Bound: the slope of that worker memory over the second half of the run (after every
//   one-time cost: JIT, wasm growth to its working size, key import) must stay under
//   MEM_MAX_BYTES_PER_USER = 256 bytes per user, and it may not grow by more than
//   MEM_MAX_GROWTH_MIB = 8 MiB from the warm baseline to the end. The smallest plausible
//   per-user leak is one verified token or one cart kept as a string (~330 and ~250 bytes,
//   more inside a map entry): over 512 bytes per user, 10 MiB over 20,000 users. Both bounds
//   sit at half of that, above the noise of readings taken after a GC (a few hundred KiB).
//
// MEM_MODE=guest makes every user a guest session instead (issue 20): the worker signs it
// (POST /session/guest), the guest writes and reads its cart and /me, then an account merges
// it (POST /cart/merge). A guest session is nothing but its token, so the same bound holds.
//
// Usage: node bench/memory.mjs (needs build/entry.mjs; `npm run build`). Environment:
// MEM_USERS (20000), MEM_CONCURRENCY (16 users in flight), MEM_WARM_USERS (500),
// MEM_MAX_BYTES_PER_USER (256), MEM_MAX_GROWTH_MIB (8), MEM_WORKER=control, MEM_MODE=guest,
// BENCH_OUT.
// Prints a summary and writes the samples to bench/results/memory-<date>.json. Exit code 1
// when a bound is broken or a request failed. Not part of `npm test`: it takes minutes.
import { SignJWT, importJWK } from 'jose';
import { Miniflare } from 'miniflare';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { lowS } from '../scripts/es256-low-s.mjs';
import {
  ROOT,
  devKeyVars,
  edgecartWorker,
  freePort,
  inspector,
  migrate,
  persistOptions,
  wranglerRatelimits,
} from '../tests/worker/harness.mjs';

export { inspector };

const USERS = Number(process.env.MEM_USERS ?? 20_000);
const CONCURRENCY = Number(process.env.MEM_CONCURRENCY ?? 16);
const WARM_USERS = Number(process.env.MEM_WARM_USERS ?? 500);
const MAX_BYTES_PER_USER = Number(process.env.MEM_MAX_BYTES_PER_USER ?? 256);
const MAX_GROWTH_MIB = Number(process.env.MEM_MAX_GROWTH_MIB ?? 8);
const OUT = process.env.BENCH_OUT ?? join(ROOT, 'bench', 'results');
const SKUS = ['tea-sencha-100g', 'tea-earl-grey-100g', 'coffee-kenya-aa-250g', 'acc-paper-filters-100'];
const GUESTS = process.env.MEM_MODE === 'guest';
if (GUESTS && process.env.MEM_WORKER === 'control') throw new Error('MEM_MODE=guest needs edgecart, not the control worker');

const log = (...a) => console.error('[memory]', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mib = (kb) => (kb / 1024).toFixed(1);

/**
 * The built worker in one workerd process, as the test harness starts it (same bindings, fresh
 * state in a temporary folder), plus an inspector port: the inspector lets us force a garbage
 * collection before each reading, so RSS measures what is kept, not garbage not yet collected,
 * and read the worker isolate's own JS heap apart from the KV/D1 simulators that share the
 * process. Its console output is discarded (one line per request would fill this process).
 */
/**
 * MEM_WORKER=control swaps edgecart for this JS worker: the same routes and KV traffic (a
 * cart read is one KV get, a line write one KV put under a per-user key), no token checks, no
 * wasm. It tells apart what the local KV simulator (inside the same workerd process) costs
 * per stored key from what the worker itself keeps.
 */
const CONTROL_WORKER = `
export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    const user = (req.headers.get('authorization') ?? '').slice(-43);
    if (url.pathname === '/health' || url.pathname === '/me') return Response.json({ ok: true, user });
    if (url.pathname === '/cart') return new Response((await env.CARTS.get('cart:' + user)) ?? '{"items":[]}');
    if (url.pathname.startsWith('/cart/items/')) {
      const body = JSON.stringify({ items: [{ sku: url.pathname.slice(12), ...(await req.json()) }], version: 1 });
      await env.CARTS.put('cart:' + user, body);
      return new Response(body);
    }
    return new Response('not found', { status: 404 });
  },
};`;

/** The control run: the same bindings, the control script instead of edgecart's build. */
function controlWorker(worker) {
  const { scriptPath: _built, ...bindings } = worker;
  return { ...bindings, script: CONTROL_WORKER };
}

export async function start({ inspector = true, vars: extra = {} } = {}) {
  const port = await freePort();
  const inspectorPort = inspector ? await freePort() : undefined;
  const persist = await mkdtemp(join(tmpdir(), 'edgecart-memory-'));
  const vars = { ...(await devKeyVars()), ...extra };
  // One client address mints every guest session here: the mint limit would refuse nearly all.
  const limits = wranglerRatelimits();
  const ratelimits = { ...limits, MINT_LIMITER: { ...limits.MINT_LIMITER, simple: { limit: 1_000_000_000, period: 60 } } };
  const worker = edgecartWorker({ vars, assets: false, ratelimits });
  const control = process.env.MEM_WORKER === 'control';
  const mf = new Miniflare({
    host: '127.0.0.1',
    port,
    inspectorPort,
    cf: false,
    handleRuntimeStdio(stdout, stderr) {
      stdout.resume();
      stderr.on('data', (chunk) => process.env.MEM_DEBUG && process.stderr.write(chunk));
    },
    ...persistOptions(persist),
    workers: [control ? controlWorker(worker) : worker],
  });
  const url = (await mf.ready).toString().replace(/\/$/, '');
  await migrate(await mf.getD1Database('DB'));
  return {
    url,
    vars,
    mf,
    inspectorUrl: `ws://127.0.0.1:${inspectorPort}/core:user:edgecart`,
    fetch: (path, init) => fetch(url + path, init),
    async stop() {
      await mf.dispose();
      await rm(persist, { recursive: true, force: true });
    },
  };
}

/** The workerd process Miniflare started for us: our child named `workerd`. */
export async function workerdPid() {
  const found = [];
  for (const pid of (await readdir('/proc')).filter((d) => /^\d+$/.test(d))) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    if (/^Name:\s*workerd$/m.test(status) && status.includes(`\nPPid:\t${process.pid}\n`)) found.push(pid);
  }
  if (found.length !== 1) throw new Error(`expected one workerd child, found ${found.length}`);
  return found[0];
}

/** Resident set size of `pid`, in KiB. */
async function rssKb(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s*(\d+) kB$/m.exec(status)?.[1]);
}

/**
 * Tokens signed with the harness's dev key, as /dev/token signs them: ES256 in low-S form (so
 * they verify also with JWT_ES256_REQUIRE_LOW_S=true; WebCrypto emits high-S half the time).
 */
export async function minter(vars) {
  const jwk = JSON.parse(vars.DEV_TOKEN_KEY);
  const key = await importJWK(jwk, 'ES256');
  return async (sub) =>
    lowS(
      await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: jwk.kid, typ: 'JWT' })
        .setIssuer(vars.JWT_ISSUER)
        .setAudience(vars.JWT_AUDIENCE)
        .setSubject(sub)
        .setIssuedAt()
        .setExpirationTime('3h')
        .sign(key),
    );
}

/** Runs `task(i)` for i in [0, n) with at most `limit` in flight. */
export async function pool(n, limit, task) {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, n) }, async () => {
    while (next < n) await task(next++);
  });
  await Promise.all(lanes);
}

const statuses = new Map();
let requests = 0;

/** One request; a connection error counts as status "error" (and fails the run). */
async function call(w, path, token, init = {}) {
  let status;
  try {
    const res = await w.fetch(path, {
      ...init,
      headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) },
    });
    await res.arrayBuffer();
    status = res.status;
  } catch (e) {
    status = 'error';
    if (process.env.MEM_DEBUG) log(`${init.method ?? 'GET'} ${path}: ${e.cause?.message ?? e.message}`);
  }
  requests++;
  statuses.set(status, (statuses.get(status) ?? 0) + 1);
}

/**
 * One guest's visit: a guest session from the worker, a line written and read back as the
 * guest, /me, then the account `accountToken` merges the guest cart and reads its own.
 */
async function guestVisit(w, accountToken, i) {
  let guest;
  try {
    const res = await w.fetch('/session/guest', { method: 'POST' });
    requests++;
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    guest = res.status === 201 ? (await res.json()).token : (await res.arrayBuffer(), undefined);
  } catch {
    requests++;
    statuses.set('error', (statuses.get('error') ?? 0) + 1);
  }
  if (!guest) return;
  await call(w, `/cart/items/${SKUS[i % SKUS.length]}`, guest, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ quantity: 1 + (i % 5) }),
  });
  await call(w, '/cart', guest);
  await call(w, '/me', guest);
  await call(w, '/cart/merge', accountToken, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ guest_token: guest }),
  });
  await call(w, '/cart', accountToken);
}

/** One user's visit: read the cart, write one line (one KV write per user), read it back twice, /me. */
async function visit(w, token, i) {
  if (GUESTS) return guestVisit(w, token, i);
  await call(w, '/cart', token);
  await call(w, `/cart/items/${SKUS[i % SKUS.length]}`, token, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ quantity: 1 + (i % 5) }),
  });
  await call(w, '/cart', token);
  await call(w, '/me', token);
  await call(w, '/cart', token);
}

/**
 * Theil–Sen slope of y over x: the median of the slopes between every pair of points. Robust
 * to the odd outlier (a GC that did not finish before the reading on this shared machine).
 */
function slope(points) {
  const slopes = [];
  for (let a = 0; a < points.length; a++) {
    for (let b = a + 1; b < points.length; b++) {
      const dx = points[b].x - points[a].x;
      if (dx !== 0) slopes.push((points[b].y - points[a].y) / dx);
    }
  }
  slopes.sort((p, q) => p - q);
  return slopes.length ? slopes[Math.floor(slopes.length / 2)] : 0;
}

async function main() {
  const w = await start();
  const ins = await inspector(w.inspectorUrl);
  // Answered when the isolate first runs (the first reading's request); gives the context id.
  ins.send('Runtime.enable').catch(() => {});
  const samples = [];
  const checkpoints = [];
  let usersDone = 0;
  let timer;

  /**
   * One reading: a full GC of the worker's isolate, then the median of a few RSS samples a
   * quarter-second apart (RSS jitters with the simulators' own GCs), and the isolate's JS heap.
   */
  /**
   * One inspector command. workerd serves them when the isolate next runs, so a request goes
   * with it; bounded, so a missing answer costs a figure, not the run.
   */
  async function command(method, params) {
    const answer = ins.send(method, params).catch(() => undefined);
    await (await w.fetch('/health')).arrayBuffer();
    return Promise.race([answer, sleep(5000)]);
  }

  /** Bytes of WebAssembly linear memory in the worker's isolate (where Rust allocates). */
  async function wasmMemory() {
    const proto = await command('Runtime.evaluate', {
      expression: 'WebAssembly.Memory.prototype',
      contextId: ins.context(),
    });
    const objectId = proto?.result?.objectId;
    if (!objectId) return NaN;
    const all = await command('Runtime.queryObjects', { prototypeObjectId: objectId });
    const sum = await command('Runtime.callFunctionOn', {
      objectId: all?.objects?.objectId,
      functionDeclaration: 'function () { return this.reduce((n, m) => n + m.buffer.byteLength, 0); }',
      returnByValue: true,
    });
    return sum?.result?.value ?? NaN;
  }

  async function reading(pid, label) {
    await command('HeapProfiler.collectGarbage');
    const xs = [];
    for (let i = 0; i < 5; i++) {
      await sleep(200);
      xs.push(await rssKb(pid));
    }
    xs.sort((a, b) => a - b);
    const heap = (await command('Runtime.getHeapUsage')) ?? { usedSize: NaN };
    return {
      label,
      users: usersDone,
      rss_kb: xs[2],
      js_heap_used_kb: heap.usedSize / 1024,
      wasm_memory_kb: (await wasmMemory()) / 1024,
    };
  }

  try {
    const pid = await workerdPid();
    const mint = await minter(w.vars);
    const cold = await reading(pid, 'cold');
    log(`workerd pid ${pid}, cold RSS ${mib(cold.rss_kb)} MiB`);

    log(`minting ${USERS + WARM_USERS} tokens`);
    const warmTokens = await Promise.all(Array.from({ length: WARM_USERS }, (_, i) => mint(`warm-${i}`)));
    const tokens = [];
    for (let i = 0; i < USERS; i += 1000) {
      const batch = Array.from({ length: Math.min(1000, USERS - i) }, (_, j) => mint(`user-${i + j}`));
      tokens.push(...(await Promise.all(batch)));
    }

    log(`warm-up: ${WARM_USERS} users`);
    const progress = setInterval(() => log(`… ${requests} requests so far, statuses ${JSON.stringify(Object.fromEntries(statuses))}`), 10_000);
    await pool(WARM_USERS, CONCURRENCY, (i) => visit(w, warmTokens[i], i));
    clearInterval(progress);
    const before = await reading(pid, 'before');
    const warmRequests = requests;
    log(`before: ${mib(before.rss_kb)} MiB after ${warmRequests} warm-up requests`);

    const t0 = Date.now();
    timer = setInterval(async () => {
      const rss = await rssKb(pid).catch(() => NaN);
      samples.push({ t_ms: Date.now() - t0, users: usersDone, requests: requests - warmRequests, rss_kb: rss });
    }, 500);
    // Every tenth of the users, a reading. The load pauses for it (no visit in flight), so
    // the worker's heap holds only what it keeps between requests, not in-flight requests.
    let running = true;
    let gate = null;
    let inFlight = 0;
    const monitor = (async () => {
      for (let k = 1; k < 10 && running; k++) {
        while (running && usersDone < (USERS * k) / 10) await sleep(50);
        if (!running) break;
        let open;
        gate = new Promise((r) => (open = r));
        while (inFlight > 0) await sleep(10);
        const c = await reading(pid, `${k * 10} % of the users`);
        gate = null;
        open();
        checkpoints.push(c);
        log(`${c.users} users, ${requests - warmRequests} requests, RSS ${mib(c.rss_kb)} MiB, worker JS heap ${mib(c.js_heap_used_kb)} MiB`);
      }
    })();
    await pool(USERS, CONCURRENCY, async (i) => {
      while (gate) await gate;
      inFlight++;
      await visit(w, tokens[i], i);
      inFlight--;
      usersDone++;
    });
    running = false;
    await monitor;
    clearInterval(timer);
    const seconds = (Date.now() - t0) / 1000;
    const during = samples.map((x) => x.rss_kb).filter(Number.isFinite);
    await sleep(2000);
    const after = await reading(pid, 'after');

    const secondHalf = [...checkpoints, after].filter((c) => c.users >= USERS / 2);
    const perUser = (key) =>
      secondHalf.length >= 2 ? slope(secondHalf.map((c) => ({ x: c.users, y: c[key] * 1024 }))) : 0;
    for (const c of [before, ...checkpoints, after]) c.worker_kb = c.js_heap_used_kb + (c.wasm_memory_kb || 0);
    const bytesPerUser = perUser('rss_kb');
    const heapBytesPerUser = perUser('js_heap_used_kb');
    const workerBytesPerUser = perUser('worker_kb');
    const rssGrowthMib = (after.rss_kb - before.rss_kb) / 1024;
    const workerGrowthMib = (after.worker_kb - before.worker_kb) / 1024;
    const mainRequests = requests - warmRequests;
    // 201 is a guest session issued; every other request answers 200.
    const failures = [...statuses].filter(([st]) => st !== 200 && st !== 201).reduce((n, [, c]) => n + c, 0);
    const ok =
      failures === 0 && workerGrowthMib <= MAX_GROWTH_MIB && workerBytesPerUser <= MAX_BYTES_PER_USER;

    const result = {
      date: new Date().toISOString(),
      worker: process.env.MEM_WORKER === 'control' ? 'control (JS, KV only)' : 'edgecart (build/entry.mjs)',
      mode: GUESTS ? 'guest sessions, each merged into an account' : 'signed-in users',
      ok,
      users: USERS,
      requests: mainRequests,
      warm_up_users: WARM_USERS,
      warm_up_requests: warmRequests,
      concurrency: CONCURRENCY,
      seconds,
      requests_per_second: mainRequests / seconds,
      rss_mib: {
        cold: cold.rss_kb / 1024,
        before: before.rss_kb / 1024,
        during_min: Math.min(...during) / 1024,
        during_max: Math.max(...during) / 1024,
        after: after.rss_kb / 1024,
      },
      worker_js_heap_mib: { before: before.js_heap_used_kb / 1024, after: after.js_heap_used_kb / 1024 },
      rss_growth_mib: rssGrowthMib,
      worker_memory_growth_mib: workerGrowthMib,
      second_half_rss_bytes_per_user: bytesPerUser,
      second_half_js_heap_bytes_per_user: heapBytesPerUser,
      second_half_worker_memory_bytes_per_user: workerBytesPerUser,
      bounds: { max_growth_mib: MAX_GROWTH_MIB, max_bytes_per_user: MAX_BYTES_PER_USER },
      statuses: Object.fromEntries(statuses),
      readings: [cold, before, ...checkpoints, after],
      samples,
    };
    await mkdir(OUT, { recursive: true });
    const file = join(OUT, `memory-${result.date.replace(/[:.]/g, '-')}.json`);
    await writeFile(file, JSON.stringify(result, null, 2));

    const who = GUESTS ? 'guest sessions (each merged into an account)' : 'users';
    console.log(`## No per-user memory: ${USERS} ${who}, ${mainRequests} requests, one workerd process\n`);
    console.log('| reading (load paused, worker GC forced) | users | workerd RSS (MiB) | worker JS heap (MiB) | worker wasm memory (MiB) |');
    console.log('|---|---|---|---|---|');
    for (const r of result.readings) {
      console.log(`| ${r.label} | ${r.users} | ${mib(r.rss_kb)} | ${mib(r.js_heap_used_kb)} | ${mib(r.wasm_memory_kb)} |`);
    }
    const r = result.rss_mib;
    console.log(`\n- RSS sampled every 0.5 s during the run: ${r.during_min.toFixed(1)} – ${r.during_max.toFixed(1)} MiB`);
    console.log(
      `- worker memory (JS heap + wasm linear memory) before → after: ${workerGrowthMib.toFixed(2)} MiB (bound ${MAX_GROWTH_MIB}); ` +
        `slope over users ${USERS / 2}–${USERS}: ${workerBytesPerUser.toFixed(0)} bytes/user (bound ${MAX_BYTES_PER_USER}; ` +
        `a kept token or cart would be > 512)`,
    );
    console.log(
      `- workerd RSS before → after: ${rssGrowthMib.toFixed(1)} MiB, slope ${bytesPerUser.toFixed(0)} bytes/user ` +
        `(not gated: the KV/D1/DO simulators share the process; compare MEM_WORKER=control)`,
    );
    console.log(
      `- ${result.requests_per_second.toFixed(0)} req/s over ${seconds.toFixed(1)} s at ${CONCURRENCY} users in flight, ` +
        `statuses ${JSON.stringify(result.statuses)}`,
    );
    console.log(`- ${ok ? 'PASS' : 'FAIL'}; readings and samples in ${file}`);
    process.exitCode = ok ? 0 : 1;
  } finally {
    clearInterval(timer);
    ins.close();
    await w.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main();
