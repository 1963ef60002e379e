// The wrapped JS reference (bench/reference/worker.js) for `npm run bench:edge`, bundled by
// esbuild: the same binding wrapper and latency table as edgecart's (bench/edge/wrap.mjs).
import reference from '../reference/worker.js';
import { wrap } from './wrap.mjs';

export default wrap(reference);
