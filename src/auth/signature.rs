//! The signature seam: one `verify` (and the `/dev/token` `sign_es256`), two implementations.
//!
//! - wasm32 (the worker): workerd's WebCrypto (`crypto.subtle`), native code, several times
//!   faster than pure-Rust crypto compiled to wasm. Each key is imported once per isolate and
//!   the `CryptoKey` cached by the key's fingerprint ([`webcrypto`]).
//! - native (`cargo test`): jwt-compact's pure-Rust algorithms ([`native`]), so the same policy
//!   code runs under test with real signatures.
//!
//! Both receive keys the policy already chose and signatures whose length it already checked.

use super::jwt::normalize_p256_low_s;
use super::keys::VerificationKey;

/// Whether `signature` over `message` verifies with `key` (using the key's own algorithm).
pub async fn verify(key: &VerificationKey, message: &[u8], signature: &[u8]) -> bool {
    #[cfg(target_arch = "wasm32")]
    {
        webcrypto::verify(key, message, signature).await
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        native::verify(key, message, signature)
    }
}

/// Signs `message` with ES256 (raw `r‖s`) using a private P-256 JWK. The signature is
/// normalised to low-S: WebCrypto (and some native signers) emit high-S half the time, which
/// the verifier accepts by default but refuses with `JWT_ES256_REQUIRE_LOW_S=true`, so
/// development tokens verify in either mode.
///
/// # Errors
/// A reason when the key cannot be used (never quoting it).
pub async fn sign_es256(private_jwk: &DevSigningKey, message: &[u8]) -> Result<Vec<u8>, String> {
    #[cfg(target_arch = "wasm32")]
    let signed = webcrypto::sign_es256(private_jwk, message).await;
    #[cfg(not(target_arch = "wasm32"))]
    let signed = native::sign_es256(private_jwk, message);
    let mut signature = signed?;
    if signature.len() != 64 {
        return Err("ES256 signature is not 64 bytes".to_owned());
    }
    normalize_p256_low_s(&mut signature);
    Ok(signature)
}

/// The parts of a private P-256 JWK that `/dev/token` signs with.
#[derive(Clone, PartialEq, Eq)]
pub struct DevSigningKey {
    pub kid: String,
    /// base64url coordinates and secret scalar, as in the JWK.
    pub x: String,
    pub y: String,
    pub d: String,
}

impl std::fmt::Debug for DevSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DevSigningKey({})", self.kid)
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub mod native {
    //! Pure-Rust verification through jwt-compact (native builds only).

    use std::borrow::Cow;

    use base64ct::{Base64UrlUnpadded, Encoding};
    use jwt_compact::alg::{
        Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key, Rsa,
    };
    use jwt_compact::jwk::JsonWebKey;
    use jwt_compact::{Algorithm, AlgorithmSignature};

    use super::DevSigningKey;
    use crate::auth::keys::{Alg, KeyMaterial, VerificationKey};

    fn check<A: Algorithm>(alg: &A, key: &A::VerifyingKey, message: &[u8], sig: &[u8]) -> bool {
        A::Signature::try_from_slice(sig).is_ok_and(|s| alg.verify_signature(&s, key, message))
    }

    fn rsa(alg: Alg, n: &[u8], e: &[u8], message: &[u8], sig: &[u8]) -> bool {
        let jwk = JsonWebKey::Rsa {
            modulus: Cow::Borrowed(n),
            public_exponent: Cow::Borrowed(e),
            private_parts: None,
        };
        let Ok(key) = <Rsa as Algorithm>::VerifyingKey::try_from(&jwk) else {
            return false;
        };
        let rsa = match alg {
            Alg::Rs256 => Rsa::rs256(),
            Alg::Rs384 => Rsa::rs384(),
            Alg::Rs512 => Rsa::rs512(),
            Alg::Ps256 => Rsa::ps256(),
            Alg::Ps384 => Rsa::ps384(),
            Alg::Ps512 => Rsa::ps512(),
            Alg::Hs256 | Alg::Hs384 | Alg::Hs512 | Alg::Es256 | Alg::EdDsa => return false,
        };
        check(&rsa, &key, message, sig)
    }

    /// Verifies with jwt-compact's implementation of the key's algorithm.
    #[must_use]
    pub fn verify(key: &VerificationKey, message: &[u8], sig: &[u8]) -> bool {
        match (key.alg, &key.material) {
            (Alg::Hs256, KeyMaterial::Hmac(k)) => check(&Hs256, &Hs256Key::new(k), message, sig),
            (Alg::Hs384, KeyMaterial::Hmac(k)) => check(&Hs384, &Hs384Key::new(k), message, sig),
            (Alg::Hs512, KeyMaterial::Hmac(k)) => check(&Hs512, &Hs512Key::new(k), message, sig),
            (
                alg @ (Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512),
                KeyMaterial::Rsa { n, e },
            ) => rsa(alg, n, e, message, sig),
            (Alg::Es256, KeyMaterial::P256 { x, y }) => {
                let jwk = JsonWebKey::EllipticCurve {
                    curve: Cow::Borrowed("P-256"),
                    x: Cow::Borrowed(x),
                    y: Cow::Borrowed(y),
                    secret: None,
                };
                <Es256 as Algorithm>::VerifyingKey::try_from(&jwk)
                    .is_ok_and(|key| check(&Es256, &key, message, sig))
            }
            (Alg::EdDsa, KeyMaterial::Ed25519(x)) => {
                let jwk = JsonWebKey::KeyPair {
                    curve: Cow::Borrowed("Ed25519"),
                    x: Cow::Borrowed(x),
                    secret: None,
                };
                <Ed25519 as Algorithm>::VerifyingKey::try_from(&jwk)
                    .is_ok_and(|key| check(&Ed25519, &key, message, sig))
            }
            // The key parser never pairs an algorithm with another family's material.
            (
                Alg::Hs256
                | Alg::Hs384
                | Alg::Hs512
                | Alg::Rs256
                | Alg::Rs384
                | Alg::Rs512
                | Alg::Ps256
                | Alg::Ps384
                | Alg::Ps512
                | Alg::Es256
                | Alg::EdDsa,
                _,
            ) => false,
        }
    }

    /// ES256 signing for `/dev/token` in native tests.
    ///
    /// # Errors
    /// When the JWK is not a usable P-256 private key.
    pub fn sign_es256(key: &DevSigningKey, message: &[u8]) -> Result<Vec<u8>, String> {
        let decode = |s: &str| Base64UrlUnpadded::decode_vec(s).map_err(|_| "not base64url");
        let (x, y, d) = (decode(&key.x)?, decode(&key.y)?, decode(&key.d)?);
        let jwk = JsonWebKey::EllipticCurve {
            curve: Cow::Borrowed("P-256"),
            x: Cow::Owned(x),
            y: Cow::Owned(y),
            secret: Some(jwt_compact::alg::SecretBytes::owned(d)),
        };
        let signing = <Es256 as Algorithm>::SigningKey::try_from(&jwk)
            .map_err(|_| "not a P-256 private key".to_owned())?;
        Ok(Es256.sign(&signing, message).as_bytes().into_owned())
    }
}

#[cfg(target_arch = "wasm32")]
pub use crate::platform::crypto as webcrypto;
