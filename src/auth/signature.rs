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
pub mod webcrypto {
    //! Verification and signing through workerd's WebCrypto (wasm only).
    //!
    //! Imported `CryptoKey`s are cached per isolate by key fingerprint. They are public keys
    //! (or the operator's HMAC secret from configuration), never per-user state, so sharing
    //! them between requests is safe; the cache is bounded and cleared when full.

    use std::cell::RefCell;
    use std::collections::HashMap;

    use js_sys::{Array, Object, Reflect, Uint8Array};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{CryptoKey, SubtleCrypto};

    use super::DevSigningKey;
    use crate::auth::keys::{Alg, KeyMaterial, VerificationKey};

    /// Most imported keys kept (inline + remote + PASETO keys, with rotation headroom).
    const MAX_CACHED_KEYS: usize = 128;

    thread_local! {
        /// Imported WebCrypto keys, by key id: importing once per isolate keeps verification
        /// cheap. They are the configured public keys (and the operator's HMAC secret), the
        /// same for every user, so this is not per-user state; bounded by MAX_CACHED_KEYS.
        /// With each key, the `verify` algorithm object it is used with, built once too.
        static KEYS: RefCell<HashMap<String, (CryptoKey, Object)>> = RefCell::new(HashMap::new());
        /// `crypto.subtle`, looked up once: the same object for the isolate's lifetime and for
        /// every user, so not per-user state.
        static SUBTLE: RefCell<Option<SubtleCrypto>> = const { RefCell::new(None) };
    }

    fn subtle() -> Option<SubtleCrypto> {
        if let Some(subtle) = SUBTLE.with(|s| s.borrow().clone()) {
            return Some(subtle);
        }
        let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto")).ok()?;
        let crypto: web_sys::Crypto = crypto.dyn_into().ok()?;
        let subtle = crypto.subtle();
        SUBTLE.with(|s| *s.borrow_mut() = Some(subtle.clone()));
        Some(subtle)
    }

    fn object(pairs: &[(&str, JsValue)]) -> Object {
        let o = Object::new();
        for (k, v) in pairs {
            let _ = Reflect::set(&o, &JsValue::from_str(k), v);
        }
        o
    }

    fn s(v: &str) -> JsValue {
        JsValue::from_str(v)
    }

    fn b64(bytes: &[u8]) -> JsValue {
        use base64ct::{Base64UrlUnpadded, Encoding};
        JsValue::from_str(&Base64UrlUnpadded::encode_string(bytes))
    }

    fn hash(alg: Alg) -> JsValue {
        object(&[("name", s(alg.sha().name()))]).into()
    }

