//! The properties the fuzzers check: every parser that reads attacker-controlled input
//! (bearer tokens, JSON bodies, `Idempotency-Key`, query strings and cursors) answers with a
//! value or a typed refusal, never a panic, and what it accepts obeys the type's contract.
//!
//! One file, two drivers:
//! - `fuzz/fuzz_targets/*.rs` (cargo-fuzz, libFuzzer, `scripts/fuzz.sh`): a million inputs or
//!   more per target, coverage-guided;
//! - `tests/fuzz_*.rs` (proptest, inside `npm test`): a few thousand random inputs per
//!   property, included with `#[path]`, so the smoke run checks exactly what the fuzzer does.
//!
//! Pure like the code under test: the clock is the constant [`NOW`], keys are fixed, nothing
//! touches the network or storage. A property returns normally or fails an `assert!` (a
//! panic is what both drivers report).
//!
//! Structured inputs are split at `0xFF` bytes (never part of UTF-8, so JSON pieces stay
//! intact): the fuzzer then writes JSON claims directly instead of having to discover
//! base64url, and the token it builds reaches the claim policy and the signature check.

use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use base64ct::{Base64UrlUnpadded, Encoding};
use edgecart::auth::bearer::BearerToken;
use edgecart::auth::claims::{Policy, Refusal, MAX_SUB_CHARS};
use edgecart::auth::keys::{parse_jwks, parse_paserks, KeySource, VerificationKey};
use edgecart::auth::remote::{KeysUnavailable, Trigger};
use edgecart::auth::verify::{verify_bearer, Failure, KeyRing};
use edgecart::auth::{jwt, paseto, Identity};
use edgecart::cart::model::Requested;
use edgecart::catalogue::listing::{decode_cursor, encode_cursor, ListQuery, MAX_LIMIT};
use edgecart::idempotency::key::{Fingerprint, IdempotencyKey, RecordKey};
use edgecart::json::parse_object;
use edgecart::orders::model::{CheckoutRequest, Cursor, PageQuery};
use edgecart::time::UnixMillis;
use sha2::{Digest, Sha256};

/// The fixed clock of every property (2027-01-15T08:00:00Z).
pub const NOW: UnixMillis = UnixMillis(1_800_000_000_000);
/// The issuer and audience the fixed policy accepts.
pub const ISSUER: &str = "https://edgecart.test";
pub const AUDIENCE: &str = "edgecart";
/// The HS256 secret of the key `hs256` (the fuzzer's own tokens are signed with it, so they
/// can pass the signature check and exercise the accepting path).
pub const HS256_SECRET: [u8; 32] = [0x42; 32];
/// The Ed25519 public key of RFC 8037 §A.2, used as the JWK `eddsa` and as the PASERK key.
const ED25519_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
/// The P-256 public key of RFC 7515 §A.3.
const P256_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const P256_Y: &str = "x_FEzRjLlrVpzTRIzbZm-hHpBHD8VzhG6eQ4JeL-2Ck";
/// The RSA test key of the native suite (its public half).
const RSA_JWK: &str = include_str!("../../tests/common/rsa2048.private.jwk.json");

/// Where structured inputs are cut.
const SEPARATOR: u8 = 0xFF;

/// The claim policy: the defaults of `Config`, with or without a lifetime ceiling.
#[must_use]
pub fn policy(max_lifetime: bool) -> Policy {
    Policy {
        issuer: ISSUER.to_owned(),
        audiences: vec![AUDIENCE.to_owned(), "other".to_owned()],
        leeway_seconds: 60,
        max_token_bytes: 8192,
        max_lifetime_seconds: max_lifetime.then_some(3600),
        es256_require_low_s: false,
    }
}

