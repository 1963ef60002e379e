//! Native specification of bearer-token verification: every accepted algorithm with real
//! signatures (jwt-compact natively, through the same policy code the worker runs), and every
//! pure case of the attack catalogue (semantics.md §1, A1–A25), with an injected clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use base64ct::{Base64UrlUnpadded, Encoding};
use edgecart::auth::bearer::BearerToken;
use edgecart::auth::claims::{Policy, Refusal};
use edgecart::auth::jwt::normalize_p256_low_s;
use edgecart::auth::keys::{parse_jwks, KeySource, VerificationKey};
use edgecart::auth::remote::{KeysUnavailable, Trigger};
use edgecart::auth::verify::{verify_bearer, Failure, KeyRing};
use edgecart::auth::Identity;
use edgecart::time::UnixMillis;
use jwt_compact::alg::{
    Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key, Rsa, SigningKey as _,
};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm, AlgorithmSignature};
use serde_json::{json, Value};

const NOW: u64 = 1_800_000_000;
const ISS: &str = "https://issuer.example";

/// Runs a future that never waits (the native signature seam is synchronous).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("native verification never waits"),
    }
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

fn policy() -> Policy {
    Policy {
        issuer: ISS.into(),
        audiences: vec!["edgecart".into(), "other".into()],
        leeway_seconds: 60,
        max_token_bytes: 8192,
        max_lifetime_seconds: None,
        es256_require_low_s: false,
    }
}

fn claims() -> Value {
    json!({"iss": ISS, "aud": "edgecart", "sub": "alice", "exp": NOW + 600, "iat": NOW, "scope": "catalog:write read"})
}

/// The signing keys of the test key set, one per algorithm family.
struct Keys {
    rsa: jwt_compact::alg::RsaPrivateKey,
    rsa_public: Value,
    es256: <Es256 as Algorithm>::SigningKey,
    es256_public: Value,
    ed25519: <Ed25519 as Algorithm>::SigningKey,
    ed25519_public: Value,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let text = include_str!("common/rsa2048.private.jwk.json");
        let jwk: JsonWebKey<'_> = serde_json::from_str(text).unwrap();
        let rsa = jwt_compact::alg::RsaPrivateKey::try_from(&jwk).unwrap();
        let private: Value = serde_json::from_str(text).unwrap();
        let rsa_public = json!({"kty": "RSA", "n": private["n"], "e": private["e"]});
        let es256 = <Es256 as Algorithm>::SigningKey::from_slice(&[0x11; 32]).unwrap();
        let es256_public =
            serde_json::to_value(JsonWebKey::from(&es256.to_verifying_key())).unwrap();
        let pair = {
            use pasetors::keys::Generate;
            pasetors::keys::AsymmetricKeyPair::<pasetors::version4::V4>::generate().unwrap()
        };
        let ed25519 =
            <Ed25519 as Algorithm>::SigningKey::from_slice(pair.secret.as_bytes()).unwrap();
        let ed25519_public =
            json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public.as_bytes())});
        Keys {
            rsa,
            rsa_public,
            es256,
            es256_public,
            ed25519,
            ed25519_public,
        }
    })
}

fn with(mut jwk: Value, kid: &str, alg: &str) -> Value {
    jwk["kid"] = json!(kid);
    jwk["alg"] = json!(alg);
    jwk
}

const HS256_SECRET: [u8; 32] = [0x42; 32];
const HS384_SECRET: [u8; 48] = [0x43; 48];
const HS512_SECRET: [u8; 64] = [0x44; 64];

fn jwks_text() -> String {
    let k = keys();
    let oct = |kid: &str, alg: &str, secret: &[u8]| json!({"kty": "oct", "kid": kid, "alg": alg, "k": b64(secret)});
    let mut entries = vec![
        oct("hs256", "HS256", &HS256_SECRET),
        oct("hs384", "HS384", &HS384_SECRET),
        oct("hs512", "HS512", &HS512_SECRET),
        with(k.es256_public.clone(), "es256", "ES256"),
        with(k.ed25519_public.clone(), "eddsa", "EdDSA"),
    ];
    for alg in ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] {
        entries.push(with(k.rsa_public.clone(), &alg.to_lowercase(), alg));
    }
    json!({ "keys": entries }).to_string()
}

fn ring() -> KeyRing {
    KeyRing {
        jwks: parse_jwks(&jwks_text(), KeySource::Inline).unwrap(),
        paseto: vec![],
        guest: None,
    }
}

/// A compact JWS over arbitrary header and payload JSON text.
fn raw_token(header: &str, payload: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

fn signer(alg: &str) -> impl Fn(&[u8]) -> Vec<u8> {
    let k = keys();
    let alg = alg.to_owned();
    move |m: &[u8]| -> Vec<u8> {
        let owned = |s: &dyn AlgorithmSignatureBytes| s.bytes();
        match alg.as_str() {
            "HS256" => owned(&Hs256.sign(&Hs256Key::new(HS256_SECRET), m)),
            "HS384" => owned(&Hs384.sign(&Hs384Key::new(HS384_SECRET), m)),
            "HS512" => owned(&Hs512.sign(&Hs512Key::new(HS512_SECRET), m)),
            // As issuers sign: not normalised, so about half are high-S (A19).
            "ES256" => owned(&Es256.sign(&k.es256, m)),
            "EdDSA" => owned(&Ed25519.sign(&k.ed25519, m)),
            "RS256" => owned(&Rsa::rs256().sign(&k.rsa, m)),
            "RS384" => owned(&Rsa::rs384().sign(&k.rsa, m)),
            "RS512" => owned(&Rsa::rs512().sign(&k.rsa, m)),
            "PS256" => owned(&Rsa::ps256().sign(&k.rsa, m)),
            "PS384" => owned(&Rsa::ps384().sign(&k.rsa, m)),
            "PS512" => owned(&Rsa::ps512().sign(&k.rsa, m)),
            other => panic!("no signer for {other}"),
        }
    }
}

trait AlgorithmSignatureBytes {
    fn bytes(&self) -> Vec<u8>;
}
impl<S: AlgorithmSignature> AlgorithmSignatureBytes for S {
    fn bytes(&self) -> Vec<u8> {
        self.as_bytes().into_owned()
    }
}

/// A token for `alg` signed by the key whose kid is the lower-cased algorithm name.
fn token(alg: &str, header_extra: Value, claims: &Value) -> String {
    let mut header = json!({"alg": alg, "typ": "JWT", "kid": alg.to_lowercase()});
    if let (Some(h), Some(extra)) = (header.as_object_mut(), header_extra.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                h.remove(k);
            } else {
                h.insert(k.clone(), v.clone());
            }
        }
    }
    raw_token(&header.to_string(), &claims.to_string(), signer(alg))
}

