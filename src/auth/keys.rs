//! Verification keys: JWKS and PASERK text → typed keys (pure).
//!
//! The algorithm of a key is OUR decision, written in the key entry (`alg`), never the
//! token's. Inline keys (`JWT_JWKS`, `PASETO_V4_PUBLIC_KEYS`) are configuration: any problem
//! (missing `kid`/`alg`, weak key, unknown algorithm) refuses the configuration, so the operator
//! learns at once. Remote keys (`JWT_JWKS_URL`) come from the network: a bad entry is skipped,
//! and HMAC (`oct`) entries are never taken from there (a public URL must not hand out secrets
//! that would let anyone mint tokens).

use base64ct::{Base64UrlUnpadded, Encoding};
use blake2::digest::{consts::U33, Digest};
use serde_json::{Map, Value};

use crate::json::parse_object;

/// The signature algorithms edgecart accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    Hs256,
    Hs384,
    Hs512,
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    /// Ed25519 (JWS `EdDSA`; also PASETO v4.public).
    EdDsa,
}

/// The hash inside an algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sha {
    Sha256,
    Sha384,
    Sha512,
}

impl Sha {
    /// The WebCrypto name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }

    /// Output length in bytes (also the PSS salt length JWS uses).
    #[must_use]
    pub fn output_bytes(self) -> u32 {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

impl Alg {
    /// Every accepted algorithm.
    pub const ALL: [Alg; 11] = [
        Self::Hs256,
        Self::Hs384,
        Self::Hs512,
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Ps256,
        Self::Ps384,
        Self::Ps512,
        Self::Es256,
        Self::EdDsa,
    ];

    /// The JWS name (`"HS256"`, …), compared exactly: `"hs256"` or `"none"` are not names.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Hs384 => "HS384",
            Self::Hs512 => "HS512",
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The hash the algorithm signs with (Ed25519 has its own, internal).
    #[must_use]
    pub fn sha(self) -> Sha {
        match self {
            Self::Hs256 | Self::Rs256 | Self::Ps256 | Self::Es256 => Sha::Sha256,
            Self::Hs384 | Self::Rs384 | Self::Ps384 => Sha::Sha384,
            Self::Hs512 | Self::Rs512 | Self::Ps512 | Self::EdDsa => Sha::Sha512,
        }
    }

    /// The exact signature length, where the algorithm fixes one (RSA: the modulus length).
    #[must_use]
    pub fn signature_len(self, material: &KeyMaterial) -> usize {
        match (self, material) {
            (Self::Hs256, _) => 32,
            (Self::Hs384, _) => 48,
            (Self::Hs512, _) => 64,
            (Self::Es256 | Self::EdDsa, _) => 64,
            (
                Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps256 | Self::Ps384 | Self::Ps512,
                KeyMaterial::Rsa { n, .. },
            ) => n.len(),
            (
                Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps256 | Self::Ps384 | Self::Ps512,
                KeyMaterial::Hmac(_) | KeyMaterial::P256 { .. } | KeyMaterial::Ed25519(_),
            ) => 0,
        }
    }
}

/// Public key material (or the HMAC secret), in the raw form WebCrypto and the native
/// algorithms import.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    Hmac(Vec<u8>),
    /// Big-endian modulus (leading zeros stripped) and exponent.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    P256 {
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hmac(_) => f.write_str("Hmac(…)"),
            Self::Rsa { n, .. } => write!(f, "Rsa({} bits)", n.len() * 8),
            Self::P256 { .. } => f.write_str("P256"),
            Self::Ed25519(_) => f.write_str("Ed25519"),
        }
    }
}

/// One key a token may be verified with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationKey {
    /// JWKS `kid`, or the PASERK id (`k4.pid.…`) of a PASETO key.
    pub kid: Option<String>,
    pub alg: Alg,
    pub material: KeyMaterial,
    /// Hex SHA-256 over the algorithm and material: the identity of the key for caches of
    /// imported `CryptoKey`s (two entries with the same bytes share one import).
    pub fingerprint: String,
}

impl VerificationKey {
    pub(crate) fn new(kid: Option<String>, alg: Alg, material: KeyMaterial) -> Self {
        let fingerprint = {
            let parts: Vec<&[u8]> = match &material {
                KeyMaterial::Hmac(k) => vec![b"oct", k],
                KeyMaterial::Rsa { n, e } => vec![b"RSA", n, e],
                KeyMaterial::P256 { x, y } => vec![b"P-256", x, y],
                KeyMaterial::Ed25519(x) => vec![b"Ed25519", x],
            };
            let mut all = vec![alg.name().as_bytes()];
            all.extend(parts);
            crate::hash::sha256_parts(&all)
        };
        Self {
            kid,
            alg,
            material,
            fingerprint,
        }
    }
}

