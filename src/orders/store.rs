//! The orders' D1 adapter: the atomic checkout write and the owner-scoped reads (edge).
//!
//! Role: the only code that speaks SQL about `orders`, `order_lines` and `order_events`, and the
//! only code that changes `products.stock` for orders (down at checkout, back at a cancel).
//!
//! Consistency: D1 has one primary and read replicas reached through sessions. Every write here
//! runs on the primary; the checkout and the transitions run theirs in a `first-primary`
//! session and return its bookmark, so the writer's later reads (orders, the cart's pricing)
//! can start from it ([`crate::d1::read`]). Reads take a handle ([`crate::d1::Database`]): the
//! routes that serve a user's reads pass a session from the request's bookmark, the checkout
//! and the transitions read on the primary. A checkout is one `batch()`, which D1 runs as one
//! transaction:
//!
//! 1. `INSERT` the order (its id is derived from the idempotency record, so the primary key
//!    refuses a second order for the same checkout; the unique index on (user, cart id, cart
//!    version) refuses a second order of the same cart state under any other key);
//! 2. `INSERT` each line;
//! 3. `UPDATE products SET stock = stock - n` per line: the `stock >= 0` CHECK fails the whole
//!    batch on an oversell, so two buyers racing for the last unit cannot both win;
//! 4. give each product whose stock band (or count while low) moved the next catalogue
//!    generation as its revision, and bump the generation only if one did, so cached catalogue
//!    pages change only where a shopper sees a change (`catalogue::store::revise_if_visible`);
//! 5. set `lines_verified` to the number of lines whose product still exists at the charged
//!    price and currency; the table's CHECK fails the batch unless it equals the line count.
//!
//! 6. `INSERT` the `order.confirmed` event into `order_events`, the outbox (written right after
//!    the order; the order of statements in one transaction does not matter).
//!
//! Either everything is written or nothing is. Cancel and fulfilment are one batch each too
//! ([`transition`]): the conditional status change, its event, and (cancel) the stock returned,
//! guarded so that of two attempts at once only one makes the transition. The consumer's reads
//! and writes of the outbox's delivery state are here as well. Every owner read filters on the
//! owner's `user_key`, so another user's order id reads exactly like a missing one; the
//! merchant ([`Reader::Merchant`]) reads by id only.

use serde::Deserialize;
use worker::{D1Database, D1PreparedStatement};

use super::model::{
    Cursor, Delivery, Email, EventBody, EventId, EventState, EventType, Order, OrderId, OrderLine,
    OrderStatus, PageQuery, Plan, ShippingAddress, Transition,
};
use crate::catalogue::model::{Currency, Sku};
use crate::catalogue::store::{self as catalogue, Revised};
use crate::d1::{Bookmark, Database, Param, Session};
use crate::http::{problem::ApiError, unavailable};
use crate::time::UnixMillis;

const ORDER_COLUMNS: &str =
    "id, status, currency, total_minor, created_at, cart_version, email, shipping_address";
const LINE_COLUMNS: &str =
    "order_id, position, sku, name, unit_price_minor, quantity, line_total_minor";

/// An order about to be written.
pub struct NewOrder<'a> {
    pub id: &'a OrderId,
    pub user_key: &'a str,
    pub plan: &'a Plan,
    pub cart_version: u64,
    /// The cart's [`crate::cart::model::Cart::checkout_identity`]: with `cart_version`, what
    /// the one-order-per-cart index guards.
    pub cart_id: &'a str,
    pub email: Option<&'a Email>,
    pub shipping_address: Option<&'a ShippingAddress>,
    pub created_at: UnixMillis,
}

impl NewOrder<'_> {
    /// The order as it will read back once written.
    #[must_use]
    pub fn to_order(&self) -> Order {
        Order {
            id: self.id.clone(),
            status: OrderStatus::Confirmed,
            items: self.plan.lines.clone(),
            total_minor: self.plan.total_minor,
            currency: self.plan.currency,
            created_at: self.created_at.to_rfc3339(),
            email: self.email.cloned(),
            shipping_address: self.shipping_address.cloned(),
            created_ms: self.created_at.0,
            cart_version: self.cart_version,
            events: None,
        }
    }

    /// The `order.confirmed` event the checkout batch writes.
    #[must_use]
    pub fn event(&self) -> (EventId, EventBody) {
        (
            EventId::derive(self.id, EventType::Confirmed),
            EventBody::new(
                EventType::Confirmed,
                self.id,
                self.plan.total_minor,
                self.plan.currency,
                self.created_at,
            ),
        )
    }
}

