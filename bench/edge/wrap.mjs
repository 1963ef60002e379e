// Bench and test infrastructure only (never in wrangler.toml or the deployed bundle): wraps a
// worker's fetch handler so that every binding call it makes is counted by kind and, in a
// location profile, delayed by that profile's modelled latency (bench/edge/latency.mjs) before
// it is forwarded to the real binding (Miniflare's simulators).
//
// What is wrapped, and what one call ("trip") is:
// - KV (duck-typed: `getWithMetadata`): get / getWithMetadata / list → kv_read; put / delete →
//   kv_write.
// - D1 (`prepare` + `batch`): a statement's first / all / run / raw, a `batch()` (one round
//   trip, one transaction) and `exec` are one trip each. Without a session every trip goes to
//   the primary (d1_primary). Through `withSession(constraint)`: a write (any statement that
//   is not a SELECT / EXPLAIN / read-only WITH) goes to the primary; a read goes to a replica
//   (d1_replica) when the session may read one: `first-unconstrained` or a bookmark, or
//   `first-primary` after its first query; a read after the session's own write is modelled
//   at the primary (a replica may not have applied it yet). `prepare`, `bind` and
//   `getBookmark` are local (no trip).
// - Durable Object namespaces (`idFromName`): the ids and stubs are local; any method called
//   on a stub (`fetch` or RPC) is one do_call.
// - Queues (`send` + `sendBatch`): either is one queue_send.
// - Rate Limiting (`limit`): one ratelimit call (kept on the machine on Cloudflare: 0 ms).
// - The Cache API: `match` / `put` / `delete` of any Cache (the prototype of `caches.default`
//   is patched once per isolate) → cache_match / cache_put / cache_delete.
// The Rust worker crate checks binding types by `constructor.name`: the proxies return the real
// constructor (never a bound copy), and every method runs with the real binding as `this`.
//
// Per request: `x-edge-profile: near|far|zero` picks the profile (default: the `EDGE_PROFILE`
// var, else zero) and `x-edge-trace: <id>` names the request; both headers are removed before
// the worker sees the request. The response carries `x-edge-trips` (the calls made until the
// response was returned, e.g. `kv_read:1,d1_primary:1`). `GET /__edge/trips/<id>` answers, once
// the request's waitUntil work has settled, `{ profile, settled, trips, calls }`: `trips`
// counts every call of the request, waitUntil work included (a cache store after the response
// is still a call that costs), `calls` lists each in order, with the SQL of D1 calls and
// whether it was made after the response was returned. Which calls the response waited for is
// not told from the others here: the delays are real sleeps, so the measured latency shows it.
//
// Calls are attributed to the request being served: the bench and the test send one request at
// a time and read its report before the next, so a late waitUntil call cannot be mistaken for
// the next request's.
import { KINDS, PROFILES } from './latency.mjs';

const traces = new Map();
let current = null;
const orphan = { profile: 'zero', responded: false, calls: [] };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Records one call of `kind` on the current request and forwards it after the profile's delay.
 * Every call counts, whether the response waits for it or it runs in waitUntil: which calls a
 * response waits for shows in its latency (the delays are real sleeps), not in the count.
 */
function trip(kind, what, forward) {
  const t = current ?? orphan;
  t.calls.push({ kind, what, afterResponse: t.responded });
  const ms = (PROFILES[t.profile] ?? PROFILES.zero)[kind] ?? 0;
  return ms ? sleep(ms).then(forward) : forward();
}

/** Counts per kind. */
export function countCalls(calls) {
  const out = {};
  for (const c of calls) out[c.kind] = (out[c.kind] ?? 0) + 1;
  return out;
}

/** `kv_read:1,d1_primary:2` in KINDS order (unknown kinds last). */
export function tripString(counts) {
  const kinds = [...KINDS, ...Object.keys(counts).filter((k) => !KINDS.includes(k))];
  return kinds
    .filter((k) => counts[k])
    .map((k) => `${k}:${counts[k]}`)
    .join(',');
}

// ---------------------------------------------------------------------------------------------
// Proxies

/** A proxy of `target` whose `overrides[prop]` replace methods; every other function runs
 *  bound to the real object, `constructor` is the real one. */
