//! The checkout flow over the storage traits ([`crate::ports`]): the idempotency claim, the
//! checkout itself, and the completion or release of the claim around it (semantics.md §2).
//!
//! 1. claim the record: replay, 409 in flight, 422 mismatch, or start;
//! 2. check out: derive the order id from the record, find an order a crashed attempt already
//!    wrote (only when resuming), else price the cart, plan, and write order + lines + stock in
//!    one D1 batch; then empty the cart;
//! 3. finish: a 201 or a deterministic refusal (stale cart, empty cart, out of stock) is stored
//!    and replayed; any other failure releases the claim — forgotten when nothing was written,
//!    unlocked (same creation time, so the same order id) when the D1 write may have happened.
//!
//! The handler ([`super::handlers::create`]) authenticates and parses before it; the native
//! tests drive this with in-memory stores and faults.

use super::model::{short_of, CheckoutRequest, EventId, EventType, Order, OrderId, Refusal};
use super::store::{CommitFailure, NewOrder};
use crate::d1::Bookmark;
use crate::http::problem::ApiError;
use crate::idempotency::key::{Fingerprint, RecordKey};
use crate::idempotency::machine::{NextAction, Policy, Release, StoredResponse};
use crate::ports::{CartStore, Catalogue, Claim, Effects, OrderStore, Records};
use crate::time::UnixMillis;

/// How many times a checkout re-prices after its batch was refused by a product that changed
/// (repriced or deleted) between pricing and writing.
const CHECKOUT_ROUNDS: usize = 3;

/// A checkout as the flow takes it: everything the request said, parsed and checked.
#[derive(Debug, Clone)]
pub struct CheckoutCall<'a> {
    /// The verified caller's [`crate::auth::Identity::user_key`].
    pub user_key: &'a str,
    pub record: &'a RecordKey,
    pub fingerprint: &'a Fingerprint,
    pub request: &'a CheckoutRequest,
    /// This attempt's random token: completing or releasing the claim is conditional on it.
    pub attempt: &'a str,
    /// When the claim is made: the lease counts from it.
    pub claimed_at: UnixMillis,
    /// The request's `now`: the order's creation time and the emptied cart's.
    pub now: UnixMillis,
    pub policy: Policy,
    /// The development delay hook: milliseconds to wait after the claim, before the write.
    pub delay_before_write: Option<u64>,
    /// The development delay hook: milliseconds to wait after the D1 write.
    pub delay_after_write: Option<u64>,
}

/// The answer of a checkout: a stored response (sent again on replays), and the bookmark of
/// the order's write when this attempt made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub stored: StoredResponse,
    pub replayed: bool,
    pub bookmark: Option<Bookmark>,
}

/// `POST /orders` after parsing: claim, check out, complete or release.
///
/// # Errors
/// 409 (in flight), 422 (mismatch), and, with the claim released, any failure that is not a
/// deterministic refusal (those are stored and answered).
pub async fn checkout(
    stores: &(impl CartStore + Catalogue + OrderStore + Effects),
    records: &impl Records,
    call: CheckoutCall<'_>,
) -> Result<Answer, ApiError> {
    let claim = Claim {
        key: call.record,
        fingerprint: call.fingerprint,
        attempt: call.attempt,
        now: call.claimed_at,
        policy: call.policy,
    };
    let (created_at, resumed) = match records.claim(&claim).await? {
        NextAction::Start {
            created_at,
            resumed,
        } => (created_at, resumed),
        NextAction::Replay(stored) => {
            return Ok(Answer {
                stored,
                replayed: true,
                bookmark: None,
            })
        }
        NextAction::InFlight { retry_after } => {
            return Err(ApiError::RequestInFlight { retry_after })
        }
        NextAction::Mismatch => return Err(ApiError::IdempotencyKeyReused),
    };

    if let Some(ms) = call.delay_before_write {
        stores.pause(ms).await;
    }

    let job = Checkout {
        user_key: call.user_key,
        request: call.request,
        id: OrderId::derive(call.record, created_at),
        resumed,
        now: call.now,
        delay_after_write: call.delay_after_write,
    };
    // A resumed attempt may find the work of the one it took over: never forget its record,
    // or a retry would start a new operation (a new order id) beside a written order.
    let mut wrote = resumed;
    let outcome = job.run(stores, &mut wrote).await;
    let mut bookmark = None;
    let stored = match outcome {
        Ok((order, written)) => {
            bookmark = written;
            created(&order)?
        }
        Err(e) => match disposition(&e) {
            Disposition::Store => refused(&e)?,
            Disposition::Release => {
                let how = if wrote {
                    Release::Unlock
                } else {
                    Release::Forget
                };
                if let Err(release_error) = records.release(&claim, how).await {
                    // The lease still ends on its own; the retry then takes over.
                    log_warning("idempotency release failed", &release_error);
                }
                return Err(e);
            }
        },
    };
    if let Err(e) = records.complete(&claim, &stored).await {
        // The order stands. The record stays in progress until its lease ends; a retry then
        // takes over, finds this order by its derived id and completes the record.
        log_warning("idempotency completion failed", &e);
    }
    Ok(Answer {
        stored,
        replayed: false,
        bookmark,
    })
}

