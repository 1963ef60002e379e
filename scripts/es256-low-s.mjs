// ES256 signatures in low-S form. (r, s) and (r, n − s) are both valid ECDSA signatures;
// WebCrypto, and so jose, emits high-S about half the time. edgecart accepts both by default
// (semantics.md A19) and refuses high-S only with JWT_ES256_REQUIRE_LOW_S=true, so an issuer
// that wants that strictness normalises with `lowS`. scripts/token.mjs does, like the
// worker's /dev/token, so development tokens verify in either mode; the tests use `flipS` and
// `signatureS` to build and recognise the twins.

/** The order of the P-256 group. */
export const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const toBig = (bytes) => BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
const toBytes32 = (n) => Buffer.from(n.toString(16).padStart(64, '0'), 'hex');

/** Replaces the `s` of an ES256 compact JWS by `choose(s)`. */
export function withS(token, choose) {
  const dot = token.lastIndexOf('.');
  const sig = Buffer.from(token.slice(dot + 1), 'base64url');
  if (sig.length !== 64) return token;
  const s = toBig(sig.subarray(32));
  const next = choose(s);
  return `${token.slice(0, dot)}.${Buffer.concat([sig.subarray(0, 32), toBytes32(next)]).toString('base64url')}`;
}

/** The `s` of an ES256 JWS signature, as a BigInt. */
export function signatureS(token) {
  return toBig(Buffer.from(token.slice(token.lastIndexOf('.') + 1), 'base64url').subarray(32));
}

/** Re-encodes an ES256 compact JWS with low-S (s → n − s when s > n/2); same claims, still valid. */
export function lowS(token) {
  return withS(token, (s) => (s > P256_N / 2n ? P256_N - s : s));
}

/** The malleable twin of an ES256 JWS: s → n − s (a valid ECDSA signature; refused only with
 *  JWT_ES256_REQUIRE_LOW_S=true). */
export function flipS(token) {
  return withS(token, (s) => P256_N - s);
}