fn check_with(token: &str, policy: &Policy, ring: &KeyRing) -> Result<Identity, Refusal> {
    let bearer = BearerToken::from_header(&format!("Bearer {token}"), policy.max_token_bytes)?;
    block_on(verify_bearer(
        &bearer,
        policy,
        ring,
        UnixMillis(NOW * 1000),
        |_| async { Ok(None) },
    ))
    .map_err(|failure| match failure {
        Failure::Refused(r) => r,
        Failure::KeysUnavailable(u) => panic!("no remote set here: {u:?}"),
    })
}

fn check(token: &str) -> Result<Identity, Refusal> {
    check_with(token, &policy(), &ring())
}

const ALGS: [&str; 11] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "EdDSA",
];

fn flip_bit(token: &str, segment: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut bytes = Base64UrlUnpadded::decode_vec(&parts[segment]).unwrap();
    let last = bytes.len() / 2;
    bytes[last] ^= 0x01;
    parts[segment] = b64(&bytes);
    parts.join(".")
}

#[test]
fn a_token_of_every_accepted_algorithm_verifies_and_yields_the_identity() {
    for alg in ALGS {
        let id =
            check(&token(alg, json!({}), &claims())).unwrap_or_else(|e| panic!("{alg}: {e:?}"));
        assert_eq!(id.sub, "alice", "{alg}");
        assert_eq!(id.iss, ISS);
        assert_eq!(id.scopes, vec!["catalog:write", "read"]);
        assert_eq!(id.exp, NOW + 600);
    }
}

#[test]
fn a_flipped_bit_in_the_signature_or_payload_is_refused_for_every_algorithm() {
    for alg in ALGS {
        let good = token(alg, json!({}), &claims());
        assert_eq!(
            check(&flip_bit(&good, 2)),
            Err(Refusal::BadSignature),
            "{alg}"
        );
        assert!(check(&flip_bit(&good, 1)).is_err(), "{alg}");
        let mut claims = claims();
        claims["sub"] = json!("mallory");
        let forged = format!(
            "{}.{}.{}",
            good.split('.').next().unwrap(),
            b64(claims.to_string().as_bytes()),
            good.split('.').nth(2).unwrap()
        );
        assert_eq!(check(&forged), Err(Refusal::BadSignature), "{alg}");
    }
}

#[test]
fn a1_alg_none_in_any_case_is_refused() {
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "typ": "JWT"}).to_string();
        let bare = raw_token(&header, &claims().to_string(), |_| vec![]);
        assert_eq!(check(&bare), Err(Refusal::UnsupportedAlgorithm), "{alg}");
        let signed = raw_token(&header, &claims().to_string(), |_| vec![1; 32]);
        assert_eq!(check(&signed), Err(Refusal::UnsupportedAlgorithm), "{alg}");
    }
}

#[test]
fn a2_hmac_signed_with_a_public_key_is_refused() {
    let k = keys();
    let jwk_json = k.rsa_public.to_string();
    let pem_like = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        k.rsa_public["n"]
    );
    let ec_json = k.es256_public.to_string();
    for (kid, secret) in [
        ("rs256", jwk_json.as_bytes().to_vec()),
        ("rs256", pem_like.as_bytes().to_vec()),
        ("es256", ec_json.as_bytes().to_vec()),
        (
            "eddsa",
            Base64UrlUnpadded::decode_vec(k.ed25519_public["x"].as_str().unwrap()).unwrap(),
        ),
    ] {
        let header = json!({"alg": "HS256", "kid": kid}).to_string();
        let forged = raw_token(&header, &claims().to_string(), |m| {
            Hs256
                .sign(&Hs256Key::new(&secret), m)
                .as_bytes()
                .into_owned()
        });
        assert_eq!(check(&forged), Err(Refusal::AlgorithmMismatch), "{kid}");
    }
    // Without a kid, HS256 falls to the only HS256 key, whose secret the attacker lacks.
    let header = json!({"alg": "HS256"}).to_string();
    let forged = raw_token(&header, &claims().to_string(), |m| {
        Hs256
            .sign(&Hs256Key::new(jwk_json.as_bytes()), m)
            .as_bytes()
            .into_owned()
    });
    assert_eq!(check(&forged), Err(Refusal::BadSignature));
}

#[test]
fn a3_a_header_alg_other_than_the_keys_is_refused() {
    let forged = token("RS384", json!({"kid": "rs256"}), &claims());
    assert_eq!(check(&forged), Err(Refusal::AlgorithmMismatch));
    let forged = token("PS256", json!({"kid": "rs256"}), &claims());
    assert_eq!(check(&forged), Err(Refusal::AlgorithmMismatch));
    let no_alg =
        r#"{"keys":[{"kty":"oct","kid":"x","k":"QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI"}]}"#;
    assert!(parse_jwks(no_alg, KeySource::Inline).is_err());
    assert!(parse_jwks(no_alg, KeySource::Remote).unwrap().is_empty());
}