/// Why the checkout batch was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitFailure {
    /// A constraint refused it (stock, an existing order id, a vanished or repriced product):
    /// nothing was written; the caller finds out which.
    Refused(String),
    /// D1 could not be reached or failed otherwise; whether it committed is unknown.
    Unavailable(String),
}

/// Writes the order, its lines and the stock decrement atomically (see the module header), on
/// the primary. Returns the write's bookmark when D1 gave one, and the products whose
/// shopper-visible stock changed (for the catalogue's caches).
///
/// # Errors
/// A [`CommitFailure`]; bind errors become [`CommitFailure::Unavailable`].
pub async fn commit(
    db: &D1Database,
    order: &NewOrder<'_>,
) -> Result<(Option<Bookmark>, Revised), CommitFailure> {
    let (statements, revised_at) = commit_statements(db, order)
        .map_err(|e| CommitFailure::Unavailable(e.log_detail().unwrap_or_default()))?;
    let session = Session::primary(db).map_err(|e| CommitFailure::Unavailable(e.to_string()))?;
    match crate::d1::batch(&session.handle(), statements).await {
        Ok(results) => {
            if let Some(failed) = results.iter().find(|r| !r.success()) {
                return Err(CommitFailure::Refused(failed.error().unwrap_or_default()));
            }
            // The order is written: a revision that does not decode costs only its cache
            // invalidation here (the caches' own expiry still bounds it), never the order.
            let revised = Revised::from_outcome(results.get(revised_at)).unwrap_or_default();
            Ok((session.bookmark(), revised))
        }
        Err(e) => {
            let text = e.to_string();
            if text.to_ascii_lowercase().contains("constraint") {
                Err(CommitFailure::Refused(text))
            } else {
                Err(CommitFailure::Unavailable(text))
            }
        }
    }
}

