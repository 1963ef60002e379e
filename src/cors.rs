//! CORS for the origins in `CORS_ALLOW_ORIGINS`: the edge adapter.
//!
//! The decision itself is pure and lives in [`policy`]; this file only reads the request's
//! `Origin` and writes headers on a `worker` response. Stateless: nothing is stored, every
//! request is decided on its own headers and the configuration.
//!
//! [`decorate`] is called by [`crate::http::Cx::finish`] on every response, after any edge-cache
//! lookup or store, so request-dependent headers (`Access-Control-Allow-Origin`, `Vary: Origin`)
//! never land in a shared cache entry. A preflight (`OPTIONS` on a known route) is answered by
//! [`preflight`] with 204; `OPTIONS` on any other path is what [`crate::assets`] answers (404,
//! or 405 on a static file). An origin that is not listed gets a 204 without any
//! `Access-Control-*` header, which the browser treats as a refusal.

pub mod policy;

use worker::{Headers, Response};

use crate::config::Config;
use crate::http::{problem::ApiError, Cx};
use policy::{Decision, Exchange};

/// Answers a preflight `OPTIONS` request on a known route: 204, no body, with the preflight
/// headers when the origin is allowed. Not cached by shared caches (`no-store`); browsers
/// cache it for [`policy::MAX_AGE_SECONDS`].
///
/// # Errors
/// [`ApiError::Misconfigured`] when the configuration cannot be read.
pub fn preflight(cx: &mut Cx) -> Result<Response, ApiError> {
    let origin = cx.header("origin");
    let config = cx.config()?;
    let decision = policy::decide(&config.cors_allow_origins, origin.as_deref());
    let headers = Headers::new();
    let _ = headers.set("Cache-Control", "no-store");
    apply(&headers, &decision, Exchange::Preflight);
    Ok(Response::builder()
        .with_status(204)
        .with_headers(headers)
        .empty())
}

/// Adds the CORS response headers for the request's origin when it is allowed (and
/// `Vary: Origin` whenever any origin is configured). A response that already carries
/// `Access-Control-Allow-Origin` (a preflight answer) is left as it is. Without configured
/// origins nothing is added and nothing is read: `origin` is only called when needed.
pub fn decorate(config: &Config, origin: impl FnOnce() -> Option<String>, headers: &Headers) {
    if config.cors_allow_origins.is_empty()
        || headers.has("Access-Control-Allow-Origin").unwrap_or(false)
    {
        return;
    }
    let origin = origin();
    let decision = policy::decide(&config.cors_allow_origins, origin.as_deref());
    apply(headers, &decision, Exchange::Actual);
}

fn apply(headers: &Headers, decision: &Decision, exchange: Exchange) {
    let vary = headers.get("Vary").ok().flatten();
    for (name, value) in policy::headers(decision, exchange, vary.as_deref()) {
        let _ = headers.set(name, &value);
    }
}
