// The committed configuration never enables development mode, and no secret is tracked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './harness.mjs';

const toml = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8');
const assignments = toml.split('\n').filter((l) => !l.trim().startsWith('#'));

test('wrangler.toml sets ENVIRONMENT to production in every environment', () => {
  const env = assignments.filter((l) => /^\s*ENVIRONMENT\s*=/.test(l));
  assert.ok(env.length >= 1);
  for (const l of env) assert.match(l, /=\s*"production"\s*$/);
  assert.ok(!assignments.some((l) => /development/.test(l)));
});

test('wrangler.toml never carries DEV_TOKEN_KEY', () => {
  assert.ok(!assignments.some((l) => /DEV_TOKEN_KEY/.test(l)));
});

test('no .dev.vars or .env file is tracked by git', () => {
  const files = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n');
  assert.deepEqual(files.filter((f) => /(^|\/)(\.dev\.vars|\.env)$/.test(f)), []);
});
