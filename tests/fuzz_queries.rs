//! Smoke run of the header and query fuzz properties (`fuzz/src/lib.rs`) inside `cargo test`:
//! the `Idempotency-Key` header, the `GET /products` query and cursor, the `GET /orders`
//! query and cursor. Malformed values are a 400, never a panic; accepted ones round-trip.
// Helpers outside `#[test]` functions are not covered by clippy.toml's test allowances.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod properties;

use proptest::prelude::*;

const CASES: u32 = 3_000;

/// Hex of text close to what a cursor encodes (so decoding gets past the hex), and text that
/// is almost hex.
fn cursorish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{0,70}",
        "v1\\.[0-9]{0,22}\\.ord_[0-9a-fA-F]{30,34}",
        "v[0-9]\\.-?[0-9+]{0,5}\\.[a-z_]{0,5}",
        any::<String>(),
    ]
    .prop_map(|text| edgecart::hash::hex(text.as_bytes()))
    .boxed()
    .prop_union("[0-9a-fA-F]{0,140}".boxed())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn any_idempotency_key_header_is_parsed_or_refused_without_a_panic(
        value in prop_oneof![
            any::<String>(),
            "[ -~]{0,300}",
            "\"([ -~]|\\\\\"|\\\\\\\\){0,260}\"?",
        ]
    ) {
        properties::idempotency_key(&value);
    }

    #[test]
    fn any_catalogue_query_is_parsed_or_refused_without_a_panic(
        query in prop_oneof![
            any::<String>(),
            "((limit|cursor|x)=[0-9+-]{0,5}&?){0,4}",
            cursorish().prop_map(|c| format!("limit=5&cursor={c}")),
            cursorish(),
        ]
    ) {
        properties::catalogue_query(&query);
    }

    #[test]
    fn any_orders_query_is_parsed_or_refused_without_a_panic(
        query in prop_oneof![
            any::<String>(),
            "((limit|cursor|x)=[0-9+-]{0,5}&?){0,4}",
            cursorish().prop_map(|c| format!("cursor={c}&limit=3")),
            cursorish(),
        ]
    ) {
        properties::orders_query(&query);
    }
}
