//! The cart's pure core: what a cart is, how a change applies to it, and how it is priced.
//!
//! Pure: no `worker` types, no clock (`now` is a parameter), no storage. The KV adapter
//! ([`super::store`]) stores what [`Cart`] serialises to; the handlers feed changes in.
//!
//! Choices made here (and documented in the README):
//! - A cart holds **what** and **how many**, never a price: prices come from the catalogue at
//!   read time ([`price`]). The line also keeps the product's name as last seen in the
//!   catalogue, so a line whose product vanished can still be shown by name.
//! - A cart has **one currency**, fixed by its first line and released when it empties. A line
//!   whose product is gone, or now priced in another currency, is shown with
//!   `available: false`, `unit_price_minor: null` and `line_total_minor: null` (null, not 0:
//!   such a line has no price, it is not free), and is left out of the subtotal. It stays in
//!   the cart until the user removes it.
//! - An empty cart has `currency: null` and `subtotal_minor: 0`.
//! - Money is `i64` minor units with checked arithmetic only; a line whose total would not fit
//!   is shown as unavailable rather than wrapped, so totals never overflow or go negative.
//! - A change that changes nothing ([`Outcome::Unchanged`]) is not written: no version bump,
//!   no KV write (KV allows about one write per second per key).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalogue::model::{Currency, Product, Sku};
use crate::d1::Bookmark;
use crate::time::UnixMillis;

/// Most distinct lines a cart may hold.
pub const MAX_LINES: usize = 50;

/// How many of one product a line holds: 1–99.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Quantity(u8);

impl Quantity {
    pub const MIN: u8 = 1;
    pub const MAX: u8 = 99;

    /// # Errors
    /// [`CartError::QuantityOutOfRange`] outside 1–99.
    pub fn new(n: u64) -> Result<Self, CartError> {
        match u8::try_from(n) {
            Ok(q) if (Self::MIN..=Self::MAX).contains(&q) => Ok(Self(q)),
            Ok(_) | Err(_) => Err(CartError::QuantityOutOfRange),
        }
    }

    #[must_use]
    pub fn get(self) -> u8 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        Quantity::new(n).map_err(|_| serde::de::Error::custom("quantity outside 1-99"))
    }
}

/// What `PUT /cart/items/{sku}` asks for, parsed from its `{"quantity": n}` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// `quantity: 0`: remove the line.
    Remove,
    /// `quantity: 1..=99`: set the line to exactly this.
    Set(Quantity),
}

impl Requested {
    /// Parses the body of a line write. Only a JSON object whose one member `quantity` is an
    /// integer 0–99 is accepted; another member is refused (as the document's
    /// `additionalProperties: false` says), not ignored.
    ///
    /// # Errors
    /// [`CartError::QuantityMissing`], [`CartError::UnknownMember`] or
    /// [`CartError::QuantityNotAnInteger`] for the wrong shape,
    /// [`CartError::QuantityOutOfRange`] for a negative or too large integer.
    pub fn from_body(body: &serde_json::Value) -> Result<Self, CartError> {
        let Some(object) = body.as_object() else {
            return Err(CartError::QuantityMissing);
        };
        let Some(value) = object.get("quantity") else {
            return Err(CartError::QuantityMissing);
        };
        if object.len() > 1 {
            return Err(CartError::UnknownMember);
        }
        let serde_json::Value::Number(n) = value else {
            return Err(CartError::QuantityNotAnInteger);
        };
        // One number however it is written (`2`, `2.0`, `2e0`), as JSON Schema's `integer`
        // reads it; a fractional one is no quantity.
        match crate::json::whole_number(n) {
            Some(0) => Ok(Self::Remove),
            Some(n) => u64::try_from(n)
                .map_err(|_| CartError::QuantityOutOfRange)
                .and_then(Quantity::new)
                .map(Self::Set),
            None => Err(CartError::QuantityNotAnInteger),
        }
    }
}

/// One line of a cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub sku: Sku,
    pub quantity: Quantity,
    /// The product's name when the line was last written; shown only if the product vanishes.
    pub name: String,
}

/// A user's cart: distinct lines in the order they were first added, its currency, and a
/// version bumped by every stored change.
///
/// Invariants (kept by every constructor and by deserialisation): at most [`MAX_LINES`]
/// lines, no sku twice, `currency` is `Some` exactly when there are lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CartDocument", into = "CartDocument")]
pub struct Cart {
    /// Made with the cart's first write and kept by every later one (emptying included), so
    /// (user, id, version) names one cart state for good: versions restart at 0 when a cart
    /// expires, ids do not repeat. `None` only for a cart never written, or stored before ids.
    id: Option<CartId>,
    lines: Vec<Line>,
    currency: Option<Currency>,
    version: u64,
    updated_at: Option<UnixMillis>,
    /// The guest cart states merged into this cart (`<cart id>:<version>`, newest last, at most
    /// [`MAX_MERGE_MARKS`]): merging one of them again changes nothing.
    merged: Vec<String>,
    /// Where in the database's history the user's last write that this cart's pricing depends
    /// on landed (the checkout's: it changed stock): reads that price the cart start no older
    /// than this (read-your-writes through D1 replicas). Kept by every later write.
    bookmark: Option<Bookmark>,
}

