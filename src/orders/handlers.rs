//! HTTP handlers of the order routes (edge).
//!
//! `POST /orders` is the checkout, wrapped in an idempotency claim (semantics.md §2): the
//! handler authenticates and parses `Idempotency-Key` and the body (a refusal here stores
//! nothing), then runs the flow ([`super::flow::checkout`]: claim, check out, complete or
//! release) over the Workers stores and sends its answer.
//!
//! Email and shipping address are never logged: they live in types with redacted `Debug`, and
//! no error detail here quotes them.

use worker::{Headers, Response};

use super::flow::CheckoutCall;
use super::model::{CheckoutRequest, EventBody, EventId, OrderId, PageQuery, Step, Transition};
use super::store::{self, Reader};
use crate::auth::{authenticate, require_scope};
use crate::config::Config;
use crate::d1::Bookmark;
use crate::http::{self, problem::ApiError, random_id, Cx, PRIVATE_NO_STORE};
use crate::idempotency::key::{Fingerprint, IdempotencyKey, RecordKey};
use crate::idempotency::machine::{Policy, StoredResponse};
use crate::idempotency::store::RecordStore;
use crate::stores::WorkersStores;
use crate::time::UnixMillis;

/// The development-only header that holds a checkout in flight for tests: `n` milliseconds
/// (at most 10 000) between its claim and its D1 write.
pub const TEST_DELAY_HEADER: &str = "X-Edgecart-Test-Delay-Ms";
/// With `after-write`, the delay happens after the D1 write instead (before the cart is
/// emptied and the record completed): the window a crash must not turn into a second order.
pub const TEST_DELAY_AT_HEADER: &str = "X-Edgecart-Test-Delay-At";
const MAX_TEST_DELAY_MS: u64 = 10_000;

/// `POST /orders`.
///
/// # Errors
/// 400 (key, body, delay header), 401, 429 (write limit), 409 (in flight), 413, 422 (mismatch, body values), 5xx
/// from storage; refusals after the claim are answered as stored responses, not errors.
pub async fn create(cx: &mut Cx) -> Result<Response, ApiError> {
    let identity = authenticate(cx).await?;
    // Within the write limit, before the claim touches any storage.
    crate::limits::check_write(cx, &identity.user_key()).await?;
    let key = IdempotencyKey::parse_header(cx.header("idempotency-key").as_deref())?;
    let config = cx.config()?.clone();
    let delay = test_delay(cx, &config)?;
    let body = cx.body_bytes().await?;
    let request = CheckoutRequest::parse(&body)?;
    if identity.is_guest() && request.email.is_none() {
        // Refused before the claim: nothing is stored, a retry with an email starts afresh.
        return Err(ApiError::InvalidValue(
            "A guest checkout needs `email`: it is the only way to reach the shopper.".into(),
        ));
    }

    let user_key = identity.user_key();
    let record = RecordKey::new(&user_key, "POST", "/orders", &key);
    let fingerprint = Fingerprint::of("POST", &cx.path, &body);
    let policy = Policy {
        lease_seconds: config.idempotency_lease_seconds,
        retention_seconds: config.idempotency_retention_seconds,
    };
    let records = RecordStore::open(&cx.env, &config, &user_key)?;
    let attempt = random_id();
    // The lease counts from the claim, not from the request's arrival: authentication (up to
    // a key-set fetch) and the body upload came in between, and a claim stamped with the
    // arrival time could be written already expired, open to a duplicate's takeover.
    let claimed_at = UnixMillis(http::now_millis());
    let stores = WorkersStores::new(cx, &config);
    let call = CheckoutCall {
        user_key: &user_key,
        record: &record,
        fingerprint: &fingerprint,
        request: &request,
        attempt: &attempt,
        claimed_at,
        now: cx.now,
        policy,
        delay_before_write: delay.and_then(TestDelay::before_write),
        delay_after_write: delay.and_then(TestDelay::after_write),
    };
    let answer = super::flow::checkout(&stores, &records, call).await?;
    if answer.replayed {
        return respond(&answer.stored, true);
    }
    with_bookmark(respond(&answer.stored, false)?, answer.bookmark.as_ref())
}