/// The checkout batch, and the position of its [`Revised`] statement.
fn commit_statements(
    db: &D1Database,
    order: &NewOrder<'_>,
) -> Result<(Vec<D1PreparedStatement>, usize), ApiError> {
    let plan = order.plan;
    let mut statements = Vec::with_capacity(plan.lines.len() * 2 + 3);
    statements.push(bind(
        db.prepare(
            "INSERT INTO orders (id, user_key, status, currency, total_minor, line_count,
                cart_version, email, shipping_address, created_at, cart_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        ),
        &[
            text(order.id.as_str()),
            text(order.user_key),
            text(OrderStatus::Confirmed.as_str()),
            text(plan.currency.as_str()),
            int(plan.total_minor),
            count(plan.lines.len()),
            uint(order.cart_version),
            order.email.map_or(Param::NULL, |e| text(e.as_str())),
            order
                .shipping_address
                .map_or(Param::NULL, |a| text(&a.to_json())),
            uint(order.created_at.0),
            text(order.cart_id),
        ],
    )?);
    // The outbox: the `order.confirmed` event, in the same transaction as the order. Its id is
    // derived from the order id, and the order id's primary key already refuses a second
    // checkout of the same record, so a retried checkout cannot write it twice.
    let (event_id, event) = order.event();
    statements.push(insert_event_statement(
        db,
        &event_id,
        order.id,
        &event,
        "checkout",
        order.created_at,
    )?);
    for (position, line) in plan.lines.iter().enumerate() {
        statements.push(bind(
            db.prepare(format!(
                "INSERT INTO order_lines ({LINE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            )),
            &[
                text(order.id.as_str()),
                count(position),
                text(line.sku.as_str()),
                text(&line.name),
                int(line.unit_price_minor),
                uint(u64::from(line.quantity)),
                int(line.line_total_minor),
            ],
        )?);
    }
    for line in &plan.lines {
        statements.push(bind(
            db.prepare(format!(
                "UPDATE products SET stock = stock - ?2, {} WHERE sku = ?1",
                catalogue::revise_if_visible("stock - ?2")
            )),
            &[text(line.sku.as_str()), uint(u64::from(line.quantity))],
        )?);
    }
    let skus: Vec<&str> = plan.lines.iter().map(|l| l.sku.as_str()).collect();
    let skus = serde_json::to_string(&skus)
        .map_err(|e| ApiError::Internal(format!("serialise skus: {e}")))?;
    let revised_at = statements.len();
    statements.push(catalogue::bump_if_revised(
        db,
        "SELECT value FROM json_each(?1)",
        &[text(&skus)],
    )?);
    statements.push(bind(
        db.prepare(
            "UPDATE orders SET lines_verified = (
                SELECT count(*) FROM order_lines l JOIN products p ON p.sku = l.sku
                WHERE l.order_id = ?1 AND p.price_minor = l.unit_price_minor AND p.currency = ?2
             ) WHERE id = ?1",
        ),
        &[text(order.id.as_str()), text(plan.currency.as_str())],
    )?);
    Ok((statements, revised_at))
}

/// Whether the user already has an order of this cart state (cart id and version): after a
/// refused batch, tells a second checkout of the same cart from a shortage.
///
/// # Errors
/// 503 when D1 fails.
pub async fn cart_checked_out(
    db: &D1Database,
    user_key: &str,
    cart_id: &str,
    cart_version: u64,
) -> Result<bool, ApiError> {
    let statement = bind(
        db.prepare(
            "SELECT count(*) AS n FROM orders
             WHERE user_key = ?1 AND cart_id = ?2 AND cart_version = ?3",
        ),
        &[text(user_key), text(cart_id), uint(cart_version)],
    )?;
    let n = crate::d1::first_column(&statement, "n")
        .await
        .map_err(|e| unavailable("d1 find order of cart", &e))?;
    Ok(n.number().is_some_and(|n| n > 0.0))
}

/// Whose orders a lookup may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader<'a> {
    /// The owner (by user key): another user's order reads like a missing one.
    Owner(&'a str),
    /// The merchant (`orders:write`): any order, by id only.
    Merchant,
}

impl Reader<'_> {
    fn user_key(self) -> Param {
        match self {
            Self::Owner(key) => text(key),
            Self::Merchant => Param::NULL,
        }
    }
}

/// The caller's order `id`, or `None` (also when it is someone else's).
///
/// # Errors
/// 503 when D1 fails; 500 when a stored row does not parse.
pub async fn find(
    db: &impl Database,
    user_key: &str,
    id: &OrderId,
) -> Result<Option<Order>, ApiError> {
    find_as(db, Reader::Owner(user_key), id).await
}

/// Order `id` as `reader` may see it, or `None`.
///
/// # Errors
/// 503 when D1 fails; 500 when a stored row does not parse.
pub async fn find_as(
    db: &impl Database,
    reader: Reader<'_>,
    id: &OrderId,
) -> Result<Option<Order>, ApiError> {
    let orders = bind(
        db.prepare(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?1 AND (?2 IS NULL OR user_key = ?2)"
        )),
        &[text(id.as_str()), reader.user_key()],
    )?;
    let lines = bind(
        db.prepare(&format!(
            "SELECT {LINE_COLUMNS} FROM order_lines
             WHERE order_id = (SELECT id FROM orders WHERE id = ?1 AND (?2 IS NULL OR user_key = ?2))
             ORDER BY position"
        )),
        &[text(id.as_str()), reader.user_key()],
    )?;
    let mut orders = read_orders(db, orders, lines).await?;
    Ok(orders.pop())
}

