#!/usr/bin/env node
// Prints a development bearer token signed with DEV_TOKEN_KEY from `.dev.vars`, locally (no
// server needed). The worker verifies it with the public half in JWT_JWKS.
//
//   node scripts/token.mjs --sub alice [--scope catalog:write] [--ttl 3600] [--vars .dev.vars]

import { lowS } from './es256-low-s.mjs';
import { readFileSync } from 'node:fs';
import { importJWK, SignJWT } from 'jose';

/** Parses dotenv text (KEY=value, KEY='value', KEY="value", # comments). */
export function parseDevVars(text) {
  const vars = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)\s*$/.exec(line);
    if (!m || line.trimStart().startsWith('#')) continue;
    let value = m[2];
    if (/^'.*'$/.test(value) || /^".*"$/.test(value)) value = value.slice(1, -1);
    vars[m[1]] = value;
  }
  return vars;
}

/**
 * A token like the worker's `POST /dev/token` would issue.
 * @param {Record<string,string>} vars DEV_TOKEN_KEY, JWT_ISSUER, JWT_AUDIENCE
 * @param {{ sub: string, scope?: string, ttlSeconds?: number }} claims
 */
export async function mintDevToken(vars, { sub, scope, ttlSeconds = 3600 }) {
  const jwk = JSON.parse(vars.DEV_TOKEN_KEY);
  const key = await importJWK(jwk, jwk.alg);
  const audience = (vars.JWT_AUDIENCE ?? '').split(',')[0].trim();
  const jwt = new SignJWT(scope ? { scope } : {})
    .setProtectedHeader({ alg: jwk.alg, typ: 'JWT', kid: jwk.kid })
    .setIssuer(vars.JWT_ISSUER)
    .setAudience(audience)
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(`${ttlSeconds}s`);
  const token = await jwt.sign(key);
  return jwk.alg === 'ES256' ? lowS(token) : token;
}

function arg(args, name) {
  const i = args.indexOf(name);
  return i === -1 ? undefined : args[i + 1];
}

async function main(args) {
  const sub = arg(args, '--sub');
  if (!sub) {
    process.stderr.write(
      'usage: node scripts/token.mjs --sub <user> [--scope "a b"] [--ttl seconds] [--vars .dev.vars]\n',
    );
    process.exit(2);
  }
  const path = arg(args, '--vars') ?? '.dev.vars';
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    process.stderr.write(`${path} not found: run \`node scripts/dev-keys.mjs --write ${path}\`\n`);
    process.exit(1);
  }
  const vars = parseDevVars(text);
  if (!vars.DEV_TOKEN_KEY) {
    process.stderr.write(`${path} has no DEV_TOKEN_KEY\n`);
    process.exit(1);
  }
  const ttl = Number(arg(args, '--ttl') ?? 3600);
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 86400) {
    process.stderr.write('--ttl must be a whole number of seconds between 1 and 86400\n');
    process.exit(2);
  }
  process.stdout.write(`${await mintDevToken(vars, { sub, scope: arg(args, '--scope'), ttlSeconds: ttl })}\n`);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  await main(process.argv.slice(2));
}
