// The wrapped edgecart for `npm run bench:edge` and tests/worker/trips.test.mjs: the built
// worker (build/entry.mjs, from scripts/build.sh) with its bindings counted and delayed by
// bench/edge/wrap.mjs. Bench and test infrastructure only: never wrangler.toml's `main`.
import worker, { IdempotencyStore } from '../../build/entry.mjs';
import { wrap } from './wrap.mjs';

export default wrap(worker);
export { IdempotencyStore };
