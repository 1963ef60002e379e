//! The orders' vocabulary and the checkout decision (pure).
//!
//! No `worker` types, no clock, no storage: [`OrderId`], the parsed checkout body
//! ([`CheckoutRequest`] with [`Email`] and [`ShippingAddress`], whose `Debug` is redacted so
//! personal data cannot reach a log by accident), the [`Order`] as returned, the checkout
//! [`plan`] from a priced cart, and the listing's opaque [`Cursor`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::cart::model::PricedCart;
use crate::catalogue::model::{Currency, Product, Sku};
use crate::idempotency::key::RecordKey;
use crate::json::BodyError;
use crate::time::UnixMillis;

/// An order id: `ord_` and 32 lower-case hex digits.
///
/// Derived, never random: from the idempotency record (which is scoped to the user and the
/// client's key) and the record's creation time. A retry that takes over a crashed attempt
/// derives the same id and finds that attempt's order instead of writing a second one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct OrderId(String);

impl OrderId {
    const PREFIX: &'static str = "ord_";
    const HEX_LEN: usize = 32;

    /// The id of the order a record guards.
    #[must_use]
    pub fn derive(record: &RecordKey, created_at: UnixMillis) -> Self {
        let digest = record.operation_id(created_at);
        Self(format!(
            "{}{}",
            Self::PREFIX,
            digest.get(..Self::HEX_LEN).unwrap_or(&digest)
        ))
    }

    /// Parses an id from a path. Anything malformed is simply "no such order".
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix(Self::PREFIX)?;
        crate::hash::is_lower_hex(hex, Self::HEX_LEN).then(|| Self(text.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A contact email: 3–254 characters (Unicode scalar values, as JSON Schema's `maxLength`
/// counts them), one `@` with 1–64 characters before it and some after, no whitespace or
/// control characters. Deliberately loose (addresses are verified by sending mail, not by regex).
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// # Errors
    /// [`OrderError::InvalidEmail`], which does not quote the value.
    pub fn parse(text: &str) -> Result<Self, OrderError> {
        let refuse = || OrderError::InvalidEmail;
        if !(3..=254).contains(&text.chars().count())
            || text.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(refuse());
        }
        let (local, domain) = text.split_once('@').ok_or_else(refuse)?;
        if local.is_empty()
            || domain.is_empty()
            || domain.contains('@')
            || local.chars().count() > 64
        {
            return Err(refuse());
        }
        Ok(Self(text.to_owned()))
    }

    /// A stored value, written by [`Email::parse`].
    #[must_use]
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(…)")
    }
}

/// A shipping address: a JSON object of at most 20 members, names of 1–64 characters,
/// values strings of at most 500 characters (or `null`). The shape of addresses differs by
/// country, so the members are the client's; only their size is ours.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ShippingAddress(serde_json::Map<String, serde_json::Value>);

impl ShippingAddress {
    pub const MAX_MEMBERS: usize = 20;
    pub const MAX_NAME: usize = 64;
    pub const MAX_VALUE: usize = 500;

    /// # Errors
    /// [`OrderError::InvalidAddress`] naming the rule broken, never quoting the value.
    pub fn parse(value: serde_json::Value) -> Result<Self, OrderError> {
        let refuse = OrderError::InvalidAddress;
        let serde_json::Value::Object(map) = value else {
            return Err(refuse("must be a JSON object"));
        };
        if map.len() > Self::MAX_MEMBERS {
            return Err(refuse("has more than 20 members"));
        }
        for (name, v) in &map {
            if name.is_empty() || name.chars().count() > Self::MAX_NAME {
                return Err(refuse("has a member name that is empty or longer than 64"));
            }
            match v {
                serde_json::Value::Null => {}
                serde_json::Value::String(s) if s.chars().count() <= Self::MAX_VALUE => {}
                serde_json::Value::String(_) => {
                    return Err(refuse("has a value longer than 500 characters"))
                }
                _ => return Err(refuse("values must be strings")),
            }
        }
        Ok(Self(map))
    }

    /// The JSON text stored in D1.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_default()
    }

    /// A stored value, written by [`ShippingAddress::to_json`].
    ///
    /// # Errors
    /// A description when the stored text is not a JSON object (a bug).
    pub fn from_stored(text: &str) -> Result<Self, String> {
        match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(map)) => Ok(Self(map)),
            Ok(_) | Err(_) => Err("stored shipping address is not a JSON object".into()),
        }
    }
}

impl fmt::Debug for ShippingAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShippingAddress(…)")
    }
}

