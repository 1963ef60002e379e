//! Verification and signing through workerd's WebCrypto (wasm only).
//!
//! Imported `CryptoKey`s are cached per isolate by key fingerprint. They are public keys
//! (or the operator's HMAC secret from configuration), never per-user state, so sharing
//! them between requests is safe; the cache is bounded and cleared when full.
//!
//! Bypasses the worker crate, which has no WebCrypto binding (its `web_sys` is used directly).

use std::cell::RefCell;
use std::collections::HashMap;

use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

use crate::auth::keys::{Alg, KeyMaterial, VerificationKey};
use crate::auth::signature::DevSigningKey;

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
    super::runtime::settled(promise)
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