/// Makes `transition` of a confirmed order in one batch, with its event (the outbox):
///
/// 1. `UPDATE orders SET status = target WHERE id AND status = 'confirmed'` (and the owner, for
///    a cancel): of two attempts at once, D1 runs one batch after the other, so only one
///    changes the row;
/// 2. insert the event stamped with this attempt's `attempt`, only if the order now has the
///    target status, ignoring an existing event of the same id (the other attempt's);
/// 3. for a cancel, return each line's quantity to its product (a product deleted since gets
///    nothing back), only if the event carries this attempt's stamp, i.e. only in the batch
///    that made the transition; a product whose band (or count while low) moves takes the
///    next catalogue generation as its revision, and the generation is bumped if one did.
///
/// Returns whether this attempt made the transition, the batch's bookmark when D1 gave one
/// (the batch runs on the primary, in a session that reports it), and the products whose
/// shopper-visible stock it changed.
///
/// # Errors
/// 503 when D1 fails (nothing or everything was written).
pub async fn transition(
    db: &D1Database,
    reader: Reader<'_>,
    id: &OrderId,
    transition: Transition,
    event: &EventBody,
    attempt: &str,
    now: crate::time::UnixMillis,
) -> Result<(bool, Option<Bookmark>, Revised), ApiError> {
    let target = transition.target().as_str();
    let event_id = EventId::derive(id, transition.event());
    let mut statements = vec![
        bind(
            db.prepare(
                "UPDATE orders SET status = ?3
                 WHERE id = ?1 AND (?2 IS NULL OR user_key = ?2) AND status = 'confirmed'",
            ),
            &[text(id.as_str()), reader.user_key(), text(target)],
        )?,
        bind(
            db.prepare(
                "INSERT INTO order_events (id, order_id, type, body, attempt, created_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6
                 WHERE EXISTS (SELECT 1 FROM orders WHERE id = ?2 AND status = ?7)
                 ON CONFLICT (id) DO NOTHING",
            ),
            &[
                text(event_id.as_str()),
                text(id.as_str()),
                text(transition.event().as_str()),
                text(&event.to_json()),
                text(attempt),
                uint(now.0),
                text(target),
            ],
        )?,
    ];
    match transition {
        Transition::Cancel => {
            statements.push(bind(
                db.prepare(format!(
                    "UPDATE products SET stock = stock + ({RETURNED}), {}
                     WHERE sku IN (SELECT sku FROM order_lines WHERE order_id = ?1)
                       AND EXISTS (SELECT 1 FROM order_events WHERE id = ?2 AND attempt = ?3)",
                    catalogue::revise_if_visible(&format!("stock + ({RETURNED})"))
                )),
                &[text(id.as_str()), text(event_id.as_str()), text(attempt)],
            )?);
            statements.push(catalogue::bump_if_revised(
                db,
                "SELECT sku FROM order_lines WHERE order_id = ?1",
                &[text(id.as_str())],
            )?);
        }
        Transition::Fulfil => {}
    }
    let session = Session::primary(db).map_err(|e| unavailable("d1 session", &e))?;
    let results = crate::d1::batch(&session.handle(), statements)
        .await
        .map_err(|e| unavailable("d1 order transition batch", &e))?;
    if let Some(failed) = results.iter().find(|r| !r.success()) {
        return Err(ApiError::Internal(format!(
            "order transition batch: {}",
            failed.error().unwrap_or_default()
        )));
    }
    let made = results.first().is_some_and(|r| r.changes() > 0);
    // The transition is written: a revision that does not decode costs only its cache
    // invalidation (the caches' own expiry still bounds it).
    let revised = match transition {
        Transition::Cancel => Revised::from_outcome(results.last()).unwrap_or_default(),
        Transition::Fulfil => Revised::default(),
    };
    Ok((made, session.bookmark(), revised))
}

/// The quantity a cancel returns to a product: the sum of its lines in the order.
const RETURNED: &str = "SELECT sum(l.quantity) FROM order_lines l
    WHERE l.order_id = ?1 AND l.sku = products.sku";

/// The events of an order, oldest first, with their delivery state (for the merchant).
///
/// # Errors
/// 503 when D1 fails; 500 when a stored row does not parse.
pub async fn events_of(db: &impl Database, id: &OrderId) -> Result<Vec<EventState>, ApiError> {
    let statement = bind(
        db.prepare(
            "SELECT id, type, delivery, attempts, created_at, delivered_at, last_status
             FROM order_events WHERE order_id = ?1 ORDER BY created_at, id",
        ),
        &[text(id.as_str())],
    )?;
    let rows: Vec<EventRow> = crate::d1::all(&statement)
        .await
        .map_err(|e| unavailable("d1 read order events", &e))?
        .results()
        .map_err(|_| ApiError::Internal("decode order event rows failed".into()))?;
    rows.into_iter().map(EventRow::into_state).collect()
}

