//! In-memory fakes of the storage traits (`edgecart::ports`) and a `TestApp` that drives the
//! cart and checkout flows natively with an injected `now`.
//!
//! The fakes keep the guarantees the Workers stores give: a cart write replaces the stored
//! cart; the checkout commit is all-or-nothing and refuses a second order of one id or of
//! one cart state, an oversell, and a line whose product vanished or was repriced; records
//! run the same decision (`idempotency::machine::claim`) with finishes conditional on the
//! attempt. Faults are injected per operation: fail its Nth call, hang on it (the worker
//! died there), or, for the commit, write and then die or lose the answer.
// Each test crate uses part of this module; helpers outside `#[test]` functions are not
// covered by clippy.toml's test allowances.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use edgecart::cart::flow::{self, MergeRequest, Merged, Write, WriteRequest};
use edgecart::cart::model::{Cart, PricedCart, Requested};
use edgecart::catalogue::model::{visible_stock, Currency, Product, Sku};
use edgecart::catalogue::store::Revised;
use edgecart::d1::{Bookmark, Start};
use edgecart::http::precondition::IfMatch;
use edgecart::http::problem::ApiError;
use edgecart::idempotency::key::{Fingerprint, IdempotencyKey, RecordKey};
use edgecart::idempotency::machine::{
    claim, NextAction, Policy, Record, RecordState, Release, StoredResponse,
};
use edgecart::orders::flow::{Answer, CheckoutCall};
use edgecart::orders::model::{CheckoutRequest, EventId, Order, OrderId};
use edgecart::orders::store::{CommitFailure, NewOrder};
use edgecart::ports::{CartStore, Catalogue, Claim, Effects, OrderStore, Records};
use edgecart::time::UnixMillis;

/// 2026-12-01T00:00:00Z.
pub const T0: UnixMillis = UnixMillis(1_796_083_200_000);

pub const POLICY: Policy = Policy {
    lease_seconds: 30,
    retention_seconds: 86_400,
};

/// An operation of the fakes, for counting calls and aiming faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    CartLoad,
    CartSave,
    ProductsNear,
    Products,
    Find,
    Commit,
    CartCheckedOut,
    Claim,
    Complete,
    Release,
    Pause,
}

/// What goes wrong, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The Nth call (from 1) of `op` fails with 503 and changes nothing.
    Fail(Op, usize),
    /// The Nth call of `op` never returns: the worker died there, before it took effect.
    Hang(Op, usize),
    /// The Nth commit writes everything, then the worker dies.
    CrashAfterCommit(usize),
    /// The Nth commit writes everything, and its answer is lost (503: unknown outcome).
    LoseCommitAnswer(usize),
    /// Just before the Nth commit, a merchant raises the price of every product by one
    /// minor unit: the checkout priced what is no longer so, and the commit refuses it.
    RepriceBeforeCommit(usize),
}

/// A stored order, with what the one-order-per-cart index sees.
#[derive(Debug, Clone)]
pub struct StoredOrder {
    pub user_key: String,
    pub cart_id: String,
    pub order: Order,
}

/// The in-memory world: carts, catalogue, orders, records, and what was set off.
pub struct TestApp {
    now: Cell<UnixMillis>,
    pub carts: RefCell<HashMap<String, Cart>>,
    pub products: RefCell<Vec<Product>>,
    pub orders: RefCell<Vec<StoredOrder>>,
    pub records: RefCell<HashMap<String, Record>>,
    pub published: RefCell<Vec<EventId>>,
    pub stock_changes: RefCell<Vec<Revised>>,
    /// Where each [`Catalogue::products_near`] read started, in call order.
    pub near_starts: RefCell<Vec<Start>>,
    generation: Cell<u64>,
    faults: RefCell<Vec<Fault>>,
    calls: RefCell<HashMap<Op, usize>>,
}

/// What a call of a fake does.
enum Next {
    Run,
    Fail,
    Hang,
    CrashAfterCommit,
    LoseCommitAnswer,
    RepriceBeforeCommit,
}

