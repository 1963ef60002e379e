//! The Workers adapters of the storage traits ([`crate::ports`]): each operation delegates to
//! the module that owns that storage (`cart::store` for KV, `catalogue::store` and
//! `orders::store` for D1, `idempotency::store` for the records, `orders::events` for the
//! queue, `catalogue::handlers::stock_changed` for the caches), so the flows run on workerd
//! exactly as the handlers ran them before: the same calls in the same order.

use worker::D1Database;

use crate::cart::model::Cart;
use crate::catalogue::caching::CachePolicy;
use crate::catalogue::model::{Product, Sku};
use crate::catalogue::store::Revised;
use crate::config::Config;
use crate::d1::{Bookmark, Start};
use crate::http::{problem::ApiError, Cx};
use crate::idempotency::machine::{NextAction, Release, StoredResponse};
use crate::idempotency::store::RecordStore;
use crate::orders::model::{EventId, Order, OrderId};
use crate::orders::store::{CommitFailure, NewOrder};
use crate::ports::{CartStore, Catalogue, Claim, Effects, OrderStore, Records};

/// The request's bindings, as the flows use them.
pub struct WorkersStores<'a> {
    cx: &'a Cx,
    cart_ttl_seconds: u64,
    cache: CachePolicy,
    /// The D1 binding, looked up once per request; a missing one is answered (503) by the
    /// first operation that needs it.
    db: Result<D1Database, ApiError>,
}

impl<'a> WorkersStores<'a> {
    /// The stores of the request `cx` under `config` (no I/O: one look-up of the D1 binding).
    #[must_use]
    pub fn new(cx: &'a Cx, config: &Config) -> Self {
        Self {
            cx,
            cart_ttl_seconds: config.cart_ttl_seconds,
            cache: CachePolicy::from_config(config),
            db: crate::catalogue::store::database(&cx.env),
        }
    }

    fn db(&self) -> Result<&D1Database, ApiError> {
        self.db.as_ref().map_err(Clone::clone)
    }
}

impl CartStore for WorkersStores<'_> {
    async fn load(&self, user_key: &str) -> Result<Cart, ApiError> {
        crate::cart::store::load(&self.cx.env, user_key).await
    }

    async fn save(&self, user_key: &str, cart: &Cart) -> Result<(), ApiError> {
        crate::cart::store::save(&self.cx.env, user_key, cart, self.cart_ttl_seconds).await
    }
}

impl Catalogue for WorkersStores<'_> {
    async fn products_near(&self, skus: &[Sku], start: &Start) -> Result<Vec<Product>, ApiError> {
        // An empty cart prices nothing: no session, and no need of the binding.
        if skus.is_empty() {
            return Ok(Vec::new());
        }
        crate::cart::store::products_near(self.db()?, skus, start).await
    }

    async fn products(&self, skus: &[Sku]) -> Result<Vec<Product>, ApiError> {
        if skus.is_empty() {
            return Ok(Vec::new());
        }
        crate::cart::store::products(self.db()?, skus).await
    }
}

impl OrderStore for WorkersStores<'_> {
    fn ready(&self) -> Result<(), ApiError> {
        self.db().map(drop)
    }

    async fn find(&self, user_key: &str, id: &OrderId) -> Result<Option<Order>, ApiError> {
        crate::orders::store::find(self.db()?, user_key, id).await
    }

    async fn commit(
        &self,
        order: &NewOrder<'_>,
    ) -> Result<(Option<Bookmark>, Revised), CommitFailure> {
        // The flow checks this same binding with `ready` before its claim, so this arm is
        // not reached. Were it, the answer is the cautious one, "outcome unknown": the claim
        // is unlocked, not forgotten, and the retry looks for the order before it writes.
        let db = self
            .db()
            .map_err(|e| CommitFailure::Unavailable(e.log_detail().unwrap_or_default()))?;
        crate::orders::store::commit(db, order).await
    }

    async fn cart_checked_out(&self, order: &NewOrder<'_>) -> Result<bool, ApiError> {
        let (user, cart, version) = (order.user_key, order.cart_id, order.cart_version);
        crate::orders::store::cart_checked_out(self.db()?, user, cart, version).await
    }
}

impl Effects for WorkersStores<'_> {
    fn publish(&self, ids: Vec<EventId>) {
        crate::orders::events::publish_after_response(&self.cx.ctx, &self.cx.env, ids);
    }

    async fn stock_changed(&self, revised: &Revised) {
        crate::catalogue::handlers::stock_changed(self.cx, self.cache, revised).await;
    }

    async fn pause(&self, ms: u64) {
        crate::platform::timer::sleep(ms).await;
    }
}

impl Records for RecordStore {
    async fn claim(&self, c: &Claim<'_>) -> Result<NextAction, ApiError> {
        RecordStore::claim(self, c.key, c.fingerprint, c.attempt, c.now, c.policy).await
    }

    async fn complete(&self, c: &Claim<'_>, response: &StoredResponse) -> Result<(), ApiError> {
        RecordStore::complete(self, c.key, c.attempt, response).await
    }

    async fn release(&self, c: &Claim<'_>, how: Release) -> Result<(), ApiError> {
        RecordStore::release(self, c.key, c.attempt, how).await
    }
}
