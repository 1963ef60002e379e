//! Compact JWS access tokens: parsing, header policy and key choice (pure).
//!
//! Parsing is ours rather than `jwt_compact::UntrustedToken`'s because the policy needs what
//! that type hides: the raw header members (`crit`, `cty`, `typ`, duplicates) and strict
//! base64url. jwt-compact still verifies signatures natively (see `signature.rs`).
//!
//! The algorithm is never read from the token to pick how to verify: the key entry chosen by
//! `kid` carries it, and the header `alg` must merely equal it (RFC 8725 §3.1).

use serde_json::{Map, Value};

use super::claims::{check_claims, check_dates, numeric_date, Dates, Policy, Refusal};
use super::keys::{Alg, KeyMaterial, VerificationKey, MAX_KID_BYTES};
use super::Identity;
use crate::json::parse_object;
use crate::time::UnixMillis;

/// A token whose structure, header and claims passed; only the signature is left.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingJwt {
    /// `base64url(header) "." base64url(payload)`: the bytes that were signed.
    pub signing_input: String,
    pub signature: Vec<u8>,
    pub alg: Alg,
    pub kid: Option<String>,
    /// The identity the token claims (valid once the signature is).
    pub identity: Identity,
    /// Whether a high-S ES256 signature is refused by the precheck (the policy's choice).
    pub es256_require_low_s: bool,
}

/// Which key verifies a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChoice<'k> {
    Found(&'k VerificationKey),
    /// A `kid` we do not know: the remote key set may have rotated.
    UnknownKid,
    /// No `kid`, and not exactly one key of the header's algorithm.
    NoSingleFit,
}

/// Parses and checks everything but the signature.
///
/// # Errors
/// The first [`Refusal`] that applies.
pub fn parse(token: &str, policy: &Policy, now: UnixMillis) -> Result<PendingJwt, Refusal> {
    if token.len() > policy.max_token_bytes {
        return Err(Refusal::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    let decode = |s: &str| super::decode_segment(s).ok_or(Refusal::Malformed);
    let header = parse_object(&decode(h64)?).map_err(|_| Refusal::Malformed)?;
    let (alg, kid) = check_header(&header)?;
    let claims = parse_object(&decode(p64)?).map_err(|_| Refusal::Malformed)?;
    let signature = decode(s64)?;
    // The issuer first: it decides which policy applies (a guest token's lifetime bound is
    // not the identity provider's), so a wrong one must be told apart from everything else.
    if claims.get("iss").and_then(Value::as_str) != Some(policy.issuer.as_str()) {
        return Err(Refusal::WrongIssuer);
    }
    let dates = Dates {
        exp: numeric_date(&claims, "exp")?.ok_or(Refusal::MissingExpiry)?,
        nbf: numeric_date(&claims, "nbf")?,
        iat: numeric_date(&claims, "iat")?,
    };
    check_dates(dates, policy, now)?;
    let identity = check_claims(&claims, dates, policy)?;
    let signing_input = token
        .get(..h64.len() + 1 + p64.len())
        .ok_or(Refusal::Malformed)?
        .to_owned();
    Ok(PendingJwt {
        signing_input,
        signature,
        alg,
        kid,
        identity,
        es256_require_low_s: policy.es256_require_low_s,
    })
}

/// The JOSE header policy (RFC 8725, RFC 9068): a known `alg`; `typ` absent, `JWT` or
/// `at+jwt`; no `crit`; no `cty`; `kid` a short string. `jku`, `x5u`, `jwk`, `x5c` are
/// ignored: never fetched, never trusted.
fn check_header(header: &Map<String, Value>) -> Result<(Alg, Option<String>), Refusal> {
    if header.contains_key("crit") {
        return Err(Refusal::CriticalHeader);
    }
    if header.contains_key("cty") {
        return Err(Refusal::NestedContent);
    }
    if header.contains_key("enc") || header.contains_key("zip") {
        return Err(Refusal::Malformed);
    }
    match header.get("typ") {
        None => {}
        Some(Value::String(typ)) => {
            let typ = typ.to_ascii_lowercase();
            let typ = typ.strip_prefix("application/").unwrap_or(&typ);
            if typ != "jwt" && typ != "at+jwt" {
                return Err(Refusal::WrongType);
            }
        }
        Some(_) => return Err(Refusal::WrongType),
    }
    let alg = match header.get("alg") {
        Some(Value::String(name)) => Alg::from_name(name).ok_or(Refusal::UnsupportedAlgorithm)?,
        _ => return Err(Refusal::UnsupportedAlgorithm),
    };
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) if !kid.is_empty() && kid.len() <= MAX_KID_BYTES => {
            Some(kid.clone())
        }
        Some(_) => return Err(Refusal::UnknownKey),
    };
    Ok((alg, kid))
}