/// A future that never completes: the worker died while awaiting it.
async fn die<T>() -> T {
    std::future::pending().await
}

fn unavailable(op: Op) -> ApiError {
    ApiError::Unavailable {
        retry_after: 1,
        what: format!("injected failure of {op:?}"),
    }
}

/// Polls `future` to its end. Every fake answers at once, so a future still pending after one
/// poll is awaiting a hung call: the attempt crashed, and is dropped where it stood (`None`).
pub fn run<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(value) => Some(value),
        Poll::Pending => None,
    }
}

pub fn sku(text: &str) -> Sku {
    Sku::parse(text).unwrap()
}

pub fn product(name: &str, price_minor: i64, stock: i64) -> Product {
    Product {
        sku: sku(name),
        name: format!("Product {name}"),
        description: String::new(),
        price_minor,
        currency: Currency::parse("EUR").unwrap(),
        stock,
        version: 1,
        updated_at: "2026-11-29T08:00:00Z".into(),
    }
}

/// The bookmark every fake commit answers with.
pub fn bookmark() -> Bookmark {
    Bookmark::parse("0000000a-0000000b-0000000c-0123456789abcdef0123456789abcdef").unwrap()
}

/// `"<version>"` as an `If-Match` header holds it.
pub fn if_match(version: u64) -> Option<IfMatch> {
    Some(IfMatch::parse(&format!("\"{version}\"")).unwrap())
}

impl TestApp {
    /// A world at [`T0`] whose catalogue holds `products`.
    pub fn new(products: Vec<Product>) -> Self {
        Self {
            now: Cell::new(T0),
            carts: RefCell::default(),
            products: RefCell::new(products),
            orders: RefCell::default(),
            records: RefCell::default(),
            published: RefCell::default(),
            stock_changes: RefCell::default(),
            near_starts: RefCell::default(),
            generation: Cell::new(1),
            faults: RefCell::default(),
            calls: RefCell::default(),
        }
    }

    pub fn now(&self) -> UnixMillis {
        self.now.get()
    }

    pub fn advance_seconds(&self, seconds: u64) {
        self.now.set(self.now.get().plus_seconds(seconds));
    }

    pub fn inject(&self, fault: Fault) {
        self.faults.borrow_mut().push(fault);
    }

    /// How many calls of `op` were made.
    pub fn calls(&self, op: Op) -> usize {
        self.calls.borrow().get(&op).copied().unwrap_or(0)
    }

    /// Counts a call of `op` and says what it does.
    fn next(&self, op: Op) -> Next {
        let n = {
            let mut calls = self.calls.borrow_mut();
            let n = calls.entry(op).or_insert(0);
            *n += 1;
            *n
        };
        let mut faults = self.faults.borrow_mut();
        let Some(at) = faults.iter().position(|f| match *f {
            Fault::Fail(o, k) | Fault::Hang(o, k) => o == op && k == n,
            Fault::CrashAfterCommit(k)
            | Fault::LoseCommitAnswer(k)
            | Fault::RepriceBeforeCommit(k) => op == Op::Commit && k == n,
        }) else {
            return Next::Run;
        };
        match faults.remove(at) {
            Fault::Fail(..) => Next::Fail,
            Fault::Hang(..) => Next::Hang,
            Fault::CrashAfterCommit(_) => Next::CrashAfterCommit,
            Fault::LoseCommitAnswer(_) => Next::LoseCommitAnswer,
            Fault::RepriceBeforeCommit(_) => Next::RepriceBeforeCommit,
        }
    }

    /// A plain call: fails, hangs, or runs.
    async fn gate(&self, op: Op) -> Result<(), ApiError> {
        match self.next(op) {
            Next::Fail => Err(unavailable(op)),
            Next::Hang => die().await,
            Next::Run
            | Next::CrashAfterCommit
            | Next::LoseCommitAnswer
            | Next::RepriceBeforeCommit => Ok(()),
        }
    }