/// How many merged guest cart states a cart remembers.
pub const MAX_MERGE_MARKS: usize = 8;

/// A cart's identity: 32 lower-case hex characters (128 random bits), made by the edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CartId(String);

impl CartId {
    /// # Errors
    /// A description when `text` is not 32 lower-case hex characters.
    pub fn parse(text: &str) -> Result<Self, String> {
        if crate::hash::is_lower_hex(text, 32) {
            Ok(Self(text.to_owned()))
        } else {
            Err("cart id must be 32 lower-case hex characters".into())
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for CartId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        CartId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The stored JSON form of a [`Cart`] (the KV value).
#[derive(Serialize, Deserialize)]
struct CartDocument {
    /// Absent in carts stored before carts had ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<CartId>,
    version: u64,
    /// RFC 3339; absent for a cart never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_at: Option<String>,
    currency: Option<Currency>,
    lines: Vec<Line>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    merged: Vec<String>,
    /// A D1 bookmark; absent before carts carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bookmark: Option<String>,
}

impl TryFrom<CartDocument> for Cart {
    type Error = String;

    fn try_from(doc: CartDocument) -> Result<Self, Self::Error> {
        if doc.lines.len() > MAX_LINES {
            return Err(format!("more than {MAX_LINES} lines"));
        }
        let mut skus: Vec<&Sku> = doc.lines.iter().map(|l| &l.sku).collect();
        skus.sort();
        skus.dedup();
        if skus.len() != doc.lines.len() {
            return Err("a sku appears twice".into());
        }
        if doc.lines.is_empty() != doc.currency.is_none() {
            return Err("currency must be set exactly when there are lines".into());
        }
        let updated_at = match doc.updated_at {
            None => None,
            Some(text) => {
                let seconds = crate::time::parse_rfc3339(&text)
                    .and_then(|s| u64::try_from(s).ok())
                    .ok_or("updated_at is not an RFC 3339 date")?;
                Some(UnixMillis(seconds.saturating_mul(1000)))
            }
        };
        if doc.merged.len() > MAX_MERGE_MARKS || doc.merged.iter().any(|m| m.len() > 96) {
            return Err("too many or too long merge marks".into());
        }
        Ok(Self {
            id: doc.id,
            lines: doc.lines,
            currency: doc.currency,
            version: doc.version,
            updated_at,
            merged: doc.merged,
            // A stored bookmark that is no longer one (D1 changed its format) is dropped:
            // pricing then reads from any replica, as for a cart without one.
            bookmark: doc.bookmark.as_deref().and_then(Bookmark::parse),
        })
    }
}

impl From<Cart> for CartDocument {
    fn from(cart: Cart) -> Self {
        Self {
            id: cart.id,
            version: cart.version,
            updated_at: cart.updated_at.map(UnixMillis::to_rfc3339),
            currency: cart.currency,
            lines: cart.lines,
            merged: cart.merged,
            bookmark: cart.bookmark.map(|b| b.as_str().to_owned()),
        }
    }
}

/// One change a user can make to their cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    /// Set a line to a quantity; `product` is the catalogue's current entry for the sku
    /// (`None` when the sku is not in the catalogue).
    Set {
        sku: &'a Sku,
        quantity: Quantity,
        product: Option<&'a Product>,
    },
    /// Remove a line (no catalogue needed: a vanished product can always be removed).
    Remove { sku: &'a Sku },
    /// Remove every line.
    Clear,
}

/// What applying a [`Change`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The cart is already as asked: nothing to store, the version stays.
    Unchanged,
    /// The new cart to store, its version one higher and `updated_at = now`.
    Changed(Cart),
}

/// Why a change was refused (all 422: well-formed, but not acceptable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartError {
    QuantityMissing,
    /// A member other than `quantity` in the body.
    UnknownMember,
    QuantityNotAnInteger,
    QuantityOutOfRange,
    UnknownSku(Sku),
    /// The product is priced in another currency than the cart's.
    CurrencyMismatch {
        cart: Currency,
        product: Currency,
    },
    TooManyLines,
    /// The version counter is exhausted (never in practice; refused rather than wrapped).
    VersionExhausted,
}

/// The explanation the client is shown (for [`CartError::VersionExhausted`], what the log
/// records: it is a 500).
impl fmt::Display for CartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::QuantityMissing => {
                f.write_str("The body must be a JSON object with an integer `quantity`.")
            }
            Self::UnknownMember => f.write_str("The body must have `quantity` as its only member."),
            Self::QuantityNotAnInteger => {
                f.write_str("`quantity` must be an integer from 0 to 99.")
            }
            Self::QuantityOutOfRange => {
                f.write_str("`quantity` must be from 0 to 99 (0 removes the line).")
            }
            Self::UnknownSku(sku) => write!(f, "There is no product `{sku}`."),
            Self::CurrencyMismatch { cart, product } => write!(
                f,
                "This cart is in {}; the product is priced in {}. A cart holds one currency.",
                cart.as_str(),
                product.as_str()
            ),
            Self::TooManyLines => write!(f, "A cart holds at most {MAX_LINES} lines."),
            Self::VersionExhausted => f.write_str("cart version counter exhausted"),
        }
    }
}