/// Where a key set comes from; decides how strict parsing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `JWT_JWKS`: every problem is a configuration error; `oct` keys allowed.
    Inline,
    /// `JWT_JWKS_URL`: bad entries are skipped; `oct` keys never accepted.
    Remote,
}

/// Smallest HMAC secret (RFC 7518 §3.2 asks for at least the hash size; 32 bytes is the floor).
pub const MIN_HMAC_BYTES: usize = 32;
/// Smallest RSA modulus (RFC 7518 §3.3).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus (bounds verification cost).
pub const MAX_RSA_BITS: usize = 8192;
/// Longest `kid` kept; a longer one cannot match (A5).
pub const MAX_KID_BYTES: usize = 256;
/// Most keys kept from one set (an inline set with more is refused; a remote one is cut).
pub const MAX_KEYS: usize = 64;

/// Parses a JWKS document (`{"keys": [...]}`).
///
/// # Errors
/// A reason (never quoting key material) when the document or, for inline sets, any entry is
/// unusable.
pub fn parse_jwks(text: &str, source: KeySource) -> Result<Vec<VerificationKey>, String> {
    let doc = parse_object(text.as_bytes()).map_err(|_| "not a JSON object".to_owned())?;
    let Some(Value::Array(entries)) = doc.get("keys") else {
        return Err("missing `keys` array".to_owned());
    };
    let mut keys: Vec<VerificationKey> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let parsed = match entry {
            Value::Object(jwk) => parse_jwk(jwk, source),
            Value::Null
            | Value::Bool(_)
            | Value::Number(_)
            | Value::String(_)
            | Value::Array(_) => Err("not an object".to_owned()),
        };
        match (parsed, source) {
            (Ok(key), _) => {
                if keys.iter().any(|k| k.kid == key.kid) {
                    match source {
                        KeySource::Inline => return Err(format!("key {i}: duplicate kid")),
                        KeySource::Remote => continue,
                    }
                }
                keys.push(key);
            }
            (Err(reason), KeySource::Inline) => return Err(format!("key {i}: {reason}")),
            (Err(_), KeySource::Remote) => {}
        }
        if keys.len() > MAX_KEYS {
            match source {
                KeySource::Inline => return Err(format!("more than {MAX_KEYS} keys")),
                // An identity provider mid-rotation may publish many keys: keep the first
                // MAX_KEYS usable ones (document order) rather than losing every key.
                KeySource::Remote => {
                    keys.truncate(MAX_KEYS);
                    break;
                }
            }
        }
    }
    Ok(keys)
}