#[test]
fn a4_a5_unknown_or_injected_kids_are_refused_and_ask_the_remote_set_once() {
    for kid in [
        "random-kid-123".to_owned(),
        "../../etc/passwd".to_owned(),
        "' OR 1=1 --".to_owned(),
        "https://evil.example/jwks".to_owned(),
        "k".repeat(10_000),
    ] {
        let t = token("ES256", json!({ "kid": kid }), &claims());
        let p = Policy {
            max_token_bytes: 1 << 20,
            ..policy()
        };
        let mut asked = Vec::new();
        let bearer = BearerToken::from_header(&format!("Bearer {t}"), p.max_token_bytes).unwrap();
        let result = block_on(verify_bearer(
            &bearer,
            &p,
            &ring(),
            UnixMillis(NOW * 1000),
            |trigger| {
                asked.push(trigger);
                async { Ok(Some(Rc::new(Vec::<VerificationKey>::new()))) }
            },
        ));
        assert!(
            matches!(result, Err(Failure::Refused(Refusal::UnknownKey))),
            "{}",
            &kid[..kid.len().min(20)]
        );
        // An over-long kid is refused by the header policy before any key is looked for;
        // any other unknown kid asks once for the set and once more after "unknown kid".
        let expected: &[Trigger] = if kid.len() > 256 {
            &[]
        } else {
            &[Trigger::Request, Trigger::UnknownKid]
        };
        assert_eq!(asked, expected, "{}", &kid[..kid.len().min(20)]);
    }
}

#[test]
fn a_kid_found_only_after_a_remote_refetch_verifies() {
    let k = keys();
    let remote = parse_jwks(
        &json!({"keys": [with(k.es256_public.clone(), "rotated", "ES256")]}).to_string(),
        KeySource::Remote,
    )
    .unwrap();
    let t = token("ES256", json!({"kid": "rotated"}), &claims());
    let bearer = BearerToken::from_header(&format!("Bearer {t}"), 8192).unwrap();
    let id = block_on(verify_bearer(
        &bearer,
        &policy(),
        &KeyRing::default(),
        UnixMillis(NOW * 1000),
        |trigger| {
            let keys = match trigger {
                Trigger::Request => vec![],
                Trigger::UnknownKid => remote.clone(),
            };
            async move { Ok(Some(Rc::new(keys))) }
        },
    ));
    assert_eq!(id.unwrap().sub, "alice");
}

#[test]
fn a_token_that_needs_an_unusable_remote_set_is_unavailable_not_refused() {
    let unavailable = KeysUnavailable {
        retry_after_seconds: 12,
        reason: "remote key set (JWT_JWKS_URL) unavailable: test".to_owned(),
    };
    let t = token("ES256", json!({"kid": "remote-only"}), &claims());
    let bearer = BearerToken::from_header(&format!("Bearer {t}"), 8192).unwrap();
    let mut asked = Vec::new();
    let result = block_on(verify_bearer(
        &bearer,
        &policy(),
        &ring(),
        UnixMillis(NOW * 1000),
        |trigger| {
            asked.push(trigger);
            let u = unavailable.clone();
            async move { Err(u) }
        },
    ));
    assert_eq!(result, Err(Failure::KeysUnavailable(unavailable.clone())));
    assert_eq!(asked, [Trigger::Request]);
    // A kid of the configured keys never asks for the remote set: it verifies whatever the
    // key server does.
    let inline = token("ES256", json!({}), &claims());
    let bearer = BearerToken::from_header(&format!("Bearer {inline}"), 8192).unwrap();
    let id = block_on(verify_bearer(
        &bearer,
        &policy(),
        &ring(),
        UnixMillis(NOW * 1000),
        |_| {
            let u = unavailable.clone();
            async move { Err(u) }
        },
    ));
    assert_eq!(id.unwrap().sub, "alice");
    // A bad token is still refused before the remote set is asked for.
    let expired = token(
        "ES256",
        json!({"kid": "remote-only"}),
        &json!({"iss": ISS, "aud": "edgecart", "sub": "alice", "exp": NOW - 3600}),
    );
    let bearer = BearerToken::from_header(&format!("Bearer {expired}"), 8192).unwrap();
    let result = block_on(verify_bearer(
        &bearer,
        &policy(),
        &ring(),
        UnixMillis(NOW * 1000),
        |_| {
            let u = unavailable.clone();
            async move { Err(u) }
        },
    ));
    assert_eq!(result, Err(Failure::Refused(Refusal::Expired)));
}

#[test]
fn a6_a7_embedded_key_references_are_ignored() {
    let attacker = Hs256Key::new([0x99; 32]);
    for extra in [
        json!({"jku": "https://evil.example/jwks"}),
        json!({"x5u": "https://evil.example/cert"}),
        json!({"jwk": {"kty": "oct", "k": b64(&[0x99; 32])}}),
        json!({"x5c": ["MIIBIjANBgkq"]}),
    ] {
        // Signed by our key: the reference is ignored and the token verifies.
        assert!(
            check(&token("HS256", extra.clone(), &claims())).is_ok(),
            "{extra}"
        );
        // Signed by the attacker's embedded key: refused.
        let mut header = json!({"alg": "HS256", "kid": "hs256"});
        header
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let forged = raw_token(&header.to_string(), &claims().to_string(), |m| {
            Hs256.sign(&attacker, m).as_bytes().into_owned()
        });
        assert_eq!(check(&forged), Err(Refusal::BadSignature), "{extra}");
    }
}