/// The body of `POST /orders` as sent: exactly these members (another one is a 422, so a
/// misspelt `emial` is not silently dropped), the optional ones absent or of their type,
/// never `null`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    #[serde(deserialize_with = "crate::json::whole")]
    cart_version: u64,
    /// The total the client showed the shopper; when it differs from the total computed now,
    /// 409 `/problems/price-changed`.
    #[serde(default, deserialize_with = "crate::json::present_whole")]
    expected_total_minor: Option<i64>,
    #[serde(default, deserialize_with = "crate::json::present")]
    email: Option<String>,
    #[serde(default, deserialize_with = "crate::json::present")]
    shipping_address: Option<serde_json::Value>,
}

/// The parsed body of `POST /orders`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    /// The cart version the client saw and wants to buy.
    pub cart_version: u64,
    /// The total the client expects to pay, when it says.
    pub expected_total_minor: Option<i64>,
    pub email: Option<Email>,
    pub shipping_address: Option<ShippingAddress>,
}

impl CheckoutRequest {
    /// Parses the raw body: strict JSON ([`crate::json::read_body`]) of the shape
    /// above, then the email and the shipping address.
    ///
    /// # Errors
    /// [`OrderError::Body`], [`OrderError::InvalidEmail`] or [`OrderError::InvalidAddress`].
    pub fn parse(bytes: &[u8]) -> Result<Self, OrderError> {
        let body: CheckoutBody = crate::json::read_body(bytes).map_err(OrderError::Body)?;
        Ok(Self {
            cart_version: body.cart_version,
            expected_total_minor: body.expected_total_minor,
            email: body.email.as_deref().map(Email::parse).transpose()?,
            shipping_address: body
                .shipping_address
                .map(ShippingAddress::parse)
                .transpose()?,
        })
    }
}

/// One line of an order: the cart line as priced at checkout, in the cart line's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderLine {
    pub sku: Sku,
    pub name: String,
    pub unit_price_minor: i64,
    pub quantity: u32,
    pub line_total_minor: i64,
    /// Always true: only available lines can be checked out.
    pub available: bool,
}

/// An order as `POST /orders` and `GET /orders/{id}` return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    pub id: OrderId,
    pub status: OrderStatus,
    pub items: Vec<OrderLine>,
    pub total_minor: i64,
    pub currency: Currency,
    /// RFC 3339, from `created_ms`.
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<ShippingAddress>,
    /// When the order was written (milliseconds; the listing's sort key).
    #[serde(skip)]
    pub created_ms: u64,
    /// The cart version that was checked out: a resumed checkout empties the cart only if it
    /// still has this version (never a cart the user has filled again since).
    #[serde(skip)]
    pub cart_version: u64,
    /// The order's events and their delivery state: shown to the merchant only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventState>>,
}

/// An order's state. Checkout confirms at once (payment is out of scope); a confirmed order is
/// then either cancelled by its owner or fulfilled by the merchant, and stays so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Confirmed,
    Cancelled,
    Fulfilled,
}

impl OrderStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::Fulfilled => "fulfilled",
        }
    }

    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Confirmed, Self::Cancelled, Self::Fulfilled]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A change of an order's state after checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The owner cancels: stock goes back.
    Cancel,
    /// The merchant fulfils.
    Fulfil,
}

/// What a transition does to an order in a given state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The order is confirmed: make the transition (one batch, with its event).
    Apply,
    /// The order already is in the target state: answer it unchanged.
    Unchanged,
    /// The order went the other way: refuse (409).
    Refused,
}

impl Transition {
    /// The state the transition leads to.
    #[must_use]
    pub fn target(self) -> OrderStatus {
        match self {
            Self::Cancel => OrderStatus::Cancelled,
            Self::Fulfil => OrderStatus::Fulfilled,
        }
    }

    /// The event the transition writes.
    #[must_use]
    pub fn event(self) -> EventType {
        match self {
            Self::Cancel => EventType::Cancelled,
            Self::Fulfil => EventType::Fulfilled,
        }
    }

    /// The decision from the order's current state.
    #[must_use]
    pub fn decide(self, current: OrderStatus) -> Step {
        match (self, current) {
            (_, OrderStatus::Confirmed) => Step::Apply,
            (Self::Cancel, OrderStatus::Cancelled) | (Self::Fulfil, OrderStatus::Fulfilled) => {
                Step::Unchanged
            }
            (Self::Cancel, OrderStatus::Fulfilled) | (Self::Fulfil, OrderStatus::Cancelled) => {
                Step::Refused
            }
        }
    }

