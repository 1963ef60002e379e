// Token-minting helpers for the runtime tests: jose for JWS, node's Ed25519 for PASETO v4.public.
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign as edSign } from 'node:crypto';
import { CompactSign, exportJWK, generateKeyPair, importJWK } from 'jose';

export const b64u = (bytes) => Buffer.from(bytes).toString('base64url');
export const ALGS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'EdDSA'];

/**
 * One signing key per algorithm (kid = the algorithm name lower-cased) and the JWKS text with
 * the verification halves (HMAC secrets included: they are inline configuration).
 */
export async function makeKeySet() {
  const keys = {};
  const entries = [];
  const secretLen = { HS256: 32, HS384: 48, HS512: 64 };
  const rsa = await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
  const rsaPublic = await exportJWK(rsa.publicKey);
  const rsaPrivate = await exportJWK(rsa.privateKey);
  for (const alg of ALGS) {
    const kid = alg.toLowerCase();
    if (alg.startsWith('HS')) {
      const secret = randomBytes(secretLen[alg]);
      keys[alg] = { kid, key: secret, secret };
      entries.push({ kty: 'oct', kid, alg, k: b64u(secret) });
    } else if (alg.startsWith('RS') || alg.startsWith('PS')) {
      // WebCrypto keys are bound to one algorithm: import the same RSA key once per alg.
      keys[alg] = { kid, key: await importJWK(rsaPrivate, alg), publicJwk: rsaPublic };
      entries.push({ ...rsaPublic, kid, alg });
    } else {
      const pair = await generateKeyPair(alg, alg === 'EdDSA' ? { extractable: true, crv: 'Ed25519' } : { extractable: true });
      const publicJwk = await exportJWK(pair.publicKey);
      keys[alg] = { kid, key: pair.privateKey, publicJwk };
      entries.push({ ...publicJwk, kid, alg });
    }
  }
  return { keys, jwks: JSON.stringify({ keys: entries }) };
}

// --- ES256 low-S (see scripts/es256-low-s.mjs) ---------------------------------------------
export { P256_N, flipS, lowS, signatureS } from '../../scripts/es256-low-s.mjs';

/**
 * Signs arbitrary header/payload objects (or raw JSON text) with jose, as an identity provider
 * would: ES256 signatures are not normalised (high-S about half the time; `lowS` makes one
 * low-S).
 */
export async function signRaw(key, header, payload) {
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  return new CompactSign(new TextEncoder().encode(body)).setProtectedHeader(header).sign(key);
}

/** An HS256 token over raw header/payload text, signed with node's HMAC (no checks). */
export function hmacToken(secret, headerText, payloadText) {
  const input = `${b64u(Buffer.from(headerText))}.${b64u(Buffer.from(payloadText))}`;
  return `${input}.${b64u(createHmac('sha256', secret).update(input).digest())}`;
}

/** Assembles a token from raw header/payload text and a raw signature (no checks). */
export function assemble(headerText, payloadText, signature = Buffer.alloc(0)) {
  return `${b64u(Buffer.from(headerText))}.${b64u(Buffer.from(payloadText))}.${b64u(signature)}`;
}

export function claimsFor({ iss, aud = 'edgecart', sub = 'alice', ttl = 600, ...rest }) {
  const now = Math.floor(Date.now() / 1000);
  return { iss, aud, sub, iat: now, exp: now + ttl, ...rest };
}

/** Flips one bit in the middle of a token segment (0 header, 1 payload, 2 signature). */
export function flipBit(token, segment = 2) {
  const parts = token.split('.');
  const bytes = Buffer.from(parts[segment], 'base64url');
  bytes[bytes.length >> 1] ^= 1;
  parts[segment] = b64u(bytes);
  return parts.join('.');
}

// --- PASETO v4.public -------------------------------------------------------------------

function le64(n) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n) & 0x7fffffffffffffffn);
  return b;
}

/** Pre-authentication encoding. */
export function pae(...pieces) {
  return Buffer.concat([le64(pieces.length), ...pieces.flatMap((p) => [le64(p.length), Buffer.from(p)])]);
}

/** A v4.public key pair: `paserk` (k4.public…) and `sign(claims, footer?)`. */
export function pasetoKeyPair() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
  return {
    paserk: `k4.public.${b64u(raw)}`,
    sign(claims, footer = '') {
      const m = Buffer.from(typeof claims === 'string' ? claims : JSON.stringify(claims));
      const f = Buffer.from(footer);
      const sig = edSign(null, pae(Buffer.from('v4.public.'), m, f, Buffer.alloc(0)), privateKey);
      const body = `v4.public.${b64u(Buffer.concat([m, sig]))}`;
      return f.length ? `${body}.${b64u(f)}` : body;
    },
  };
}

export function pasetoClaims({ iss, aud = 'edgecart', sub = 'bob', ttl = 600 }) {
  const now = Date.now();
  const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, '+00:00');
  return { iss, aud, sub, iat: iso(now), exp: iso(now + ttl * 1000) };
}

export { importJWK, createPrivateKey, createPublicKey };
