// Test infrastructure only (never wrangler.toml's `main` or the deployed bundle): the built
// worker with its D1 binding wrapped so that a request can make D1 fail where it chooses, to
// test the read path's fallback (src/d1.rs `read`) against the real Miniflare D1 otherwise.
//
// Per request, `x-test-d1-fail: sessions` makes every query and batch of a D1 session fail
// (as a replica that errors, or D1 refusing a bookmark, would); `x-test-d1-fail: all` makes
// queries without a session (the primary) fail as well. The header is removed before the
// worker sees the request. The response carries `x-test-d1-calls`: the D1 calls the request
// made, in order, as `session(<constraint>)` or `primary`, joined by `,`. As in
// bench/edge/wrap.mjs, the proxies hand back the real constructor (the worker checks the
// binding's type by `constructor.name`) and run every other method on the real object.
// Requests are sent one at a time: calls are attributed to the request being served.
import worker, { IdempotencyStore } from '../../build/entry.mjs';
import { proxy } from '../../bench/edge/wrap.mjs';

let current = { fail: '', calls: [] };

const real = new WeakMap();

/** One D1 call on `where`: recorded, then failed if the request asked for it, else forwarded. */
function call(where, failing, forward) {
  current.calls.push(where);
  if (failing()) return Promise.reject(new Error(`D1_ERROR: injected failure (${where})`));
  return forward();
}

function wrapStatement(stmt, where, failing) {
  const run = (method) => (...a) => call(where, failing, () => stmt[method](...a));
  const p = proxy(stmt, {
    first: run('first'),
    all: run('all'),
    run: run('run'),
    raw: run('raw'),
    bind: (...a) => wrapStatement(stmt.bind(...a), where, failing),
  });
  real.set(p, stmt);
  return p;
}

function methods(db, where, failing) {
  return {
    prepare: (sql) => wrapStatement(db.prepare(sql), where, failing),
    batch: (stmts) => call(where, failing, () => db.batch(stmts.map((s) => real.get(s) ?? s))),
  };
}

function wrapD1(db) {
  const failingPrimary = () => current.fail === 'all';
  const failingSession = () => current.fail === 'sessions' || current.fail === 'all';
  return proxy(db, {
    ...methods(db, 'primary', failingPrimary),
    withSession: (constraint) => {
      const session = db.withSession(constraint);
      return proxy(session, methods(session, `session(${constraint})`, failingSession));
    },
  });
}

const wrapped = new WeakMap();
function wrapEnv(env) {
  let w = wrapped.get(env);
  if (!w) {
    const db = wrapD1(env.DB);
    w = new Proxy(env, { get: (t, prop) => (prop === 'DB' ? db : Reflect.get(t, prop, t)) });
    wrapped.set(env, w);
  }
  return w;
}

// The worker's other handlers (scheduled, the queue consumer) run as they are.
const others = Object.fromEntries(
  Object.entries(worker)
    .filter(([name, f]) => name !== 'fetch' && typeof f === 'function')
    .map(([name, f]) => [name, (...a) => f.apply(worker, a)]),
);

export default {
  ...others,
  async fetch(request, env, ctx) {
    const fail = request.headers.get('x-test-d1-fail') ?? '';
    if (request.headers.has('x-test-d1-fail')) {
      const headers = new Headers(request.headers);
      headers.delete('x-test-d1-fail');
      request = new Request(request, { headers });
    }
    current = { fail, calls: [] };
    const response = await worker.fetch(request, wrapEnv(env), ctx);
    const out = new Response(response.body, response);
    out.headers.set('x-test-d1-calls', current.calls.join(','));
    return out;
  },
};
export { IdempotencyStore };