#[test]
fn a8_any_crit_header_is_refused() {
    for crit in [
        json!(["exp"]),
        json!(["b64"]),
        json!([]),
        json!("exp"),
        json!(null),
    ] {
        let header = json!({"alg": "ES256", "kid": "es256", "crit": crit}).to_string();
        let t = raw_token(&header, &claims().to_string(), signer("ES256"));
        assert_eq!(check(&t), Err(Refusal::CriticalHeader), "{crit}");
    }
}

#[test]
fn a9_expiry_is_enforced_at_the_leeway_boundary_and_required() {
    let with_exp = |exp: Value| {
        let mut c = claims();
        c["exp"] = exp;
        c["iat"] = json!(NOW - 3600);
        token("ES256", json!({}), &c)
    };
    assert_eq!(check(&with_exp(json!(NOW - 61))), Err(Refusal::Expired));
    assert_eq!(check(&with_exp(json!(NOW - 60))), Err(Refusal::Expired));
    assert!(check(&with_exp(json!(NOW - 59))).is_ok());
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        check(&token("ES256", json!({}), &c)),
        Err(Refusal::MissingExpiry)
    );
}

#[test]
fn a10_future_nbf_or_iat_past_the_leeway_is_refused() {
    let mut c = claims();
    c["nbf"] = json!(NOW + 61);
    assert_eq!(
        check(&token("ES256", json!({}), &c)),
        Err(Refusal::NotYetValid)
    );
    c["nbf"] = json!(NOW + 60);
    assert!(check(&token("ES256", json!({}), &c)).is_ok());
    let mut c = claims();
    c["iat"] = json!(NOW + 61);
    assert_eq!(
        check(&token("ES256", json!({}), &c)),
        Err(Refusal::IssuedInFuture)
    );
}

#[test]
fn a11_dates_of_the_wrong_type_or_range_are_refused() {
    for name in ["exp", "nbf", "iat"] {
        for bad in [
            json!("1800000600"),
            json!(true),
            json!(null),
            json!(1e300),
            json!(-5),
            json!({}),
        ] {
            let mut c = claims();
            c[name] = bad.clone();
            assert_eq!(
                check(&token("ES256", json!({}), &c)),
                Err(Refusal::BadDate),
                "{name}={bad}"
            );
        }
    }
}

#[test]
fn a12_a13_issuer_and_audience_must_match() {
    for iss in [
        json!("https://issuer.example/"),
        json!("https://issuer.exampl"),
        json!("HTTPS://ISSUER.EXAMPLE"),
        json!("https://issuer.example.evil"),
        json!(null),
        json!(["https://issuer.example"]),
    ] {
        let mut c = claims();
        c["iss"] = iss.clone();
        assert_eq!(
            check(&token("ES256", json!({}), &c)),
            Err(Refusal::WrongIssuer),
            "{iss}"
        );
    }
    let mut c = claims();
    c.as_object_mut().unwrap().remove("iss");
    assert_eq!(
        check(&token("ES256", json!({}), &c)),
        Err(Refusal::WrongIssuer)
    );
    for aud in [
        json!("edgecart2"),
        json!(["a", "b"]),
        json!([]),
        json!(42),
        json!(null),
        json!(["edgecart", 1]),
    ] {
        let mut c = claims();
        c["aud"] = aud.clone();
        assert_eq!(
            check(&token("ES256", json!({}), &c)),
            Err(Refusal::WrongAudience),
            "{aud}"
        );
    }
    let mut c = claims();
    c["aud"] = json!(["x", "other"]);
    assert!(check(&token("ES256", json!({}), &c)).is_ok());
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        check(&token("ES256", json!({}), &c)),
        Err(Refusal::WrongAudience)
    );
}

#[test]
fn the_subject_is_required_and_bounded() {
    for sub in [
        json!(""),
        json!(null),
        json!(7),
        json!("x".repeat(256)),
        json!("a\u{0}b"),
    ] {
        let mut c = claims();
        c["sub"] = sub;
        assert_eq!(
            check(&token("ES256", json!({}), &c)),
            Err(Refusal::BadSubject)
        );
    }
    let mut c = claims();
    c["sub"] = json!("é".repeat(255));
    assert!(check(&token("ES256", json!({}), &c)).is_ok());
}

#[test]
fn scopes_come_from_scope_or_scp() {
    let mut c = claims();
    c.as_object_mut().unwrap().remove("scope");
    c["scp"] = json!(["catalog:write"]);
    assert_eq!(
        check(&token("ES256", json!({}), &c)).unwrap().scopes,
        vec!["catalog:write"]
    );
    c["scp"] = json!([1]);
    assert_eq!(
        check(&token("ES256", json!({}), &c)),
        Err(Refusal::BadScope)
    );
    c.as_object_mut().unwrap().remove("scp");
    assert!(check(&token("ES256", json!({}), &c))
        .unwrap()
        .scopes
        .is_empty());
}

#[test]
fn a_lifetime_above_the_configured_ceiling_is_refused() {
    let p = Policy {
        max_lifetime_seconds: Some(300),
        es256_require_low_s: false,
        ..policy()
    };
    assert_eq!(
        check_with(&token("ES256", json!({}), &claims()), &p, &ring()),
        Err(Refusal::LivesTooLong)
    );
}

