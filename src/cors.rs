//! CORS for the origins in `CORS_ALLOW_ORIGINS` (scaffold: being built).
//!
//! Headers that depend on the request are added after the edge-cache lookup, in
//! [`crate::http::Cx::finish`], and so never stored in a shared cache entry.

use worker::{Headers, Response};

use crate::config::Config;
use crate::http::{problem::ApiError, Cx};

/// Answers a preflight `OPTIONS` request.
///
/// # Errors
/// 404 when the route does not exist.
pub fn preflight(_cx: &mut Cx) -> Result<Response, ApiError> {
    Err(ApiError::NotFound)
}

/// Adds the CORS response headers for `origin` when it is allowed.
pub fn decorate(_config: &Config, _origin: Option<&str>, _headers: &Headers) {}
