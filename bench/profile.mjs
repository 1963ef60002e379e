// Where a worker's time goes: a V8 CPU profile of one route under wrk load, taken through
// workerd's inspector, summarised as self time per function (JS shim, wasm, runtime).
//
//   node bench/profile.mjs [edgecart|reference] <path> [alg] [seconds]
//   node bench/profile.mjs edgecart /health
//   node bench/profile.mjs edgecart /me ES256 5
//   node bench/profile.mjs reference /cart ES256
//   PROFILE_OUT=/tmp/p.json node bench/profile.mjs …   (also keeps the raw V8 profile)
//   PROFILE_BUILD=/tmp/other-build node bench/profile.mjs …   (another build of edgecart)
//
// wasm frames are named when the wasm keeps its name section (release builds usually strip
// it: then they show as `$func123`, still useful to tell wasm time from JS and runtime time).
// Same workers, keys and data as bench.mjs. Loopback only.
//
// Caveat: with the inspector attached, every console.log is also serialised to the inspector,
// so a per-request log line looks far costlier here (about a fifth of edgecart's samples)
// than it is without one; the bench's `log-line` scenario prices it without the inspector.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, freePort } from '../tests/worker/harness.mjs';
import {
  AUDIENCE,
  ISSUER,
  bundleReference,
  keysAndTokens,
  runWrk,
  seed,
  startOne,
  wrkArgs,
} from './bench.mjs';
import { inspector } from './memory.mjs';

const [kind = 'edgecart', path = '/health', alg = 'ES256', secondsArg = '4'] = process.argv.slice(2);
const seconds = Math.max(1, Number(secondsArg) | 0);

function frameName(f) {
  const file = f.url ? f.url.split('/').pop() : '';
  const where = file ? ` [${file}${f.functionName ? '' : `:${f.lineNumber}:${f.columnNumber}`}]` : '';
  return `${f.functionName || '(anonymous)'}${where}`;
}

function summarise(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map();
  const callers = new Map();
  const dt = profile.timeDeltas;
  let total = 0;
  profile.samples.forEach((nodeId, i) => {
    const n = byId.get(nodeId);
    const name = frameName(n.callFrame);
    const t = (dt[i] ?? 0) / 1000;
    total += t;
    self.set(name, (self.get(name) ?? 0) + t);
    // Who called it (two frames up), to tell apart what "(anonymous)" or "verify" serve.
    const chain = [];
    for (let p = parent.get(nodeId), k = 0; p && k < 2; p = parent.get(p), k++) {
      chain.push(frameName(byId.get(p).callFrame));
    }
    const m = callers.get(name) ?? new Map();
    const key = chain.join(' ← ');
    m.set(key, (m.get(key) ?? 0) + t);
    callers.set(name, m);
  });
  return { total, rows: [...self.entries()].sort((a, b) => b[1] - a[1]), callers };
}

async function main() {
  const tmp = await mkdtemp(join(tmpdir(), 'edgecart-profile-'));
  const { jwks, tokens } = await keysAndTokens();
  const vars = { ENVIRONMENT: 'production', JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWT_JWKS: jwks };
  const scriptPath =
    kind === 'reference' ? await bundleReference(tmp) : join(process.env.PROFILE_BUILD ?? join(ROOT, 'build'), 'entry.mjs');
  const inspectorPort = await freePort();
  const w = await startOne(kind === 'reference' ? 'reference' : 'edgecart', {
    scriptPath,
    vars,
    inspectorPort,
  });
  try {
    await seed(w, 1000);
    const headers = ['/me', '/cart', '/orders'].some((p) => path.startsWith(p))
      ? { Authorization: `Bearer ${tokens[alg]}` }
      : {};
    const probe = await fetch(w.url + path, { headers });
    console.error(`[profile] ${kind} ${path}: ${probe.status} ${probe.headers.get('content-type')}`);
    await probe.arrayBuffer();
    await runWrk(wrkArgs(w.url + path, { headers }, 1)); // warm-up
    const name = kind === 'reference' ? 'reference' : 'edgecart';
    const ins = await inspector(`ws://127.0.0.1:${inspectorPort}/core:user:${name}`);
    await ins.send('Profiler.enable');
    await ins.send('Profiler.setSamplingInterval', { interval: 100 });
    await ins.send('Profiler.start');
    const r = await runWrk(wrkArgs(w.url + path, { headers }, seconds));
    const { profile } = await ins.send('Profiler.stop');
    ins.close();
    if (process.env.PROFILE_OUT) await writeFile(process.env.PROFILE_OUT, JSON.stringify({ requests: r.requests, profile }));
    const { total, rows, callers } = summarise(profile);
    console.log(
      `${kind} ${path}${headers.Authorization ? ` (${alg})` : ''}: ${Math.round(r.rps)} req/s under the profiler, ` +
        `${r.requests} requests; samples cover ${total.toFixed(0)} ms, ${(total / r.requests).toFixed(3)} ms per request`,
    );
    console.log('| self ms / request | % | function |');
    console.log('|---:|---:|---|');
    for (const [fn, ms] of rows.slice(0, 30)) {
      console.log(`| ${(ms / r.requests).toFixed(4)} | ${((100 * ms) / total).toFixed(1)} | ${fn} |`);
    }
    console.log('\nCallers of the top functions (two frames up, share of that function\'s self time):');
    for (const [fn, ms] of rows.slice(0, 8)) {
      if (fn === '(idle)' || fn === '(program)' || fn === '(garbage collector)') continue;
      const top = [...callers.get(fn).entries()].sort((a, b) => b[1] - a[1]).slice(0, 3);
      console.log(`- ${fn}: ${top.map(([c, t]) => `${((100 * t) / ms).toFixed(0)}% ← ${c || '(root)'}`).join('; ')}`);
    }
  } finally {
    await w.stop();
    await rm(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