#[test]
fn a14_a21_other_token_types_and_content_types_are_refused() {
    for typ in ["id+jwt", "refresh", "JWE", "secevent+jwt", ""] {
        assert_eq!(
            check(&token("ES256", json!({"typ": typ}), &claims())),
            Err(Refusal::WrongType),
            "{typ}"
        );
    }
    for typ in [
        json!("jwt"),
        json!("AT+JWT"),
        json!("application/at+jwt"),
        json!(null),
    ] {
        assert!(
            check(&token("ES256", json!({"typ": typ}), &claims())).is_ok(),
            "{typ}"
        );
    }
    for cty in ["JWT", "CBOR"] {
        assert_eq!(
            check(&token("ES256", json!({"cty": cty}), &claims())),
            Err(Refusal::NestedContent)
        );
    }
}

#[test]
fn a15_oversized_tokens_and_dot_floods_are_refused_before_parsing() {
    let p = Policy {
        max_token_bytes: 64,
        ..policy()
    };
    assert_eq!(
        check_with(&token("ES256", json!({}), &claims()), &p, &ring()),
        Err(Refusal::TooLarge)
    );
    assert_eq!(check(&".".repeat(5000)), Err(Refusal::Malformed));
    assert_eq!(check(&"a.".repeat(3000)), Err(Refusal::Malformed));
}

#[test]
fn a16_base64url_errors_are_refused() {
    let good = token("ES256", json!({}), &claims());
    let parts: Vec<&str> = good.split('.').collect();
    let cases = [
        // `=` is allowed only at the end of a b64token (RFC 6750 §2.1).
        (
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            Refusal::NotBearer,
        ),
        (
            format!("{}.{}.{}==", parts[0], parts[1], parts[2]),
            Refusal::Malformed,
        ),
        (
            format!(
                "{}.{}.{}",
                parts[0].replace('-', "+").replace('_', "/") + "+/",
                parts[1],
                parts[2]
            ),
            Refusal::Malformed,
        ),
        (format!(".{}.{}", parts[1], parts[2]), Refusal::Malformed),
        (format!("{}..{}", parts[0], parts[2]), Refusal::Malformed),
        (format!("{}.{}", parts[0], parts[1]), Refusal::Malformed),
        (format!("{good}.{}", parts[2]), Refusal::Malformed),
        (format!("{good}.a.b"), Refusal::Malformed),
        (
            format!(
                "{}.{}.{}",
                parts[0],
                parts[1],
                &parts[2][..parts[2].len() - 1]
            ),
            Refusal::Malformed,
        ),
    ];
    for (t, refusal) in cases {
        assert_eq!(check(&t), Err(refusal), "{t}");
    }
}