export function proxy(target, overrides) {
  return new Proxy(target, {
    get(t, prop) {
      if (typeof prop === 'string' && Object.hasOwn(overrides, prop)) return overrides[prop];
      const v = Reflect.get(t, prop, t);
      if (prop === 'constructor' || typeof v !== 'function') return v;
      return v.bind(t);
    },
  });
}

const READ_SQL = /^\s*(SELECT|EXPLAIN|VALUES)\b/i;
function isRead(sql) {
  if (READ_SQL.test(sql)) return true;
  return /^\s*WITH\b/i.test(sql) && !/\b(INSERT|UPDATE|DELETE|REPLACE)\b/i.test(sql);
}

const realStatement = new WeakMap();
const short = (sql) => sql.replace(/\s+/g, ' ').trim().slice(0, 80);

/** Where a D1 call of `sqls` runs: always the primary without a session. */
function d1Kind(session, sqls) {
  if (!session) return 'd1_primary';
  if (!sqls.every(isRead)) {
    session.wrote = true;
    session.primaryNext = false;
    return 'd1_primary';
  }
  if (session.primaryNext || session.wrote) {
    session.primaryNext = false;
    return 'd1_primary';
  }
  return 'd1_replica';
}

function wrapStatement(stmt, sql, session) {
  const run = (method) =>
    (...args) => trip(d1Kind(session, [sql]), `${method} ${short(sql)}`, () => stmt[method](...args));
  const p = proxy(stmt, {
    first: run('first'),
    all: run('all'),
    run: run('run'),
    raw: run('raw'),
    bind: (...args) => wrapStatement(stmt.bind(...args), sql, session),
  });
  realStatement.set(p, { stmt, sql });
  return p;
}

function d1Methods(db, session) {
  return {
    prepare: (sql) => wrapStatement(db.prepare(sql), sql, session),
    batch: (stmts) => {
      const real = stmts.map((s) => realStatement.get(s) ?? { stmt: s, sql: '?' });
      const sqls = real.map((r) => r.sql);
      return trip(d1Kind(session, sqls), `batch[${real.length}] ${sqls.map(short).join(' ; ')}`, () =>
        db.batch(real.map((r) => r.stmt)),
      );
    },
    exec: (sql) => trip('d1_primary', `exec ${short(sql)}`, () => db.exec(sql)),
  };
}

function wrapD1(db) {
  return proxy(db, {
    ...d1Methods(db, null),
    withSession: (constraint) => {
      const session = db.withSession(constraint);
      const state = {
        // `first-primary` sends its first query to the primary; a bookmark or
        // `first-unconstrained` (the default) may read a replica at once.
        primaryNext: constraint === 'first-primary',
        wrote: false,
      };
      return proxy(session, d1Methods(session, state));
    },
  });
}

function wrapKv(kv) {
  const read = (m) => (...a) => trip('kv_read', `${m} ${a[0]}`, () => kv[m](...a));
  const write = (m) => (...a) => trip('kv_write', `${m} ${a[0]}`, () => kv[m](...a));
  return proxy(kv, {
    get: read('get'),
    getWithMetadata: read('getWithMetadata'),
    list: read('list'),
    put: write('put'),
    delete: write('delete'),
  });
}

const LOCAL_STUB_PROPS = new Set(['constructor', 'then', 'id', 'name', 'toString', 'toJSON']);
function wrapStub(stub) {
  return new Proxy(stub, {
    get(t, prop) {
      const v = Reflect.get(t, prop, t);
      if (typeof prop !== 'string' || LOCAL_STUB_PROPS.has(prop) || typeof v !== 'function') return v;
      return (...a) => trip('do_call', prop, () => v.apply(t, a));
    },
  });
}

function wrapNamespace(ns) {
  return proxy(ns, {
    get: (...a) => wrapStub(ns.get(...a)),
    getByName: (...a) => wrapStub(ns.getByName(...a)),
  });
}

function wrapQueue(q) {
  return proxy(q, {
    send: (...a) => trip('queue_send', 'send', () => q.send(...a)),
    sendBatch: (...a) => trip('queue_send', `sendBatch[${a[0]?.length}]`, () => q.sendBatch(...a)),
  });
}

function wrapLimiter(rl) {
  return proxy(rl, { limit: (...a) => trip('ratelimit', 'limit', () => rl.limit(...a)) });
}

