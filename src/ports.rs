//! The storage the flows need, as narrow traits: only the operations the cart and checkout
//! flows call, nothing a flow does not use.
//!
//! The Workers adapters ([`crate::stores`]) implement them over KV, D1, the idempotency
//! Durable Object, the queue and the caches; the native tests implement them in memory, with
//! faults, to drive whole flows (`tests/common/`). The traits use native `async fn`: the
//! worker is single-threaded wasm, so no `Send` bound is wanted, and the flows are generic
//! over them, so every call is monomorphised (no boxing, no trait objects).
#![allow(async_fn_in_trait)]

use crate::cart::model::Cart;
use crate::catalogue::model::{Product, Sku};
use crate::catalogue::store::Revised;
use crate::d1::{Bookmark, Start};
use crate::http::problem::ApiError;
use crate::idempotency::key::{Fingerprint, RecordKey};
use crate::idempotency::machine::{NextAction, Policy, Release, StoredResponse};
use crate::orders::model::{EventId, Order, OrderId};
use crate::orders::store::{CommitFailure, NewOrder};
use crate::time::UnixMillis;

/// Carts, one per user key.
pub trait CartStore {
    /// The user's cart; the empty cart at version 0 when none is stored.
    async fn load(&self, user_key: &str) -> Result<Cart, ApiError>;

    /// Stores `cart` as the user's cart, exactly as given (the caller has bumped the version).
    async fn save(&self, user_key: &str, cart: &Cart) -> Result<(), ApiError>;
}

/// The catalogue's products by sku, for pricing. Absent skus are simply missing from the
/// answer; an empty `skus` reads nothing.
pub trait Catalogue {
    /// As a session from `start` reads them (a replica may answer): what a cart shows.
    async fn products_near(&self, skus: &[Sku], start: &Start) -> Result<Vec<Product>, ApiError>;

    /// As the primary reads them now: what checkout charges.
    async fn products(&self, skus: &[Sku]) -> Result<Vec<Product>, ApiError>;
}

/// The orders the checkout writes and looks for.
pub trait OrderStore {
    /// Whether the store can be used at all (its binding is there): checked once, before
    /// the checkout reads anything.
    fn ready(&self) -> Result<(), ApiError>;

    /// The user's order `id`, or `None`.
    async fn find(&self, user_key: &str, id: &OrderId) -> Result<Option<Order>, ApiError>;

    /// Writes the order, its lines, the stock decrement and its event atomically; the
    /// write's bookmark and the products whose shopper-visible stock changed.
    async fn commit(
        &self,
        order: &NewOrder<'_>,
    ) -> Result<(Option<Bookmark>, Revised), CommitFailure>;

    /// Whether the user of `order` already has an order of its cart state (cart id and
    /// version), under any id.
    async fn cart_checked_out(&self, order: &NewOrder<'_>) -> Result<bool, ApiError>;
}

/// One attempt's claim of an idempotency record: what the claim decides with, and what its
/// completion or release names (both are conditional on `attempt`).
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    pub key: &'a RecordKey,
    pub fingerprint: &'a Fingerprint,
    /// This attempt's random token.
    pub attempt: &'a str,
    /// When the claim is made: the lease counts from it.
    pub now: UnixMillis,
    pub policy: Policy,
}

/// Idempotency records (semantics.md §2): claim, then complete or release.
pub trait Records {
    /// Claims the record atomically and says what to do.
    async fn claim(&self, claim: &Claim<'_>) -> Result<NextAction, ApiError>;

    /// Stores the finished response of the claim's attempt.
    async fn complete(&self, claim: &Claim<'_>, response: &StoredResponse) -> Result<(), ApiError>;

    /// Gives the claim back.
    async fn release(&self, claim: &Claim<'_>, how: Release) -> Result<(), ApiError>;
}

/// What a write sets off beyond its own storage: nothing here can fail the request.
pub trait Effects {
    /// Hands order events to the queue after the response (a lost send is the outbox
    /// sweep's to repeat).
    fn publish(&self, ids: Vec<EventId>);

    /// The stock of `revised` products moved a band: the caches of their pages learn it.
    async fn stock_changed(&self, revised: &Revised);

    /// Waits `ms` milliseconds: the development delay hook that holds a checkout in flight.
    async fn pause(&self, ms: u64);
}
