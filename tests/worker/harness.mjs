// The runtime-tier harness: the built worker (build/entry.mjs) in workerd through Miniflare,
// with Miniflare's real KV, SQLite Durable Object, D1 and Cache simulators, persisted in a
// fresh temporary folder (never the dev server's .wrangler/), on its own port (never 8787).
//
//   const w = await startWorker({ vars: { CORS_ALLOW_ORIGINS: 'http://127.0.0.1:9999' } });
//   const res = await w.fetch('/health');
//   await w.restart();   // a new workerd process over the same state on disk
//   await w.stop();
import { Miniflare } from 'miniflare';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { generateDevVars } from '../../scripts/dev-keys.mjs';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ISSUER = 'https://edgecart.test';
export const AUDIENCE = 'edgecart';
/** wrangler.toml's compatibility_date: the tests and benches run the date that deploys. */
export const COMPATIBILITY_DATE = (() => {
  const m = /^compatibility_date\s*=\s*"(\d{4}-\d{2}-\d{2})"/m.exec(readFileSync(join(ROOT, 'wrangler.toml'), 'utf8'));
  if (!m) throw new Error('wrangler.toml has no compatibility_date');
  return m[1];
})();

/** A free TCP port on the loopback interface. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A fresh ES256 dev key pair as worker variables (DEV_TOKEN_KEY, JWT_JWKS, issuer, audience). */
export async function devKeyVars({ issuer = ISSUER, audience = AUDIENCE } = {}) {
  return generateDevVars({ issuer, audience });
}

/** Splits a migration file into statements (quotes, `--` and block comments respected). */
export function splitSql(text) {
  const out = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '-' && text[i + 1] === '-') {
      while (i < text.length && text[i] !== '\n') i++;
      cur += '\n';
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      i = text.indexOf('*/', i + 2);
      if (i < 0) break;
      i++;
      continue;
    }
    if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < text.length) {
        if (text[j] === c) {
          if (text[j + 1] === c) { j += 2; continue; }
          break;
        }
        j++;
      }
      cur += text.slice(i, j + 1);
      i = j;
      continue;
    }
    if (c === ';') {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
      continue;
    }
    cur += c;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** Applies migrations/*.sql in order, as `wrangler d1 migrations apply` would. */
export async function migrate(db) {
  const dir = join(ROOT, 'migrations');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  for (const f of files) {
    const stmts = splitSql(await readFile(join(dir, f), 'utf8'));
    if (stmts.length) await db.batch(stmts.map((s) => db.prepare(s)));
  }
}

/**
 * The `[[ratelimits]]` bindings of wrangler.toml's top level (not `[env.*]`), as Miniflare's
 * `ratelimits` option: `{ WRITE_LIMITER: { namespace_id: '1001', simple: { limit: 120,
 * period: 10 } }, ... }` (Miniflare keys its counters by the namespace, as Cloudflare does).
 */
export function wranglerRatelimits(toml = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8')) {
  const out = {};
  for (const block of toml.split(/^\[\[/m).slice(1)) {
    if (!block.startsWith('ratelimits]]')) continue;
    const name = block.match(/^name\s*=\s*"([^"]+)"/m)?.[1];
    const namespace = block.match(/^namespace_id\s*=\s*"([^"]+)"/m)?.[1];
    const simple = block.match(/^simple\s*=\s*\{\s*limit\s*=\s*(\d+)\s*,\s*period\s*=\s*(\d+)\s*\}/m);
    if (!name || !namespace || !simple) throw new Error(`unreadable [[ratelimits]] block in wrangler.toml:\n${block}`);
    out[name] = { namespace_id: namespace, simple: { limit: Number(simple[1]), period: Number(simple[2]) } };
  }
  return out;
}

/**
 * wrangler.toml's rate limits with per-test overrides, e.g. `{ WRITE_LIMITER: { limit: 5 } }`
 * (the period stays wrangler.toml's unless given; the worker's Retry-After is always the
 * class's period of wrangler.toml, which src/limits/policy.rs repeats).
 */
