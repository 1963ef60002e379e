// Instructions per request of the whole workerd process (worker, glue, runtime and Miniflare's
// simulators), counted by valgrind's callgrind: the method of bench/README.md ("Counting
// instructions instead of timing"), as a script. Unlike req/s it does not depend on what else
// runs on the machine, so it can tell a 1-2 % difference between two builds.
//
//   node bench/instructions.mjs <path> [alg]
//   node bench/instructions.mjs /health
//   node bench/instructions.mjs /cart ES256
//   node bench/instructions.mjs /products/miss-{n}        ({n}: a new number per request)
//   INSTR_BUILD=/tmp/other/build node bench/instructions.mjs /health   (another build)
//   INSTR_KIND=reference node bench/instructions.mjs /cart ES256       (the JS reference)
//   INSTR_WARMUP=1500 INSTR_WINDOW=200 INSTR_WINDOWS=4                 (the defaults)
//
// Prints one line per window and the median. Windows of one run agree within about 1 %; a
// window far above the others caught a garbage collection or cppgc's sweeping (bench/README.md)
// and says nothing about either worker. Needs valgrind (`callgrind_control` on the PATH).
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../tests/worker/harness.mjs';
import { AUDIENCE, ISSUER, bundleReference, keysAndTokens, seed, startOne } from './bench.mjs';

const run = promisify(execFile);
const [path = '/health', alg = 'ES256'] = process.argv.slice(2);
const KIND = process.env.INSTR_KIND === 'reference' ? 'reference' : 'edgecart';
const WARMUP = Number(process.env.INSTR_WARMUP ?? 1500);
const WINDOW = Number(process.env.INSTR_WINDOW ?? 200);
const WINDOWS = Number(process.env.INSTR_WINDOWS ?? 4);

async function main() {
  const tmp = await mkdtemp(join(tmpdir(), 'edgecart-instructions-'));
  const out = join(tmp, 'cg');
  // workerd under callgrind, counting off until the warm-up is done.
  const workerd = join(ROOT, 'node_modules', '@cloudflare', 'workerd-linux-64', 'bin', 'workerd');
  const wrapper = join(tmp, 'workerd');
  await writeFile(
    wrapper,
    `#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no --smc-check=all-non-file ` +
      `--callgrind-out-file=${out}.%p "${workerd}" "$@"\n`,
  );
  await chmod(wrapper, 0o755);
  process.env.MINIFLARE_WORKERD_PATH = wrapper;
  // Background recompilation never finishes under valgrind's serialised threads, and Liftoff
  // code is not what a warm isolate runs (bench/README.md).
  process.env.MINIFLARE_WORKERD_V8_FLAGS = '--no-concurrent-recompilation --no-liftoff';

  const { jwks, tokens } = await keysAndTokens();
  const vars = { ENVIRONMENT: 'production', JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWT_JWKS: jwks };
  const scriptPath =
    KIND === 'reference' ? await bundleReference(tmp) : join(process.env.INSTR_BUILD ?? join(ROOT, 'build'), 'entry.mjs');
  const w = await startOne(KIND, { scriptPath, vars });
  try {
    const total = WARMUP + WINDOW * WINDOWS + 1;
    await seed(w, path.includes('{n}') ? total + 10 : 10);
    const headers = ['/me', '/cart', '/orders'].some((p) => path.startsWith(p))
      ? { Authorization: `Bearer ${tokens[alg]}` }
      : {};
    let n = 0;
    const once = async () => {
      const r = await fetch(w.url + path.replace('{n}', String(++n)), { headers });
      await r.arrayBuffer();
      return r.status;
    };
    const status = await once();
    if (status >= 400) throw new Error(`${path} answered ${status}`);
    for (let i = 0; i < WARMUP; i++) await once();
    await run('callgrind_control', ['-i', 'on', String(w.pid)]);
    const perRequest = [];
    for (let k = 0; k < WINDOWS; k++) {
      for (let i = 0; i < WINDOW; i++) await once();
      await run('callgrind_control', ['-d', String(w.pid)]);
      perRequest.push((await lastDumpTotal(tmp)) / WINDOW);
    }
    const label = `${KIND} ${path}${headers.Authorization ? ` (${alg})` : ''}`;
    perRequest.forEach((x, k) => console.log(`${label} window ${k + 1}: ${Math.round(x)} instructions/request`));
    const sorted = [...perRequest].sort((a, b) => a - b);
    const median = (sorted[(sorted.length - 1) >> 1] + sorted[sorted.length >> 1]) / 2;
    console.log(`${label} median: ${Math.round(median)} instructions/request`);
  } finally {
    await w.stop();
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The event total of the newest callgrind dump in `dir` (its `summary:` line). */
async function lastDumpTotal(dir) {
  const dumps = (await readdir(dir)).filter((f) => /^cg\.\d+\.\d+$/.test(f));
  const newest = dumps.sort((a, b) => Number(a.split('.').pop()) - Number(b.split('.').pop())).pop();
  if (!newest) throw new Error('callgrind wrote no dump');
  const text = await readFile(join(dir, newest), 'utf8');
  const line = text.split('\n').find((l) => l.startsWith('summary:') || l.startsWith('totals:'));
  if (!line) throw new Error(`no summary in ${newest}`);
  return Number(line.split(/\s+/)[1]);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
