//! The cart's Workers KV adapter: one KV value per user.
//!
//! Role: the only code that reads or writes the `CARTS` namespace. The key is
//! `cart:<user_key>`, where `user_key` is [`crate::auth::Identity::user_key`] (SHA-256 over
//! the verified `iss` and `sub`): 69 bytes whatever the `sub`, so it fits KV's 512-byte limit,
//! two issuers' `alice` are two carts, and nothing a client sends (path, header, body) takes
//! part in it. The value is the [`Cart`] as JSON (lines, currency, integer `version`,
//! `updated_at`); the KV metadata repeats `version` and `updated_at` so listing keys shows
//! them without reading values. Every write sets `expiration_ttl` = `CART_TTL_SECONDS`, so an
//! abandoned cart disappears on its own and an active one keeps living.
//!
//! Consistency (what this guarantees, and what it does not):
//! - KV is eventually consistent. A write is visible at once in the location that made it
//!   and reaches other locations within about 60 s; reads elsewhere may return the previous
//!   cart until then. A user whose consecutive requests land in two locations can therefore
//!   see an older cart for up to a minute.
//! - KV has no compare-and-set. `If-Match` is checked against the cart as this location reads
//!   it, then the new cart is written: read-check-write, not atomic. It reliably refuses a
//!   client holding an older version than the one this location sees (the common case: two
//!   tabs, a stale page). It cannot stop two writes racing in the same instant, nor a write in
//!   another location that has not yet seen the latest one: the last write wins, and two
//!   carts with different contents may briefly carry the same version number.
//! - Checkout does not trust the cart alone: the order is priced from the catalogue and
//!   stock is decremented in one D1 transaction, whose unique index on (user, cart id, cart
//!   version) admits one order per cart state whatever the `Idempotency-Key` (a second tab, a
//!   client that makes a new key on retry, a location still reading the un-emptied cart);
//!   the idempotency record makes a retry under the same key replay instead of re-running.
//!   The worst a KV race can do is lose a line edit or let an order be placed from a cart
//!   that a racing edit changed in the same second; it cannot oversell, and one cart state
//!   is bought at most once.
//! - KV accepts about one write per second per key. A faster burst on one cart gets 429 from
//!   KV, which becomes `429 Too Many Requests` with `Retry-After: 1`; any other KV failure is
//!   `503` with `Retry-After: 1`. Unchanged carts are never written, which keeps idempotent
//!   retries (same quantity again, removing an absent line) off that limit.
//!
//! A strongly consistent cart would need a Durable Object per user; KV was chosen for cheap
//! reads from every location, the shape of cart traffic.

use worker::{D1Database, Env};

use super::model::Cart;
use crate::catalogue::model::{Product, Sku};
use crate::d1::Start;
use crate::http::problem::ApiError;
use crate::platform::kv::{KvError, Meta, Namespace};

/// The KV binding holding carts.
pub const BINDING: &str = "CARTS";

/// The KV key of a user's cart.
#[must_use]
pub fn key(user_key: &str) -> String {
    format!("cart:{user_key}")
}

/// The KV metadata stored beside each cart: `{ "version": n, "updated_at"?: "…" }`.
struct Metadata {
    version: u64,
    updated_at: Option<String>,
}

/// How a KV failure is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvFailure {
    /// KV's per-key write limit: 429, retry in a second.
    RateLimited,
    /// Anything else: 503, retry in a second.
    Unavailable,
}

/// Classifies a KV error by its message (KV reports its rate limit as a 429 /
/// "Too many requests" error, with no structured code).
#[must_use]
pub fn classify(message: &str) -> KvFailure {
    let lower = message.to_ascii_lowercase();
    if lower.contains("429") || lower.contains("too many requests") {
        KvFailure::RateLimited
    } else {
        KvFailure::Unavailable
    }
}

fn kv_failure(operation: &str, message: &str) -> ApiError {
    match classify(message) {
        KvFailure::RateLimited => ApiError::RateLimited { retry_after: 1 },
        KvFailure::Unavailable => ApiError::Unavailable {
            retry_after: 1,
            what: format!("kv {operation}: {message}"),
        },
    }
}

/// The `CARTS` namespace ([`crate::platform::kv`]: the binding's own `get` and `put`, awaited
/// through `runtime::settled`, so a call whose request is torn down is let go of).
fn namespace(env: &Env) -> Result<Namespace, ApiError> {
    Namespace::of(env, BINDING).ok_or_else(|| ApiError::Unavailable {
        retry_after: 1,
        what: format!("no KV binding {BINDING}"),
    })
}

/// A failed KV call as the cart answers it.
fn failure(operation: &str, e: KvError) -> ApiError {
    match e {
        KvError::Failed(message) => kv_failure(operation, &message),
        KvError::Options(message) => ApiError::Internal(format!("kv put options: {message}")),
        KvError::NotText(e) => e,
    }
}

