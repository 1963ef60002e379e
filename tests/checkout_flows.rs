//! The checkout flow driven natively over in-memory stores (`common::TestApp`): the claim,
//! replays, mismatches, attempts that crash or lose an answer and the retries that finish
//! them. Every test checks what is stored (orders, stock, cart, record), not only the answer.
// Helpers outside `#[test]` functions are not covered by clippy.toml's test allowances.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{bookmark, order_id, product, sku, Fault, Op, TestApp, POLICY, T0};
use edgecart::d1::Start;
use edgecart::http::problem::ApiError;
use edgecart::idempotency::machine::{RecordState, StoredResponse};
use edgecart::orders::model::{EventId, EventType};
use edgecart::time::UnixMillis;
use serde_json::json;

const ALICE: &str = "user-alice";
const KEY: &str = "checkout-0001";

/// Alice's cart at version 2: two mugs (1 200 each, plenty in stock) and one tea (450, three
/// left: its shopper-visible stock moves with every order).
fn shop() -> TestApp {
    let app = TestApp::new(vec![product("mug", 1_200, 10), product("tea", 450, 3)]);
    app.set_item(ALICE, "mug", 2, None).unwrap();
    app.set_item(ALICE, "tea", 1, None).unwrap();
    app
}

fn body() -> serde_json::Value {
    json!({ "cart_version": 2 })
}

fn past_the_lease(app: &TestApp) {
    app.advance_seconds(POLICY.lease_seconds + 1);
}

fn completed(app: &TestApp, key: &str) -> StoredResponse {
    match app.record(ALICE, key).expect("a record").state {
        RecordState::Completed(response) => response,
        RecordState::InProgress { .. } => panic!("the record is still in progress"),
    }
}

fn in_progress(app: &TestApp, key: &str) -> UnixMillis {
    match app.record(ALICE, key).expect("a record").state {
        RecordState::InProgress { locked_until } => locked_until,
        RecordState::Completed(_) => panic!("the record is completed"),
    }
}

fn problem_type(stored: &StoredResponse) -> String {
    let body: serde_json::Value = serde_json::from_str(&stored.body).unwrap();
    body["type"].as_str().unwrap().to_owned()
}

/// The order placed, the cart emptied to the next version with the order's bookmark, the
/// stock taken once.
fn assert_placed_once(app: &TestApp, created_at: UnixMillis) {
    let orders = app.orders_of(ALICE);
    assert_eq!(orders.len(), 1, "exactly one order");
    assert_eq!(orders[0].id, order_id(ALICE, KEY, created_at));
    assert_eq!(orders[0].total_minor, 2 * 1_200 + 450);
    assert_eq!(orders[0].cart_version, 2);
    assert_eq!((app.stock("mug"), app.stock("tea")), (8, 2));
    let cart = app.cart(ALICE);
    assert!(cart.is_empty());
    assert_eq!(cart.version(), 3);
}

#[test]
fn a_checkout_places_one_order_empties_the_cart_and_stores_its_201() {
    let app = shop();
    let answer = app.checkout_done(ALICE, KEY, &body()).unwrap();
    assert_eq!(answer.stored.status, 201);
    assert!(!answer.replayed);
    assert_eq!(answer.bookmark, Some(bookmark()));
    let id = order_id(ALICE, KEY, T0);
    assert_eq!(
        answer.stored.location.as_deref(),
        Some(format!("/orders/{}", id.as_str()).as_str())
    );

    assert_placed_once(&app, T0);
    assert_eq!(app.cart(ALICE).bookmark(), Some(&bookmark()));
    assert_eq!(completed(&app, KEY), answer.stored);
    assert_eq!(
        *app.published.borrow(),
        [EventId::derive(&id, EventType::Confirmed)]
    );
    // Only tea's visible stock moved (3 → 2); mug's stays "in stock".
    let changes = app.stock_changes.borrow();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].skus, [sku("tea")]);
    assert!(changes[0].generation.is_some());
}

