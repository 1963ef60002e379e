//! Compact JWS access tokens: parsing, header policy and key choice (pure).
//!
//! Parsing is ours rather than `jwt_compact::UntrustedToken`'s because the policy needs what
//! that type hides: the raw header members (`crit`, `cty`, `typ`, duplicates) and strict
//! base64url. jwt-compact still verifies signatures natively (see `signature.rs`).
//!
//! The algorithm is never read from the token to pick how to verify: the key entry chosen by
//! `kid` carries it, and the header `alg` must merely equal it (RFC 8725 §3.1).

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{Map, Value};

use super::claims::{check_claims, check_dates, numeric_date, Dates, Policy, Refusal};
use super::json::parse_object;
use super::keys::{Alg, KeyMaterial, VerificationKey, MAX_KID_BYTES};
use super::Identity;
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
    let decode = |s: &str| Base64UrlUnpadded::decode_vec(s).map_err(|_| Refusal::Malformed);
    let header = parse_object(&decode(h64)?).map_err(|_| Refusal::Malformed)?;
    let (alg, kid) = check_header(&header)?;
    let claims = parse_object(&decode(p64)?).map_err(|_| Refusal::Malformed)?;
    let signature = decode(s64)?;
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
            if !ecdsa_p256_in_range(&self.signature) {
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

/// `r` and `s` both in `1..n` (CVE-2022-21449 accepted `r = s = 0`). High-S values inside the
/// range are valid ECDSA (JWS does not require low-S, and OpenSSL/BoringSSL signers emit them
/// half the time), so they are left to the verifier.
#[must_use]
pub fn ecdsa_p256_in_range(signature: &[u8]) -> bool {
    let in_range = |v: &[u8]| v.iter().any(|b| *b != 0) && v < P256_ORDER.as_slice();
    match (signature.get(..32), signature.get(32..)) {
        (Some(r), Some(s)) if s.len() == 32 => in_range(r) && in_range(s),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_components_outside_the_group_are_refused() {
        let mut sig = [1_u8; 64];
        assert!(ecdsa_p256_in_range(&sig));
        assert!(!ecdsa_p256_in_range(&[0; 64]));
        sig[..32].copy_from_slice(&P256_ORDER);
        assert!(!ecdsa_p256_in_range(&sig));
        sig[..32].copy_from_slice(&[0xff; 32]);
        assert!(!ecdsa_p256_in_range(&sig));
        assert!(!ecdsa_p256_in_range(&[1; 63]));
    }
}