const fn = (o, name) => o !== null && typeof o === 'object' && typeof o[name] === 'function';
function wrapBinding(name, value) {
  if (fn(value, 'getWithMetadata')) return wrapKv(value);
  if (fn(value, 'prepare') && fn(value, 'batch')) return wrapD1(value);
  if (fn(value, 'idFromName')) return wrapNamespace(value);
  if (fn(value, 'sendBatch')) return wrapQueue(value);
  if (fn(value, 'limit')) return wrapLimiter(value);
  return value;
}

// One wrapped env per real env (workerd passes the same env object to every request): a
// per-isolate cache keyed by the env, like edgecart's configuration, stays valid.
const wrappedEnvs = new WeakMap();
function wrapEnv(env) {
  let w = wrappedEnvs.get(env);
  if (!w) {
    const bindings = new Map();
    w = new Proxy(env, {
      get(t, prop) {
        const v = Reflect.get(t, prop, t);
        if (typeof prop !== 'string') return v;
        if (!bindings.has(prop)) bindings.set(prop, wrapBinding(prop, v));
        return bindings.get(prop);
      },
    });
    wrappedEnvs.set(env, w);
  }
  return w;
}

let cachePatched = false;
function patchCache() {
  if (cachePatched) return;
  cachePatched = true;
  const proto = Object.getPrototypeOf(globalThis.caches.default);
  for (const [method, kind] of [
    ['match', 'cache_match'],
    ['put', 'cache_put'],
    ['delete', 'cache_delete'],
  ]) {
    const original = proto[method];
    Object.defineProperty(proto, method, {
      configurable: true,
      writable: true,
      value(...a) {
        const key = typeof a[0] === 'string' ? a[0] : a[0]?.url;
        return trip(kind, `${method} ${key}`, () => original.apply(this, a));
      },
    });
  }
}

// ---------------------------------------------------------------------------------------------
// The handler

async function report(id) {
  const t = traces.get(id);
  if (!t) return Response.json({ error: `no trace ${id}` }, { status: 404 });
  // waitUntil work belongs to the traced request's context: poll its counter rather than await
  // its promises from this one.
  for (const started = Date.now(); t.pending > 0 && Date.now() - started < 15_000; ) await sleep(2);
  traces.delete(id);
  return Response.json({
    profile: t.profile,
    settled: t.pending === 0,
    trips: countCalls(t.calls),
    calls: t.calls,
  });
}

/**
 * `handler` (a module worker's default export) with its fetch handler's bindings counted and
 * delayed. Its other handlers (scheduled, the queue consumer) run as they are, with the real
 * env: their work belongs to no request, and counting it would blur the request's count.
 */
export function wrap(handler) {
  const others = Object.fromEntries(
    Object.entries(handler)
      .filter(([name, f]) => name !== 'fetch' && typeof f === 'function')
      .map(([name, f]) => [name, (...a) => f.apply(handler, a)]),
  );
  return {
    ...others,
    async fetch(request, env, ctx) {
      patchCache();
      const url = new URL(request.url);
      if (url.pathname.startsWith('/__edge/trips/')) {
        return report(decodeURIComponent(url.pathname.slice('/__edge/trips/'.length)));
      }
      const profile = request.headers.get('x-edge-profile') ?? env.EDGE_PROFILE ?? 'zero';
      if (!PROFILES[profile]) return new Response(`unknown profile ${profile}`, { status: 400 });
      const id = request.headers.get('x-edge-trace') ?? crypto.randomUUID();
      if (request.headers.has('x-edge-profile') || request.headers.has('x-edge-trace')) {
        const headers = new Headers(request.headers);
        headers.delete('x-edge-profile');
        headers.delete('x-edge-trace');
        request = new Request(request, { headers });
      }
      const t = { profile, responded: false, calls: [], pending: 0 };
      traces.set(id, t);
      // A bench that never reads its reports must not grow the map without bound.
      if (traces.size > 1000) traces.delete(traces.keys().next().value);
      current = t;
      const wctx = proxy(ctx, {
        waitUntil: (promise) => {
          t.pending++;
          const done = () => {
            t.pending--;
          };
          ctx.waitUntil(Promise.resolve(promise).then(done, done));
        },
      });
      const response = await handler.fetch(request, wrapEnv(env), wctx);
      t.responded = true;
      const out = new Response(response.body, response);
      out.headers.set('x-edge-trips', tripString(countCalls(t.calls)));
      return out;
    },
  };
}