impl Default for Cart {
    fn default() -> Self {
        Self::empty()
    }
}

impl Cart {
    /// The cart of a user who never wrote one: no lines, version 0.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            id: None,
            lines: Vec::new(),
            currency: None,
            version: 0,
            updated_at: None,
            merged: Vec::new(),
            bookmark: None,
        }
    }

    #[must_use]
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    #[must_use]
    pub fn currency(&self) -> Option<Currency> {
        self.currency
    }

    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The cart's id; `None` for a cart never written (or stored before carts had ids).
    #[must_use]
    pub fn id(&self) -> Option<&CartId> {
        self.id.as_ref()
    }

    /// This cart, keeping its id, or taking `fresh` when it has none: what a write stores.
    #[must_use]
    pub fn identified(mut self, fresh: CartId) -> Cart {
        if self.id.is_none() {
            self.id = Some(fresh);
        }
        self
    }

    /// What checkout's one-order-per-cart guard names this cart by, with its version: the id,
    /// or for a cart stored before ids the time of its last write (a refilled cart of the same
    /// version is written at another time).
    #[must_use]
    pub fn checkout_identity(&self) -> String {
        match (&self.id, self.updated_at) {
            (Some(id), _) => id.as_str().to_owned(),
            (None, at) => format!("legacy-{}", at.map_or(0, |t| t.0)),
        }
    }

    /// The bookmark of the user's last write the cart's pricing depends on, if any.
    #[must_use]
    pub fn bookmark(&self) -> Option<&Bookmark> {
        self.bookmark.as_ref()
    }

    /// This cart remembering `bookmark` (kept when `None`: an older write stays visible).
    #[must_use]
    pub fn with_bookmark(mut self, bookmark: Option<Bookmark>) -> Cart {
        if bookmark.is_some() {
            self.bookmark = bookmark;
        }
        self
    }

    /// When the cart was last stored; `None` for a cart never written.
    #[must_use]
    pub fn updated_at(&self) -> Option<UnixMillis> {
        self.updated_at
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The skus of the lines, in cart order (what to look up in the catalogue).
    #[must_use]
    pub fn skus(&self) -> Vec<Sku> {
        self.lines.iter().map(|l| l.sku.clone()).collect()
    }

    /// The quantity of `sku`, if the cart holds it.
    #[must_use]
    pub fn quantity_of(&self, sku: &Sku) -> Option<Quantity> {
        self.lines
            .iter()
            .find(|l| &l.sku == sku)
            .map(|l| l.quantity)
    }

    /// This cart emptied, with the next version: what checkout stores after placing the order
    /// (always a new version, even if already empty, so the checked-out version is never
    /// reused).
    ///
    /// # Errors
    /// [`CartError::VersionExhausted`] at `u64::MAX`.
    pub fn emptied(&self, now: UnixMillis) -> Result<Cart, CartError> {
        Ok(Cart {
            id: self.id.clone(),
            lines: Vec::new(),
            currency: None,
            version: self.next_version()?,
            updated_at: Some(now),
            merged: self.merged.clone(),
            bookmark: self.bookmark.clone(),
        })
    }

    fn next_version(&self) -> Result<u64, CartError> {
        self.version
            .checked_add(1)
            .ok_or(CartError::VersionExhausted)
    }

    /// Applies `change` at `now`: the decision of every cart write.
    ///
    /// # Errors
    /// A [`CartError`] when the change is refused; the cart is then left as it was.
    pub fn apply(&self, change: Change<'_>, now: UnixMillis) -> Result<Outcome, CartError> {
        let (lines, currency) = match change {
            Change::Set {
                sku,
                quantity,
                product,
            } => {
                let product = product
                    .filter(|p| &p.sku == sku)
                    .ok_or_else(|| CartError::UnknownSku(sku.clone()))?;
                let mut lines = self.lines.clone();
                match lines.iter_mut().find(|l| &l.sku == sku) {
                    Some(line) => {
                        if line.quantity == quantity && line.name == product.name {
                            return Ok(Outcome::Unchanged);
                        }
                        line.quantity = quantity;
                        line.name.clone_from(&product.name);
                    }
                    None => {
                        if lines.len() >= MAX_LINES {
                            return Err(CartError::TooManyLines);
                        }
                        lines.push(Line {
                            sku: sku.clone(),
                            quantity,
                            name: product.name.clone(),
                        });
                    }
                }
                let currency = match self.currency {
                    Some(cart) if cart != product.currency => {
                        return Err(CartError::CurrencyMismatch {
                            cart,
                            product: product.currency,
                        })
                    }
                    Some(_) | None => product.currency,
                };
                (lines, Some(currency))
            }
            Change::Remove { sku } => {
                if self.quantity_of(sku).is_none() {
                    return Ok(Outcome::Unchanged);
                }
                let lines: Vec<Line> = self
                    .lines
                    .iter()
                    .filter(|l| &l.sku != sku)
                    .cloned()
                    .collect();
                let currency = if lines.is_empty() {
                    None
                } else {
                    self.currency
                };
                (lines, currency)
            }
            Change::Clear => {
                if self.lines.is_empty() {
                    return Ok(Outcome::Unchanged);
                }
                (Vec::new(), None)
            }
        };
        Ok(Outcome::Changed(Cart {
            id: self.id.clone(),
            lines,
            currency,
            version: self.next_version()?,
            updated_at: Some(now),
            merged: self.merged.clone(),
            bookmark: self.bookmark.clone(),
        }))
    }

    /// Merges a guest's cart into this one (`POST /cart/merge`): each guest line is added,
    /// quantities summed and capped at [`Quantity::MAX`], new lines up to [`MAX_LINES`]; a
    /// line in another currency than this cart's cannot join it. What does not fit is
    /// reported, never dropped silently. The guest cart state is remembered, so merging it
    /// again (a retry after the guest cart could not be emptied) changes nothing.
    ///
    /// # Errors
    /// [`CartError::VersionExhausted`].
    pub fn merge(&self, guest: &Cart, now: UnixMillis) -> Result<Merge, CartError> {
        let mark = format!("{}:{}", guest.checkout_identity(), guest.version);
        let mut report = MergeReport::default();
        if guest.lines.is_empty() || self.merged.contains(&mark) {
            report.already_merged = !guest.lines.is_empty();
            return Ok(Merge {
                outcome: Outcome::Unchanged,
                report,
            });
        }
        let mut lines = self.lines.clone();
        let mut currency = self.currency;
        for line in &guest.lines {
            if currency.is_some_and(|c| Some(c) != guest.currency) {
                report.left_out.push(LeftOut {
                    sku: line.sku.clone(),
                    quantity: line.quantity,
                    reason: LeftOutReason::Currency,
                });
                continue;
            }
            let full = lines.len() >= MAX_LINES;
            match lines.iter_mut().find(|l| l.sku == line.sku) {
                Some(existing) => {
                    let wanted =
                        u16::from(existing.quantity.get()) + u16::from(line.quantity.get());
                    let kept = wanted.min(u16::from(Quantity::MAX));
                    if kept < wanted {
                        report.capped.push(Capped {
                            sku: line.sku.clone(),
                            requested: wanted,
                            quantity: Quantity(Quantity::MAX),
                        });
                    }
                    existing.quantity = Quantity(u8::try_from(kept).unwrap_or(Quantity::MAX));
                    report.merged.push(line.sku.clone());
                }
                None if full => report.left_out.push(LeftOut {
                    sku: line.sku.clone(),
                    quantity: line.quantity,
                    reason: LeftOutReason::TooManyLines,
                }),
                None => {
                    lines.push(line.clone());
                    currency = currency.or(guest.currency);
                    report.merged.push(line.sku.clone());
                }
            }
        }
        let mut merged = self.merged.clone();
        merged.push(mark);
        if merged.len() > MAX_MERGE_MARKS {
            merged.remove(0);
        }
        Ok(Merge {
            outcome: Outcome::Changed(Cart {
                id: self.id.clone(),
                lines,
                currency,
                version: self.next_version()?,
                updated_at: Some(now),
                merged,
                bookmark: self.bookmark.clone(),
            }),
            report,
        })
    }
}