#[test]
fn a_retry_of_a_stored_201_is_replayed_without_a_second_order() {
    let app = shop();
    let first = app.checkout_done(ALICE, KEY, &body()).unwrap();
    app.advance_seconds(60);
    let again = app.checkout_done(ALICE, KEY, &body()).unwrap();
    assert!(again.replayed);
    assert_eq!(again.stored, first.stored);
    assert_eq!(again.bookmark, None, "a replay is sent as it was stored");
    assert_placed_once(&app, T0);
    assert_eq!(app.calls(Op::Commit), 1);
    assert_eq!(app.published.borrow().len(), 1);
}

#[test]
fn a_stored_refusal_is_replayed_even_once_it_would_succeed() {
    let app = shop();
    app.set_item(ALICE, "tea", 5, None).unwrap(); // three in stock; the cart is version 3
    let refusal = app
        .checkout_done(ALICE, KEY, &json!({ "cart_version": 3 }))
        .unwrap();
    assert_eq!(refusal.stored.status, 409);
    assert_eq!(problem_type(&refusal.stored), "/problems/out-of-stock");
    assert_eq!(completed(&app, KEY), refusal.stored);
    // The batch's stock check refused it; the flow then told the shortage apart.
    assert_eq!(app.calls(Op::Commit), 1);
    assert_eq!(app.calls(Op::CartCheckedOut), 1);
    assert!(app.orders_of(ALICE).is_empty());
    assert_eq!(app.stock("tea"), 3);
    assert_eq!(app.cart(ALICE).version(), 3, "a refusal leaves the cart");

    for p in app.products.borrow_mut().iter_mut() {
        p.stock = 50;
    }
    let replay = app
        .checkout_done(ALICE, KEY, &json!({ "cart_version": 3 }))
        .unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.stored, refusal.stored);
    assert!(app.orders_of(ALICE).is_empty());
    assert_eq!(app.stock("tea"), 50);
}

#[test]
fn the_same_key_with_another_body_is_a_422_mismatch_and_changes_nothing() {
    let app = shop();
    let first = app.checkout_done(ALICE, KEY, &body()).unwrap();
    let e = app
        .checkout_done(
            ALICE,
            KEY,
            &json!({ "cart_version": 2, "expected_total_minor": 1 }),
        )
        .unwrap_err();
    assert_eq!(e, ApiError::IdempotencyKeyReused);
    assert_eq!(e.to_response(false).status, 422);
    assert_placed_once(&app, T0);
    assert_eq!(completed(&app, KEY), first.stored);
}

#[test]
fn a_duplicate_while_the_first_attempt_holds_its_lease_is_409_in_flight() {
    let app = shop();
    app.inject(Fault::Hang(Op::Products, 1));
    assert!(
        app.checkout(ALICE, KEY, &body()).is_none(),
        "the attempt hangs"
    );
    app.advance_seconds(10);
    let e = app.checkout_done(ALICE, KEY, &body()).unwrap_err();
    assert_eq!(e, ApiError::RequestInFlight { retry_after: 20 });
    assert_eq!(e.to_response(false).status, 409);
    assert!(app.orders_of(ALICE).is_empty());
    assert_eq!(
        in_progress(&app, KEY),
        T0.plus_seconds(POLICY.lease_seconds)
    );
    assert_eq!(app.cart(ALICE).version(), 2);
}

#[test]
fn a_crash_after_the_d1_write_is_resumed_into_the_same_order() {
    let app = shop();
    app.inject(Fault::CrashAfterCommit(1));
    assert!(
        app.checkout(ALICE, KEY, &body()).is_none(),
        "the attempt died"
    );
    // The order is written, the cart not yet emptied, the record still claimed.
    assert_eq!(app.orders_of(ALICE).len(), 1);
    assert_eq!(app.cart(ALICE).version(), 2);
    assert!(app.published.borrow().is_empty());
    assert!(matches!(
        app.checkout_done(ALICE, KEY, &body()),
        Err(ApiError::RequestInFlight { .. })
    ));

    past_the_lease(&app);
    let answer = app.checkout_done(ALICE, KEY, &body()).unwrap();
    assert_eq!(answer.stored.status, 201);
    assert!(!answer.replayed);
    assert_placed_once(&app, T0);
    assert_eq!(app.calls(Op::Commit), 1, "the resume does not write again");
    assert_eq!(completed(&app, KEY), answer.stored);
    let id = order_id(ALICE, KEY, T0);
    assert!(answer.stored.body.contains(id.as_str()));
    // The event the dead attempt never handed to the queue is sent by the resume.
    assert_eq!(
        *app.published.borrow(),
        [EventId::derive(&id, EventType::Confirmed)]
    );
}