    /// (format, key data, import algorithm, verify algorithm) for a key.
    fn import_params(key: &VerificationKey) -> Option<(&'static str, Object, Object, Object)> {
        let alg = key.alg;
        match (alg, &key.material) {
            (Alg::Hs256 | Alg::Hs384 | Alg::Hs512, KeyMaterial::Hmac(k)) => Some((
                "raw",
                Uint8Array::from(k.as_slice()).into(),
                object(&[("name", s("HMAC")), ("hash", hash(alg))]),
                object(&[("name", s("HMAC"))]),
            )),
            (Alg::Rs256 | Alg::Rs384 | Alg::Rs512, KeyMaterial::Rsa { n, e }) => Some((
                "jwk",
                object(&[("kty", s("RSA")), ("n", b64(n)), ("e", b64(e))]),
                object(&[("name", s("RSASSA-PKCS1-v1_5")), ("hash", hash(alg))]),
                object(&[("name", s("RSASSA-PKCS1-v1_5"))]),
            )),
            (Alg::Ps256 | Alg::Ps384 | Alg::Ps512, KeyMaterial::Rsa { n, e }) => Some((
                "jwk",
                object(&[("kty", s("RSA")), ("n", b64(n)), ("e", b64(e))]),
                object(&[("name", s("RSA-PSS")), ("hash", hash(alg))]),
                object(&[
                    ("name", s("RSA-PSS")),
                    ("saltLength", JsValue::from(alg.sha().output_bytes())),
                ]),
            )),
            (Alg::Es256, KeyMaterial::P256 { x, y }) => Some((
                "jwk",
                object(&[
                    ("kty", s("EC")),
                    ("crv", s("P-256")),
                    ("x", b64(x)),
                    ("y", b64(y)),
                ]),
                object(&[("name", s("ECDSA")), ("namedCurve", s("P-256"))]),
                object(&[("name", s("ECDSA")), ("hash", hash(alg))]),
            )),
            (Alg::EdDsa, KeyMaterial::Ed25519(x)) => Some((
                "raw",
                Uint8Array::from(x.as_slice()).into(),
                object(&[("name", s("Ed25519"))]),
                object(&[("name", s("Ed25519"))]),
            )),
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
                KeyMaterial::Hmac(_)
                | KeyMaterial::Rsa { .. }
                | KeyMaterial::P256 { .. }
                | KeyMaterial::Ed25519(_),
            ) => None,
        }
    }

    async fn import(
        subtle: &SubtleCrypto,
        format: &str,
        data: &Object,
        algorithm: &Object,
        usage: &str,
    ) -> Option<CryptoKey> {
        let usages = Array::of1(&s(usage));
        let promise = subtle
            .import_key_with_object(format, data, algorithm, false, &usages)
            .ok()?;
        JsFuture::from(promise).await.ok()?.dyn_into().ok()
    }

    /// Verifies through `crypto.subtle.verify`, importing the key (and building its
    /// algorithm objects) on first use only: the per-request path is one lookup and one call.
    pub async fn verify(key: &VerificationKey, message: &[u8], signature: &[u8]) -> bool {
        let Some(subtle) = subtle() else {
            return false;
        };
        let cached = KEYS.with(|keys| keys.borrow().get(&key.fingerprint).cloned());
        let (crypto_key, verify_alg) = match cached {
            Some(entry) => entry,
            None => {
                let Some((format, data, import_alg, verify_alg)) = import_params(key) else {
                    return false;
                };
                let Some(k) = import(&subtle, format, &data, &import_alg, "verify").await else {
                    return false;
                };
                KEYS.with(|keys| {
                    let mut keys = keys.borrow_mut();
                    if keys.len() >= MAX_CACHED_KEYS {
                        keys.clear();
                    }
                    keys.insert(key.fingerprint.clone(), (k.clone(), verify_alg.clone()));
                });
                (k, verify_alg)
            }
        };
        // Fresh JS copies of the signature and the signed bytes (a few hundred bytes) rather
        // than views into the wasm memory: paired profiles of `GET /me` showed 15–35 µs less
        // isolate time per request this way.
        let signature = js_sys::Uint8Array::from(signature);
        let message = js_sys::Uint8Array::from(message);
        let Ok(promise) = subtle.verify_with_object_and_buffer_source_and_buffer_source(
            &verify_alg,
            &crypto_key,
            &signature,
            &message,
        ) else {
            return false;
        };
        crate::runtime::settled(promise)
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    /// ES256 signing through `crypto.subtle.sign` (raw `r‖s`), key imported once per isolate.
    pub async fn sign_es256(key: &DevSigningKey, message: &[u8]) -> Result<Vec<u8>, String> {
        let subtle = subtle().ok_or("no crypto.subtle")?;
        let cache_key = format!(
            "dev-sign:{}:{}",
            key.kid,
            crate::hash::sha256_parts(&[key.d.as_bytes()])
        );
        let cached = KEYS.with(|keys| keys.borrow().get(&cache_key).map(|(k, _)| k.clone()));
        let crypto_key = match cached {
            Some(k) => k,
            None => {
                let data = object(&[
                    ("kty", s("EC")),
                    ("crv", s("P-256")),
                    ("x", s(&key.x)),
                    ("y", s(&key.y)),
                    ("d", s(&key.d)),
                ]);
                let alg = object(&[("name", s("ECDSA")), ("namedCurve", s("P-256"))]);
                let k = import(&subtle, "jwk", &data, &alg, "sign")
                    .await
                    .ok_or("DEV_TOKEN_KEY is not a usable P-256 private key")?;
                let alg = object(&[("name", s("ECDSA")), ("hash", hash(Alg::Es256))]);
                KEYS.with(|keys| keys.borrow_mut().insert(cache_key, (k.clone(), alg)));
                k
            }
        };
        let alg = object(&[("name", s("ECDSA")), ("hash", hash(Alg::Es256))]);
        let promise = subtle
            .sign_with_object_and_u8_array(&alg, &crypto_key, message)
            .map_err(|_| "sign failed")?;
        let sig = JsFuture::from(promise).await.map_err(|_| "sign failed")?;
        Ok(Uint8Array::new(&sig).to_vec())
    }
}