function ratelimitOptions(overrides = {}) {
  const all = wranglerRatelimits();
  for (const [name, o] of Object.entries(overrides)) {
    if (!all[name]) throw new Error(`no rate limit ${name} in wrangler.toml (${Object.keys(all)})`);
    all[name] = { ...all[name], simple: { ...all[name].simple, ...o } };
  }
  return all;
}

function options({ port, persist, vars, logs, inspectorPort, without = [], ratelimits, queues, scriptPath, modulesRoot }) {
  const collect = (stream) => {
    let buf = '';
    stream.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        logs.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  };
  return {
    host: '127.0.0.1',
    port,
    inspectorPort,
    // Miniflare's placeholder `request.cf`, never a fetch of workers.cloudflare.com/cf.json
    // (offline here; edgecart does not read request.cf).
    cf: false,
    // The worker's console output (one JSON line per request), kept for assertions.
    handleRuntimeStdio(stdout, stderr) {
      collect(stdout);
      collect(stderr);
    },
    ...persistOptions(persist),
    workers: [
      withoutBindings(
        { ...edgecartWorker({ vars, ratelimits, queues, scriptPath }), ...(modulesRoot ? { modulesRoot } : {}) },
        without,
      ),
    ],
  };
}

/**
 * The ORDER_EVENTS queue as wrangler.toml declares it (producer, consumer with its dead-letter
 * queue, and the dead-letter queue's consumer), with test-sized timings: batches flush after
 * `maxBatchTimeout` seconds, a message is tried `maxRetries + 1` times. Retry delays come from
 * the worker (ORDER_WEBHOOK_RETRY_BASE_SECONDS), `retryDelay` is only the default.
 */
export function orderEventQueues({ maxBatchSize = 10, maxBatchTimeout = 0.05, maxRetries = 3, retryDelay = 0 } = {}) {
  return {
    queueProducers: { ORDER_EVENTS: { queueName: 'order-events' } },
    queueConsumers: {
      'order-events': { maxBatchSize, maxBatchTimeout, maxRetries, deadLetterQueue: 'order-events-dlq', retryDelay },
      'order-events-dlq': { maxBatchSize, maxBatchTimeout, maxRetries: 3, retryDelay },
    },
  };
}

/** The worker definition with the named KV, D1, Durable Object or rate-limit bindings left out. */
function withoutBindings(worker, names) {
  const known = [
    ...Object.keys(worker.kvNamespaces),
    ...Object.keys(worker.d1Databases),
    ...Object.keys(worker.durableObjects),
    ...Object.keys(worker.ratelimits),
    ...Object.keys(worker.queueProducers ?? {}),
  ];
  for (const name of names) if (!known.includes(name)) throw new Error(`no binding ${name} to leave out (${known})`);
  const drop = (group) =>
    group && Object.fromEntries(Object.entries(group).filter(([name]) => !names.includes(name)));
  return {
    ...worker,
    kvNamespaces: drop(worker.kvNamespaces),
    d1Databases: drop(worker.d1Databases),
    durableObjects: drop(worker.durableObjects),
    ratelimits: drop(worker.ratelimits),
    queueProducers: drop(worker.queueProducers),
  };
}

/** Miniflare's persistence options for a state folder (KV, D1, Durable Objects, Cache). */
export function persistOptions(persist) {
  return {
    kvPersist: join(persist, 'kv'),
    d1Persist: join(persist, 'd1'),
    durableObjectsPersist: join(persist, 'do'),
    cachePersist: join(persist, 'cache'),
  };
}

/**
 * edgecart's worker as wrangler.toml declares it: the built module and its wasm, the CARTS,
 * DB and IDEMPOTENCY bindings, the rate limits (wrangler.toml's `[[ratelimits]]`, or
 * `ratelimits` in Miniflare's shape), the ORDER_EVENTS queue, the edge cache and (by
 * default) the static assets of public/. The one place the tests and the benches take
 * this shape from.
 */