impl PendingJwt {
    /// Picks the key: by `kid` among `keys`, or, without `kid`, the only key of the header's
    /// algorithm.
    #[must_use]
    pub fn choose_key<'k>(&self, keys: &'k [VerificationKey]) -> KeyChoice<'k> {
        match &self.kid {
            Some(kid) => keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .map_or(KeyChoice::UnknownKid, KeyChoice::Found),
            None => {
                let mut fits = keys.iter().filter(|k| k.alg == self.alg);
                match (fits.next(), fits.next()) {
                    (Some(key), None) => KeyChoice::Found(key),
                    (None | Some(_), _) => KeyChoice::NoSingleFit,
                }
            }
        }
    }

    /// Checks that the key may verify this token and that the signature is well-formed for
    /// it, before any cryptography.
    ///
    /// # Errors
    /// [`Refusal::AlgorithmMismatch`] or [`Refusal::BadSignature`].
    pub fn precheck(&self, key: &VerificationKey) -> Result<(), Refusal> {
        if key.alg != self.alg {
            return Err(Refusal::AlgorithmMismatch);
        }
        if self.signature.len() != key.alg.signature_len(&key.material) {
            return Err(Refusal::BadSignature);
        }
        if let (Alg::Es256, KeyMaterial::P256 { .. }) = (key.alg, &key.material) {
            if !ecdsa_p256_in_range(&self.signature, self.es256_require_low_s) {
                return Err(Refusal::BadSignature);
            }
        }
        Ok(())
    }
}

/// The order of the P-256 group, big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// `⌊n / 2⌋` for P-256, big-endian: the largest low-S value.
const P256_HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// `r` and `s` in `1..n`, and `s` in `1..=n/2` (low-S) when `require_low_s`.
///
/// Zero components and components of `n` or more are refused always: `r = s = 0` is the
/// CVE-2022-21449 forgery, and no signer emits a component outside the group. A high-S
/// signature is a valid ECDSA signature (RFC 7518 §3.4 asks for no normalisation, and
/// WebCrypto, OpenSSL and so jose, PyJWT, Go and Java emit high-S about half the time), so it
/// is accepted by default. `(r, s)` and `(r, n − s)` verify alike, but a twin carries the same
/// claims and edgecart keys nothing by signature, so the malleability grants nothing (A19).
/// An operator whose issuer normalises may still refuse high-S with
/// `JWT_ES256_REQUIRE_LOW_S=true`.
#[must_use]
pub fn ecdsa_p256_in_range(signature: &[u8], require_low_s: bool) -> bool {
    let nonzero = |v: &[u8]| v.iter().any(|b| *b != 0);
    let s_limit_ok = |s: &[u8]| {
        if require_low_s {
            s <= P256_HALF_ORDER.as_slice()
        } else {
            s < P256_ORDER.as_slice()
        }
    };
    match (signature.get(..32), signature.get(32..)) {
        (Some(r), Some(s)) if s.len() == 32 => {
            nonzero(r) && r < P256_ORDER.as_slice() && nonzero(s) && s_limit_ok(s)
        }
        _ => false,
    }
}