    /// The refusal of [`Step::Refused`].
    #[must_use]
    pub fn refusal(self) -> OrderError {
        match self {
            Self::Cancel => OrderError::NotCancellable,
            Self::Fulfil => OrderError::NotFulfillable,
        }
    }
}

/// The type of an order event (the webhook body's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventType {
    #[serde(rename = "order.confirmed")]
    Confirmed,
    #[serde(rename = "order.cancelled")]
    Cancelled,
    #[serde(rename = "order.fulfilled")]
    Fulfilled,
}

impl EventType {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "order.confirmed",
            Self::Cancelled => "order.cancelled",
            Self::Fulfilled => "order.fulfilled",
        }
    }

    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Confirmed, Self::Cancelled, Self::Fulfilled]
            .into_iter()
            .find(|t| t.as_str() == text)
    }

    /// The order's state the event announces.
    #[must_use]
    pub fn status(self) -> OrderStatus {
        match self {
            Self::Confirmed => OrderStatus::Confirmed,
            Self::Cancelled => OrderStatus::Cancelled,
            Self::Fulfilled => OrderStatus::Fulfilled,
        }
    }
}

/// An event id: `evt_` and 32 lower-case hex digits of a hash of (order id, type).
///
/// Deterministic: a retried checkout or a second cancel derives the same id, so the outbox's
/// primary key holds at most one event of each type per order, and the webhook's `webhook-id`
/// (the receivers' deduplication key) is the same on every delivery of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    const PREFIX: &'static str = "evt_";
    const HEX_LEN: usize = 32;

    #[must_use]
    pub fn derive(order: &OrderId, event: EventType) -> Self {
        let digest = crate::hash::sha256_parts(&[
            b"edgecart order event",
            order.as_str().as_bytes(),
            event.as_str().as_bytes(),
        ]);
        Self(format!(
            "{}{}",
            Self::PREFIX,
            digest.get(..Self::HEX_LEN).unwrap_or(&digest)
        ))
    }

    /// Parses a stored or queued id.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix(Self::PREFIX)?;
        crate::hash::is_lower_hex(hex, Self::HEX_LEN).then(|| Self(text.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where an event's delivery to the webhook stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Not yet answered 2xx (queued, retrying, or kept while no webhook is configured).
    Pending,
    /// The webhook answered 2xx.
    Delivered,
    /// Every attempt failed: the message went to the dead-letter queue.
    Undelivered,
}

impl Delivery {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
        }
    }

    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Undelivered]
            .into_iter()
            .find(|d| d.as_str() == text)
    }
}

/// An event of an order with its delivery state, as the merchant sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventState {
    pub id: EventId,
    #[serde(rename = "type")]
    pub event: EventType,
    pub delivery: Delivery,
    /// Delivery attempts made so far.
    pub attempts: u32,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
    /// The status of the last attempt's answer (none after a timeout or a refused connection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
}

/// An order event as the webhook body carries it (product.md, "order event").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventBody {
    #[serde(rename = "type")]
    pub event: EventType,
    /// When the transition happened (RFC 3339).
    pub timestamp: String,
    pub data: EventData,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventData {
    pub id: OrderId,
    pub status: OrderStatus,
    pub total_minor: i64,
    pub currency: Currency,
}

impl EventBody {
    /// The event of `event` for an order, at `now`.
    #[must_use]
    pub fn new(
        event: EventType,
        order: &OrderId,
        total_minor: i64,
        currency: Currency,
        now: UnixMillis,
    ) -> Self {
        Self {
            event,
            timestamp: now.to_rfc3339(),
            data: EventData {
                id: order.clone(),
                status: event.status(),
                total_minor,
                currency,
            },
        }
    }

