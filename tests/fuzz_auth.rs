//! Smoke run of the token fuzz properties (`fuzz/src/lib.rs`) inside `cargo test`: a few
//! thousand random and grammar-shaped inputs per property, where `scripts/fuzz.sh` runs a
//! million coverage-guided ones. Refusing hostile tokens never panics, and nothing the
//! generator could not sign is ever accepted.
// Helpers outside `#[test]` functions are not covered by clippy.toml's test allowances.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod properties;

use proptest::prelude::*;
use serde_json::{json, Value};

const CASES: u32 = 2_000;

/// Text that looks like a token: base64url segments, dots, the PASETO header, stray bytes.
fn token_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_=.+/~-]{0,300}",
        "v4\\.public\\.[A-Za-z0-9_-]{0,200}(\\.[A-Za-z0-9_-]{0,40})?",
        "eyJ[A-Za-z0-9_-]{0,80}\\.eyJ[A-Za-z0-9_-]{0,120}\\.[A-Za-z0-9_-]{0,90}",
    ]
}

/// A claim value that is right, wrong, or of the wrong type.
fn date() -> impl Strategy<Value = Value> {
    let now = properties::NOW.seconds();
    prop_oneof![
        (now - 200..now + 7200).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(Value::Null),
        Just(json!("1800000000")),
        Just(json!(true)),
    ]
}

fn header() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![
            "HS256", "hs256", "none", "ES256", "RS256", "EdDSA", "HS512",
        ]),
        prop::option::of(prop::sample::select(vec![
            "hs256", "es256", "rs256", "nope", "",
        ])),
        prop::option::of(prop::sample::select(vec![
            "JWT",
            "at+jwt",
            "id+jwt",
            "application/jwt",
        ])),
        any::<bool>(),
    )
        .prop_map(|(alg, kid, typ, crit)| {
            let mut h = json!({ "alg": alg });
            if let Some(kid) = kid {
                h["kid"] = json!(kid);
            }
            if let Some(typ) = typ {
                h["typ"] = json!(typ);
            }
            if crit {
                h["crit"] = json!(["exp"]);
            }
            h
        })
}

fn claims() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![
            properties::ISSUER,
            "https://edgecart.test/",
            "https://evil",
        ]),
        prop_oneof![
            Just(json!(properties::AUDIENCE)),
            Just(json!(["x", properties::AUDIENCE])),
            Just(json!(["x"])),
            Just(json!(7)),
        ],
        prop_oneof![
            Just(json!("alice")),
            any::<String>().prop_map(Value::from),
            Just(json!(1))
        ],
        date(),
        prop::option::of(date()),
        prop::option::of(date()),
        prop_oneof![
            Just(json!("catalog:write a")),
            Just(json!(["a", 1])),
            Just(Value::Null)
        ],
    )
        .prop_map(|(iss, aud, sub, exp, nbf, iat, scope)| {
            let mut c = json!({ "iss": iss, "aud": aud, "sub": sub, "exp": exp, "scope": scope });
            if let Some(nbf) = nbf {
                c["nbf"] = nbf;
            }
            if let Some(iat) = iat {
                c["iat"] = iat;
            }
            c
        })
}

/// The structured input of `jwt_parts`: flags, header, 0xFF, claims [, 0xFF, forged signature].
fn jwt_input() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u8>(),
        header(),
        claims(),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..300)),
    )
        .prop_map(|(flags, header, claims, forged)| {
            let mut data = vec![flags];
            data.extend_from_slice(header.to_string().as_bytes());
            data.push(0xFF);
            data.extend_from_slice(claims.to_string().as_bytes());
            if let Some(sig) = forged {
                data.push(0xFF);
                data.extend(sig.into_iter().map(|b| if b == 0xFF { 0 } else { b }));
            }
            data
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn any_authorization_header_is_answered_without_a_panic_and_never_accepted(
        value in prop_oneof![any::<String>(), token_like().prop_map(|t| format!("Bearer {t}"))]
    ) {
        properties::bearer_header(&value);
    }

    #[test]
    fn any_token_text_is_parsed_or_refused_by_both_token_parsers(text in token_like()) {
        properties::token_text(&text);
    }

    #[test]
    fn tokens_with_arbitrary_claims_are_accepted_only_when_validly_signed(data in jwt_input()) {
        properties::jwt_parts(&data);
    }

    #[test]
    fn raw_bytes_as_jwt_pieces_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        properties::jwt_parts(&data);
    }

    #[test]
    fn paseto_tokens_with_arbitrary_messages_and_footers_are_never_accepted(
        claims in claims(),
        signature in prop::collection::vec(0_u8..0xFF, 0..80),
        footer in prop::option::of(prop_oneof![
            Just(b"{\"kid\":\"k4.pid.x\"}".to_vec()),
            prop::collection::vec(0_u8..0xFF, 0..40),
        ]),
    ) {
        let mut data = claims.to_string().into_bytes();
        data.push(0xFF);
        data.extend(signature);
        if let Some(footer) = footer {
            data.push(0xFF);
            data.extend(footer);
        }
        properties::paseto_parts(&data);
    }

    #[test]
    fn any_json_document_is_read_strictly_without_a_panic(
        data in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..400),
            claims().prop_map(|c| c.to_string().into_bytes()),
            "\\{(\"[a-z\\\\u0-9]{0,6}\":(\\[|\\{|1|\"x\"|null|true)?,?){0,12}\\}?".prop_map(String::into_bytes),
        ]
    ) {
        properties::strict_json(&data);
    }
}

#[test]
fn the_fixed_key_ring_has_every_key_family() {
    let ring = properties::ring();
    assert_eq!(
        ring.jwks.len(),
        4,
        "one HMAC, one P-256, one Ed25519, one RSA key"
    );
    assert_eq!(ring.paseto.len(), 1);
}

#[test]
fn a_token_signed_with_the_fixed_hmac_key_is_accepted() {
    // The accepting path the properties rely on is really reachable.
    let now = properties::NOW.seconds();
    let claims = json!({"iss": properties::ISSUER, "aud": properties::AUDIENCE, "sub": "alice", "exp": now + 60});
    let mut data = vec![0];
    data.extend_from_slice(br#"{"alg":"HS256","kid":"hs256"}"#);
    data.push(0xFF);
    data.extend_from_slice(claims.to_string().as_bytes());
    assert!(properties::jwt_parts(&data));
}