#[derive(Deserialize)]
struct EventRow {
    id: String,
    #[serde(rename = "type")]
    event: String,
    delivery: String,
    attempts: u32,
    created_at: u64,
    delivered_at: Option<u64>,
    last_status: Option<u16>,
}

impl EventRow {
    fn into_state(self) -> Result<EventState, ApiError> {
        let bad =
            |what: &str| ApiError::Internal(format!("stored order event has an invalid {what}"));
        Ok(EventState {
            id: EventId::parse(&self.id).ok_or_else(|| bad("id"))?,
            event: EventType::parse(&self.event).ok_or_else(|| bad("type"))?,
            delivery: Delivery::parse(&self.delivery).ok_or_else(|| bad("delivery"))?,
            attempts: self.attempts,
            created_at: crate::time::UnixMillis(self.created_at).to_rfc3339(),
            delivered_at: self
                .delivered_at
                .map(|ms| crate::time::UnixMillis(ms).to_rfc3339()),
            last_status: self.last_status,
        })
    }
}

/// A pending event about to be attempted: its stored body and the attempts so far.
#[derive(Debug, Clone, Deserialize)]
pub struct Attempting {
    pub body: String,
    pub attempts: u32,
}

/// Counts a delivery attempt of a pending event before it is made (a crash during it still
/// counts) and marks the event touched, in one statement; returns its body and attempts so far.
/// `None` when there is no such event or it is no longer pending (delivered, or undelivered):
/// a duplicate message, acked without a delivery.
///
/// # Errors
/// 503 when D1 fails; 500 when the row does not decode.
pub async fn begin_attempt(
    db: &D1Database,
    id: &EventId,
    now: UnixMillis,
) -> Result<Option<Attempting>, ApiError> {
    let statement = bind(
        db.prepare(
            "UPDATE order_events SET attempts = attempts + 1, touched_at = ?2
             WHERE id = ?1 AND delivery = 'pending' RETURNING body, attempts",
        ),
        &[text(id.as_str()), uint(now.0)],
    )?;
    let rows: Vec<Attempting> = crate::d1::all(&statement)
        .await
        .map_err(|e| unavailable("d1 begin delivery attempt", &e))?
        .results()
        .map_err(|_| ApiError::Internal("decode outbox event failed".into()))?;
    Ok(rows.into_iter().next())
}

/// Whether event `id` is pending (for a message that finds no webhook configured).
///
/// # Errors
/// 503 when D1 fails.
pub async fn is_pending(db: &D1Database, id: &EventId) -> Result<bool, ApiError> {
    let statement = bind(
        db.prepare("SELECT count(*) AS n FROM order_events WHERE id = ?1 AND delivery = 'pending'"),
        &[text(id.as_str())],
    )?;
    let n = crate::d1::first_column(&statement, "n")
        .await
        .map_err(|e| unavailable("d1 read outbox event", &e))?;
    Ok(n.number().is_some_and(|n| n > 0.0))
}

/// Records the answer of an attempt: delivered (2xx) or still pending, with its status
/// (`None` after a timeout or a failed connection). A delivered event stays delivered.
///
/// # Errors
/// 503 when D1 fails.
pub async fn record_answer(
    db: &D1Database,
    id: &EventId,
    delivered: bool,
    status: Option<u16>,
    now: UnixMillis,
) -> Result<(), ApiError> {
    let status = status.map_or(Param::NULL, |s| uint(u64::from(s)));
    let statement = if delivered {
        bind(
            db.prepare(
                "UPDATE order_events SET delivery = 'delivered', delivered_at = ?2, last_status = ?3
                 WHERE id = ?1",
            ),
            &[text(id.as_str()), uint(now.0), status],
        )?
    } else {
        bind(
            db.prepare(
                "UPDATE order_events SET last_status = ?2 WHERE id = ?1 AND delivery <> 'delivered'",
            ),
            &[text(id.as_str()), status],
        )?
    };
    crate::d1::run(&statement)
        .await
        .map(|_| ())
        .map_err(|e| unavailable("d1 record delivery answer", &e))
}