#[test]
fn a17_a18_headers_and_payloads_must_be_single_json_objects() {
    let payload = claims().to_string();
    let cases = [
        (r#"["ES256"]"#.to_owned(), payload.clone()),
        (
            r#"{"alg":"ES256","kid":"es256"}"#.to_owned(),
            "[1,2]".to_owned(),
        ),
        (
            r#"{"alg":"ES256","kid":"es256"} x"#.to_owned(),
            payload.clone(),
        ),
        (
            r#"{"alg":"ES256","kid":"es256"}"#.to_owned(),
            format!("{payload}{{}}"),
        ),
        (
            r#"{"alg":"ES256","alg":"HS256","kid":"es256"}"#.to_owned(),
            payload.clone(),
        ),
        (
            r#"{"alg":"ES256","\u0061lg":"ES256","kid":"es256"}"#.to_owned(),
            payload.clone(),
        ),
        (
            r#"{"alg":"ES256","kid":"es256","kid":"hs256"}"#.to_owned(),
            payload.clone(),
        ),
        (
            r#"{"alg":"ES256","kid":"es256"}"#.to_owned(),
            payload.replacen('{', r#"{"sub":"mallory","#, 1),
        ),
        (
            r#"{"alg":"ES256","kid":"es256"}"#.to_owned(),
            payload.replacen('{', r#"{"\u0065xp":9999999999,"#, 1),
        ),
    ];
    for (header, payload) in cases {
        let t = raw_token(&header, &payload, signer("ES256"));
        assert_eq!(check(&t), Err(Refusal::Malformed), "{header} {payload}");
    }
    let invalid_utf8 = format!(
        "{}.{}.{}",
        b64(br#"{"alg":"ES256","kid":"es256"}"#),
        b64(b"{\"sub\":\"\xff\"}"),
        b64(&[1; 64])
    );
    assert_eq!(check(&invalid_utf8), Err(Refusal::Malformed));
}

#[test]
fn a19_malformed_signatures_are_refused_without_cryptography() {
    let good = token("ES256", json!({}), &claims());
    let input = good.rsplit_once('.').unwrap().0;
    for sig in [vec![], vec![0; 63], vec![0; 65], vec![0; 64], {
        let mut s = vec![0xff; 64];
        s[0] = 0xff;
        s
    }] {
        assert_eq!(
            check(&format!("{input}.{}", b64(&sig))),
            Err(Refusal::BadSignature),
            "{}",
            sig.len()
        );
    }
    let rs = token("RS256", json!({}), &claims());
    let input = rs.rsplit_once('.').unwrap().0;
    assert_eq!(
        check(&format!("{input}.{}", b64(&[1; 255]))),
        Err(Refusal::BadSignature)
    );
}

/// The P-256 group order, big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// The same ECDSA signature with `s` replaced by `n − s` (valid ECDSA, the malleable twin).
fn high_s_twin(token: &str) -> String {
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig = Base64UrlUnpadded::decode_vec(sig).unwrap();
    let mut borrow = 0_i16;
    for i in (0..32).rev() {
        let mut d = i16::from(P256_ORDER[i]) - i16::from(sig[32 + i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        sig[32 + i] = u8::try_from(d).unwrap();
    }
    assert_eq!(borrow, 0);
    format!("{input}.{}", b64(&sig))
}

/// `⌊n / 2⌋` of P-256, big-endian: the largest low-S value.
fn half_order() -> [u8; 32] {
    let mut half = P256_ORDER;
    half.iter_mut().fold(0_u8, |carry, b| {
        let next = *b & 1;
        *b = (*b >> 1) | (carry << 7);
        next
    });
    half
}

fn signature_of(token: &str) -> Vec<u8> {
    Base64UrlUnpadded::decode_vec(token.rsplit_once('.').unwrap().1).unwrap()
}

fn is_high_s(token: &str) -> bool {
    signature_of(token)[32..] > half_order()[..]
}

/// The same token with a low-S signature (`s → n − s` when `s > n/2`).
fn low_s(token: &str) -> String {
    let (input, _) = token.rsplit_once('.').unwrap();
    let mut sig = signature_of(token);
    normalize_p256_low_s(&mut sig);
    format!("{input}.{}", b64(&sig))
}

fn es256_token(i: usize) -> String {
    let mut c = claims();
    c["jti"] = json!(i);
    token("ES256", json!({}), &c)
}

fn requiring_low_s() -> Policy {
    Policy {
        es256_require_low_s: true,
        ..policy()
    }
}

#[test]
fn a19_es256_signatures_as_signers_make_them_verify_whether_s_is_low_or_high() {
    // jwt-compact (RustCrypto's p256) does not normalise, like WebCrypto, OpenSSL and jose.
    let tokens: Vec<String> = (0..40).map(es256_token).collect();
    let high = tokens.iter().filter(|t| is_high_s(t)).count();
    assert!(high > 0 && high < 40, "{high} of 40 high-S");
    for (i, t) in tokens.iter().enumerate() {
        assert_eq!(check(t).map(|id| id.sub), Ok("alice".to_owned()), "{i}");
    }
}

#[test]
fn a19_the_high_s_twin_of_a_low_s_signature_verifies_unless_low_s_is_required() {
    let k = keys();
    let verifying = k.es256.to_verifying_key();
    for i in 0..16 {
        let low = low_s(&es256_token(i));
        assert!(!is_high_s(&low), "{i}");
        let high = high_s_twin(&low);
        assert_ne!(high, low);
        assert!(is_high_s(&high), "{i}");
        // The twin is a valid ECDSA signature.
        let (input, _) = high.rsplit_once('.').unwrap();
        let sig = <Es256 as Algorithm>::Signature::try_from_slice(&signature_of(&high)).unwrap();
        assert!(Es256.verify_signature(&sig, &verifying, input.as_bytes()));
        assert!(check(&low).is_ok(), "low {i}");
        assert!(check(&high).is_ok(), "high {i}");
        // JWT_ES256_REQUIRE_LOW_S=true: the low-S one only.
        assert!(
            check_with(&low, &requiring_low_s(), &ring()).is_ok(),
            "low {i}"
        );
        assert_eq!(
            check_with(&high, &requiring_low_s(), &ring()),
            Err(Refusal::BadSignature),
            "high {i}"
        );
        // A flipped bit fails in either mode.
        assert_eq!(check(&flip_bit(&high, 2)), Err(Refusal::BadSignature));
    }
}

#[test]
fn a19_s_or_r_zero_or_at_least_the_order_is_refused_in_either_mode() {
    let good = low_s(&es256_token(0));
    let (input, _) = good.rsplit_once('.').unwrap();
    let sig = signature_of(&good);
    let with = |r: &[u8], s: &[u8]| format!("{input}.{}", b64(&[r, s].concat()));
    for bad in [
        with(&[0; 32], &[0; 32]),
        with(&sig[..32], &[0; 32]),
        with(&[0; 32], &sig[32..]),
        with(&P256_ORDER, &sig[32..]),
        with(&sig[..32], &P256_ORDER),
        with(&sig[..32], &[0xff; 32]),
        with(&[0xff; 32], &sig[32..]),
    ] {
        for p in [policy(), requiring_low_s()] {
            assert_eq!(check_with(&bad, &p, &ring()), Err(Refusal::BadSignature));
        }
    }
}

#[test]
fn development_tokens_are_signed_with_low_s() {
    use edgecart::auth::dev_token::{parse_dev_key, signing_input, DevTokenClaims};
    use edgecart::auth::signature::sign_es256;
    let k = keys();
    let dev_jwk = json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "es256",
        "x": k.es256_public["x"], "y": k.es256_public["y"], "d": b64(&[0x11; 32]),
    });
    let key = parse_dev_key(&dev_jwk.to_string()).unwrap();
    for i in 0..32 {
        let request = DevTokenClaims {
            sub: format!("dev-{i}"),
            scope: None,
            ttl_seconds: 600,
        };
        let input = signing_input(&key, ISS, "edgecart", &request, UnixMillis(NOW * 1000));
        let sig = block_on(sign_es256(&key, input.as_bytes())).unwrap();
        assert!(sig[32..] <= half_order()[..], "dev token {i} has a high s");
        let token = format!("{input}.{}", b64(&sig));
        // Low-S, so they verify also where JWT_ES256_REQUIRE_LOW_S=true.
        assert_eq!(
            check_with(&token, &requiring_low_s(), &ring()).map(|id| id.sub),
            Ok(format!("dev-{i}")),
            "{i}"
        );
    }
}

#[test]
fn a22_a_jwe_is_refused() {
    let jwe = format!(
        "{}.{}.{}.{}.{}",
        b64(br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#),
        b64(&[1; 32]),
        b64(&[2; 12]),
        b64(&[3; 40]),
        b64(&[4; 16])
    );
    assert_eq!(check(&jwe), Err(Refusal::Malformed));
}

#[test]
fn a20_weak_keys_refuse_the_configuration() {
    use edgecart::config::Config;
    use edgecart::http::problem::ApiError;
    let config = |jwks: &str| {
        Config::from_lookup(|name| match name {
            "JWT_JWKS" => Some(jwks.to_owned()),
            _ => None,
        })
        .unwrap()
    };
    let weak_hmac =
        json!({"keys": [{"kty": "oct", "kid": "a", "alg": "HS256", "k": b64(&[1; 31])}]})
            .to_string();
    let mut n = vec![0xff_u8; 128];
    n[0] = 0xc1;
    let weak_rsa =
        json!({"keys": [{"kty": "RSA", "kid": "r", "alg": "RS256", "n": b64(&n), "e": "AQAB"}]})
            .to_string();
    for jwks in [weak_hmac, weak_rsa] {
        match KeyRing::from_config(&config(&jwks)) {
            Err(ApiError::Misconfigured { variable, .. }) => assert_eq!(variable, "JWT_JWKS"),
            other => panic!("expected Misconfigured, got {other:?}"),
        }
    }
    assert!(KeyRing::from_config(&config(&jwks_text())).is_ok());
}

mod paseto {
    use super::*;
    use pasetors::keys::{AsymmetricKeyPair, AsymmetricSecretKey};
    use pasetors::paserk::{FormatAsPaserk, Id};
    use pasetors::version4::{PublicToken, V4};

    /// A fresh key pair (the argument only tells pairs apart in the test text).
    fn pair(_label: u8) -> AsymmetricKeyPair<V4> {
        use pasetors::keys::Generate;
        AsymmetricKeyPair::<V4>::generate().unwrap()
    }

    fn paserk(pair: &AsymmetricKeyPair<V4>) -> String {
        let mut s = String::new();
        pair.public.fmt(&mut s).unwrap();
        s
    }

    fn pid(pair: &AsymmetricKeyPair<V4>) -> String {
        let mut s = String::new();
        Id::from(&pair.public).fmt(&mut s).unwrap();
        s
    }

    fn paseto_claims() -> Value {
        json!({"iss": ISS, "aud": "edgecart", "sub": "bob", "exp": "2027-01-15T08:10:00+00:00", "iat": "2027-01-15T08:00:00Z", "scope": "catalog:write"})
    }

    fn sign(secret: &AsymmetricSecretKey<V4>, claims: &Value, footer: Option<&str>) -> String {
        PublicToken::sign(
            secret,
            claims.to_string().as_bytes(),
            footer.map(str::as_bytes),
            None,
        )
        .unwrap()
    }

    fn ring_of(pairs: &[&AsymmetricKeyPair<V4>]) -> KeyRing {
        let paserks: Vec<String> = pairs.iter().map(|p| paserk(p)).collect();
        KeyRing {
            jwks: vec![],
            paseto: edgecart::auth::keys::parse_paserks(&paserks).unwrap(),
            guest: None,
        }
    }

    #[test]
    fn our_paserk_ids_match_the_reference_implementation() {
        for seed in [1, 2, 3] {
            let p = pair(seed);
            assert_eq!(edgecart::auth::keys::paserk_id(&paserk(&p)), pid(&p));
        }
    }

    #[test]
    fn a_v4_public_token_verifies_with_or_without_a_footer_kid() {
        let (a, b) = (pair(1), pair(2));
        let ring = ring_of(&[&a, &b]);
        let plain = sign(&b.secret, &paseto_claims(), None);
        let id = check_with(&plain, &policy(), &ring).unwrap();
        assert_eq!((id.sub.as_str(), id.exp), ("bob", NOW + 600));
        assert_eq!(id.scopes, vec!["catalog:write"]);
        let footer = json!({"kid": pid(&b)}).to_string();
        assert!(check_with(
            &sign(&b.secret, &paseto_claims(), Some(&footer)),
            &policy(),
            &ring
        )
        .is_ok());
        // The footer names a, but b signed: only a is tried.
        let lying = json!({"kid": pid(&a)}).to_string();
        assert_eq!(
            check_with(
                &sign(&b.secret, &paseto_claims(), Some(&lying)),
                &policy(),
                &ring
            ),
            Err(Refusal::BadSignature)
        );
        let unknown = json!({"kid": pid(&pair(9))}).to_string();
        assert_eq!(
            check_with(
                &sign(&b.secret, &paseto_claims(), Some(&unknown)),
                &policy(),
                &ring
            ),
            Err(Refusal::UnknownKey)
        );
    }

    #[test]
    fn a25_a_tampered_payload_or_footer_is_refused() {
        let a = pair(1);
        let ring = ring_of(&[&a]);
        let footer = json!({"kid": pid(&a)}).to_string();
        let good = sign(&a.secret, &paseto_claims(), Some(&footer));
        let parts: Vec<&str> = good.split('.').collect();
        let mut body = Base64UrlUnpadded::decode_vec(parts[2]).unwrap();
        let i = body.windows(5).position(|w| w == b"\"bob\"").unwrap();
        body[i + 1] = b'c';
        let tampered = format!("v4.public.{}.{}", b64(&body), parts[3]);
        assert_eq!(
            check_with(&tampered, &policy(), &ring),
            Err(Refusal::BadSignature)
        );
        let other_footer = format!(
            "{}.{}",
            good.rsplit_once('.').unwrap().0,
            b64(format!("{{\"kid\":\"{}\",\"x\":1}}", pid(&a)).as_bytes())
        );
        assert_eq!(
            check_with(&other_footer, &policy(), &ring),
            Err(Refusal::BadSignature)
        );
        let no_footer = good.rsplit_once('.').unwrap().0.to_owned();
        assert_eq!(
            check_with(&no_footer, &policy(), &ring),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn paseto_claims_follow_the_same_rules_with_rfc3339_dates() {
        let a = pair(1);
        let ring = ring_of(&[&a]);
        let run = |edit: &dyn Fn(&mut Value)| {
            let mut c = paseto_claims();
            edit(&mut c);
            check_with(&sign(&a.secret, &c, None), &policy(), &ring)
        };
        assert_eq!(run(&|c| c["exp"] = json!(NOW + 600)), Err(Refusal::BadDate));
        assert_eq!(
            run(&|c| c["exp"] = json!("2027-01-15T07:59:00Z")),
            Err(Refusal::Expired)
        );
        assert_eq!(
            run(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            Err(Refusal::MissingExpiry)
        );
        assert_eq!(
            run(&|c| c["nbf"] = json!("2027-01-15T08:01:01Z")),
            Err(Refusal::NotYetValid)
        );
        assert_eq!(
            run(&|c| c["iss"] = json!("https://evil.example")),
            Err(Refusal::WrongIssuer)
        );
        assert_eq!(
            run(&|c| c["aud"] = json!("shop")),
            Err(Refusal::WrongAudience)
        );
        assert!(run(&|c| c["aud"] = json!(["shop", "edgecart"])).is_ok());
    }
}

mod guests {
    //! Guest tokens: the guest key verifies only tokens of the guest issuer, and tokens of the
    //! guest issuer verify only with the guest key.
    use super::*;
    use edgecart::auth::guest::{self, GuestKey};

    const SECRET: &str = "a-guest-token-secret-of-at-least-32-bytes";

    fn guest_ring(ttl: u64) -> KeyRing {
        KeyRing {
            guest: Some(GuestKey::new(SECRET, ttl)),
            ..ring()
        }
    }

    fn hmac(secret: &[u8]) -> impl Fn(&[u8]) -> Vec<u8> + '_ {
        move |input| {
            use hmac::Mac;
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            mac.update(input);
            mac.finalize().into_bytes().to_vec()
        }
    }

    fn guest_kid() -> String {
        GuestKey::new(SECRET, 60).key.kid.unwrap()
    }

    fn signed_by_guest_key(claims: &Value) -> String {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": guest_kid()});
        raw_token(
            &header.to_string(),
            &claims.to_string(),
            hmac(SECRET.as_bytes()),
        )
    }

    fn guest_claims(ttl: u64) -> Value {
        json!({"iss": guest::ISSUER, "aud": "edgecart", "sub": "guest_0123",
               "iat": NOW, "exp": NOW + ttl})
    }

    #[test]
    fn an_issued_guest_token_verifies_as_a_guest_without_scopes() {
        let key = GuestKey::new(SECRET, 604_800);
        let session = guest::issue(&key, "edgecart", &"ab".repeat(16), UnixMillis(NOW * 1000));
        let id = check_with(&session.token, &policy(), &guest_ring(604_800)).unwrap();
        assert_eq!(id.iss, guest::ISSUER);
        assert_eq!(id.sub, session.sub);
        assert!(id.is_guest());
        assert!(!id.has_scope("catalog:write"));
    }

    #[test]
    fn a_guest_token_with_scopes_grants_none() {
        let mut claims = guest_claims(600);
        claims["scope"] = json!("catalog:write orders:write");
        let id = check_with(&signed_by_guest_key(&claims), &policy(), &guest_ring(600)).unwrap();
        assert!(!id.has_scope("catalog:write") && !id.has_scope("orders:write"));
    }

    #[test]
    fn without_a_guest_key_no_guest_token_verifies() {
        let token = signed_by_guest_key(&guest_claims(600));
        assert_eq!(
            check_with(&token, &policy(), &ring()),
            Err(Refusal::WrongIssuer)
        );
    }

    #[test]
    fn the_guest_issuer_with_an_account_key_is_refused() {
        // HS256 with the inline JWKS secret, and with no kid at all.
        let claims = guest_claims(600);
        for header in [
            json!({"alg": "HS256", "kid": "hs256"}),
            json!({"alg": "HS256"}),
        ] {
            let token = raw_token(&header.to_string(), &claims.to_string(), signer("HS256"));
            assert_eq!(
                check_with(&token, &policy(), &guest_ring(600)),
                Err(Refusal::UnknownKey),
                "{header}"
            );
        }
        let es = token("ES256", json!({}), &claims);
        assert_eq!(
            check_with(&es, &policy(), &guest_ring(600)),
            Err(Refusal::UnknownKey)
        );
    }

    #[test]
    fn the_guest_key_signs_nothing_but_guest_tokens() {
        let token = signed_by_guest_key(&super::claims());
        assert_eq!(
            check_with(&token, &policy(), &guest_ring(600)),
            Err(Refusal::UnknownKey)
        );
    }

    #[test]
    fn a_guest_token_lives_at_most_the_guest_ttl_whatever_jwt_max_lifetime_says() {
        let strict = Policy {
            max_lifetime_seconds: Some(900),
            ..policy()
        };
        let week = signed_by_guest_key(&guest_claims(604_800));
        assert!(check_with(&week, &strict, &guest_ring(604_800)).is_ok());
        assert_eq!(
            check_with(&week, &strict, &guest_ring(3600)),
            Err(Refusal::LivesTooLong)
        );
    }

    #[test]
    fn another_guest_secret_is_refused() {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": guest_kid()});
        let other = b"another-secret-of-at-least-32-bytes!!";
        let token = raw_token(
            &header.to_string(),
            &guest_claims(600).to_string(),
            hmac(other),
        );
        assert_eq!(
            check_with(&token, &policy(), &guest_ring(600)),
            Err(Refusal::BadSignature)
        );
    }
}