#[test]
fn an_expired_claim_that_wrote_nothing_is_taken_over_with_its_order_id() {
    let app = shop();
    app.inject(Fault::Hang(Op::Commit, 1));
    assert!(app.checkout(ALICE, KEY, &body()).is_none());
    assert!(app.orders_of(ALICE).is_empty());

    past_the_lease(&app);
    let answer = app.checkout_done(ALICE, KEY, &body()).unwrap();
    assert_eq!(answer.stored.status, 201);
    // The takeover keeps the record's creation time, hence the crashed attempt's order id.
    assert_placed_once(&app, T0);
    assert_eq!(completed(&app, KEY), answer.stored);
    assert_eq!(app.record(ALICE, KEY).unwrap().created_at, T0);
}

#[test]
fn a_lost_commit_answer_unlocks_the_claim_and_the_retry_finds_the_order() {
    let app = shop();
    app.inject(Fault::LoseCommitAnswer(1));
    let e = app.checkout_done(ALICE, KEY, &body()).unwrap_err();
    assert_eq!(e.to_response(false).status, 503);
    // Written after all; the claim is unlocked (kept, lease over), not forgotten.
    assert_eq!(app.orders_of(ALICE).len(), 1);
    assert_eq!(in_progress(&app, KEY), UnixMillis(0));
    assert_eq!(app.cart(ALICE).version(), 2);

    let answer = app.checkout_done(ALICE, KEY, &body()).unwrap();
    assert_eq!(answer.stored.status, 201);
    assert_placed_once(&app, T0);
    assert_eq!(app.calls(Op::Commit), 1);
    assert_eq!(completed(&app, KEY), answer.stored);
}

#[test]
fn a_failure_before_the_write_forgets_the_claim() {
    let app = shop();
    app.inject(Fault::Fail(Op::Products, 1));
    let e = app.checkout_done(ALICE, KEY, &body()).unwrap_err();
    assert_eq!(e.to_response(false).status, 503);
    assert!(
        app.record(ALICE, KEY).is_none(),
        "nothing was written: forgotten"
    );
    assert!(app.orders_of(ALICE).is_empty());

    app.advance_seconds(1);
    let answer = app.checkout_done(ALICE, KEY, &body()).unwrap();
    assert_eq!(answer.stored.status, 201);
    // A fresh operation: created at the retry's time.
    assert_placed_once(&app, T0.plus_seconds(1));
}

#[test]
fn a_failed_completion_still_answers_201_and_a_later_retry_completes_the_record() {
    let app = shop();
    app.inject(Fault::Fail(Op::Complete, 1));
    let answer = app.checkout_done(ALICE, KEY, &body()).unwrap();
    assert_eq!(answer.stored.status, 201);
    assert_placed_once(&app, T0);
    assert_eq!(
        in_progress(&app, KEY),
        T0.plus_seconds(POLICY.lease_seconds)
    );

    assert!(matches!(
        app.checkout_done(ALICE, KEY, &body()),
        Err(ApiError::RequestInFlight { .. })
    ));
    past_the_lease(&app);
    let retry = app.checkout_done(ALICE, KEY, &body()).unwrap();
    assert_eq!(retry.stored, answer.stored);
    assert_eq!(completed(&app, KEY), answer.stored);
    // Found by its derived id: no second write, and the refilled-or-not cart is left alone.
    assert_placed_once(&app, T0);
    assert_eq!(app.calls(Op::Commit), 1);
}

