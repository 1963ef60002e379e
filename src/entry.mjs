// edgecart's Worker entry module (wrangler.toml `main` = build/entry.mjs; scripts/build.sh
// copies this file next to worker-build's output).
//
// worker-build 0.8 exports the Rust handlers as a `WorkerEntrypoint` class wrapped in a Proxy,
// so workerd constructs an entrypoint object, a Proxy of it and a Proxy of the `fetch` method on
// every request before any Rust runs. edgecart needs none of that (no RPC on the default
// entrypoint), so it exports a plain module-syntax handler object calling the same generated
// functions.
//
// Recovery from a panic stays worker-build's: a Rust panic aborts the wasm instance and the
// worker crate's panic hook sets `__worker_init_state.criticalError`; the class wrapper
// re-creates the instance before the next call. So after a panic, the next request goes
// through the class wrapper once (which re-initialises and clears the flag), and the fast
// path resumes after it. tests/worker/foundation.test.mjs checks a panic costs one request.
//
// The Durable Object class is exported as worker-build wraps it (one construction per object,
// not per request).
import Entrypoint, { IdempotencyStore } from './index.js';

const { fetch: rustFetch, scheduled: rustScheduled } = Entrypoint.prototype;
const initState = globalThis.__worker_init_state;
if (typeof rustFetch !== 'function' || typeof rustScheduled !== 'function') {
  // A worker-build that changed its output shape: fail at deploy/start, not per request.
  throw new Error('edgecart entry: build/index.js does not expose fetch and scheduled handlers');
}

/** Whether the last call panicked: then worker-build's wrapper must re-initialise first. */
const aborted = () => initState === undefined || initState.criticalError;

export default {
  fetch(request, env, ctx) {
    if (aborted()) return new Entrypoint(ctx, env).fetch(request);
    return rustFetch.call({ env, ctx }, request);
  },
  scheduled(controller, env, ctx) {
    if (aborted()) return new Entrypoint(ctx, env).scheduled(controller);
    return rustScheduled.call({ env, ctx }, controller);
  },
};

export { IdempotencyStore };