    /// The JSON text stored in the outbox and sent as the webhook body.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why an order request or a change of an order is refused, in the order's terms. Its
/// `Display` is the explanation the client is shown; none quotes personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderError {
    /// The checkout body is not one JSON object of the documented shape.
    Body(BodyError),
    /// `email` is not a valid email address.
    InvalidEmail,
    /// `shipping_address` breaks one of its rules: which one.
    InvalidAddress(&'static str),
    /// A listing `cursor` this API did not issue.
    BadCursor,
    /// A listing parameter given twice: its name.
    RepeatedParameter(String),
    /// A listing `limit` that is no whole number from 1 to [`PageQuery::MAX_LIMIT`].
    BadLimit,
    /// Cancel of a fulfilled order.
    NotCancellable,
    /// Fulfilment of a cancelled order.
    NotFulfillable,
}

impl fmt::Display for OrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Body(e) => e.fmt(f),
            Self::InvalidEmail => f.write_str("`email` is not a valid email address."),
            Self::InvalidAddress(why) => write!(f, "`shipping_address` {why}."),
            Self::BadCursor => f.write_str("`cursor` is not a cursor this API issued."),
            Self::RepeatedParameter(name) => write!(f, "`{name}` is given twice."),
            Self::BadLimit => write!(
                f,
                "`limit` must be a whole number from 1 to {}.",
                PageQuery::MAX_LIMIT
            ),
            Self::NotCancellable => {
                f.write_str("The order was already fulfilled: it can no longer be cancelled.")
            }
            Self::NotFulfillable => {
                f.write_str("The order was cancelled: it can no longer be fulfilled.")
            }
        }
    }
}

/// Why a checkout is refused after it began: deterministic answers, stored and replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The cart is no longer at the version the client checked out.
    CartChanged,
    EmptyCart,
    /// The total is not the one the shopper was shown: the total now.
    PriceChanged {
        total_minor: i64,
        currency: Currency,
    },
    /// Not enough stock, or the product left the catalogue / changed currency.
    OutOfStock(Sku),
}

/// What a checkout will write: the lines, their total and currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub lines: Vec<OrderLine>,
    pub total_minor: i64,
    pub currency: Currency,
}

/// The checkout decision from the cart as priced now: stale version → changed; no lines →
/// empty; a line that cannot be bought → out of stock; otherwise the order's lines and total
/// (recomputed with checked arithmetic, not copied from the cart's subtotal).
///
/// # Errors
/// The [`Refusal`].
pub fn plan(expected_version: u64, cart: &PricedCart) -> Result<Plan, Refusal> {
    if cart.version != expected_version {
        return Err(Refusal::CartChanged);
    }
    let currency = match (cart.items.is_empty(), cart.currency) {
        (true, _) => return Err(Refusal::EmptyCart),
        (false, Some(c)) => c,
        (false, None) => return Err(Refusal::CartChanged),
    };
    let mut lines = Vec::with_capacity(cart.items.len());
    let mut total: i64 = 0;
    for item in &cart.items {
        let refuse = || Refusal::OutOfStock(item.sku.clone());
        let unit = match (item.available, item.unit_price_minor) {
            (true, Some(unit)) if unit >= 0 => unit,
            _ => return Err(refuse()),
        };
        let quantity = item.quantity.get();
        let line_total = unit.checked_mul(i64::from(quantity)).ok_or_else(refuse)?;
        total = total.checked_add(line_total).ok_or_else(refuse)?;
        lines.push(OrderLine {
            sku: item.sku.clone(),
            name: item.name.clone(),
            unit_price_minor: unit,
            quantity: u32::from(quantity),
            line_total_minor: line_total,
            available: true,
        });
    }
    Ok(Plan {
        lines,
        total_minor: total,
        currency,
    })
}

/// The plan, if its total is the one the shopper was shown (`expected`, when sent).
///
/// # Errors
/// [`Refusal::PriceChanged`] with the total now.
pub fn confirm_total(plan: Plan, expected: Option<i64>) -> Result<Plan, Refusal> {
    match expected {
        Some(total) if total != plan.total_minor => Err(Refusal::PriceChanged {
            total_minor: plan.total_minor,
            currency: plan.currency,
        }),
        Some(_) | None => Ok(plan),
    }
}

/// Why a checkout write failed, judged from the catalogue as read after the failure: the first
/// line whose product is gone or has less stock than the line wants.
#[must_use]
pub fn short_of(lines: &[OrderLine], products: &[Product]) -> Option<Sku> {
    lines
        .iter()
        .find(|line| {
            products
                .iter()
                .find(|p| p.sku == line.sku)
                .is_none_or(|p| p.stock < i64::from(line.quantity))
        })
        .map(|line| line.sku.clone())
}

/// The listing's position: the last order of a page (its creation time and id, the sort key).
/// Opaque to clients, but of a syntax the OpenAPI document states exactly: the lower-case hex
/// of `v1.<millis>.<id>`, with 1 to 19 digits of milliseconds (so any such cursor fits a
/// `u64`), i.e. `^76312e(?:3[0-9]){1,19}2e6f72645f(?:3[0-9]|6[1-6]){32}$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_ms: u64,
    pub id: OrderId,
}