/// The configured keys: one of each family (HMAC, ES256, EdDSA, RSA) plus one PASERK, so
/// every branch of key choice and of the signature seam is reachable. Parsed once.
#[must_use]
pub fn ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| {
        let rsa: serde_json::Value = serde_json::from_str(RSA_JWK).unwrap_or_default();
        let jwks = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "hs256", "alg": "HS256", "k": b64(&HS256_SECRET)},
            {"kty": "EC", "crv": "P-256", "kid": "es256", "alg": "ES256", "x": P256_X, "y": P256_Y},
            {"kty": "OKP", "crv": "Ed25519", "kid": "eddsa", "alg": "EdDSA", "x": ED25519_X},
            {"kty": "RSA", "kid": "rs256", "alg": "RS256", "n": rsa.get("n"), "e": rsa.get("e")},
        ]});
        let paserk = format!("k4.public.{ED25519_X}");
        KeyRing {
            // A broken fixture would make every token fail the same way: the accepting-path
            // property (`jwt_parts`) notices, because its signed tokens must then pass.
            jwks: parse_jwks(&jwks.to_string(), KeySource::Inline).unwrap_or_default(),
            paseto: parse_paserks(&[paserk]).unwrap_or_default(),
            // Hostile tokens also meet the guest path (a wrong issuer reparsed as a guest's).
            guest: Some(edgecart::auth::guest::GuestKey::new(
                "fuzz-guest-secret-of-at-least-32-bytes",
                604_800,
            )),
        }
    })
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// HMAC-SHA256 (RFC 2104), to sign the fuzzer's own tokens with the `hs256` key.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0_u8; 64];
    for (b, k) in block.iter_mut().zip(key) {
        *b = *k;
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// Runs a future that never waits: natively the signature seam is synchronous and the
/// remote key set is a closure answering at once.
fn block_on<F: Future>(f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// The whole bearer pipeline on a token that passed `BearerToken`: parse, policy, key choice,
/// signature. There is no remote key set (`JWT_JWKS_URL` unset).
fn verify(token: &BearerToken, max_lifetime: bool) -> Result<Identity, Refusal> {
    let no_remote =
        |_: Trigger| async { Ok::<_, KeysUnavailable>(None::<Rc<Vec<VerificationKey>>>) };
    let result = block_on(verify_bearer(
        token,
        &policy(max_lifetime),
        ring(),
        NOW,
        no_remote,
    ));
    assert!(result.is_some(), "native verification never waits");
    match result {
        Some(Ok(identity)) => Ok(identity),
        Some(Err(Failure::Refused(r))) => Err(r),
        // Without a remote set nothing can be unavailable.
        Some(Err(Failure::KeysUnavailable(_))) | None => Err(Refusal::Malformed),
    }
}

/// What any accepted identity satisfies, whatever the token looked like.
fn check_identity(identity: &Identity) {
    assert_eq!(identity.iss, ISSUER);
    assert!(!identity.sub.is_empty() && identity.sub.chars().count() <= MAX_SUB_CHARS);
    assert!(!identity.sub.chars().any(char::is_control));
    assert!(
        identity.exp + 60 >= NOW.seconds(),
        "an expired token was accepted"
    );
    assert!(identity
        .scopes
        .iter()
        .all(|s| !s.is_empty() && !s.contains(' ')));
    assert_eq!(identity.user_key().len(), 64);
}

/// An `Authorization` header value of any shape: refused without a panic, or accepted only
/// when it is genuine. The fuzzer cannot sign, so the only tokens it can hold that verify are
/// the `hs256`-signed seeds it started from (or mutations that left them intact).
pub fn bearer_header(value: &str) {
    let Ok(token) = BearerToken::from_header(value, 8192) else {
        return;
    };
    assert!(!token.as_str().is_empty() && token.as_str().len() <= 8192);
    if let Ok(identity) = verify(&token, false) {
        check_identity(&identity);
        assert!(
            signed_with_hs256(token.as_str()),
            "a forged token was accepted"
        );
    }
}

/// Whether `token` is a compact JWS whose header says HS256 and whose signature is the HMAC
/// of its signing input under [`HS256_SECRET`].
fn signed_with_hs256(token: &str) -> bool {
    let Some((signing_input, signature)) = token.rsplit_once('.') else {
        return false;
    };
    let header = signing_input
        .split('.')
        .next()
        .and_then(|h| Base64UrlUnpadded::decode_vec(h).ok())
        .and_then(|h| parse_object(&h).ok());
    let alg = header
        .as_ref()
        .and_then(|h| h.get("alg"))
        .and_then(|a| a.as_str());
    alg == Some("HS256")
        && Base64UrlUnpadded::decode_vec(signature).ok()
            == Some(hmac_sha256(&HS256_SECRET, signing_input.as_bytes()))
}

/// A token text, straight into the JWT and PASETO parsers and then the key policy.
pub fn token_text(text: &str) {
    let policy = policy(false);
    if let Ok(pending) = jwt::parse(text, &policy, NOW) {
        check_identity(&pending.identity);
        if let jwt::KeyChoice::Found(key) = pending.choose_key(&ring().jwks) {
            // `precheck` must refuse a key of another algorithm.
            if pending.precheck(key).is_ok() {
                assert_eq!(key.alg, pending.alg);
            }
        }
    }
    if let Ok(pending) = paseto::parse(text, &policy, NOW) {
        check_identity(&pending.identity);
        assert_eq!(pending.signature.len(), 64);
        let _ = pending.candidates(&ring().paseto);
    }
}

/// A compact JWS built from fuzzer-written pieces: `flags ‖ header JSON ‖ 0xFF ‖ claims JSON
/// [‖ 0xFF ‖ signature]`. Without a signature piece the token is signed with the `hs256`
/// secret, so a well-formed one passes the signature and reaches the accepting path; with one,
/// it is the fuzzer's signature and must never verify. Returns whether the token was accepted.
pub fn jwt_parts(data: &[u8]) -> bool {
    let Some((flags, rest)) = data.split_first() else {
        return false;
    };
    let mut pieces = rest.splitn(3, |b| *b == SEPARATOR);
    let (Some(header), Some(claims)) = (pieces.next(), pieces.next()) else {
        return false;
    };
    let signing_input = format!("{}.{}", b64(header), b64(claims));
    let (signature, ours) = match pieces.next() {
        Some(forged) => (forged.to_vec(), false),
        None => (hmac_sha256(&HS256_SECRET, signing_input.as_bytes()), true),
    };
    let token = format!("{signing_input}.{}", b64(&signature));
    let Ok(bearer) = BearerToken::from_header(&format!("Bearer {token}"), usize::MAX) else {
        return false;
    };
    let Ok(identity) = verify(&bearer, flags & 1 == 1) else {
        return false;
    };
    assert!(ours, "a token with a forged signature was accepted");
    check_identity(&identity);
    // Only the HMAC key could have verified it: the header named HS256.
    let header = parse_object(header).unwrap_or_default();
    assert_eq!(
        header.get("alg").and_then(|a| a.as_str()),
        Some("HS256"),
        "a token was verified under an algorithm other than its key's"
    );
    true
}

/// A `v4.public` PASETO built from fuzzer-written pieces: `message ‖ 0xFF ‖ signature
/// [‖ 0xFF ‖ footer]`. The fuzzer cannot sign, so nothing may verify.
pub fn paseto_parts(data: &[u8]) {
    let mut pieces = data.splitn(3, |b| *b == SEPARATOR);
    let (Some(message), Some(signature)) = (pieces.next(), pieces.next()) else {
        return;
    };
    let mut body = message.to_vec();
    body.extend_from_slice(signature);
    let mut token = format!("{}{}", paseto::HEADER, b64(&body));
    if let Some(footer) = pieces.next() {
        token.push('.');
        token.push_str(&b64(footer));
    }
    if let Ok(pending) = paseto::parse(&token, &policy(false), NOW) {
        check_identity(&pending.identity);
    }
    let Ok(bearer) = BearerToken::from_header(&format!("Bearer {token}"), usize::MAX) else {
        return;
    };
    assert!(
        verify(&bearer, false).is_err(),
        "a forged PASETO was accepted"
    );
}

/// The strict JSON reader behind token headers, claims and key sets, and the key-set and
/// PASERK parsers (a remote key set is input from the network).
pub fn strict_json(data: &[u8]) {
    if let Ok(map) = parse_object(data) {
        // Whatever the strict reader accepts, serde_json accepts too, with the same members
        // (the strict reader only refuses more: duplicates, depth).
        let loose: Result<serde_json::Map<String, serde_json::Value>, _> =
            serde_json::from_slice(data);
        assert_eq!(loose.ok().as_ref(), Some(&map));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_jwks(text, KeySource::Remote);
        if let Ok(keys) = parse_jwks(text, KeySource::Inline) {
            assert!(keys.len() <= edgecart::auth::keys::MAX_KEYS);
        }
        let _ = parse_paserks(&[text.to_owned()]);
    }
}

/// The body of `PUT /cart/items/{sku}`, as the handler reads it (JSON, then `Requested`).
pub fn cart_body(data: &[u8]) {
    let Ok(body) = edgecart::http::parse_json_body::<serde_json::Value>(data) else {
        return;
    };
    match Requested::from_body(&body) {
        Ok(Requested::Remove) => {
            assert_eq!(quantity_of(&body), Some(0));
        }
        Ok(Requested::Set(q)) => {
            assert!((1..=99).contains(&q.get()));
            assert_eq!(quantity_of(&body), Some(i128::from(q.get())));
            // The body has no member but `quantity`.
            assert_eq!(body.as_object().map(serde_json::Map::len), Some(1));
        }
        Err(_) => {}
    }
}

/// The whole number the body's `quantity` stands for (`2`, `2.0` and `2e0` are one number).
fn quantity_of(body: &serde_json::Value) -> Option<i128> {
    match body.get("quantity") {
        Some(serde_json::Value::Number(n)) => edgecart::http::whole_number(n),
        _ => None,
    }
}

/// The body of `POST /orders`.
pub fn checkout_body(data: &[u8]) {
    let Ok(request) = CheckoutRequest::parse(data) else {
        return;
    };
    if let Some(email) = &request.email {
        assert!((3..=254).contains(&email.as_str().chars().count()));
        assert_eq!(email.as_str().matches('@').count(), 1);
    }
    if let Some(address) = &request.shipping_address {
        assert!(address.to_json().starts_with('{'));
    }
}

/// An `Idempotency-Key` header value, and the keys derived from an accepted one.
pub fn idempotency_key(value: &str) {
    let Ok(key) = IdempotencyKey::parse_header(Some(value)) else {
        return;
    };
    let text = key.as_str();
    assert!((1..=IdempotencyKey::MAX_LEN).contains(&text.len()));
    assert!(text.bytes().all(|b| b.is_ascii_graphic()));
    // Two headers joined by the runtime (", ") are never one key.
    assert!(!value.contains(", "));
    // Both spellings of the header name the same key.
    if !text.contains(['"', '\\']) {
        let quoted = IdempotencyKey::parse_header(Some(&format!("\"{text}\"")));
        assert_eq!(quoted.as_ref().map(IdempotencyKey::as_str), Ok(text));
    }
    let record = RecordKey::new(&"0".repeat(64), "POST", "/orders", &key);
    assert_eq!(record.as_str().len(), 64);
    assert_eq!(record.operation_id(NOW).len(), 64);
    assert_eq!(
        Fingerprint::of("POST", "/orders", value.as_bytes())
            .as_str()
            .len(),
        64
    );
}

/// A `GET /products` query. The handler hands `ListQuery` the decoded pairs; splitting the raw
/// text at `&` and `=` without percent-decoding reaches every decoded value too.
pub fn catalogue_query(query: &str) {
    let pairs: Vec<(String, String)> = query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name.to_owned(), value.to_owned())
        })
        .collect();
    if let Ok(parsed) = ListQuery::parse(&pairs) {
        assert!((1..=MAX_LIMIT).contains(&parsed.limit));
        // The canonical parameters parse back to the same query (one cache key per page).
        let canonical: Vec<(String, String)> = parsed
            .canonical_params()
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect();
        assert_eq!(ListQuery::parse(&canonical).as_ref(), Ok(&parsed));
    }
    if let Ok(sku) = decode_cursor(query) {
        assert_eq!(encode_cursor(&sku), query);
    }
}

/// A `GET /orders` query, and a cursor on its own.
pub fn orders_query(query: &str) {
    if let Ok(parsed) = PageQuery::parse(query) {
        assert!((1..=PageQuery::MAX_LIMIT).contains(&parsed.limit));
    }
    if let Ok(cursor) = Cursor::decode(query) {
        // What the server would hand out for this position decodes to the same position.
        assert_eq!(
            Cursor::decode(&cursor.encode()).ok().as_ref(),
            Some(&cursor)
        );
    }
}