/// One checkout attempt, after the claim.
struct Checkout<'a> {
    user_key: &'a str,
    request: &'a CheckoutRequest,
    id: OrderId,
    resumed: bool,
    now: UnixMillis,
    delay_after_write: Option<u64>,
}

impl Checkout<'_> {
    /// Places the order (or finds the one a crashed attempt placed) and empties the cart; with
    /// the bookmark of the order's write when this attempt made it. The emptied cart keeps the
    /// bookmark, so the next pricing of the cart shows the stock this order took.
    /// `wrote` turns true once the D1 write may have happened.
    async fn run(
        &self,
        stores: &(impl CartStore + Catalogue + OrderStore + Effects),
        wrote: &mut bool,
    ) -> Result<(Order, Option<Bookmark>), ApiError> {
        stores.ready()?;
        if self.resumed {
            if let Some(order) = stores.find(self.user_key, &self.id).await? {
                *wrote = true;
                // The attempt taken over may have crashed between its commit and its send:
                // send again (the consumer ignores a delivered event; the sweep is the
                // backstop either way).
                stores.publish(vec![EventId::derive(&self.id, EventType::Confirmed)]);
                self.empty_cart_if_unchanged(stores, order.cart_version)
                    .await
                    .map_err(after_write)?;
                return Ok((order, None));
            }
        }
        for _ in 0..CHECKOUT_ROUNDS {
            let cart = stores.load(self.user_key).await?;
            let found = stores.products(&cart.skus()).await?;
            let priced = crate::cart::price(&cart, &found);
            let plan = super::model::plan(self.request.cart_version, &priced).and_then(|plan| {
                super::model::confirm_total(plan, self.request.expected_total_minor)
            });
            let plan = match plan {
                Ok(plan) => plan,
                Err(refusal) => {
                    // A takeover of an attempt that was slow, not dead, may find the cart
                    // already emptied by that attempt's commit: its order is the answer.
                    if self.resumed {
                        if let Some(order) = stores.find(self.user_key, &self.id).await? {
                            *wrote = true;
                            return Ok((order, None));
                        }
                    }
                    return Err(refusal.into());
                }
            };
            let cart_id = cart.checkout_identity();
            let new = NewOrder {
                id: &self.id,
                user_key: self.user_key,
                plan: &plan,
                cart_version: cart.version(),
                cart_id: &cart_id,
                email: self.request.email.as_ref(),
                shipping_address: self.request.shipping_address.as_ref(),
                created_at: self.now,
            };
            *wrote = true;
            match stores.commit(&new).await {
                Ok((bookmark, revised)) => {
                    // This location's cached pages of the products whose band the order
                    // moved show it from the next read; the others stay cached.
                    stores.stock_changed(&revised).await;
                    stores.publish(vec![new.event().0]);
                    if let Some(ms) = self.delay_after_write {
                        stores.pause(ms).await;
                    }
                    let emptied = cart
                        .emptied(self.now)
                        .map_err(|e| after_write(e.into()))?
                        .with_bookmark(bookmark.clone());
                    stores
                        .save(self.user_key, &emptied)
                        .await
                        .map_err(after_write)?;
                    return Ok((new.to_order(), bookmark));
                }
                Err(CommitFailure::Unavailable(what)) => {
                    return Err(ApiError::Unavailable {
                        retry_after: 1,
                        what: format!("d1 checkout batch: {what}"),
                    })
                }
                Err(CommitFailure::Refused(_)) => {
                    // Nothing was written. Was it a racing attempt of this same checkout, a
                    // shortage, or a product that changed under us (then price again)?
                    *wrote = self.resumed;
                    if let Some(order) = stores.find(self.user_key, &self.id).await? {
                        *wrote = true;
                        self.empty_cart_if_unchanged(stores, order.cart_version)
                            .await
                            .map_err(after_write)?;
                        return Ok((order, None));
                    }
                    // Another checkout (another key) already bought this cart state.
                    if stores.cart_checked_out(&new).await? {
                        return Err(Refusal::CartChanged.into());
                    }
                    let skus: Vec<_> = plan.lines.iter().map(|l| l.sku.clone()).collect();
                    let products = stores.products(&skus).await?;
                    if let Some(sku) = short_of(&plan.lines, &products) {
                        return Err(Refusal::OutOfStock(sku).into());
                    }
                }
            }
        }
        Err(ApiError::Unavailable {
            retry_after: 1,
            what: "checkout kept racing catalogue changes".into(),
        })
    }

    /// A resumed checkout empties the cart only if it still is the cart that was bought.
    async fn empty_cart_if_unchanged(
        &self,
        stores: &impl CartStore,
        bought: u64,
    ) -> Result<(), ApiError> {
        let cart = stores.load(self.user_key).await?;
        if cart.version() == bought {
            let emptied = cart.emptied(self.now)?;
            stores.save(self.user_key, &emptied).await?;
        }
        Ok(())
    }
}

