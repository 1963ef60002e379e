//! edgecart's own rate limits, on the Workers Rate Limiting binding (`[[ratelimits]]` in
//! `wrangler.toml`).
//!
//! Three classes ([`policy::Class`]): authenticated writes keyed by the verified user's
//! [`crate::auth::Identity::user_key`]; token minting that needs no account, and requests whose
//! bearer token fails, both keyed by the client address (`CF-Connecting-IP`,
//! [`policy::address_key`]). Public catalogue reads are never limited.
//!
//! The binding's counters are per Cloudflare location, kept on the machine, eventually
//! consistent and permissive: a guard against abuse, not an accounting system. A refused
//! request gets 429 `/problems/rate-limited` with `Retry-After` (the class's period) before it
//! touches storage, so it changes nothing. A binding that is missing or is no rate limiter
//! makes the limited routes answer 503 (never 500, never "unlimited"), and readiness says so.
//! Refusals are logged once a minute per class and isolate, not per request.
//!
//! # The bad-token class
//!
//! A token is known to be bad only after its check, and the binding's one operation,
//! `limit(key)`, counts. So the binding is consulted only when a token has failed: the
//! failure is counted against the client address, and once the address is over its limit the
//! failing request gets 429 instead of 401 and this isolate remembers the address until the
//! period ends ([`policy::Blocklist`], bounded). Every later bearer request from a remembered
//! address is refused with 429 before its token is parsed or any signature checked, so a flood
//! of bad tokens costs one signature check per isolate per period once the location's counter
//! is exceeded, not one per request. Requests with good tokens cost nothing extra: no binding
//! call, and while no address is remembered not even a header read. The price of the design:
//! during the period a remembered address is refused also with a good token (the address was
//! flooding), and isolates that have not yet seen a failure from it learn on its next failure.
//! (Calling `limit()` before every verification would count good tokens as failures, and
//! cost a binding call on every authenticated request.)

pub mod policy;

use std::cell::RefCell;

use worker::Env;

use crate::http::{self, problem::ApiError, Cx};
use crate::platform::ratelimit::Limiter;
use crate::time::UnixMillis;
use policy::{Blocklist, Class, LogThrottle};

thread_local! {
    /// Client addresses over their bad-token limit, each until its period ends: abuse-guard
    /// state about addresses, not per-user state (no user, token or request data; at most
    /// `MAX_BLOCKED_ADDRESSES` entries of at most 60 s each). Losing it (a new isolate) costs
    /// only one more counted failure per address.
    static BLOCKED: RefCell<Blocklist> = RefCell::new(Blocklist::default());
    /// When each class's refusals were last logged, and how many since: three counters, the
    /// same for every user, so not per-user state.
    static LOGGED: RefCell<LogThrottle> = RefCell::new(LogThrottle::default());
}

/// `Retry-After` of a 503 for a missing or broken binding.
const UNAVAILABLE_RETRY_AFTER: u64 = 5;

/// Counts one request of `class` under `key`: `Ok(true)` while under the limit.
async fn count(env: &Env, class: Class, key: String) -> Result<bool, String> {
    let limiter = Limiter::of(env, class.binding())?;
    limiter
        .limit(key)
        .await
        .map_err(|()| format!("{}: limit() failed", class.binding()))?
        .ok_or_else(|| format!("{}: limit() answered no `success`", class.binding()))
}

fn unavailable(what: String) -> ApiError {
    ApiError::Unavailable {
        retry_after: UNAVAILABLE_RETRY_AFTER,
        what,
    }
}

/// The 429 of `class`, logged at most once a minute per class in this isolate.
fn refused(class: Class, retry_after: u64, now: UnixMillis) -> ApiError {
    if let Some(n) = LOGGED.with(|l| l.borrow_mut().note(class, now)) {
        http::log_event(
            "warn",
            "rate limited",
            &serde_json::json!({ "class": class.name(), "refused": n }),
        );
    }
    ApiError::Limited {
        class: class.name(),
        retry_after,
    }
}

/// Counts a request of `class` under `key` and refuses it (429) when over the limit.
///
/// # Errors
/// [`ApiError::Limited`] over the limit; [`ApiError::Unavailable`] when the binding is
/// missing, is no rate limiter, or its call fails.
pub async fn check(cx: &Cx, class: Class, key: String) -> Result<(), ApiError> {
    match count(&cx.env, class, key).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(refused(class, class.period_seconds(), cx.now)),
        Err(what) => Err(unavailable(what)),
    }
}

/// An authenticated write by `user_key` (cart writes, checkout).
///
/// # Errors
/// As [`check`].
pub async fn check_write(cx: &Cx, user_key: &str) -> Result<(), ApiError> {
    check(cx, Class::Write, user_key.to_owned()).await
}

/// The client address's key (see [`policy::address_key`]).
#[must_use]
pub fn address_key(cx: &Cx) -> String {
    policy::address_key(cx.header("cf-connecting-ip").as_deref())
}

/// A token minted without an account (`POST /dev/token`, `POST /session/guest`), keyed by
/// client address.
///
/// # Errors
/// As [`check`].
pub async fn check_mint(cx: &Cx) -> Result<(), ApiError> {
    check(cx, Class::Mint, address_key(cx)).await
}

/// Before any token check: 429 while this isolate remembers the client address as over its
/// bad-token limit. Costs one thread-local read while it remembers none.
///
/// # Errors
/// [`ApiError::Limited`] for a remembered address.
pub fn refuse_remembered_address(cx: &Cx) -> Result<(), ApiError> {
    if BLOCKED.with(|b| b.borrow().is_empty()) {
        return Ok(());
    }
    let key = address_key(cx);
    match BLOCKED.with(|b| b.borrow_mut().blocked(&key, cx.now)) {
        Some(retry_after) => Err(refused(Class::BadToken, retry_after, cx.now)),
        None => Ok(()),
    }
}

/// After a token failed: counts the failure against the client address. Under the limit the
/// request keeps its `refusal` (401); over it, 429, and the address is remembered until the
/// period ends. A missing or broken binding gives 503.
pub async fn note_refused_token(cx: &Cx, refusal: ApiError) -> ApiError {
    let key = address_key(cx);
    match count(&cx.env, Class::BadToken, key.clone()).await {
        Ok(true) => refusal,
        Ok(false) => {
            let period = Class::BadToken.period_seconds();
            let until = UnixMillis(cx.now.0.saturating_add(period.saturating_mul(1000)));
            BLOCKED.with(|b| b.borrow_mut().block(key, until, cx.now));
            refused(Class::BadToken, period, cx.now)
        }
        Err(what) => unavailable(what),
    }
}

/// Readiness: each class's binding is present and answers `limit()` (under a probe key no
/// request uses, so probing counts against nobody).
///
/// # Errors
/// The first binding that is missing, is no rate limiter, or fails.
pub async fn probe(env: &Env) -> Result<(), String> {
    for class in Class::ALL {
        count(env, class, "probe:readiness".to_owned()).await?;
    }
    Ok(())
}