/// Reads one fixed key, for the readiness check: whether the `CARTS` namespace answers.
///
/// # Errors
/// A message for the readiness report.
pub async fn probe(env: &Env) -> Result<(), String> {
    namespace(env)
        .map_err(|e| e.log_detail().unwrap_or_default())?
        .touch("edgecart:ready-probe")
        .await
        .map_err(|e| match e {
            KvError::Failed(message) | KvError::Options(message) => message,
            KvError::NotText(e) => e.log_detail().unwrap_or_default(),
        })
}

/// The user's cart; the empty cart at version 0 when none is stored (never written, or
/// expired).
///
/// # Errors
/// 429 / 503 when KV fails; 500 when the stored value is not text or does not parse (a bug).
pub async fn load(env: &Env, user_key: &str) -> Result<Cart, ApiError> {
    let stored = namespace(env)?
        .get(&key(user_key), "kv get")
        .await
        .map_err(|e| failure("get", e))?;
    match stored {
        None => Ok(Cart::empty()),
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| ApiError::Internal(format!("stored cart does not parse: {e}"))),
    }
}

/// Stores `cart` as the user's cart, exactly as given (the caller has bumped the version),
/// with metadata and `expiration_ttl = ttl_seconds` (KV refuses less than 60).
///
/// # Errors
/// 429 when KV's per-key write limit is hit, 503 for other KV failures.
pub async fn save(
    env: &Env,
    user_key: &str,
    cart: &Cart,
    ttl_seconds: u64,
) -> Result<(), ApiError> {
    let text = serde_json::to_string(cart)
        .map_err(|e| ApiError::Internal(format!("serialise cart: {e}")))?;
    let metadata = Metadata {
        version: cart.version(),
        updated_at: cart.updated_at().map(crate::time::UnixMillis::to_rfc3339),
    };
    // Versions stay far below 2^53: exact as JS numbers.
    #[allow(clippy::cast_precision_loss)]
    let version = Meta::Number(metadata.version as f64);
    let updated_at = metadata.updated_at.as_deref().map(Meta::Text);
    let fields =
        std::iter::once(("version", version)).chain(updated_at.map(|at| ("updated_at", at)));
    namespace(env)?
        .put(&key(user_key), &text, ttl_seconds, fields)
        .await
        .map_err(|e| failure("put", e))
}

/// The catalogue's current entries for `skus` (absent skus are simply missing), read on the
/// primary: what checkout prices with.
///
/// # Errors
/// 503 when D1 fails.
pub async fn products(db: &D1Database, skus: &[Sku]) -> Result<Vec<Product>, ApiError> {
    crate::catalogue::store::find_many(db, skus).await
}

/// The catalogue's entries for `skus` as a D1 session from `start` reads them: from a replica
/// near the worker when one is at least as new as `start`, else the primary
/// ([`crate::d1::read`]: a failed session read is retried once on the primary).
///
/// What a shopper may see, and for how long:
/// - the shopper's own writes: the cart lines are KV (never a replica); the checkout's stock
///   change is in the cart's bookmark ([`Cart::bookmark`]) and the client's bookmark header,
///   and `start` is no older than either, so it shows wherever the read lands;
/// - others' writes (a merchant's price, text or stock change, other shoppers' orders): at
///   most the replica's lag behind the primary. Nothing is bought at such a price: checkout
///   prices again on the primary ([`products`]) and refuses a total the shopper was not shown
///   (`expected_total_minor`).
///
/// # Errors
/// 503 (with `Retry-After`) when the primary fails too.
pub async fn products_near(
    db: &D1Database,
    skus: &[Sku],
    start: &Start,
) -> Result<Vec<Product>, ApiError> {
    crate::d1::read(db, start, async |handle| {
        crate::catalogue::store::find_many(&handle, skus).await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_derived_from_the_user_key_only_and_fit_kv() {
        let identity = crate::auth::Identity {
            iss: "https://edgecart.test".into(),
            sub: "x".repeat(10_000),
            scopes: vec![],
            exp: 0,
        };
        let k = key(&identity.user_key());
        assert_eq!(k.len(), 69);
        assert!(k.starts_with("cart:"));
    }

    #[test]
    fn kv_rate_limits_are_told_apart_from_other_failures() {
        let cases = [
            (
                "KV PUT failed: 429 Too Many Requests",
                KvFailure::RateLimited,
            ),
            ("Too many requests", KvFailure::RateLimited),
            ("too many requests to this key", KvFailure::RateLimited),
            (
                "KV GET failed: 500 Internal Server Error",
                KvFailure::Unavailable,
            ),
            ("network connection lost", KvFailure::Unavailable),
            ("", KvFailure::Unavailable),
        ];
        for (message, expected) in cases {
            assert_eq!(classify(message), expected, "{message}");
        }
    }
}
