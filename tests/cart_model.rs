//! Property tests of the cart's pure arithmetic: whatever the catalogue and the sequence of
//! changes, totals never overflow or go negative, and adding then removing a line restores
//! the cart.
// Helpers outside `#[test]` functions are not covered by clippy.toml's test allowances.
#![allow(clippy::unwrap_used)]

use edgecart::cart::model::{price, Cart, Change, Outcome, Quantity, MAX_LINES};
use edgecart::catalogue::model::{Currency, Product, Sku};
use edgecart::time::UnixMillis;
use proptest::prelude::*;

const NOW: UnixMillis = UnixMillis(1_796_000_000_000);

fn product(i: usize, price_minor: i64, currency: &str) -> Product {
    Product {
        sku: Sku::parse(&format!("p{i}")).unwrap(),
        name: format!("Product {i}"),
        description: String::new(),
        price_minor,
        currency: Currency::parse(currency).unwrap(),
        stock: 1,
        version: 1,
        updated_at: "2026-11-29T08:00:00Z".into(),
    }
}

/// A catalogue of up to 60 products with any non-negative price (including near `i64::MAX`)
/// in one of two currencies.
fn catalogue() -> impl Strategy<Value = Vec<Product>> {
    prop::collection::vec(
        (
            prop_oneof![0_i64..100_000, Just(i64::MAX), (i64::MAX / 100)..i64::MAX],
            prop_oneof![Just("EUR"), Just("USD")],
        ),
        1..60,
    )
    .prop_map(|entries| {
        entries
            .into_iter()
            .enumerate()
            .map(|(i, (p, c))| product(i, p, c))
            .collect()
    })
}

/// A step: (product index, quantity 0–99, where 0 means remove; or clear).
fn steps() -> impl Strategy<Value = Vec<(usize, u64, bool)>> {
    prop::collection::vec(
        (0_usize..60, 0_u64..100, prop::bool::weighted(0.03)),
        0..120,
    )
}

fn run(catalogue: &[Product], steps: &[(usize, u64, bool)]) -> Cart {
    let mut cart = Cart::empty();
    for &(index, n, clear) in steps {
        let Some(p) = catalogue.get(index % catalogue.len()) else {
            continue;
        };
        let change = if clear {
            Change::Clear
        } else if n == 0 {
            Change::Remove { sku: &p.sku }
        } else {
            Change::Set {
                sku: &p.sku,
                quantity: Quantity::new(n).unwrap(),
                product: Some(p),
            }
        };
        let before = cart.version();
        match cart.apply(change, NOW) {
            Ok(Outcome::Changed(next)) => {
                assert_eq!(next.version(), before + 1);
                cart = next;
            }
            Ok(Outcome::Unchanged) | Err(_) => assert_eq!(cart.version(), before),
        }
    }
    cart
}

proptest! {
    #[test]
    fn totals_never_overflow_or_go_negative(catalogue in catalogue(), steps in steps()) {
        let cart = run(&catalogue, &steps);
        prop_assert!(cart.lines().len() <= MAX_LINES);
        let priced = price(&cart, &catalogue);
        prop_assert!(priced.subtotal_minor >= 0);
        let mut sum: i64 = 0;
        for item in &priced.items {
            match (item.available, item.unit_price_minor, item.line_total_minor) {
                (true, Some(unit), Some(total)) => {
                    prop_assert!(unit >= 0 && total >= 0);
                    prop_assert_eq!(unit.checked_mul(i64::from(item.quantity.get())), Some(total));
                    sum = sum.checked_add(total).unwrap();
                }
                (false, None, None) => {}
                other => prop_assert!(false, "inconsistent line {:?}", other),
            }
        }
        prop_assert_eq!(sum, priced.subtotal_minor);
        let currencies: Vec<_> = cart.lines().iter()
            .filter_map(|l| catalogue.iter().find(|p| p.sku == l.sku).map(|p| p.currency))
            .collect();
        prop_assert!(currencies.iter().all(|c| Some(*c) == cart.currency()));
    }

    #[test]
    fn adding_then_removing_a_line_restores_the_cart(
        catalogue in catalogue(), steps in steps(), pick in 0_usize..60, n in 1_u64..100,
    ) {
        let cart = run(&catalogue, &steps);
        let p = &catalogue[pick % catalogue.len()];
        prop_assume!(cart.quantity_of(&p.sku).is_none());
        let added = cart.apply(
            Change::Set { sku: &p.sku, quantity: Quantity::new(n).unwrap(), product: Some(p) },
            NOW,
        );
        // Refused (other currency, 50 lines): the cart is untouched by construction.
        let Ok(Outcome::Changed(added)) = added else { return Ok(()); };
        let Ok(Outcome::Changed(removed)) = added.apply(Change::Remove { sku: &p.sku }, NOW) else {
            return Err(TestCaseError::fail("removing an added line must change the cart"));
        };
        prop_assert_eq!(removed.lines(), cart.lines());
        prop_assert_eq!(removed.currency(), cart.currency());
        prop_assert_eq!(price(&removed, &catalogue).subtotal_minor, price(&cart, &catalogue).subtotal_minor);
        prop_assert_eq!(removed.version(), cart.version() + 2);
    }

    #[test]
    fn a_stored_cart_reads_back_as_the_same_cart(catalogue in catalogue(), steps in steps()) {
        let cart = run(&catalogue, &steps);
        let text = serde_json::to_string(&cart).unwrap();
        let back: Cart = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back.lines(), cart.lines());
        prop_assert_eq!(back.version(), cart.version());
        prop_assert_eq!(back.currency(), cart.currency());
    }
}