/// Marks a pending event undelivered (its message reached the dead-letter queue); a delivered
/// one (a duplicate message succeeded) stays delivered. Returns whether it changed.
///
/// # Errors
/// 503 when D1 fails.
pub async fn mark_undelivered(
    db: &D1Database,
    id: &EventId,
    now: UnixMillis,
) -> Result<bool, ApiError> {
    let statement = bind(
        db.prepare(
            "UPDATE order_events SET delivery = 'undelivered', touched_at = ?2
             WHERE id = ?1 AND delivery = 'pending'",
        ),
        &[text(id.as_str()), uint(now.0)],
    )?;
    crate::d1::run(&statement)
        .await
        .map(|o| o.changes() > 0)
        .map_err(|e| unavailable("d1 mark event undelivered", &e))
}

/// Up to `limit` pending events nobody touched since `before` (never sent, a lost send, a lost
/// message), oldest first.
///
/// # Errors
/// 503 when D1 fails.
pub async fn stale_pending_events(
    db: &D1Database,
    before: UnixMillis,
    limit: u32,
) -> Result<Vec<EventId>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
    }
    let statement = bind(
        db.prepare(
            "SELECT id FROM order_events
             WHERE delivery = 'pending' AND coalesce(touched_at, created_at) <= ?1
             ORDER BY created_at, id LIMIT ?2",
        ),
        &[uint(before.0), uint(u64::from(limit))],
    )?;
    let rows: Vec<Row> = crate::d1::all(&statement)
        .await
        .map_err(|e| unavailable("d1 read stale events", &e))?
        .results()
        .map_err(|_| ApiError::Internal("decode stale event rows failed".into()))?;
    Ok(rows.iter().filter_map(|r| EventId::parse(&r.id)).collect())
}

