// The API checked against its own OpenAPI document, property-based: schemathesis (PyPI, pinned in
// requirements.txt, installed into .venv-fuzz/ by scripts/setup.sh) generates requests from
// GET /openapi.json of the built worker, valid ones and invalid ones (negative data), and checks
// every answer with all its built-in checks: no 5xx, the status is documented for the operation,
// the body matches the documented schema and content type, documented required headers are there,
// valid data is accepted, invalid data refused with a 4xx, a missing required header and a missing
// token are refused, other methods get 405 with Allow; and a stateful phase follows the document's
// links (listing → item, checkout → order).
//
// Offline and deterministic: the worker runs through tests/worker/harness.mjs (Miniflare on a port
// of its own, a fresh state folder, development mode so /dev/token mints the bearer token with
// `catalog:write`), and schemathesis runs with a fixed seed, a bounded number of examples, no
// example database, no cache and no shrinking (tests/api-fuzz/schemathesis.toml). Exits non-zero on
// any failure; prints the operations, generated cases and failures.
//
//   node tests/api-fuzz/run.mjs            (after scripts/build.sh and scripts/setup.sh)
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, devToken, startWorker, wranglerRatelimits } from '../worker/harness.mjs';

const st = join(ROOT, '.venv-fuzz', 'bin', 'schemathesis');
if (!existsSync(st)) {
  console.error(`[api-fuzz] ${st} is missing: run scripts/setup.sh first`);
  process.exit(1);
}

// edgecart's rate limits with limits no run reaches: Miniflare counts them in wall-clock windows,
// so with wrangler.toml's limits how many writes a run sends before the first 429 depended on how
// fast the machine was. The stateful phase then met different answers from run to run (and
// sometimes a state from which Hypothesis could take no step: a runtime error), and the logic
// behind the write routes went mostly untested behind 429s. The limits themselves are tested in
// tests/worker/limits.test.mjs; every limited route still pays its limiter call here.
const unreachable = Object.fromEntries(Object.keys(wranglerRatelimits()).map((name) => [name, { limit: 1e9 }]));
const w = await startWorker({ ratelimits: unreachable });
let code = 1;
try {
  const token = await devToken(w, { sub: 'api-fuzz-admin', scope: 'catalog:write', ttl_seconds: 3600 });
  const args = [
    '--config-file', join(ROOT, 'tests', 'api-fuzz', 'schemathesis.toml'),
    'run', `${w.url}/openapi.json`,
    '--checks', 'all',
    '--header', `Authorization: Bearer ${token}`,
    '--request-timeout', '30',
    '--output-truncate', 'false',
  ];
  const started = Date.now();
  code = await new Promise((resolve) => {
    const child = spawn(st, args, {
      cwd: ROOT,
      stdio: 'inherit',
      env: { ...process.env, NO_COLOR: '1', SCHEMATHESIS_TELEMETRY: 'false', PYTHONDONTWRITEBYTECODE: '1' },
    });
    child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
    child.on('error', (e) => {
      console.error(`[api-fuzz] ${e.message}`);
      resolve(1);
    });
  });
  console.log(`[api-fuzz] schemathesis exited ${code} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
} finally {
  await w.stop();
}
process.exit(code);