export function edgecartWorker({
  vars,
  scriptPath = join(ROOT, 'build', 'entry.mjs'),
  assets = true,
  ratelimits = wranglerRatelimits(),
  queues = orderEventQueues(),
}) {
  return {
    name: 'edgecart',
    scriptPath,
    modules: true,
    // build/entry.mjs imports worker-build's index.js, an ES module (Miniflare's default rule
    // would read a .js import as CommonJS).
    modulesRules: [
      { type: 'ESModule', include: ['**/*.js', '**/*.mjs'] },
      { type: 'CompiledWasm', include: ['**/*.wasm'], fallthrough: true },
    ],
    compatibilityDate: COMPATIBILITY_DATE,
    cache: true,
    kvNamespaces: { CARTS: 'carts' },
    d1Databases: { DB: 'edgecart-db' },
    durableObjects: { IDEMPOTENCY: { className: 'IdempotencyStore', useSQLite: true } },
    // Miniflare simulates the Rate Limiting binding: fixed windows aligned to the clock.
    ratelimits,
    ...queues,
    ...(assets
      ? {
          assets: {
            directory: join(ROOT, 'public'),
            binding: 'ASSETS',
            // wrangler.toml's run_worker_first = true.
            routerConfig: { has_user_worker: true, invoke_user_worker_ahead_of_assets: true },
          },
        }
      : {}),
    bindings: vars,
  };
}

/**
 * Starts the built worker. `vars` override the defaults (development mode with a fresh ES256
 * dev key, issuer https://edgecart.test, audience edgecart). `queues` sets the ORDER_EVENTS
 * queue's test timings (`orderEventQueues`). `migrations: false` skips D1
 * migrations. `inspect: true` opens the V8 inspector, for `collectGarbage()`. `without: ['DB']`
 * leaves those KV, D1, Durable Object or rate-limit bindings out. `ratelimits:
 * { WRITE_LIMITER: { limit: 5, period: 10 } }` overrides wrangler.toml's limits. `scriptPath` (with
 * `modulesRoot`, the folder module names are relative to) runs another entry module over the
 * built worker, e.g. bench/edge/edgecart.mjs, which counts binding calls. Returns { url, port,
 * persist, vars, logs, mf, fetch, collectGarbage, restart, stop }; `logs` holds
 * the worker's console lines.
 */