/// `response` with the bookmark of the write it reports in [`http::BOOKMARK_HEADER`], for the
/// client to send on its next reads (read-your-writes through D1 replicas). Absent when D1
/// gave none, and on replays (the stored answer is sent as it was; a read without a bookmark
/// may then lag by the replica's delay).
fn with_bookmark(
    mut response: Response,
    bookmark: Option<&Bookmark>,
) -> Result<Response, ApiError> {
    if let Some(b) = bookmark {
        response
            .headers_mut()
            .set(http::BOOKMARK_HEADER, b.as_str())
            .map_err(|e| {
                ApiError::Internal(format!("set header {}: {e}", http::BOOKMARK_HEADER))
            })?;
    }
    Ok(response)
}

/// `GET /orders`: the caller's orders, newest first, read in a D1 session from the request's
/// bookmark header (a replica near the user may answer; one that is no newer than the
/// bookmark does not). Without the header, orders placed or cancelled elsewhere may show up
/// to the replica's lag late; with the bookmark of the user's checkout or cancellation, they
/// show at once.
///
/// # Errors
/// 400 for a malformed query, 401, 503.
pub async fn list(cx: &mut Cx) -> Result<Response, ApiError> {
    let identity = authenticate(cx).await?;
    let query = PageQuery::parse(&cx.query())?;
    let db = crate::catalogue::store::database(&cx.env)?;
    let user_key = identity.user_key();
    let (items, next) = crate::d1::read(&db, &cx.read_start(), async |handle| {
        store::page(&handle, &user_key, &query).await
    })
    .await?;
    http::json(
        200,
        &serde_json::json!({
            "items": items,
            "next_cursor": next.map(|c| c.encode()),
        }),
        PRIVATE_NO_STORE,
    )
}

/// `GET /orders/{id}`: the caller's order; another user's or a malformed id is 404. With
/// `orders:write` (the merchant) any order, with its events and their delivery state. Read as
/// [`list`] reads (a session from the request's bookmark).
///
/// # Errors
/// 401, 404, 503.
pub async fn get(cx: &mut Cx, id: &str) -> Result<Response, ApiError> {
    let identity = authenticate(cx).await?;
    let id = OrderId::parse(id).ok_or(ApiError::NotFound)?;
    let db = crate::catalogue::store::database(&cx.env)?;
    let user_key = identity.user_key();
    let merchant = identity.has_scope(crate::ORDERS_WRITE);
    let reader = if merchant {
        Reader::Merchant
    } else {
        Reader::Owner(&user_key)
    };
    let order = crate::d1::read(&db, &cx.read_start(), async |handle| {
        let Some(mut order) = store::find_as(&handle, reader, &id).await? else {
            return Ok(None);
        };
        if merchant {
            order.events = Some(store::events_of(&handle, &id).await?);
        }
        Ok(Some(order))
    })
    .await?
    .ok_or(ApiError::NotFound)?;
    http::json(200, &order, PRIVATE_NO_STORE)
}

/// `POST /orders/{id}/cancel`: the owner cancels a confirmed order; stock goes back in the same
/// transaction. Cancelled already → 200 unchanged; fulfilled → 409; another user's → 404. A
/// body is ignored (never read).
///
/// # Errors
/// 401, 404, 409, 429 (the write limit), 503.
pub async fn cancel(cx: &mut Cx, id: &str) -> Result<Response, ApiError> {
    let identity = authenticate(cx).await?;
    let user_key = identity.user_key();
    crate::limits::check_write(cx, &user_key).await?;
    transition(cx, id, Transition::Cancel, Reader::Owner(&user_key)).await
}

/// `POST /orders/{id}/fulfilment`: the merchant (`orders:write`) marks a confirmed order
/// fulfilled, any user's. Fulfilled already → 200 unchanged; cancelled → 409.
///
/// # Errors
/// 401, 403, 404, 409, 429 (the write limit), 503.
pub async fn fulfil(cx: &mut Cx, id: &str) -> Result<Response, ApiError> {
    let merchant = require_scope(cx, crate::ORDERS_WRITE).await?;
    crate::limits::check_write(cx, &merchant.user_key()).await?;
    transition(cx, id, Transition::Fulfil, Reader::Merchant).await
}