/// What [`Cart::merge`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    /// The user's cart to store, or `Unchanged` (nothing to merge, or merged before).
    pub outcome: Outcome,
    pub report: MergeReport,
}

/// What became of the guest's lines: the `merge` member of `POST /cart/merge`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MergeReport {
    /// Skus whose guest quantity joined the cart (in full, or capped).
    pub merged: Vec<Sku>,
    /// Lines whose summed quantity was capped at 99.
    pub capped: Vec<Capped>,
    /// Lines that could not join the cart at all.
    pub left_out: Vec<LeftOut>,
    /// This guest cart was merged before: nothing was added again.
    pub already_merged: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capped {
    pub sku: Sku,
    /// The sum of both carts' quantities.
    pub requested: u16,
    pub quantity: Quantity,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftOut {
    pub sku: Sku,
    pub quantity: Quantity,
    pub reason: LeftOutReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftOutReason {
    /// The cart already holds 50 lines.
    TooManyLines,
    /// The guest line is priced in another currency than the cart.
    Currency,
}

/// One line of a priced cart, as `GET /cart` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedLine {
    pub sku: Sku,
    pub name: String,
    /// `null` when unavailable.
    pub unit_price_minor: Option<i64>,
    pub quantity: Quantity,
    /// `null` when unavailable.
    pub line_total_minor: Option<i64>,
    /// `false` when the product left the catalogue, changed currency, or its total would not
    /// fit in an `i64`; such a line counts for nothing.
    pub available: bool,
}

/// A cart priced against the catalogue: the body of every cart response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedCart {
    pub items: Vec<PricedLine>,
    /// Sum of the available lines' totals; never negative, never overflowed.
    pub subtotal_minor: i64,
    /// `null` for an empty cart.
    pub currency: Option<Currency>,
    pub version: u64,
}

impl PricedCart {
    /// Whether every line can be bought (what checkout requires, besides stock).
    #[must_use]
    pub fn all_available(&self) -> bool {
        self.items.iter().all(|l| l.available)
    }
}