impl Cursor {
    /// The syntax as the OpenAPI document states it (`orderCursor`, which also admits the
    /// empty value: the first page).
    pub const PATTERN: &'static str = "^76312e(?:3[0-9]){1,19}2e6f72645f(?:3[0-9]|6[1-6]){32}$";

    /// Most digits of `created_ms` a cursor carries (`u64::MAX` has 20, so 19 always fit).
    const MAX_MS_DIGITS: usize = 19;

    #[must_use]
    pub fn encode(&self) -> String {
        crate::hash::hex(format!("v1.{}.{}", self.created_ms, self.id.as_str()).as_bytes())
    }

    /// # Errors
    /// [`OrderError::BadCursor`] for anything this server did not issue.
    pub fn decode(text: &str) -> Result<Self, OrderError> {
        let refuse = || OrderError::BadCursor;
        let bytes = crate::hash::from_hex(text).ok_or_else(refuse)?;
        let text = String::from_utf8(bytes).map_err(|_| refuse())?;
        let mut parts = text.splitn(3, '.');
        let (Some("v1"), Some(ms), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(refuse());
        };
        if ms.is_empty()
            || ms.len() > Self::MAX_MS_DIGITS
            || !ms.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(refuse());
        }
        Ok(Self {
            created_ms: ms.parse().map_err(|_| refuse())?,
            id: OrderId::parse(id).ok_or_else(refuse)?,
        })
    }
}

/// `GET /orders` query: `limit` 1–100 (default 20) and an optional `cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    pub limit: u32,
    pub cursor: Option<Cursor>,
}

impl PageQuery {
    pub const DEFAULT_LIMIT: u32 = 20;
    pub const MAX_LIMIT: u32 = 100;