fn member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{name}` is not a string")),
    }
}

fn bytes(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let text = member(jwk, name)?.ok_or_else(|| format!("missing `{name}`"))?;
    Base64UrlUnpadded::decode_vec(text).map_err(|_| format!("`{name}` is not base64url"))
}

fn parse_jwk(jwk: &Map<String, Value>, source: KeySource) -> Result<VerificationKey, String> {
    let kid = member(jwk, "kid")?.ok_or("missing `kid`")?;
    if kid.is_empty() || kid.len() > MAX_KID_BYTES {
        return Err("`kid` is empty or too long".to_owned());
    }
    let alg_name = member(jwk, "alg")?.ok_or("missing `alg`")?;
    let alg = Alg::from_name(alg_name).ok_or("unsupported `alg`")?;
    if let Some(usage) = member(jwk, "use")? {
        if usage != "sig" {
            return Err("`use` is not `sig`".to_owned());
        }
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verify = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some("verify")));
        if !verify {
            return Err("`key_ops` does not allow `verify`".to_owned());
        }
    }
    let kty = member(jwk, "kty")?.ok_or("missing `kty`")?;
    let material = match (alg, kty) {
        (Alg::Hs256 | Alg::Hs384 | Alg::Hs512, "oct") => {
            if source == KeySource::Remote {
                return Err("HMAC keys are accepted only inline".to_owned());
            }
            let k = bytes(jwk, "k")?;
            if k.len() < MIN_HMAC_BYTES {
                return Err(format!(
                    "weak key: HMAC secret shorter than {MIN_HMAC_BYTES} bytes"
                ));
            }
            KeyMaterial::Hmac(k)
        }
        (Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512, "RSA") => {
            let n = bytes(jwk, "n")?;
            let n: Vec<u8> = n.iter().copied().skip_while(|b| *b == 0).collect();
            let bits = n
                .first()
                .map_or(0, |top| n.len() * 8 - top.leading_zeros() as usize);
            if bits < MIN_RSA_BITS {
                return Err(format!("weak key: RSA modulus under {MIN_RSA_BITS} bits"));
            }
            if bits > MAX_RSA_BITS {
                return Err(format!("RSA modulus over {MAX_RSA_BITS} bits"));
            }
            let e = bytes(jwk, "e")?;
            let e: Vec<u8> = e.iter().copied().skip_while(|b| *b == 0).collect();
            if e.is_empty() || e.len() > 8 || e.last().is_some_and(|b| b % 2 == 0) || e == [1] {
                return Err("unusable RSA exponent".to_owned());
            }
            KeyMaterial::Rsa { n, e }
        }
        (Alg::Es256, "EC") => {
            if member(jwk, "crv")? != Some("P-256") {
                return Err("ES256 needs `crv` P-256".to_owned());
            }
            let (x, y) = (bytes(jwk, "x")?, bytes(jwk, "y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates must be 32 bytes".to_owned());
            }
            KeyMaterial::P256 { x, y }
        }
        (Alg::EdDsa, "OKP") => {
            if member(jwk, "crv")? != Some("Ed25519") {
                return Err("EdDSA needs `crv` Ed25519".to_owned());
            }
            let x = bytes(jwk, "x")?;
            if x.len() != 32 {
                return Err("Ed25519 keys are 32 bytes".to_owned());
            }
            KeyMaterial::Ed25519(x)
        }
        _ => return Err("`kty` does not fit `alg`".to_owned()),
    };
    Ok(VerificationKey::new(Some(kid.to_owned()), alg, material))
}

/// The PASERK prefix of a v4 public key.
pub const PASERK_PUBLIC: &str = "k4.public.";
/// The PASERK prefix of a v4 public key id.
pub const PASERK_PID: &str = "k4.pid.";

/// Parses PASERK `k4.public.…` keys; each gets its PASERK id (`k4.pid.…`) as `kid`.
///
/// # Errors
/// A reason when a key is not a well-formed `k4.public` PASERK.
pub fn parse_paserks(keys: &[String]) -> Result<Vec<VerificationKey>, String> {
    keys.iter()
        .enumerate()
        .map(|(i, paserk)| {
            let encoded = paserk
                .strip_prefix(PASERK_PUBLIC)
                .ok_or_else(|| format!("key {i}: not a `k4.public.` PASERK"))?;
            let raw = Base64UrlUnpadded::decode_vec(encoded)
                .map_err(|_| format!("key {i}: not base64url"))?;
            if raw.len() != 32 {
                return Err(format!("key {i}: Ed25519 keys are 32 bytes"));
            }
            Ok(VerificationKey::new(
                Some(paserk_id(paserk)),
                Alg::EdDsa,
                KeyMaterial::Ed25519(raw),
            ))
        })
        .collect()
}

/// BLAKE2b with a 33-byte (264-bit) digest, the size PASERK ids use.
type Blake2b264 = blake2::Blake2b<U33>;

/// The PASERK id of a PASERK string: `k4.pid.` + base64url(BLAKE2b-264(`k4.pid.` ‖ paserk)).
#[must_use]
pub fn paserk_id(paserk: &str) -> String {
    let digest = Blake2b264::new()
        .chain_update(PASERK_PID)
        .chain_update(paserk)
        .finalize();
    format!("{PASERK_PID}{}", Base64UrlUnpadded::encode_string(&digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        Base64UrlUnpadded::encode_string(bytes)
    }

    fn oct(kid: &str, len: usize) -> String {
        format!(
            r#"{{"kty":"oct","kid":"{kid}","alg":"HS256","k":"{}"}}"#,
            b64(&vec![7; len])
        )
    }

    fn rsa(bits: usize) -> String {
        let mut n = vec![0xff_u8; bits / 8];
        n[0] = 0xc1;
        format!(
            r#"{{"kty":"RSA","kid":"r","alg":"RS256","n":"{}","e":"AQAB"}}"#,
            b64(&n)
        )
    }

    #[test]
    fn weak_keys_are_refused_as_configuration_errors() {
        let short = format!(r#"{{"keys":[{}]}}"#, oct("a", 31));
        assert!(parse_jwks(&short, KeySource::Inline)
            .unwrap_err()
            .contains("weak key"));
        let ok = format!(r#"{{"keys":[{}]}}"#, oct("a", 32));
        assert_eq!(parse_jwks(&ok, KeySource::Inline).unwrap().len(), 1);
        let small = format!(r#"{{"keys":[{}]}}"#, rsa(1024));
        assert!(parse_jwks(&small, KeySource::Inline)
            .unwrap_err()
            .contains("weak key"));
        let small = format!(r#"{{"keys":[{}]}}"#, rsa(2040));
        assert!(parse_jwks(&small, KeySource::Inline).is_err());
        let fine = format!(r#"{{"keys":[{}]}}"#, rsa(2048));
        assert_eq!(parse_jwks(&fine, KeySource::Inline).unwrap().len(), 1);
    }

    #[test]
    fn every_inline_key_needs_kid_and_alg_and_a_fitting_type() {
        for entry in [
            r#"{"kty":"oct","alg":"HS256","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
            r#"{"kty":"oct","kid":"a","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
            r#"{"kty":"oct","kid":"a","alg":"none","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
            r#"{"kty":"EC","kid":"a","alg":"HS256","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
            r#"{"kty":"OKP","kid":"a","alg":"EdDSA","crv":"X25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
        ] {
            let doc = format!(r#"{{"keys":[{entry}]}}"#);
            assert!(parse_jwks(&doc, KeySource::Inline).is_err(), "{entry}");
        }
        let dup = format!(r#"{{"keys":[{},{}]}}"#, oct("a", 32), oct("a", 40));
        assert!(parse_jwks(&dup, KeySource::Inline).is_err());
    }

    #[test]
    fn a_remote_set_never_yields_hmac_keys_and_skips_bad_entries() {
        let doc = format!(
            r#"{{"keys":[{},{{"kty":"OKP","kid":"e","alg":"EdDSA","crv":"Ed25519","x":"{}"}},{{"kid":"x"}}]}}"#,
            oct("h", 32),
            b64(&[1; 32])
        );
        let keys = parse_jwks(&doc, KeySource::Remote).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("e"));
        assert_eq!(keys[0].alg, Alg::EdDsa);
    }

    fn ed25519(kid: &str, byte: u8) -> String {
        format!(
            r#"{{"kty":"OKP","kid":"{kid}","alg":"EdDSA","crv":"Ed25519","x":"{}"}}"#,
            b64(&[byte; 32])
        )
    }

    #[test]
    fn a_remote_set_with_too_many_keys_keeps_the_first_usable_ones() {
        let mut entries = vec![oct("h", 32), r#"{"kid":"broken"}"#.to_owned()];
        entries.extend((0..70_u8).map(|i| ed25519(&format!("k{i}"), i)));
        let doc = format!(r#"{{"keys":[{}]}}"#, entries.join(","));
        let keys = parse_jwks(&doc, KeySource::Remote).unwrap();
        assert_eq!(keys.len(), MAX_KEYS);
        assert_eq!(keys[0].kid.as_deref(), Some("k0"));
        assert_eq!(keys[MAX_KEYS - 1].kid.as_deref(), Some("k63"));
        let inline = format!(
            r#"{{"keys":[{}]}}"#,
            (0..65_u8)
                .map(|i| ed25519(&format!("k{i}"), i))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(parse_jwks(&inline, KeySource::Inline)
            .unwrap_err()
            .contains("more than 64"));
        let exactly = format!(
            r#"{{"keys":[{}]}}"#,
            (0..64_u8)
                .map(|i| ed25519(&format!("k{i}"), i))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(parse_jwks(&exactly, KeySource::Inline).unwrap().len(), 64);
    }

    #[test]
    fn paserk_public_keys_get_their_paserk_id() {
        let paserk = format!("k4.public.{}", b64(&[9; 32]));
        let keys = parse_paserks(std::slice::from_ref(&paserk)).unwrap();
        assert_eq!(keys[0].kid.as_deref(), Some(paserk_id(&paserk).as_str()));
        assert!(paserk_id(&paserk).starts_with("k4.pid."));
        assert_eq!(paserk_id(&paserk).len(), "k4.pid.".len() + 44);
        assert!(parse_paserks(&["k4.secret.AAAA".to_owned()]).is_err());
        assert!(parse_paserks(&[format!("k4.public.{}", b64(&[9; 31]))]).is_err());
    }
}