    // ---- state, as the tests read it ----

    pub fn cart(&self, user: &str) -> Cart {
        self.carts.borrow().get(user).cloned().unwrap_or_default()
    }

    pub fn stock(&self, name: &str) -> i64 {
        let sku = sku(name);
        self.products
            .borrow()
            .iter()
            .find(|p| p.sku == sku)
            .map(|p| p.stock)
            .unwrap()
    }

    pub fn set_price(&self, name: &str, price_minor: i64) {
        let sku = sku(name);
        for p in self.products.borrow_mut().iter_mut() {
            if p.sku == sku {
                p.price_minor = price_minor;
            }
        }
    }

    pub fn orders_of(&self, user: &str) -> Vec<Order> {
        self.orders
            .borrow()
            .iter()
            .filter(|o| o.user_key == user)
            .map(|o| o.order.clone())
            .collect()
    }

    /// The record of `user`'s checkout under `key`.
    pub fn record(&self, user: &str, key: &str) -> Option<Record> {
        self.records
            .borrow()
            .get(record_key(user, key).as_str())
            .cloned()
    }

    // ---- flows, driven as the handlers drive them ----

    /// `PUT /cart/items/{sku}` with `quantity` (0 removes).
    pub fn set_item(
        &self,
        user: &str,
        name: &str,
        quantity: u64,
        if_match: Option<IfMatch>,
    ) -> Result<(Cart, PricedCart), ApiError> {
        let body = serde_json::json!({ "quantity": quantity });
        let requested = Requested::from_body(&body)?;
        self.write(user, Write::Line(sku(name), requested), if_match)
    }

    pub fn write(
        &self,
        user: &str,
        write: Write,
        if_match: Option<IfMatch>,
    ) -> Result<(Cart, PricedCart), ApiError> {
        let request = WriteRequest {
            user_key: user,
            if_match,
            write,
            start: Start::Anywhere,
            now: self.now(),
        };
        run(flow::write(self, request)).expect("a cart write never hangs here")
    }

    pub fn read(&self, user: &str) -> Result<(Cart, PricedCart), ApiError> {
        run(flow::read(self, user, Start::Anywhere)).expect("a cart read never hangs here")
    }

    pub fn merge(
        &self,
        user: &str,
        guest: &str,
        if_match: Option<IfMatch>,
    ) -> Result<Merged, ApiError> {
        let request = MergeRequest {
            user_key: user,
            guest_key: guest,
            if_match,
            start: Start::Anywhere,
            now: self.now(),
        };
        run(flow::merge(self, request)).expect("a merge never hangs here")
    }

