//! Smoke run of the request-body fuzz properties (`fuzz/src/lib.rs`) inside `cargo test`:
//! the cart line body and the checkout body, as raw bytes and as JSON of nearly the right
//! shape. Bad bodies are refused with a typed error (400/422), never a panic, and what is
//! accepted keeps to the contract (quantity 0–99, a plausible email, a bounded address).
// Helpers outside `#[test]` functions are not covered by clippy.toml's test allowances.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod properties;

use proptest::prelude::*;
use serde_json::{json, Value};

const CASES: u32 = 3_000;

/// Any JSON scalar, including the edge cases of numbers.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (0_u64..120).prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        Just(json!([])),
        Just(json!({})),
    ]
}

/// Raw text that is sometimes JSON: numbers written every way JSON allows and some it does not.
fn raw_number_body() -> impl Strategy<Value = Vec<u8>> {
    "\\{ ?\"quantity\" ?: ?-?[0-9]{0,25}(\\.[0-9]{0,3})?([eE][+-]?[0-9]{0,4})? ?\\}"
        .prop_map(String::into_bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn any_cart_line_body_is_parsed_or_refused_without_a_panic(
        data in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            raw_number_body(),
            scalar().prop_map(|q| json!({ "quantity": q }).to_string().into_bytes()),
            scalar().prop_map(|v| v.to_string().into_bytes()),
        ]
    ) {
        properties::cart_body(&data);
    }

    #[test]
    fn any_checkout_body_is_parsed_or_refused_without_a_panic(
        data in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            (scalar(), prop::option::of(prop_oneof![
                any::<String>().prop_map(Value::from),
                "[a-z]{0,70}@[a-z@.]{0,20}".prop_map(Value::from),
                scalar(),
            ]), prop::option::of(prop_oneof![
                prop::collection::btree_map("[a-z]{0,70}", scalar(), 0..25)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                scalar(),
            ])).prop_map(|(version, email, address)| {
                let mut body = json!({ "cart_version": version });
                if let Some(email) = email { body["email"] = email; }
                if let Some(address) = address { body["shipping_address"] = address; }
                body.to_string().into_bytes()
            }),
        ]
    ) {
        properties::checkout_body(&data);
    }
}