/// Prices `cart` with the catalogue's current `products` (any order; extra products are
/// ignored).
#[must_use]
pub fn price(cart: &Cart, products: &[Product]) -> PricedCart {
    let mut subtotal: i64 = 0;
    let items = cart
        .lines
        .iter()
        .map(|line| {
            let product = products
                .iter()
                .find(|p| p.sku == line.sku)
                .filter(|p| Some(p.currency) == cart.currency && p.price_minor >= 0);
            let priced = product.and_then(|p| {
                let total = p.price_minor.checked_mul(i64::from(line.quantity.get()))?;
                let next = subtotal.checked_add(total)?;
                Some((p, total, next))
            });
            match priced {
                Some((p, total, next)) => {
                    subtotal = next;
                    PricedLine {
                        sku: line.sku.clone(),
                        name: p.name.clone(),
                        unit_price_minor: Some(p.price_minor),
                        quantity: line.quantity,
                        line_total_minor: Some(total),
                        available: true,
                    }
                }
                None => PricedLine {
                    sku: line.sku.clone(),
                    name: product.map_or_else(|| line.name.clone(), |p| p.name.clone()),
                    unit_price_minor: None,
                    quantity: line.quantity,
                    line_total_minor: None,
                    available: false,
                },
            }
        })
        .collect();
    PricedCart {
        items,
        subtotal_minor: subtotal,
        currency: cart.currency,
        version: cart.version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: UnixMillis = UnixMillis(1_796_000_000_000);

    fn sku(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }

    fn product(s: &str, price_minor: i64, currency: &str) -> Product {
        Product {
            sku: sku(s),
            name: format!("Name of {s}"),
            description: String::new(),
            price_minor,
            currency: Currency::parse(currency).unwrap(),
            stock: 10,
            version: 1,
            updated_at: "2026-11-29T08:00:00Z".into(),
        }
    }

    fn q(n: u64) -> Quantity {
        Quantity::new(n).unwrap()
    }

    fn set(cart: &Cart, p: &Product, n: u64) -> Cart {
        match cart
            .apply(
                Change::Set {
                    sku: &p.sku,
                    quantity: q(n),
                    product: Some(p),
                },
                NOW,
            )
            .unwrap()
        {
            Outcome::Changed(c) => c,
            Outcome::Unchanged => cart.clone(),
        }
    }

    #[test]
    fn quantities_are_one_to_ninety_nine() {
        for (n, ok) in [
            (0, false),
            (1, true),
            (99, true),
            (100, false),
            (256, false),
        ] {
            assert_eq!(Quantity::new(n).is_ok(), ok, "{n}");
        }
    }

    #[test]
    fn a_line_write_body_is_parsed_strictly() {
        let cases = [
            (json!({"quantity": 0}), Ok(Requested::Remove)),
            (json!({"quantity": 3}), Ok(Requested::Set(q(3)))),
            (
                json!({"quantity": 99, "extra": true}),
                Err(CartError::UnknownMember),
            ),
            (json!({"quantity": 100}), Err(CartError::QuantityOutOfRange)),
            (json!({"quantity": -1}), Err(CartError::QuantityOutOfRange)),
            (
                json!({"quantity": 18_446_744_073_709_551_615_u64}),
                Err(CartError::QuantityOutOfRange),
            ),
            (
                json!({"quantity": 1.5}),
                Err(CartError::QuantityNotAnInteger),
            ),
            (json!({"quantity": 2.0}), Ok(Requested::Set(q(2)))),
            (json!({"quantity": 0.0}), Ok(Requested::Remove)),
            (json!({"quantity": 1e2}), Err(CartError::QuantityOutOfRange)),
            (
                json!({"quantity": 1e30}),
                Err(CartError::QuantityNotAnInteger),
            ),
            (
                json!({"quantity": "2"}),
                Err(CartError::QuantityNotAnInteger),
            ),
            (
                json!({"quantity": null}),
                Err(CartError::QuantityNotAnInteger),
            ),
            (
                json!({"quantity": true}),
                Err(CartError::QuantityNotAnInteger),
            ),
            (
                json!({"quantity": [1]}),
                Err(CartError::QuantityNotAnInteger),
            ),
            (json!({}), Err(CartError::QuantityMissing)),
            (
                json!({"quantity": 1, "note": "gift"}),
                Err(CartError::UnknownMember),
            ),
            (json!({"qty": 1}), Err(CartError::QuantityMissing)),
            (json!([{"quantity": 1}]), Err(CartError::QuantityMissing)),
            (json!(3), Err(CartError::QuantityMissing)),
        ];
        for (body, expected) in cases {
            assert_eq!(Requested::from_body(&body), expected, "{body}");
        }
    }

    #[test]
    fn adding_a_line_bumps_the_version_and_fixes_the_currency() {
        let tea = product("tea", 1250, "EUR");
        let cart = set(&Cart::empty(), &tea, 2);
        assert_eq!(cart.version(), 1);
        assert_eq!(cart.currency().map(Currency::as_str), Some("EUR"));
        assert_eq!(cart.updated_at(), Some(NOW));
        assert_eq!(cart.quantity_of(&tea.sku), Some(q(2)));
    }

    #[test]
    fn setting_the_same_quantity_again_changes_nothing() {
        let tea = product("tea", 1250, "EUR");
        let cart = set(&Cart::empty(), &tea, 2);
        let same = cart.apply(
            Change::Set {
                sku: &tea.sku,
                quantity: q(2),
                product: Some(&tea),
            },
            NOW,
        );
        assert_eq!(same, Ok(Outcome::Unchanged));
    }

    #[test]
    fn removals_of_absent_lines_and_clearing_an_empty_cart_change_nothing() {
        let cart = Cart::empty();
        assert_eq!(
            cart.apply(Change::Remove { sku: &sku("tea") }, NOW),
            Ok(Outcome::Unchanged)
        );
        assert_eq!(cart.apply(Change::Clear, NOW), Ok(Outcome::Unchanged));
    }

    #[test]
    fn an_unknown_product_is_refused() {
        let tea = sku("tea");
        let other = product("coffee", 1, "EUR");
        for product in [None, Some(&other)] {
            let r = Cart::empty().apply(
                Change::Set {
                    sku: &tea,
                    quantity: q(1),
                    product,
                },
                NOW,
            );
            assert_eq!(r, Err(CartError::UnknownSku(tea.clone())));
        }
    }

    #[test]
    fn a_second_currency_is_refused_and_the_currency_is_released_when_empty() {
        let tea = product("tea", 100, "EUR");
        let dollar_tea = product("dollar-tea", 100, "USD");
        let cart = set(&Cart::empty(), &tea, 1);
        let r = cart.apply(
            Change::Set {
                sku: &dollar_tea.sku,
                quantity: q(1),
                product: Some(&dollar_tea),
            },
            NOW,
        );
        assert!(matches!(r, Err(CartError::CurrencyMismatch { .. })));
        let Ok(Outcome::Changed(emptied)) = cart.apply(Change::Remove { sku: &tea.sku }, NOW)
        else {
            panic!("removal should change the cart");
        };
        assert_eq!(emptied.currency(), None);
        assert_eq!(emptied.version(), 2);
        assert!(matches!(
            emptied.apply(
                Change::Set {
                    sku: &dollar_tea.sku,
                    quantity: q(1),
                    product: Some(&dollar_tea),
                },
                NOW
            ),
            Ok(Outcome::Changed(_))
        ));
    }

    #[test]
    fn a_fifty_first_line_is_refused_but_an_existing_line_can_still_change() {
        let mut cart = Cart::empty();
        let products: Vec<Product> = (0..=MAX_LINES)
            .map(|i| product(&format!("p{i}"), 1, "EUR"))
            .collect();
        for p in products.iter().take(MAX_LINES) {
            cart = set(&cart, p, 1);
        }
        assert_eq!(cart.lines().len(), MAX_LINES);
        let last = &products[MAX_LINES];
        assert_eq!(
            cart.apply(
                Change::Set {
                    sku: &last.sku,
                    quantity: q(1),
                    product: Some(last),
                },
                NOW
            ),
            Err(CartError::TooManyLines)
        );
        assert_eq!(
            set(&cart, &products[0], 5).quantity_of(&products[0].sku),
            Some(q(5))
        );
    }

    #[test]
    fn emptied_always_bumps_the_version() {
        let empty = Cart::empty().emptied(NOW).unwrap();
        assert_eq!((empty.version(), empty.is_empty()), (1, true));
        let tea = product("tea", 100, "EUR");
        let full = set(&empty, &tea, 3);
        let emptied = full.emptied(NOW).unwrap();
        assert_eq!((emptied.version(), emptied.currency()), (3, None));
    }

    #[test]
    fn the_checkout_bookmark_is_stored_kept_by_later_writes_and_dropped_if_malformed() {
        let mark = crate::d1::Bookmark::parse(
            "00000000-00000005-00000000-00000000000000000000000000000000",
        )
        .unwrap();
        let tea = product("tea", 100, "EUR");
        let emptied = set(&Cart::empty(), &tea, 1)
            .emptied(NOW)
            .unwrap()
            .with_bookmark(Some(mark.clone()));
        let refilled = set(&emptied, &tea, 2).with_bookmark(None);
        assert_eq!(refilled.bookmark(), Some(&mark));
        let text = serde_json::to_string(&refilled).unwrap();
        let back: Cart = serde_json::from_str(&text).unwrap();
        assert_eq!(back, refilled);
        let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["bookmark"], mark.as_str());
        doc["bookmark"] = "not-a-bookmark".into();
        let tolerant: Cart = serde_json::from_value(doc).unwrap();
        assert_eq!(tolerant.bookmark(), None);
        assert_eq!(tolerant.version(), refilled.version());
        let plain = serde_json::to_value(Cart::empty()).unwrap();
        assert!(plain.get("bookmark").is_none());
    }

    #[test]
    fn pricing_multiplies_and_sums_available_lines() {
        let tea = product("tea", 1250, "EUR");
        let mug = product("mug", 800, "EUR");
        let cart = set(&set(&Cart::empty(), &tea, 2), &mug, 1);
        let priced = price(&cart, &[mug.clone(), tea.clone()]);
        assert_eq!(priced.subtotal_minor, 3300);
        assert_eq!(priced.version, 2);
        assert_eq!(priced.items[0].sku, tea.sku);
        assert_eq!(priced.items[0].line_total_minor, Some(2500));
        assert!(priced.all_available());
        let body = serde_json::to_value(&priced).unwrap();
        assert_eq!(
            body["items"][0],
            json!({"sku": "tea", "name": "Name of tea", "unit_price_minor": 1250,
                   "quantity": 2, "line_total_minor": 2500, "available": true})
        );
        assert_eq!(body["currency"], json!("EUR"));
    }

    #[test]
    fn a_vanished_or_recurrencied_product_is_shown_unavailable_and_not_counted() {
        let tea = product("tea", 1250, "EUR");
        let mug = product("mug", 800, "EUR");
        let cart = set(&set(&Cart::empty(), &tea, 2), &mug, 1);
        let dollar_mug = product("mug", 900, "USD");
        let priced = price(&cart, &[dollar_mug]);
        assert_eq!(priced.subtotal_minor, 0);
        assert!(!priced.all_available());
        for item in &priced.items {
            assert!(!item.available);
            assert_eq!((item.unit_price_minor, item.line_total_minor), (None, None));
        }
        assert_eq!(priced.items[0].name, "Name of tea");
        let body = serde_json::to_value(&priced).unwrap();
        assert_eq!(body["items"][0]["unit_price_minor"], json!(null));
    }

    #[test]
    fn an_empty_cart_prices_to_zero_with_no_currency() {
        let priced = price(&Cart::empty(), &[]);
        assert_eq!(
            serde_json::to_value(&priced).unwrap(),
            json!({"items": [], "subtotal_minor": 0, "currency": null, "version": 0})
        );
    }

    #[test]
    fn a_line_whose_total_would_overflow_is_unavailable_not_wrapped() {
        let huge = product("huge", i64::MAX / 2, "EUR");
        let tea = product("tea", 1, "EUR");
        let cart = set(&set(&Cart::empty(), &tea, 1), &huge, 3);
        let priced = price(&cart, &[huge, tea]);
        assert_eq!(priced.subtotal_minor, 1);
        assert!(!priced.items[1].available);
    }

    #[test]
    fn a_cart_survives_its_stored_form() {
        let tea = product("tea", 100, "EUR");
        let cart = set(&Cart::empty(), &tea, 4);
        let text = serde_json::to_string(&cart).unwrap();
        assert!(text.contains("\"version\":1"));
        assert!(text.contains("\"updated_at\":\"2026-11-30T00:53:20Z\""));
        assert_eq!(serde_json::from_str::<Cart>(&text).unwrap(), cart);
    }

    #[test]
    fn a_cart_keeps_the_id_of_its_first_write_through_every_change_and_emptying() {
        let tea = product("tea", 100, "EUR");
        let first = CartId::parse(&"a".repeat(32)).unwrap();
        let other = CartId::parse(&"b".repeat(32)).unwrap();
        let cart = set(&Cart::empty(), &tea, 1).identified(first.clone());
        assert_eq!(cart.id(), Some(&first));
        let cart = set(&cart, &tea, 2).identified(other.clone());
        assert_eq!(cart.id(), Some(&first), "a later write keeps the id");
        let emptied = cart.emptied(UnixMillis(1_000)).unwrap();
        assert_eq!(emptied.id(), Some(&first));
        assert_eq!(emptied.checkout_identity(), "a".repeat(32));
        let text = serde_json::to_string(&emptied).unwrap();
        assert!(text.contains(&format!("\"id\":\"{}\"", "a".repeat(32))));
        assert_eq!(serde_json::from_str::<Cart>(&text).unwrap(), emptied);
        // A cart that expired starts again without an id: its next write gets a new one.
        assert_eq!(Cart::empty().id(), None);
        assert_eq!(
            set(&Cart::empty(), &tea, 1).identified(other.clone()).id(),
            Some(&other)
        );
    }

    #[test]
    fn a_cart_stored_before_ids_is_named_by_its_last_write_and_a_bad_id_is_refused() {
        let legacy = r#"{"version":3,"updated_at":"2026-11-30T00:53:20Z","currency":"EUR","lines":[{"sku":"a","quantity":1,"name":"A"}]}"#;
        let cart: Cart = serde_json::from_str(legacy).unwrap();
        assert_eq!(cart.id(), None);
        assert_eq!(cart.checkout_identity(), "legacy-1796000000000");
        for bad in ["", "ABC", &"g".repeat(32), &"A".repeat(32), &"a".repeat(33)] {
            let text = format!(r#"{{"id":"{bad}","version":0,"currency":null,"lines":[]}}"#);
            assert!(serde_json::from_str::<Cart>(&text).is_err(), "{bad}");
        }
    }

    fn guest_cart(lines: &[(&Product, u64)]) -> Cart {
        let mut cart = Cart::empty();
        for (p, n) in lines {
            cart = set(&cart, p, *n);
        }
        cart.identified(CartId::parse(&"c".repeat(32)).unwrap())
    }

    fn merged(user: &Cart, guest: &Cart) -> (Cart, MergeReport) {
        let m = user.merge(guest, NOW).unwrap();
        match m.outcome {
            Outcome::Changed(c) => (c, m.report),
            Outcome::Unchanged => (user.clone(), m.report),
        }
    }

    #[test]
    fn a_merge_sums_quantities_caps_them_at_99_and_adds_new_lines() {
        let tea = product("tea", 100, "EUR");
        let pot = product("pot", 900, "EUR");
        let user = set(&Cart::empty(), &tea, 60);
        let guest = guest_cart(&[(&tea, 50), (&pot, 2)]);
        let (cart, report) = merged(&user, &guest);
        assert_eq!(cart.quantity_of(&tea.sku), Some(q(99)));
        assert_eq!(cart.quantity_of(&pot.sku), Some(q(2)));
        assert_eq!(cart.version(), user.version() + 1);
        assert_eq!(report.merged, vec![tea.sku.clone(), pot.sku.clone()]);
        assert_eq!(
            report.capped,
            vec![Capped {
                sku: tea.sku.clone(),
                requested: 110,
                quantity: q(99)
            }]
        );
        assert!(report.left_out.is_empty());
    }

    #[test]
    fn merging_the_same_guest_cart_again_changes_nothing() {
        let tea = product("tea", 100, "EUR");
        let guest = guest_cart(&[(&tea, 3)]);
        let (once, _) = merged(&Cart::empty(), &guest);
        let again = once.merge(&guest, NOW).unwrap();
        assert_eq!(again.outcome, Outcome::Unchanged);
        assert!(again.report.already_merged);
        // The mark survives the stored form.
        let text = serde_json::to_string(&once).unwrap();
        let stored: Cart = serde_json::from_str(&text).unwrap();
        assert_eq!(
            stored.merge(&guest, NOW).unwrap().outcome,
            Outcome::Unchanged
        );
        // The guest cart refilled is another state: it merges.
        let refilled = set(&guest, &tea, 5);
        let (twice, _) = merged(&once, &refilled);
        assert_eq!(twice.quantity_of(&tea.sku), Some(q(8)));
    }

    #[test]
    fn an_empty_guest_cart_merges_to_no_change() {
        let tea = product("tea", 100, "EUR");
        let user = set(&Cart::empty(), &tea, 1);
        let m = user.merge(&Cart::empty(), NOW).unwrap();
        assert_eq!(m.outcome, Outcome::Unchanged);
        assert_eq!(m.report, MergeReport::default());
    }

    #[test]
    fn lines_that_do_not_fit_are_reported_not_dropped_silently() {
        let usd = product("usd-tea", 100, "USD");
        let user = set(&Cart::empty(), &product("tea", 100, "EUR"), 1);
        let (cart, report) = merged(&user, &guest_cart(&[(&usd, 2)]));
        assert_eq!(cart.quantity_of(&usd.sku), None);
        assert_eq!(
            report.left_out,
            vec![LeftOut {
                sku: usd.sku.clone(),
                quantity: q(2),
                reason: LeftOutReason::Currency
            }]
        );
        let mut full = Cart::empty();
        for i in 0..MAX_LINES {
            full = set(&full, &product(&format!("p{i}"), 1, "EUR"), 1);
        }
        let extra = product("extra", 1, "EUR");
        let shared = product("p0", 1, "EUR");
        let (cart, report) = merged(&full, &guest_cart(&[(&extra, 1), (&shared, 4)]));
        assert_eq!(cart.lines().len(), MAX_LINES);
        assert_eq!(
            cart.quantity_of(&shared.sku),
            Some(q(5)),
            "an existing line still grows"
        );
        assert_eq!(report.left_out.len(), 1);
        assert_eq!(report.left_out[0].reason, LeftOutReason::TooManyLines);
    }

    #[test]
    fn merge_marks_are_bounded() {
        let tea = product("tea", 100, "EUR");
        let mut user = Cart::empty();
        for i in 0..(MAX_MERGE_MARKS + 3) {
            let guest = set(&Cart::empty(), &tea, 1)
                .identified(CartId::parse(&format!("{i:032x}")).unwrap());
            user = merged(&user, &guest).0;
        }
        let text = serde_json::to_string(&user).unwrap();
        let stored: Cart = serde_json::from_str(&text).unwrap();
        assert_eq!(stored.merged.len(), MAX_MERGE_MARKS);
    }

    #[test]
    fn a_stored_form_breaking_an_invariant_is_refused() {
        for bad in [
            r#"{"version":1,"currency":null,"lines":[{"sku":"a","quantity":1,"name":"A"}]}"#,
            r#"{"version":1,"currency":"EUR","lines":[]}"#,
            r#"{"version":1,"currency":"EUR","lines":[{"sku":"a","quantity":1,"name":"A"},{"sku":"a","quantity":2,"name":"A"}]}"#,
            r#"{"version":1,"currency":"EUR","lines":[{"sku":"a","quantity":100,"name":"A"}]}"#,
            r#"{"version":1,"currency":"EUR","lines":[{"sku":"A B","quantity":1,"name":"A"}]}"#,
            r#"{"version":-1,"currency":null,"lines":[]}"#,
        ] {
            assert!(serde_json::from_str::<Cart>(bad).is_err(), "{bad}");
        }
    }
}