/// Reads the order, decides, and makes the transition in one batch with its event; then hands
/// the event to the queue (a failed send is left to the outbox sweep).
async fn transition(
    cx: &mut Cx,
    id: &str,
    transition: Transition,
    reader: Reader<'_>,
) -> Result<Response, ApiError> {
    let id = OrderId::parse(id).ok_or(ApiError::NotFound)?;
    let db = crate::catalogue::store::database(&cx.env)?;
    let order = store::find_as(&db, reader, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    match transition.decide(order.status) {
        Step::Unchanged => return http::json(200, &order, PRIVATE_NO_STORE),
        Step::Refused => return Err(transition.refusal().into()),
        Step::Apply => {}
    }
    let event = EventBody::new(
        transition.event(),
        &id,
        order.total_minor,
        order.currency,
        cx.now,
    );
    let (made, bookmark, revised) =
        store::transition(&db, reader, &id, transition, &event, &random_id(), cx.now).await?;
    if made {
        super::events::publish_after_response(
            &cx.ctx,
            &cx.env,
            vec![EventId::derive(&id, transition.event())],
        );
        // A cancel returned stock: this location's cached pages of the products whose band
        // it moved show it from the next read.
        let policy = crate::catalogue::caching::CachePolicy::from_config(cx.config()?);
        crate::catalogue::handlers::stock_changed(cx, policy, &revised).await;
    }
    // Another attempt may have won the race (the same transition, or the other one).
    let order = store::find_as(&db, reader, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    match transition.decide(order.status) {
        Step::Unchanged => with_bookmark(
            http::json(200, &order, PRIVATE_NO_STORE)?,
            bookmark.as_ref(),
        ),
        Step::Refused => Err(transition.refusal().into()),
        Step::Apply => Err(ApiError::Internal(
            "order still confirmed after its transition batch".into(),
        )),
    }
}

/// A stored response as sent: the same status, `Content-Type`, `Location` and body every time,
/// plus `Idempotent-Replayed: true` on replays.
fn respond(stored: &StoredResponse, replayed: bool) -> Result<Response, ApiError> {
    let headers = Headers::new();
    let set = |name: &str, value: &str| {
        headers
            .set(name, value)
            .map_err(|e| ApiError::Internal(format!("set header {name}: {e}")))
    };
    set("Content-Type", &stored.content_type)?;
    // The same `Cache-Control` as every other response of its kind: problems are `no-store`
    // (as `http::problem_response` sends them), orders `private, no-store`.
    let cache_control = if stored.status >= 400 {
        "no-store"
    } else {
        PRIVATE_NO_STORE
    };
    set("Cache-Control", cache_control)?;
    if let Some(location) = &stored.location {
        set("Location", location)?;
    }
    if replayed {
        set("Idempotent-Replayed", "true")?;
    }
    Ok(Response::builder()
        .with_status(stored.status)
        .with_headers(headers)
        .fixed(stored.body.clone().into_bytes()))
}

/// Where the test delay holds the checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DelayAt {
    BeforeWrite,
    AfterWrite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TestDelay {
    ms: u64,
    at: DelayAt,
}

impl TestDelay {
    fn before_write(self) -> Option<u64> {
        match self.at {
            DelayAt::BeforeWrite => Some(self.ms),
            DelayAt::AfterWrite => None,
        }
    }

    fn after_write(self) -> Option<u64> {
        match self.at {
            DelayAt::BeforeWrite => None,
            DelayAt::AfterWrite => Some(self.ms),
        }
    }
}

/// The delay hook: honoured only in development, at most 10 s; ignored in production.
fn test_delay(cx: &Cx, config: &Config) -> Result<Option<TestDelay>, ApiError> {
    if !config.is_development() {
        return Ok(None);
    }
    let Some(text) = cx.header(TEST_DELAY_HEADER) else {
        return Ok(None);
    };
    let ms = text
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|ms| *ms <= MAX_TEST_DELAY_MS)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{TEST_DELAY_HEADER} must be a whole number of milliseconds up to 10000."
            ))
        })?;
    let at = match cx.header(TEST_DELAY_AT_HEADER).as_deref().map(str::trim) {
        None | Some("before-write") => DelayAt::BeforeWrite,
        Some("after-write") => DelayAt::AfterWrite,
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "{TEST_DELAY_AT_HEADER} must be `before-write` or `after-write`."
            )))
        }
    };
    Ok(Some(TestDelay { ms, at }))
}