#[test]
fn a_total_the_shopper_was_not_shown_is_a_stored_409_price_changed() {
    // The price moved before the checkout, or between its pricing and its commit.
    let before: fn(&TestApp) = |app| app.set_price("mug", 1_300);
    let under_the_commit: fn(&TestApp) = |app| app.inject(Fault::RepriceBeforeCommit(1));
    for change in [before, under_the_commit] {
        let app = shop();
        change(&app);
        let shown = 2 * 1_200 + 450;
        let answer = app
            .checkout_done(
                ALICE,
                KEY,
                &json!({ "cart_version": 2, "expected_total_minor": shown }),
            )
            .unwrap();
        assert_eq!(answer.stored.status, 409);
        assert_eq!(problem_type(&answer.stored), "/problems/price-changed");
        assert_eq!(completed(&app, KEY), answer.stored);
        assert!(app.orders_of(ALICE).is_empty());
        assert_eq!((app.stock("mug"), app.stock("tea")), (10, 3));
        assert_eq!(app.cart(ALICE).version(), 2);
    }
}

#[test]
fn a_stale_cart_version_is_a_stored_409_cart_changed() {
    let app = shop();
    let answer = app
        .checkout_done(ALICE, KEY, &json!({ "cart_version": 1 }))
        .unwrap();
    assert_eq!(answer.stored.status, 409);
    assert_eq!(problem_type(&answer.stored), "/problems/cart-changed");
    assert_eq!(completed(&app, KEY), answer.stored);
    assert!(app.orders_of(ALICE).is_empty());
    assert_eq!(app.calls(Op::Commit), 0);
}

#[test]
fn a_second_key_for_a_cart_state_already_bought_is_refused_by_the_commit() {
    let app = shop();
    // The first checkout wrote its order and died before emptying the cart.
    app.inject(Fault::CrashAfterCommit(1));
    assert!(app.checkout(ALICE, KEY, &body()).is_none());

    let other = app.checkout_done(ALICE, "checkout-0002", &body()).unwrap();
    assert_eq!(other.stored.status, 409);
    assert_eq!(problem_type(&other.stored), "/problems/cart-changed");
    assert_eq!(app.calls(Op::Commit), 2);
    assert_eq!(app.calls(Op::CartCheckedOut), 1);
    assert_eq!(app.orders_of(ALICE).len(), 1);
    assert_eq!((app.stock("mug"), app.stock("tea")), (8, 2));
}

#[test]
fn an_empty_cart_is_a_stored_422() {
    let app = TestApp::new(vec![product("mug", 1_200, 10)]);
    let answer = app
        .checkout_done(ALICE, KEY, &json!({ "cart_version": 0 }))
        .unwrap();
    assert_eq!(answer.stored.status, 422);
    assert_eq!(completed(&app, KEY), answer.stored);
    assert!(app.orders_of(ALICE).is_empty());
}

#[test]
fn the_lease_counts_from_the_claim_not_from_the_arrival_of_the_request() {
    let app = shop();
    app.inject(Fault::Hang(Op::Commit, 1));
    // The request arrived at T0; authentication and the upload took 20 s before the claim.
    let claimed_at = T0.plus_seconds(20);
    assert!(app
        .checkout_claimed_at(ALICE, KEY, &body(), claimed_at)
        .is_none());
    assert_eq!(
        in_progress(&app, KEY),
        claimed_at.plus_seconds(POLICY.lease_seconds)
    );
    // Past a lease counted from the arrival, inside the claim's: still the first attempt's.
    past_the_lease(&app);
    assert!(matches!(
        app.checkout_done(ALICE, KEY, &body()),
        Err(ApiError::RequestInFlight { .. })
    ));
    assert!(app.orders_of(ALICE).is_empty());
}

#[test]
fn a_resume_leaves_alone_a_cart_the_shopper_changed_after_the_crash() {
    let app = shop();
    app.inject(Fault::CrashAfterCommit(1));
    assert!(app.checkout(ALICE, KEY, &body()).is_none());
    // The order is written; the shopper, not knowing, changes the cart (version 3).
    app.set_item(ALICE, "mug", 1, None).unwrap();
    assert_eq!(app.cart(ALICE).version(), 3);

    past_the_lease(&app);
    let answer = app.checkout_done(ALICE, KEY, &body()).unwrap();
    assert_eq!(answer.stored.status, 201);
    assert_eq!(app.calls(Op::Commit), 1);
    assert_eq!(app.orders_of(ALICE).len(), 1);
    // The order was of version 2: version 3 is not emptied under the shopper.
    let cart = app.cart(ALICE);
    assert_eq!(cart.version(), 3);
    assert!(!cart.is_empty());
}