/// What becomes of a failed checkout's claim.
enum Disposition {
    /// A deterministic answer to this request: stored and replayed.
    Store,
    /// Transient or unexpected: the claim is released so a retry runs again.
    Release,
}

fn disposition(e: &ApiError) -> Disposition {
    match e {
        ApiError::CartChanged
        | ApiError::PriceChanged { .. }
        | ApiError::OutOfStock { .. }
        | ApiError::InvalidValue(_) => Disposition::Store,
        ApiError::BadRequest(_)
        | ApiError::MissingToken
        | ApiError::InvalidToken { .. }
        | ApiError::InsufficientScope { .. }
        | ApiError::Forbidden(_)
        | ApiError::NotFound
        | ApiError::OrderNotCancellable
        | ApiError::OrderNotFulfillable
        | ApiError::MethodNotAllowed { .. }
        | ApiError::RequestInFlight { .. }
        | ApiError::PreconditionFailed
        | ApiError::PayloadTooLarge
        | ApiError::IdempotencyKeyReused
        | ApiError::RateLimited { .. }
        | ApiError::Limited { .. }
        | ApiError::Unavailable { .. }
        | ApiError::Misconfigured { .. }
        | ApiError::Internal(_) => Disposition::Release,
    }
}

/// An error after the order was written is never a stored refusal: the order exists, so the
/// claim must be unlocked for a retry to finish (and answer 201), not answered with a 4xx.
fn after_write(e: ApiError) -> ApiError {
    match disposition(&e) {
        Disposition::Store => {
            ApiError::Internal(format!("after the order was written: {}", e.kind().slug()))
        }
        Disposition::Release => e,
    }
}

/// The stored form of a 201.
fn created(order: &Order) -> Result<StoredResponse, ApiError> {
    let body = serde_json::to_string(order)
        .map_err(|e| ApiError::Internal(format!("serialise order: {e}")))?;
    Ok(StoredResponse {
        status: 201,
        content_type: "application/json".into(),
        location: Some(format!("/orders/{}", order.id.as_str())),
        body,
    })
}

/// The stored form of a refusal (a 4xx problem; no development detail in 4xx bodies).
fn refused(e: &ApiError) -> Result<StoredResponse, ApiError> {
    let problem = e.to_response(false);
    let body = serde_json::to_string(&problem.problem)
        .map_err(|err| ApiError::Internal(format!("serialise problem: {err}")))?;
    Ok(StoredResponse {
        status: problem.status,
        content_type: "application/problem+json".into(),
        location: None,
        body,
    })
}

fn log_warning(what: &str, e: &ApiError) {
    crate::http::log_event(
        "warn",
        what,
        &serde_json::json!({ "problem": e.kind().slug(), "detail": e.log_detail() }),
    );
}