/// Rewrites a raw `r‖s` P-256 signature to its low-S twin (`s → n − s` when `s > n/2`), the
/// form [`ecdsa_p256_in_range`] accepts also with `require_low_s` (our own `/dev/token`
/// signer uses it, so development tokens verify in either mode). Anything but 64 bytes is
/// left alone.
pub fn normalize_p256_low_s(signature: &mut [u8]) {
    if signature.len() != 64 {
        return;
    }
    let Some(s) = signature.get_mut(32..) else {
        return;
    };
    if &*s <= P256_HALF_ORDER.as_slice() {
        return;
    }
    // n − s, byte by byte from the least significant end (s < 2^256 and s ≤ n for any
    // signature a signer emits, so no final borrow).
    let mut borrow = 0_u16;
    for (out, n) in s.iter_mut().rev().zip(P256_ORDER.iter().rev()) {
        let subtrahend = u16::from(*out) + borrow;
        let minuend = u16::from(*n);
        let (diff, next) = if minuend >= subtrahend {
            (minuend - subtrahend, 0)
        } else {
            (minuend + 256 - subtrahend, 1)
        };
        *out = u8::try_from(diff).unwrap_or(0);
        borrow = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_components_outside_the_group_are_refused_in_either_mode() {
        for require_low_s in [false, true] {
            let mut sig = [1_u8; 64];
            assert!(ecdsa_p256_in_range(&sig, require_low_s));
            assert!(!ecdsa_p256_in_range(&[0; 64], require_low_s));
            sig[..32].copy_from_slice(&P256_ORDER);
            assert!(!ecdsa_p256_in_range(&sig, require_low_s));
            sig[..32].copy_from_slice(&[0xff; 32]);
            assert!(!ecdsa_p256_in_range(&sig, require_low_s));
            assert!(!ecdsa_p256_in_range(&[1; 63], require_low_s));
            let mut zero_s = [1_u8; 64];
            zero_s[32..].copy_from_slice(&[0; 32]);
            assert!(!ecdsa_p256_in_range(&zero_s, require_low_s));
            assert!(!ecdsa_p256_in_range(&with_s(&P256_ORDER), require_low_s));
            assert!(!ecdsa_p256_in_range(&with_s(&[0xff; 32]), require_low_s));
        }
    }

    fn with_s(s: &[u8; 32]) -> [u8; 64] {
        let mut sig = [1_u8; 64];
        sig[32..].copy_from_slice(s);
        sig
    }

    #[test]
    fn high_s_is_accepted_by_default_up_to_n_minus_one() {
        let mut above = P256_HALF_ORDER;
        above[31] += 1;
        assert!(ecdsa_p256_in_range(&with_s(&above), false));
        let mut n_minus_one = P256_ORDER;
        n_minus_one[31] -= 1;
        assert!(ecdsa_p256_in_range(&with_s(&n_minus_one), false));
        assert!(ecdsa_p256_in_range(&with_s(&[0x80; 32]), false));
        assert!(ecdsa_p256_in_range(&with_s(&P256_HALF_ORDER), false));
        assert!(!ecdsa_p256_in_range(&with_s(&P256_ORDER), false));
        assert!(!ecdsa_p256_in_range(&with_s(&[0; 32]), false));
    }

    #[test]
    fn requiring_low_s_refuses_high_s_and_half_the_order_is_the_largest_s_accepted() {
        assert!(ecdsa_p256_in_range(&with_s(&P256_HALF_ORDER), true));
        let mut above = P256_HALF_ORDER;
        above[31] += 1;
        assert!(!ecdsa_p256_in_range(&with_s(&above), true));
        let mut n_minus_one = P256_ORDER;
        n_minus_one[31] -= 1;
        assert!(!ecdsa_p256_in_range(&with_s(&n_minus_one), true));
        assert!(!ecdsa_p256_in_range(&with_s(&[0x80; 32]), true));
    }

    #[test]
    fn normalising_maps_high_s_to_n_minus_s_and_leaves_low_s_alone() {
        let table: [([u8; 32], [u8; 32]); 3] = [
            // n − 1 → 1
            (
                {
                    let mut v = P256_ORDER;
                    v[31] -= 1;
                    v
                },
                {
                    let mut v = [0; 32];
                    v[31] = 1;
                    v
                },
            ),
            // ⌊n/2⌋ + 1 → ⌊n/2⌋ (n is odd)
            (
                {
                    let mut v = P256_HALF_ORDER;
                    v[31] += 1;
                    v
                },
                P256_HALF_ORDER,
            ),
            // low-S unchanged
            (P256_HALF_ORDER, P256_HALF_ORDER),
        ];
        for (input, expected) in table {
            let mut sig = with_s(&input);
            normalize_p256_low_s(&mut sig);
            assert_eq!(sig[32..], expected);
            assert_eq!(sig[..32], [1; 32]);
            assert!(ecdsa_p256_in_range(&sig, true));
        }
        // Borrows across bytes: (n − s) + s = n.
        let mut sig = with_s(&[0xfe; 32]);
        normalize_p256_low_s(&mut sig);
        let mut carry = 0_u16;
        let mut sum = [0_u8; 32];
        for i in (0..32).rev() {
            let v = u16::from(sig[32 + i]) + 0xfe + carry;
            sum[i] = (v & 0xff) as u8;
            carry = v >> 8;
        }
        assert_eq!((sum, carry), (P256_ORDER, 0));
        let mut short = [0xff_u8; 63];
        normalize_p256_low_s(&mut short);
        assert_eq!(short, [0xff; 63]);
    }
}