#[test]
fn cart_reads_after_a_checkout_start_from_the_orders_bookmark() {
    let app = shop();
    app.checkout_done(ALICE, KEY, &body()).unwrap();
    app.near_starts.borrow_mut().clear();

    // A read of the emptied cart prices nothing; a write and a read of a refilled one price
    // from a replica at least as new as the order (its stock taken).
    app.set_item(ALICE, "tea", 1, None).unwrap();
    app.read(ALICE).unwrap();
    assert_eq!(
        *app.near_starts.borrow(),
        [Start::After(bookmark()), Start::After(bookmark())]
    );
}

#[test]
fn a_cart_emptying_that_fails_after_the_write_unlocks_the_claim_for_the_retry() {
    let app = shop();
    // shop() saved the cart twice; the checkout's emptying is the third save.
    app.inject(Fault::Fail(Op::CartSave, 3));
    let failed = app.checkout_done(ALICE, KEY, &body());
    assert!(matches!(failed, Err(ApiError::Unavailable { .. })));
    // The order stands, the cart is not yet emptied, and the claim is unlocked (not
    // forgotten): a retry need not wait out the lease, and keeps the order id.
    assert_eq!(app.orders_of(ALICE).len(), 1);
    assert_eq!(app.cart(ALICE).version(), 2);
    assert!(in_progress(&app, KEY) <= app.now());

    let retry = app.checkout_done(ALICE, KEY, &body()).unwrap();
    assert_eq!(retry.stored.status, 201);
    assert_placed_once(&app, T0);
    assert_eq!(app.calls(Op::Commit), 1);
    assert_eq!(completed(&app, KEY), retry.stored);
}

#[test]
fn a_price_changed_under_the_commit_is_priced_again_and_charged_as_it_now_is() {
    let app = shop();
    app.inject(Fault::RepriceBeforeCommit(1));
    let answer = app.checkout_done(ALICE, KEY, &body()).unwrap();
    assert_eq!(answer.stored.status, 201);
    assert_eq!(
        app.calls(Op::Commit),
        2,
        "the refused commit, then the repriced one"
    );
    let orders = app.orders_of(ALICE);
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].total_minor, 2 * 1_201 + 451);
    assert_eq!((app.stock("mug"), app.stock("tea")), (8, 2));
    assert_eq!(completed(&app, KEY), answer.stored);
}

#[test]
fn a_checkout_that_keeps_racing_price_changes_is_a_503_that_forgets_its_claim() {
    let app = shop();
    for round in 1..=3 {
        app.inject(Fault::RepriceBeforeCommit(round));
    }
    let failed = app.checkout_done(ALICE, KEY, &body());
    assert!(matches!(failed, Err(ApiError::Unavailable { .. })));
    assert_eq!(app.calls(Op::Commit), 3);
    // Nothing was written, so nothing holds the key: the retry is a new operation.
    assert!(app.orders_of(ALICE).is_empty());
    assert!(app.record(ALICE, KEY).is_none());
    let retry = app.checkout_done(ALICE, KEY, &body()).unwrap();
    assert_eq!(retry.stored.status, 201);
    assert_eq!(app.orders_of(ALICE).len(), 1);
}

#[test]
fn a_failed_look_for_the_order_after_a_refused_commit_forgets_the_claim() {
    let app = shop();
    app.inject(Fault::RepriceBeforeCommit(1));
    app.inject(Fault::Fail(Op::Find, 1));
    let failed = app.checkout_done(ALICE, KEY, &body());
    assert!(matches!(failed, Err(ApiError::Unavailable { .. })));
    // The refused commit wrote nothing: the key is free again and nothing was bought.
    assert!(app.record(ALICE, KEY).is_none());
    assert!(app.orders_of(ALICE).is_empty());
    assert_eq!((app.stock("mug"), app.stock("tea")), (10, 3));
    assert_eq!(app.cart(ALICE).version(), 2);
}