    /// Parses the raw query string (without `?`), percent- and `+`-decoded as `/products`
    /// decodes its own. Unknown parameters are ignored; a repeated `limit` or `cursor`, a
    /// non-number or an out-of-range limit is refused; an empty `cursor` is the first page.
    ///
    /// # Errors
    /// [`OrderError::RepeatedParameter`], [`OrderError::BadLimit`] or
    /// [`OrderError::BadCursor`].
    pub fn parse(query: &str) -> Result<Self, OrderError> {
        let mut limit = None;
        let mut cursor = None;
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "limit" if limit.is_none() => limit = Some(value),
                "cursor" if cursor.is_none() => cursor = Some(value),
                "limit" | "cursor" => return Err(OrderError::RepeatedParameter(name.into_owned())),
                _ => {}
            }
        }
        let limit = match limit.as_deref() {
            None => Self::DEFAULT_LIMIT,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=Self::MAX_LIMIT).contains(n) && !text.starts_with('+'))
                .ok_or(OrderError::BadLimit)?,
        };
        let cursor = match cursor.as_deref() {
            None | Some("") => None,
            Some(text) => Some(Cursor::decode(text)?),
        };
        Ok(Self { limit, cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cart::model::{PricedLine, Quantity};
    use crate::idempotency::key::IdempotencyKey;

    #[test]
    fn every_transition_from_every_state_is_decided() {
        use OrderStatus::{Cancelled, Confirmed, Fulfilled};
        use Transition::{Cancel, Fulfil};
        assert_eq!(Cancel.decide(Confirmed), Step::Apply);
        assert_eq!(Cancel.decide(Cancelled), Step::Unchanged);
        assert_eq!(Cancel.decide(Fulfilled), Step::Refused);
        assert_eq!(Fulfil.decide(Confirmed), Step::Apply);
        assert_eq!(Fulfil.decide(Fulfilled), Step::Unchanged);
        assert_eq!(Fulfil.decide(Cancelled), Step::Refused);
        assert_eq!(Cancel.refusal(), OrderError::NotCancellable);
        assert_eq!(Fulfil.refusal(), OrderError::NotFulfillable);
        assert_eq!(Cancel.target(), Cancelled);
        assert_eq!(Fulfil.event(), EventType::Fulfilled);
    }

    #[test]
    fn statuses_and_event_types_round_trip() {
        for s in [
            OrderStatus::Confirmed,
            OrderStatus::Cancelled,
            OrderStatus::Fulfilled,
        ] {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OrderStatus::parse("shipped"), None);
        for t in [
            EventType::Confirmed,
            EventType::Cancelled,
            EventType::Fulfilled,
        ] {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(t.as_str(), format!("order.{}", t.status().as_str()));
        }
    }

    #[test]
    fn event_ids_are_deterministic_per_order_and_type() {
        let order = OrderId(format!("ord_{}", "a".repeat(32)));
        let other = OrderId(format!("ord_{}", "b".repeat(32)));
        let id = EventId::derive(&order, EventType::Cancelled);
        assert_eq!(id, EventId::derive(&order, EventType::Cancelled));
        assert_ne!(id, EventId::derive(&order, EventType::Confirmed));
        assert_ne!(id, EventId::derive(&other, EventType::Cancelled));
        assert_eq!(id.as_str().len(), 36);
        assert_eq!(EventId::parse(id.as_str()), Some(id));
        assert_eq!(EventId::parse("evt_xyz"), None);
    }

    #[test]
    fn the_event_body_has_the_contract_shape() {
        let order = OrderId(format!("ord_{}", "c".repeat(32)));
        let eur = Currency::parse("EUR").unwrap_or_else(|_| unreachable!());
        let body = EventBody::new(
            EventType::Confirmed,
            &order,
            2500,
            eur,
            UnixMillis(1_796_630_460_000),
        );
        let v: serde_json::Value = serde_json::from_str(&body.to_json()).unwrap_or_default();
        assert_eq!(
            v,
            serde_json::json!({
                "type": "order.confirmed",
                "timestamp": "2026-12-07T08:01:00Z",
                "data": {"id": order.as_str(), "status": "confirmed", "total_minor": 2500, "currency": "EUR"}
            })
        );
    }

    fn sku(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn line(s: &str, unit: Option<i64>, q: u64, available: bool) -> PricedLine {
        let quantity = Quantity::new(q).unwrap();
        PricedLine {
            sku: sku(s),
            name: s.to_uppercase(),
            unit_price_minor: unit,
            quantity,
            line_total_minor: unit.map(|u| u * i64::from(quantity.get())),
            available,
        }
    }

    #[test]
    fn a_total_other_than_the_one_the_shopper_saw_is_refused_with_the_total_now() {
        let priced = cart(2, vec![line("tea", Some(250), 2, true)]);
        let planned = || plan(2, &priced).unwrap();
        assert_eq!(confirm_total(planned(), None).unwrap().total_minor, 500);
        assert_eq!(
            confirm_total(planned(), Some(500)).unwrap().total_minor,
            500
        );
        assert_eq!(
            confirm_total(planned(), Some(499)),
            Err(Refusal::PriceChanged {
                total_minor: 500,
                currency: eur()
            })
        );
    }

    fn cart(version: u64, items: Vec<PricedLine>) -> PricedCart {
        let currency = if items.is_empty() { None } else { Some(eur()) };
        PricedCart {
            subtotal_minor: 0,
            currency,
            version,
            items,
        }
    }

    #[test]
    fn checkout_plans_follow_the_decision_table() {
        type Row = (&'static str, u64, PricedCart, Result<(i64, usize), Refusal>);
        let table: Vec<Row> = vec![
            (
                "a current cart is bought at the catalogue's prices",
                3,
                cart(
                    3,
                    vec![
                        line("tea", Some(1250), 2, true),
                        line("cup", Some(500), 1, true),
                    ],
                ),
                Ok((3000, 2)),
            ),
            (
                "a stale version is a changed cart",
                2,
                cart(3, vec![line("tea", Some(1250), 2, true)]),
                Err(Refusal::CartChanged),
            ),
            (
                "a newer version than the cart's is a changed cart too",
                4,
                cart(3, vec![line("tea", Some(1250), 2, true)]),
                Err(Refusal::CartChanged),
            ),
            (
                "an empty cart cannot be checked out",
                0,
                cart(0, vec![]),
                Err(Refusal::EmptyCart),
            ),
            (
                "a stale empty cart is a changed cart first",
                1,
                cart(0, vec![]),
                Err(Refusal::CartChanged),
            ),
            (
                "an unavailable line is out of stock",
                1,
                cart(
                    1,
                    vec![line("tea", Some(1), 1, true), line("gone", None, 1, false)],
                ),
                Err(Refusal::OutOfStock(sku("gone"))),
            ),
            (
                "a total that would overflow is refused, not wrapped",
                1,
                cart(
                    1,
                    vec![
                        line("a", Some(i64::MAX / 2), 2, true),
                        line("b", Some(2), 1, true),
                    ],
                ),
                Err(Refusal::OutOfStock(sku("b"))),
            ),
        ];
        for (name, expected_version, cart, expected) in table {
            let got = plan(expected_version, &cart).map(|p| (p.total_minor, p.lines.len()));
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn the_short_line_is_found_after_a_failed_write() {
        let lines = plan(
            1,
            &cart(
                1,
                vec![line("a", Some(1), 2, true), line("b", Some(1), 1, true)],
            ),
        )
        .unwrap()
        .lines;
        let product = |s: &str, stock: i64| Product {
            sku: sku(s),
            name: s.into(),
            description: String::new(),
            price_minor: 1,
            currency: eur(),
            stock,
            version: 1,
            updated_at: "2026-11-29T08:00:00Z".into(),
        };
        assert_eq!(short_of(&lines, &[product("a", 2), product("b", 1)]), None);
        assert_eq!(
            short_of(&lines, &[product("a", 1), product("b", 1)]),
            Some(sku("a"))
        );
        assert_eq!(short_of(&lines, &[product("a", 5)]), Some(sku("b")));
    }

    #[test]
    fn order_ids_are_derived_and_parse_back() {
        let key = IdempotencyKey::parse_header(Some("k")).unwrap();
        let record = RecordKey::new("u", "POST", "/orders", &key);
        let id = OrderId::derive(&record, UnixMillis(7));
        assert_eq!(id, OrderId::derive(&record, UnixMillis(7)));
        assert_ne!(id, OrderId::derive(&record, UnixMillis(8)));
        assert_eq!(id.as_str().len(), 36);
        assert_eq!(OrderId::parse(id.as_str()), Some(id));
        for bad in [
            "",
            "ord_",
            "ord_0123456789abcdef0123456789abcdeF",
            "ord_0123456789abcdef0123456789abcde",
            "ORD_0123456789abcdef0123456789abcdef",
            "ord_0123456789abcdef0123456789abcdef0",
            "ord_../../etc/passwd",
        ] {
            assert_eq!(OrderId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn checkout_bodies_are_refused_for_syntax_kind_shape_or_value() {
        use Why::{Address, Email, Malformed, NotAnObject, Shape};
        let refused = |body: &str| {
            CheckoutRequest::parse(body.as_bytes()).map_err(|e| match e {
                OrderError::Body(b) if b.is_malformed() => Malformed,
                OrderError::Body(BodyError::NotAnObject) => NotAnObject,
                OrderError::Body(BodyError::Shape(_)) => Shape,
                OrderError::InvalidEmail => Email,
                OrderError::InvalidAddress(_) => Address,
                other => panic!("{body}: {other:?}"),
            })
        };
        assert!(refused(r#"{"cart_version": 3}"#).is_ok());
        assert!(refused(r#"{"cart_version": 0, "email": "a@b.example", "shipping_address": {"line1": "1 Road", "city": "Town", "state": null}}"#).is_ok());
        assert_eq!(
            CheckoutRequest::parse(br#"{"cart_version": 3, "expected_total_minor": 2500}"#)
                .map(|r| r.expected_total_minor),
            Ok(Some(2500))
        );
        // One number however it is written, as JSON Schema's `integer` reads it.
        for whole in ["3.0", "3e0", "0.3e1"] {
            assert_eq!(
                CheckoutRequest::parse(format!("{{\"cart_version\": {whole}}}").as_bytes())
                    .map(|r| r.cart_version),
                Ok(3),
                "{whole}"
            );
        }
        assert!(refused(&format!(
            "{{\"cart_version\": 1, \"email\": \"{}@b\"}}",
            "é".repeat(64)
        ))
        .is_ok());
        let table = [
            ("", Malformed),
            ("{", Malformed),
            ("not json", Malformed),
            // A member named twice, however it is spelt, is refused rather than one winning.
            (r#"{"cart_version": 1, "cart_version": 2}"#, Malformed),
            (r#"{"cart_version": 1, "\u0063art_version": 2}"#, Malformed),
            (
                r#"{"cart_version": 1, "shipping_address": {"a": "x", "a": "y"}}"#,
                Malformed,
            ),
            // Only an object is a body: `[1]` is not `{"cart_version": 1}`.
            ("[]", NotAnObject),
            ("[1]", NotAnObject),
            ("[1, null, null]", NotAnObject),
            ("1", NotAnObject),
            // Members the document does not name, and `null` for an optional member.
            (r#"{"cart_version": 3, "note": "ignored"}"#, Shape),
            (r#"{"cart_version": 3, "email": null}"#, Shape),
            // (`null` is a JSON value, so the address rule refuses it: not an object.)
            (r#"{"cart_version": 3, "shipping_address": null}"#, Address),
            (
                r#"{"cart_version": 3, "expected_total_minor": null}"#,
                Shape,
            ),
            (r#"{"cart_version": 3, "expected_total_minor": 1.5}"#, Shape),
            ("{}", Shape),
            (r#"{"cart_version": "3"}"#, Shape),
            (r#"{"cart_version": -1}"#, Shape),
            (r#"{"cart_version": 1.5}"#, Shape),
            (r#"{"cart_version": 1e400}"#, Malformed),
            (r#"{"cart_version": 18446744073709551616}"#, Shape),
            (r#"{"cart_version": null}"#, Shape),
            (r#"{"cart_version": 1, "email": 5}"#, Shape),
            (r#"{"cart_version": 1, "email": "no-at-sign"}"#, Email),
            (r#"{"cart_version": 1, "email": "a b@c.d"}"#, Email),
            (r#"{"cart_version": 1, "email": "@c.d"}"#, Email),
            (r#"{"cart_version": 1, "email": "a@"}"#, Email),
            (r#"{"cart_version": 1, "email": "a@b\u00a0c"}"#, Email),
            (
                r#"{"cart_version": 1, "shipping_address": "1 Road"}"#,
                Address,
            ),
            (
                r#"{"cart_version": 1, "shipping_address": {"n": 1}}"#,
                Address,
            ),
            (
                r#"{"cart_version": 1, "shipping_address": {"": "x"}}"#,
                Address,
            ),
        ];
        for (body, expected) in table {
            assert_eq!(refused(body).err(), Some(expected), "{body}");
        }
        let long = format!(
            r#"{{"cart_version": 1, "shipping_address": {{"a": "{}"}}}}"#,
            "x".repeat(501)
        );
        assert_eq!(refused(&long).err(), Some(Address));
    }

    /// What a checkout body was refused for.
    #[derive(Debug, PartialEq)]
    enum Why {
        /// Not JSON, a member named twice, too deep.
        Malformed,
        NotAnObject,
        /// A member missing, unknown, `null` or of the wrong type.
        Shape,
        Email,
        Address,
    }

    #[test]
    fn personal_data_never_prints_in_debug_output() {
        let r = CheckoutRequest::parse(
            br#"{"cart_version": 1, "email": "alice@example.com", "shipping_address": {"street": "Secret Lane 1"}}"#,
        )
        .unwrap();
        let text = format!("{r:?}");
        assert!(!text.contains("alice"), "{text}");
        assert!(!text.contains("Secret Lane"), "{text}");
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let key = IdempotencyKey::parse_header(Some("k")).unwrap();
        let id = OrderId::derive(&RecordKey::new("u", "POST", "/orders", &key), UnixMillis(1));
        let c = Cursor {
            created_ms: 1_796_000_000_000,
            id,
        };
        assert_eq!(Cursor::decode(&c.encode()), Ok(c.clone()));
        assert!(c.encode().starts_with("76312e"));
        let twenty_digits =
            crate::hash::hex(format!("v1.{}.{}", "1".repeat(20), c.id.as_str()).as_bytes());
        let upper = c.encode().to_ascii_uppercase();
        for bad in [
            "",
            "!!!",
            "djEuMTIzLm9yZF94",
            "eA",
            "9%C2%A7",
            twenty_digits.as_str(),
            upper.as_str(),
        ] {
            assert_eq!(Cursor::decode(bad), Err(OrderError::BadCursor), "{bad}");
        }
    }

    #[test]
    fn page_queries_have_a_default_and_bounds() {
        assert_eq!(PageQuery::parse("").unwrap().limit, 20);
        assert_eq!(PageQuery::parse("limit=1").unwrap().limit, 1);
        assert_eq!(PageQuery::parse("limit=100&other=x").unwrap().limit, 100);
        // Decoded as /products decodes its query: %32 is 2, and `+` a space (so not a number).
        assert_eq!(PageQuery::parse("limit=%32").unwrap().limit, 2);
        assert_eq!(PageQuery::parse("li%6Dit=3").unwrap().limit, 3);
        for bad in [
            "limit=0",
            "limit=101",
            "limit=abc",
            "limit=",
            "limit=-1",
            "limit=+5",
            "limit=%2B5",
        ] {
            assert_eq!(PageQuery::parse(bad), Err(OrderError::BadLimit), "{bad}");
        }
        for (bad, name) in [("limit=1&limit=2", "limit"), ("cursor=&cursor=", "cursor")] {
            assert_eq!(
                PageQuery::parse(bad),
                Err(OrderError::RepeatedParameter(name.into())),
                "{bad}"
            );
        }
        assert_eq!(PageQuery::parse("cursor=zz"), Err(OrderError::BadCursor));
    }
}
