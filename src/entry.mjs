// edgecart's Worker entry module (wrangler.toml `main` = build/entry.mjs; scripts/build.sh
// copies this file next to worker-build's output).
//
// worker-build 0.8 exports the Rust handlers as a `WorkerEntrypoint` class wrapped in a Proxy,
// so workerd constructs an entrypoint object, a Proxy of it and a Proxy of the `fetch` method on
// every request before any Rust runs. edgecart needs none of that (no RPC on the default
// entrypoint), so it exports a plain module-syntax handler object. Its `fetch` calls
// `edgecartFetch` (src/platform/entry.rs), the same handler run on edgecart's own executor
// (src/platform/runtime.rs `run`) instead of through the worker crate's export and wasm-bindgen's
// `future_to_promise`.
//
// Recovery from a panic has two routes, both kept:
// - the worker crate's panic hook sets `__worker_init_state.criticalError` (it wraps our
//   `#[event(start)]` hook, which runs first); then the next request goes once through
//   worker-build's class wrapper, which re-creates the wasm instance and clears the flag, and
//   the fast path resumes after it;
// - wasm-bindgen's glue marks the instance terminated after any trap that passes through it
//   and re-creates it on the next call (`--experimental-reset-state-function`).
// tests/worker/foundation.test.mjs checks that a panic costs one request (either route would
// pass it; the first version of this file, with neither, did not: the next request hung).
//
// The Durable Object class is exported as worker-build wraps it (one construction per object,
// not per request).
import Entrypoint, { IdempotencyStore } from './index.js';

const { edgecartFetch, scheduled: rustScheduled, queue: rustQueue } = Entrypoint.prototype;
const initState = globalThis.__worker_init_state;
if (
  typeof edgecartFetch !== 'function' ||
  typeof rustScheduled !== 'function' ||
  typeof rustQueue !== 'function' ||
  typeof initState !== 'object'
) {
  // A worker-build or worker crate that changed its output shape: fail at deploy/start, not
  // per request.
  throw new Error('edgecart entry: build/index.js does not expose the handlers and init state it wraps');
}

/** Whether the last call panicked: then worker-build's wrapper must re-initialise first. */
const aborted = () => initState.criticalError;

export default {
  fetch(request, env, ctx) {
    if (aborted()) return new Entrypoint(ctx, env).fetch(request);
    // The request runs on edgecart's own executor (src/platform/runtime.rs `run`), which calls
    // `resolve` with the response; a trap in its first poll rejects this promise.
    return new Promise((resolve) => edgecartFetch(request, env, ctx, resolve));
  },
  scheduled(controller, env, ctx) {
    if (aborted()) return new Entrypoint(ctx, env).scheduled(controller);
    return rustScheduled.call({ env, ctx }, controller);
  },
  // The ORDER_EVENTS consumer and its dead-letter queue's (src/orders/delivery.rs).
  queue(batch, env, ctx) {
    if (aborted()) return new Entrypoint(ctx, env).queue(batch);
    return rustQueue.call({ env, ctx }, batch);
  },
};

export { IdempotencyStore };
