//! `GET /openapi.json`: the OpenAPI 3.1 description of every route (scaffold: being built).

use worker::Response;

use crate::http::problem::ApiError;

/// # Errors
/// Never, once built.
pub fn document() -> Result<Response, ApiError> {
    Err(ApiError::NotFound)
}