export async function startWorker({
  vars = {},
  migrations = true,
  persist,
  inspect = false,
  without = [],
  ratelimits = {},
  queues,
  scriptPath,
  modulesRoot,
} = {}) {
  const limits = ratelimitOptions(ratelimits);
  const queueOptions = orderEventQueues(queues);
  const port = await freePort();
  const inspectorPort = inspect ? await freePort() : undefined;
  const dir = persist ?? (await mkdtemp(join(tmpdir(), 'edgecart-test-')));
  const allVars = { ...(await devKeyVars()), ...vars };
  for (const [k, v] of Object.entries(allVars)) if (v === undefined) delete allVars[k];
  const logs = [];
  let mf = new Miniflare(options({ port, persist: dir, vars: allVars, logs, inspectorPort, without, ratelimits: limits, queues: queueOptions, scriptPath, modulesRoot }));
  const url = (await mf.ready).toString().replace(/\/$/, '');
  if (migrations && !persist && !without.includes('DB')) await migrate(await mf.getD1Database('DB'));
  const w = {
    url,
    port,
    persist: dir,
    vars: allVars,
    logs,
    get mf() {
      return mf;
    },
    fetch(path, init) {
      return fetch(url + path, { redirect: 'manual', ...init });
    },
    /**
     * The first log line that `pred` accepts, waiting up to `ms` for it: a line is written
     * before its response, but reaches this process through workerd's output pipe.
     */
    async logLine(pred, ms = 5000) {
      for (const started = Date.now(); ; ) {
        const line = logs.find(pred);
        if (line !== undefined) return line;
        if (Date.now() - started > ms) throw new Error(`no such log line in ${ms} ms:\n${logs.join('\n')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    /**
     * A full garbage collection of the worker's isolate (needs `inspect: true`). workerd
     * serves inspector commands when the isolate next runs, so requests go with it until it
     * answers (one request is not always enough: the command can arrive after it ran); a
     * command never answered within 5 s is an error, not a hang.
     */
    async collectGarbage() {
      const ins = await inspector(`ws://127.0.0.1:${inspectorPort}/core:user:edgecart`);
      try {
        let answered = false;
        const done = ins.send('HeapProfiler.collectGarbage').finally(() => {
          answered = true;
        });
        for (let i = 0; i < 50 && !answered; i++) {
          await (await fetch(`${url}/health`)).arrayBuffer();
          await Promise.race([done, new Promise((r) => setTimeout(r, 100))]);
        }
        if (!answered) throw new Error('the inspector never answered HeapProfiler.collectGarbage');
        await done;
      } finally {
        ins.close();
      }
    },
    /** Runs the worker's scheduled handler once (the crons: the outbox sweep, the cleanup). */
    async scheduled() {
      const worker = await mf.getWorker();
      return worker.scheduled({ cron: '*/5 * * * *' });
    },
    async restart() {
      await mf.dispose();
      mf = new Miniflare(options({ port, persist: dir, vars: allVars, logs, inspectorPort, without, ratelimits: limits, queues: queueOptions, scriptPath, modulesRoot }));
      await mf.ready;
    },
    async stop({ keepState = false } = {}) {
      await mf.dispose();
      if (!keepState && !persist) await rm(dir, { recursive: true, force: true });
    },
  };
  return w;
}

/** A minimal client of workerd's V8 inspector: `send(method, params)` → result. */
export function inspector(url) {
  const ws = new WebSocket(url);
  let id = 0;
  const pending = new Map();
  const contexts = [];
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data));
    if (msg.method === 'Runtime.executionContextCreated') contexts.push(msg.params.context.id);
    const p = msg.id && pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.error) p.reject(new Error(JSON.stringify(msg.error)));
    else p.resolve(msg.result);
  });
  return new Promise((resolve, reject) => {
    ws.on('error', reject);
    ws.on('open', () =>
      resolve({
        send(method, params = {}) {
          const n = ++id;
          ws.send(JSON.stringify({ id: n, method, params }));
          return new Promise((res, rej) => pending.set(n, { resolve: res, reject: rej }));
        },
        close: () => ws.close(),
        /** The id of the newest JS context (the worker's global scope). */
        context: () => contexts.at(-1),
      }),
    );
  });
}

/** The worker's `hash::sha256_parts`: SHA-256 over each part's length (u64, big-endian) and
 *  UTF-8 bytes, as lower-case hex. */
export function sha256Parts(...parts) {
  const h = createHash('sha256');
  for (const part of parts) {
    const bytes = Buffer.from(part, 'utf8');
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(bytes.length));
    h.update(len);
    h.update(bytes);
  }
  return h.digest('hex');
}

/** A token from the worker's own POST /dev/token. */
export async function devToken(w, { sub = 'alice', scope, ttl_seconds } = {}) {
  const res = await w.fetch('/dev/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sub, scope, ttl_seconds }),
  });
  if (res.status !== 200) throw new Error(`/dev/token answered ${res.status}: ${await res.text()}`);
  return (await res.json()).token;
}

/**
 * GETs `path` until the edge cache answers with an entry that stays: a miss stores through
 * waitUntil, after its response, and the stores of two misses can land one after the other, so
 * a first hit may still be replaced by a later store (another `Date`). This returns a hit only
 * once the request after it got the same entry.
 */
export async function steadyHit(w, path, init = {}) {
  const entry = (res) => ['etag', 'date'].map((h) => res.headers.get(h)).join(' ');
  let last = null;
  for (const started = Date.now(); Date.now() - started < 10_000; ) {
    const res = await w.fetch(path, init);
    const hit = /^edgecart; hit/.test(res.headers.get('cache-status') ?? '');
    if (hit && last === entry(res)) return res;
    last = hit ? entry(res) : null;
    await res.arrayBuffer();
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${path} never became a steady hit`);
}
