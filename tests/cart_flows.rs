//! The cart's flows driven natively over in-memory stores (`common::TestApp`): `If-Match`,
//! refusals that write nothing, and the merge's two writes with the second one failing.

mod common;

use common::{if_match, product, sku, Fault, Op, TestApp};
use edgecart::cart::flow::Write;
use edgecart::cart::model::Requested;
use edgecart::http::problem::ApiError;

const ALICE: &str = "user-alice";
const GUEST: &str = "guest-1";

fn shop() -> TestApp {
    TestApp::new(vec![product("mug", 1_200, 10), product("tea", 450, 3)])
}

fn status(e: &ApiError) -> u16 {
    e.to_response(false).status
}

/// `(sku, quantity)` of each stored line, in cart order.
fn lines(app: &TestApp, user: &str) -> Vec<(String, u8)> {
    app.cart(user)
        .lines()
        .iter()
        .map(|l| (l.sku.as_str().to_owned(), l.quantity.get()))
        .collect()
}

#[test]
fn writes_with_a_matching_if_match_are_stored_and_priced() {
    let app = shop();
    let (cart, priced) = app.set_item(ALICE, "mug", 2, if_match(0)).unwrap();
    assert_eq!(cart.version(), 1);
    assert_eq!(priced.subtotal_minor, 2_400);
    let (cart, priced) = app.set_item(ALICE, "tea", 1, if_match(1)).unwrap();
    assert_eq!(cart.version(), 2);
    assert_eq!(priced.subtotal_minor, 2_850);

    let stored = app.cart(ALICE);
    assert_eq!(stored.version(), 2);
    assert!(stored.id().is_some(), "a stored cart has an id");
    assert_eq!(lines(&app, ALICE), [("mug".into(), 2), ("tea".into(), 1)]);
    assert_eq!(app.calls(Op::CartSave), 2);
    // A read answers what was stored, priced now.
    app.set_price("mug", 1_000);
    let (read, priced) = app.read(ALICE).unwrap();
    assert_eq!(read, stored);
    assert_eq!(priced.subtotal_minor, 2_450);
}

#[test]
fn a_stale_if_match_is_412_and_writes_nothing() {
    let app = shop();
    app.set_item(ALICE, "mug", 2, None).unwrap();
    let before = app.cart(ALICE);
    let saves = app.calls(Op::CartSave);

    let e = app.set_item(ALICE, "mug", 5, if_match(0)).unwrap_err();
    assert_eq!(e, ApiError::PreconditionFailed);
    assert_eq!(status(&e), 412);
    let e = app.write(ALICE, Write::Clear, if_match(7)).unwrap_err();
    assert_eq!(status(&e), 412);

    assert_eq!(app.cart(ALICE), before);
    assert_eq!(app.calls(Op::CartSave), saves);
    // Refused before the catalogue is read.
    assert_eq!(app.calls(Op::ProductsNear), 1);
}

#[test]
fn an_unknown_sku_is_422_and_writes_nothing() {
    let app = shop();
    app.set_item(ALICE, "tea", 1, None).unwrap();
    let before = app.cart(ALICE);

    let e = app.set_item(ALICE, "missing", 1, if_match(1)).unwrap_err();
    assert_eq!(status(&e), 422, "{e:?}");
    assert_eq!(app.cart(ALICE), before);
    assert_eq!(app.calls(Op::CartSave), 1);
}

#[test]
fn an_unchanged_cart_is_not_written_again() {
    let app = shop();
    app.set_item(ALICE, "tea", 2, None).unwrap();
    let (cart, _) = app.set_item(ALICE, "tea", 2, if_match(1)).unwrap();
    assert_eq!(cart.version(), 1);
    let (cart, _) = app
        .write(ALICE, Write::Line(sku("mug"), Requested::Remove), None)
        .unwrap();
    assert_eq!(cart.version(), 1);
    assert_eq!(app.calls(Op::CartSave), 1);
    assert_eq!(lines(&app, ALICE), [("tea".into(), 2)]);
}

#[test]
fn a_failed_save_answers_503_and_leaves_the_stored_cart() {
    let app = shop();
    app.set_item(ALICE, "tea", 1, None).unwrap();
    let before = app.cart(ALICE);
    app.inject(Fault::Fail(Op::CartSave, 2));
    let e = app.set_item(ALICE, "mug", 1, if_match(1)).unwrap_err();
    assert_eq!(status(&e), 503);
    assert_eq!(app.cart(ALICE), before);
}

#[test]
fn a_merge_adds_the_guest_lines_and_empties_the_guest_cart() {
    let app = shop();
    app.set_item(ALICE, "mug", 1, None).unwrap();
    app.set_item(GUEST, "mug", 2, None).unwrap();
    app.set_item(GUEST, "tea", 1, None).unwrap();

    let merged = app.merge(ALICE, GUEST, if_match(1)).unwrap();
    assert_eq!(merged.cart.version(), 2);
    assert_eq!(merged.priced.subtotal_minor, 3 * 1_200 + 450);
    assert!(!merged.report.already_merged);
    assert_eq!(merged.report.merged, [sku("mug"), sku("tea")]);

    assert_eq!(lines(&app, ALICE), [("mug".into(), 3), ("tea".into(), 1)]);
    let guest = app.cart(GUEST);
    assert!(guest.is_empty());
    assert_eq!(guest.version(), 3, "emptying is a new guest version");
}

#[test]
fn a_merge_with_a_stale_if_match_is_412_and_writes_nothing() {
    let app = shop();
    app.set_item(ALICE, "mug", 1, None).unwrap();
    app.set_item(GUEST, "tea", 1, None).unwrap();
    let e = app.merge(ALICE, GUEST, if_match(0)).unwrap_err();
    assert_eq!(status(&e), 412);
    assert_eq!(lines(&app, ALICE), [("mug".into(), 1)]);
    assert_eq!(lines(&app, GUEST), [("tea".into(), 1)]);
    assert_eq!(app.calls(Op::CartSave), 2);
}

#[test]
fn a_merge_whose_second_write_failed_adds_nothing_twice_on_retry() {
    let app = shop();
    app.set_item(ALICE, "mug", 1, None).unwrap();
    app.set_item(GUEST, "mug", 2, None).unwrap();
    // Saves 1 and 2 above; 3 is Alice's merged cart, 4 the emptied guest cart.
    app.inject(Fault::Fail(Op::CartSave, 4));

    let e = app.merge(ALICE, GUEST, None).unwrap_err();
    assert_eq!(status(&e), 503);
    // The first write landed, with its mark; the guest cart is still full.
    assert_eq!(lines(&app, ALICE), [("mug".into(), 3)]);
    assert_eq!(app.cart(ALICE).version(), 2);
    assert_eq!(lines(&app, GUEST), [("mug".into(), 2)]);

    let retry = app.merge(ALICE, GUEST, None).unwrap();
    assert!(retry.report.already_merged);
    assert!(retry.report.merged.is_empty());
    assert_eq!(
        retry.cart.version(),
        2,
        "the retry does not write Alice's cart"
    );
    assert_eq!(lines(&app, ALICE), [("mug".into(), 3)]);
    assert!(app.cart(GUEST).is_empty());
    assert_eq!(app.calls(Op::CartSave), 5);

    // Once emptied, merging again changes nothing anywhere.
    let again = app.merge(ALICE, GUEST, None).unwrap();
    assert!(!again.report.already_merged);
    assert_eq!(app.calls(Op::CartSave), 5);
    assert_eq!(lines(&app, ALICE), [("mug".into(), 3)]);
}
