// No per-isolate memory holds per-user data. Every static, thread_local!, OnceCell/OnceLock/
// LazyLock or lazy_static in src/ must be on this allow-list, and each must carry a comment
// saying why it is not per-user state. A new one fails this test until it is reviewed here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './harness.mjs';

/** file → names of the per-isolate caches it may hold, with what they hold. */
const ALLOWED = {
  'src/auth/mod.rs': { KEY_RING: 'keys parsed from configuration (public keys, the operator HMAC secret)' },
  'src/auth/remote.rs': { REMOTE: 'public keys of the remote JWKS and its fetch bookkeeping' },
  'src/platform/crypto.rs': {
    KEYS: 'imported WebCrypto CryptoKeys of configured public keys',
    SUBTLE: 'the crypto.subtle object of the isolate',
  },
  'src/http/mod.rs': { CONFIG: 'the typed configuration (operator settings, same for every user)' },
  'src/limits/mod.rs': {
    BLOCKED: 'client addresses over their bad-token limit, until the period ends (abuse guard; bounded, no user data)',
    LOGGED: 'when each rate-limit class last logged its refusals (three counters)',
  },
  'src/platform/runtime.rs': {
    SLOTS: 'promises in flight; a result is held only from settlement to the awaiting poll, within its request',
    RESUME: 'the one settlement callback of the wasm instance',
    TASKS: 'requests in flight; an entry lives from the request start to its response',
    DEFERRED: 'native builds only: the executor tests\' stand-in for the microtask queue',
  },
};

function rustFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? rustFiles(p) : p.endsWith('.rs') ? [p] : [];
  });
}

const PATTERN = /^\s*(?:pub(?:\([^)]*\))?\s+)?static\s+(?:mut\s+)?([A-Z_][A-Z0-9_]*)\s*:|thread_local!|OnceCell|OnceLock|LazyLock|lazy_static!|\bstatic mut\b/;

test('every process-wide or per-isolate static in src/ is an allow-listed, commented cache of public data', () => {
  const found = [];
  for (const file of rustFiles(join(ROOT, 'src'))) {
    const rel = relative(ROOT, file);
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (line.trim().startsWith('//')) return;
      const m = PATTERN.exec(line);
      if (!m) return;
      if (line.includes('thread_local!')) return; // the statics inside are checked by name
      const name = m[1];
      found.push({ rel, name, line: i + 1, context: lines.slice(Math.max(0, i - 6), i).join('\n') });
    });
  }
  for (const { rel, name, line, context } of found) {
    assert.ok(name, `${rel}:${line}: a lazy/once cell outside a named static; review it and list it here`);
    assert.ok(ALLOWED[rel]?.[name], `${rel}:${line}: static ${name} is not on the allow-list of per-isolate caches`);
    const commented = /not per-user|not per user|same for every user|public keys?/i.test(context);
    assert.ok(commented, `${rel}:${line}: static ${name} needs a comment saying why it is not per-user state`);
  }
  const names = found.map((f) => `${f.rel}:${f.name}`).sort();
  const expected = Object.entries(ALLOWED).flatMap(([f, n]) => Object.keys(n).map((k) => `${f}:${k}`)).sort();
  assert.deepEqual(names, expected, 'the allow-list matches the statics in src/');
});