    /// `POST /orders` with `Idempotency-Key: key` and `body`; `None` when the attempt crashed.
    pub fn checkout(
        &self,
        user: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> Option<Result<Answer, ApiError>> {
        self.checkout_claimed_at(user, key, body, self.now())
    }

    /// [`TestApp::checkout`] of a request that arrived at `now` but claims its record at
    /// `claimed_at` (authentication and the body upload came in between).
    pub fn checkout_claimed_at(
        &self,
        user: &str,
        key: &str,
        body: &serde_json::Value,
        claimed_at: UnixMillis,
    ) -> Option<Result<Answer, ApiError>> {
        let bytes = serde_json::to_vec(body).unwrap();
        let request = CheckoutRequest::parse(&bytes).unwrap();
        let record = record_key(user, key);
        let fingerprint = Fingerprint::of("POST", "/orders", &bytes);
        let attempt = edgecart::http::random_id();
        let call = CheckoutCall {
            user_key: user,
            record: &record,
            fingerprint: &fingerprint,
            request: &request,
            attempt: &attempt,
            claimed_at,
            now: self.now(),
            policy: POLICY,
            delay_before_write: None,
            delay_after_write: None,
        };
        run(edgecart::orders::flow::checkout(self, self, call))
    }

    /// [`TestApp::checkout`] of an attempt that does not crash.
    pub fn checkout_done(
        &self,
        user: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> Result<Answer, ApiError> {
        self.checkout(user, key, body)
            .expect("the checkout attempt crashed")
    }
}

pub fn record_key(user: &str, key: &str) -> RecordKey {
    RecordKey::new(
        user,
        "POST",
        "/orders",
        &IdempotencyKey::parse_header(Some(key)).unwrap(),
    )
}

/// The order id a checkout under `key` created at `created_at` has.
pub fn order_id(user: &str, key: &str, created_at: UnixMillis) -> OrderId {
    OrderId::derive(&record_key(user, key), created_at)
}

impl CartStore for TestApp {
    async fn load(&self, user_key: &str) -> Result<Cart, ApiError> {
        self.gate(Op::CartLoad).await?;
        Ok(self.cart(user_key))
    }

    async fn save(&self, user_key: &str, cart: &Cart) -> Result<(), ApiError> {
        self.gate(Op::CartSave).await?;
        // What KV stores is the cart's JSON: keep only what survives it.
        let text = serde_json::to_string(cart).unwrap();
        let stored: Cart = serde_json::from_str(&text).unwrap();
        self.carts.borrow_mut().insert(user_key.to_owned(), stored);
        Ok(())
    }
}

impl TestApp {
    fn find_products(&self, skus: &[Sku]) -> Vec<Product> {
        self.products
            .borrow()
            .iter()
            .filter(|p| skus.contains(&p.sku))
            .cloned()
            .collect()
    }
}

impl Catalogue for TestApp {
    async fn products_near(&self, skus: &[Sku], start: &Start) -> Result<Vec<Product>, ApiError> {
        if skus.is_empty() {
            return Ok(Vec::new());
        }
        self.gate(Op::ProductsNear).await?;
        self.near_starts.borrow_mut().push(start.clone());
        Ok(self.find_products(skus))
    }

    async fn products(&self, skus: &[Sku]) -> Result<Vec<Product>, ApiError> {
        if skus.is_empty() {
            return Ok(Vec::new());
        }
        self.gate(Op::Products).await?;
        Ok(self.find_products(skus))
    }
}

impl TestApp {
    /// The checkout batch as D1 runs it: every constraint first, then every write, or none.
    fn write_order(&self, order: &NewOrder<'_>) -> Result<Revised, String> {
        let mut orders = self.orders.borrow_mut();
        if orders.iter().any(|o| &o.order.id == order.id) {
            return Err("UNIQUE constraint failed: orders.id".into());
        }
        if orders.iter().any(|o| {
            o.user_key == order.user_key
                && o.cart_id == order.cart_id
                && o.order.cart_version == order.cart_version
        }) {
            return Err("UNIQUE constraint failed: orders.user_key, cart_id, cart_version".into());
        }
        let mut products = self.products.borrow_mut();
        for line in &order.plan.lines {
            let Some(p) = products.iter().find(|p| p.sku == line.sku) else {
                return Err("CHECK constraint failed: lines_verified".into());
            };
            if p.price_minor != line.unit_price_minor || p.currency != order.plan.currency {
                return Err("CHECK constraint failed: lines_verified".into());
            }
            if p.stock < i64::from(line.quantity) {
                return Err("CHECK constraint failed: stock >= 0".into());
            }
        }
        let mut revised = Revised::default();
        for line in &order.plan.lines {
            if let Some(p) = products.iter_mut().find(|p| p.sku == line.sku) {
                let before = visible_stock(p.stock);
                p.stock -= i64::from(line.quantity);
                if visible_stock(p.stock) != before {
                    revised.skus.push(p.sku.clone());
                }
            }
        }
        if !revised.skus.is_empty() {
            self.generation.set(self.generation.get() + 1);
            revised.generation = Some(self.generation.get());
        }
        orders.push(StoredOrder {
            user_key: order.user_key.to_owned(),
            cart_id: order.cart_id.to_owned(),
            order: order.to_order(),
        });
        Ok(revised)
    }
}

impl OrderStore for TestApp {
    fn ready(&self) -> Result<(), ApiError> {
        Ok(())
    }

    async fn find(&self, user_key: &str, id: &OrderId) -> Result<Option<Order>, ApiError> {
        self.gate(Op::Find).await?;
        Ok(self
            .orders
            .borrow()
            .iter()
            .find(|o| o.user_key == user_key && &o.order.id == id)
            .map(|o| o.order.clone()))
    }

    async fn commit(
        &self,
        order: &NewOrder<'_>,
    ) -> Result<(Option<Bookmark>, Revised), CommitFailure> {
        let next = self.next(Op::Commit);
        match next {
            Next::Fail => return Err(CommitFailure::Unavailable("injected failure".into())),
            Next::Hang => return die().await,
            Next::RepriceBeforeCommit => {
                for p in self.products.borrow_mut().iter_mut() {
                    p.price_minor += 1;
                }
            }
            Next::Run | Next::CrashAfterCommit | Next::LoseCommitAnswer => {}
        }
        let revised = self.write_order(order).map_err(CommitFailure::Refused)?;
        match next {
            Next::CrashAfterCommit => die().await,
            Next::LoseCommitAnswer => {
                Err(CommitFailure::Unavailable("network connection lost".into()))
            }
            Next::Run | Next::Fail | Next::Hang | Next::RepriceBeforeCommit => {
                Ok((Some(bookmark()), revised))
            }
        }
    }

    async fn cart_checked_out(&self, order: &NewOrder<'_>) -> Result<bool, ApiError> {
        self.gate(Op::CartCheckedOut).await?;
        Ok(self.orders.borrow().iter().any(|o| {
            o.user_key == order.user_key
                && o.cart_id == order.cart_id
                && o.order.cart_version == order.cart_version
        }))
    }
}

impl Records for TestApp {
    async fn claim(&self, c: &Claim<'_>) -> Result<NextAction, ApiError> {
        self.gate(Op::Claim).await?;
        let mut records = self.records.borrow_mut();
        let key = c.key.as_str();
        let (action, write) = claim(records.get(key), c.fingerprint, c.attempt, c.now, c.policy);
        if let Some(record) = write {
            records.insert(key.to_owned(), record);
        }
        Ok(action)
    }

    async fn complete(&self, c: &Claim<'_>, response: &StoredResponse) -> Result<(), ApiError> {
        self.gate(Op::Complete).await?;
        if let Some(r) = self.records.borrow_mut().get_mut(c.key.as_str()) {
            if r.attempt == c.attempt && matches!(r.state, RecordState::InProgress { .. }) {
                r.state = RecordState::Completed(response.clone());
            }
        }
        Ok(())
    }

    async fn release(&self, c: &Claim<'_>, how: Release) -> Result<(), ApiError> {
        self.gate(Op::Release).await?;
        let mut records = self.records.borrow_mut();
        let key = c.key.as_str();
        let holds = records.get(key).is_some_and(|r| {
            r.attempt == c.attempt && matches!(r.state, RecordState::InProgress { .. })
        });
        if !holds {
            return Ok(());
        }
        match how {
            Release::Forget => {
                records.remove(key);
            }
            Release::Unlock => {
                if let Some(r) = records.get_mut(key) {
                    r.state = RecordState::InProgress {
                        locked_until: UnixMillis(0),
                    };
                }
            }
        }
        Ok(())
    }
}

impl Effects for TestApp {
    fn publish(&self, ids: Vec<EventId>) {
        self.published.borrow_mut().extend(ids);
    }

    async fn stock_changed(&self, revised: &Revised) {
        self.stock_changes.borrow_mut().push(revised.clone());
    }

    async fn pause(&self, _ms: u64) {
        if self.gate(Op::Pause).await.is_err() {
            // A failed wait is no failure of the checkout.
        }
    }
}
