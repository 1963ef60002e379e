// Test infrastructure only (never wrangler.toml's `main`, never in the deployed bundle): the
// built worker (build/entry.mjs) with stand-ins for two things a local run does not have,
// loaded by tests/worker/catalogue-edge.test.mjs through startWorker's `scriptPath`.
//
// - Workers Cache's `ctx.cache` (Miniflare has none): on a request that carries
//   `x-stand-in-workers-cache: 1` (the header is removed before the worker sees the request),
//   `ctx.cache` is an object whose `purge(options)` and `invalidate(options)` record their
//   options and resolve. Without the header `ctx` is the runtime's, with no `cache`.
// - A D1 replica that cannot serve a bookmark: a session started from a bookmark beginning
//   with `ffffffff` fails every query with a D1-like error, as D1 may fail a session it cannot
//   serve. Other sessions are the real ones (Miniflare's one database).
//
// `GET /__stand-in/log` answers `{ purges, invalidations, sessions }` (every `withSession`
// argument, in order) and clears it.
import worker, { IdempotencyStore } from '../../build/entry.mjs';
import { proxy } from '../../bench/edge/wrap.mjs';

const log = { purges: [], invalidations: [], sessions: [] };

const refused = () => Promise.reject(new Error('D1_ERROR: stand-in replica cannot serve this bookmark'));

function failingStatement(stmt) {
  return proxy(stmt, {
    bind: (...a) => failingStatement(stmt.bind(...a)),
    first: refused,
    all: refused,
    run: refused,
    raw: refused,
  });
}

function failingSession(session) {
  return proxy(session, {
    prepare: (sql) => failingStatement(session.prepare(sql)),
    batch: refused,
  });
}

const wrappedDbs = new WeakMap();
function wrapDb(db) {
  if (!wrappedDbs.has(db)) {
    wrappedDbs.set(
      db,
      proxy(db, {
        withSession: (constraint) => {
          log.sessions.push(constraint ?? null);
          const session = db.withSession(constraint);
          return typeof constraint === 'string' && constraint.startsWith('ffffffff') ? failingSession(session) : session;
        },
      }),
    );
  }
  return wrappedDbs.get(db);
}

const wrappedEnvs = new WeakMap();
function wrapEnv(env) {
  if (!wrappedEnvs.has(env)) {
    wrappedEnvs.set(
      env,
      new Proxy(env, {
        get(t, prop) {
          const v = Reflect.get(t, prop, t);
          return prop === 'DB' && v ? wrapDb(v) : v;
        },
      }),
    );
  }
  return wrappedEnvs.get(env);
}

const workersCache = {
  purge: async (options) => {
    log.purges.push(options);
  },
  invalidate: async (options) => {
    log.invalidations.push(options);
  },
};

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === '/__stand-in/log') {
      const body = JSON.stringify(log);
      log.purges = [];
      log.invalidations = [];
      log.sessions = [];
      return new Response(body, { headers: { 'content-type': 'application/json' } });
    }
    let wctx = ctx;
    if (request.headers.get('x-stand-in-workers-cache') === '1') {
      const headers = new Headers(request.headers);
      headers.delete('x-stand-in-workers-cache');
      request = new Request(request, { headers });
      wctx = proxy(ctx, { cache: workersCache });
    }
    return worker.fetch(request, wrapEnv(env), wctx);
  },
  scheduled: (...a) => worker.scheduled(...a),
  queue: (...a) => worker.queue(...a),
};

export { IdempotencyStore };
