//! Guest identities: tokens edgecart signs itself, for shoppers without an account (pure).
//!
//! A guest token is an ordinary HS256 JWT signed with `GUEST_TOKEN_KEY`: `iss` is
//! [`ISSUER`], `sub` is `guest_` and 128 random bits, `aud` the first configured audience.
//! Nothing is stored when one is issued; the verifier accepts it through the same code as
//! every other token, with two rules that keep the two kinds apart:
//! - a token whose `iss` is [`ISSUER`] verifies only with the guest key, and the guest key
//!   verifies nothing else (it is not in `JWT_JWKS` or the remote set);
//! - its lifetime (`exp - iat`) is bounded by `GUEST_TOKEN_TTL_SECONDS`, not by
//!   `JWT_MAX_LIFETIME_SECONDS` (which is about the identity provider's tokens).
//!
//! A guest never holds a scope ([`crate::auth::Identity::has_scope`]), whatever its token says.

use base64ct::{Base64UrlUnpadded, Encoding};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::keys::{Alg, KeyMaterial, VerificationKey};
use crate::time::UnixMillis;

/// The `iss` of every guest token.
pub const ISSUER: &str = "edgecart:guest";
/// The prefix of every guest `sub`.
pub const SUB_PREFIX: &str = "guest_";
/// Shortest `GUEST_TOKEN_KEY` accepted (RFC 7518 §3.2: an HS256 key of at least 256 bits).
pub const MIN_KEY_BYTES: usize = 32;

/// The guest signing key as the verifier holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestKey {
    /// The HS256 key, `kid` derived from the secret (a rotated secret has another `kid`).
    pub key: VerificationKey,
    /// `GUEST_TOKEN_TTL_SECONDS`.
    pub ttl_seconds: u64,
}

impl GuestKey {
    /// The key for `secret` (already checked to be at least [`MIN_KEY_BYTES`] long).
    #[must_use]
    pub fn new(secret: &str, ttl_seconds: u64) -> Self {
        let digest = crate::hash::sha256_parts(&[b"edgecart guest key id", secret.as_bytes()]);
        let kid = format!("edgecart-guest-{}", digest.get(..16).unwrap_or(&digest));
        Self {
            key: VerificationKey::new(
                Some(kid),
                Alg::Hs256,
                KeyMaterial::Hmac(secret.as_bytes().to_vec()),
            ),
            ttl_seconds,
        }
    }

    fn secret(&self) -> &[u8] {
        match &self.key.material {
            KeyMaterial::Hmac(k) => k,
            KeyMaterial::Rsa { .. } | KeyMaterial::P256 { .. } | KeyMaterial::Ed25519(_) => &[],
        }
    }
}

/// A freshly issued guest session, as `POST /session/guest` answers it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GuestSession {
    pub token: String,
    pub sub: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// Whether `sub` has the shape of a guest subject (`guest_` + 32 lower-case hex digits).
#[must_use]
pub fn is_guest_sub(sub: &str) -> bool {
    sub.strip_prefix(SUB_PREFIX)
        .is_some_and(|hex| crate::hash::is_lower_hex(hex, 32))
}

/// Issues a guest token for `random_hex` (32 hex digits of fresh randomness) at `now`.
#[must_use]
pub fn issue(key: &GuestKey, audience: &str, random_hex: &str, now: UnixMillis) -> GuestSession {
    let sub = format!("{SUB_PREFIX}{random_hex}");
    let iat = now.seconds();
    let exp = iat.saturating_add(key.ttl_seconds);
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": key.key.kid});
    let payload = json!({"iss": ISSUER, "sub": sub, "aud": audience, "iat": iat, "exp": exp});
    let input = format!(
        "{}.{}",
        Base64UrlUnpadded::encode_string(header.to_string().as_bytes()),
        Base64UrlUnpadded::encode_string(payload.to_string().as_bytes())
    );
    let token = format!(
        "{input}.{}",
        Base64UrlUnpadded::encode_string(&sign(key.secret(), input.as_bytes()))
    );
    GuestSession {
        token,
        sub,
        expires_at: UnixMillis(exp.saturating_mul(1000)).to_rfc3339(),
    }
}

/// HMAC-SHA256 of `message` (RustCrypto's `hmac`: one signature per issued session, so the
/// pure-Rust code costs nothing that matters and needs no asynchronous WebCrypto call).
fn sign(secret: &[u8], message: &[u8]) -> Vec<u8> {
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length; unreachable, and an empty signature never verifies.
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef-guest";

    #[test]
    fn a_guest_token_names_the_guest_issuer_and_a_guest_subject() {
        let key = GuestKey::new(SECRET, 604_800);
        let s = issue(
            &key,
            "edgecart",
            "00112233445566778899aabbccddeeff",
            UnixMillis(1_796_000_000_000),
        );
        assert_eq!(s.sub, "guest_00112233445566778899aabbccddeeff");
        assert!(is_guest_sub(&s.sub));
        assert_eq!(s.expires_at, "2026-12-07T00:53:20Z");
        let payload = s.token.split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&Base64UrlUnpadded::decode_vec(payload).unwrap()).unwrap();
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["exp"], 1_796_604_800);
        assert!(key
            .key
            .kid
            .as_deref()
            .unwrap()
            .starts_with("edgecart-guest-"));
    }

    #[test]
    fn another_secret_has_another_key_id() {
        let a = GuestKey::new(SECRET, 60);
        let b = GuestKey::new(&format!("{SECRET}!"), 60);
        assert_ne!(a.key.kid, b.key.kid);
    }

    #[test]
    fn only_guest_prefixed_hex_subjects_are_guest_subjects() {
        for bad in [
            "guest_",
            "guest_00112233445566778899AABBCCDDEEFF",
            "guest_0011",
            "alice",
            "Guest_00112233445566778899aabbccddeeff",
        ] {
            assert!(!is_guest_sub(bad), "{bad}");
        }
    }
}