/// Marks events touched (just handed to the queue by the sweep).
///
/// # Errors
/// 503 when D1 fails.
pub async fn touch_events(
    db: &D1Database,
    ids: &[EventId],
    now: UnixMillis,
) -> Result<(), ApiError> {
    let statements = ids
        .iter()
        .map(|id| {
            bind(
                db.prepare("UPDATE order_events SET touched_at = ?2 WHERE id = ?1"),
                &[text(id.as_str()), uint(now.0)],
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    if statements.is_empty() {
        return Ok(());
    }
    crate::d1::batch(db, statements)
        .await
        .map(|_| ())
        .map_err(|e| unavailable("d1 touch events", &e))
}

/// The statement that writes an event into the outbox.
fn insert_event_statement(
    db: &D1Database,
    id: &EventId,
    order: &OrderId,
    event: &EventBody,
    attempt: &str,
    now: UnixMillis,
) -> Result<D1PreparedStatement, ApiError> {
    bind(
        db.prepare(
            "INSERT INTO order_events (id, order_id, type, body, attempt, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        ),
        &[
            text(id.as_str()),
            text(order.as_str()),
            text(event.event.as_str()),
            text(&event.to_json()),
            text(attempt),
            uint(now.0),
        ],
    )
}

/// A page of the caller's orders, newest first, and the cursor of the next page.
///
/// # Errors
/// 503 when D1 fails; 500 when a stored row does not parse.
pub async fn page(
    db: &impl Database,
    user_key: &str,
    query: &PageQuery,
) -> Result<(Vec<Order>, Option<Cursor>), ApiError> {
    let fetch = i64::from(query.limit) + 1;
    let (filter, values) = match &query.cursor {
        None => ("user_key = ?1", vec![text(user_key), int(fetch)]),
        Some(c) => (
            "user_key = ?1 AND (created_at < ?3 OR (created_at = ?3 AND id < ?4))",
            vec![
                text(user_key),
                int(fetch),
                uint(c.created_ms),
                text(c.id.as_str()),
            ],
        ),
    };
    let page = format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE {filter}
         ORDER BY created_at DESC, id DESC LIMIT ?2"
    );
    let lines = format!(
        "SELECT {LINE_COLUMNS} FROM order_lines WHERE order_id IN (
            SELECT id FROM orders WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT ?2
         ) ORDER BY order_id, position"
    );
    let orders = bind(db.prepare(&page), &values)?;
    let lines = bind(db.prepare(&lines), &values)?;
    let mut orders = read_orders(db, orders, lines).await?;
    let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
    let next = if orders.len() > limit {
        orders.truncate(limit);
        orders.last().map(|o| Cursor {
            created_ms: o.created_ms,
            id: o.id.clone(),
        })
    } else {
        None
    };
    Ok((orders, next))
}

/// Runs the order and line queries in one batch (one snapshot) and joins them in order.
async fn read_orders(
    db: &impl Database,
    orders: D1PreparedStatement,
    lines: D1PreparedStatement,
) -> Result<Vec<Order>, ApiError> {
    let results = crate::d1::batch(db, vec![orders, lines])
        .await
        .map_err(|e| unavailable("d1 read orders", &e))?;
    let mut results = results.into_iter();
    let (Some(orders), Some(lines)) = (results.next(), results.next()) else {
        return Err(ApiError::Internal(
            "order batch returned too few results".into(),
        ));
    };
    let orders: Vec<OrderRow> = orders
        .results()
        // The decoder's message may quote a value (an email, an address): never log it.
        .map_err(|_| ApiError::Internal("decode order rows failed".into()))?;
    let lines: Vec<LineRow> = lines
        .results()
        .map_err(|_| ApiError::Internal("decode order line rows failed".into()))?;
    orders
        .into_iter()
        .map(|row| {
            let items = lines
                .iter()
                .filter(|l| l.order_id == row.id)
                .map(LineRow::to_line)
                .collect::<Result<Vec<_>, _>>()?;
            row.into_order(items)
        })
        .collect()
}

#[derive(Deserialize)]
struct OrderRow {
    id: String,
    status: String,
    currency: String,
    total_minor: i64,
    created_at: u64,
    cart_version: u64,
    email: Option<String>,
    shipping_address: Option<String>,
}

impl OrderRow {
    fn into_order(self, items: Vec<OrderLine>) -> Result<Order, ApiError> {
        let bad = |what: &str| ApiError::Internal(format!("stored order has an invalid {what}"));
        Ok(Order {
            id: OrderId::parse(&self.id).ok_or_else(|| bad("id"))?,
            status: OrderStatus::parse(&self.status).ok_or_else(|| bad("status"))?,
            items,
            total_minor: self.total_minor,
            currency: Currency::parse(&self.currency).map_err(|_| bad("currency"))?,
            created_at: UnixMillis(self.created_at).to_rfc3339(),
            email: self.email.map(Email::from_stored),
            shipping_address: self
                .shipping_address
                .as_deref()
                .map(ShippingAddress::from_stored)
                .transpose()
                .map_err(ApiError::Internal)?,
            created_ms: self.created_at,
            cart_version: self.cart_version,
            events: None,
        })
    }
}

#[derive(Deserialize)]
struct LineRow {
    order_id: String,
    sku: String,
    name: String,
    unit_price_minor: i64,
    quantity: u32,
    line_total_minor: i64,
}

impl LineRow {
    fn to_line(&self) -> Result<OrderLine, ApiError> {
        Ok(OrderLine {
            sku: Sku::parse(&self.sku)
                .map_err(|e| ApiError::Internal(format!("stored order line sku ({e:?})")))?,
            name: self.name.clone(),
            unit_price_minor: self.unit_price_minor,
            quantity: self.quantity,
            line_total_minor: self.line_total_minor,
            available: true,
        })
    }
}

fn bind(stmt: D1PreparedStatement, values: &[Param]) -> Result<D1PreparedStatement, ApiError> {
    crate::d1::bind(&stmt, values).map_err(|e| unavailable("d1 bind", &e))
}

fn text(s: &str) -> Param {
    Param::text(s)
}

#[allow(clippy::cast_precision_loss)] // money and counts bound here are validated far below 2^53
fn int(n: i64) -> Param {
    Param::number(n as f64)
}

#[allow(clippy::cast_precision_loss)] // milliseconds and versions are far below 2^53
fn uint(n: u64) -> Param {
    Param::number(n as f64)
}

#[allow(clippy::cast_precision_loss)] // positions and line counts are at most 50
fn count(n: usize) -> Param {
    Param::number(n as f64)
}
