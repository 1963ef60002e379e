//! HTTP handlers of the catalogue routes (scaffold: being built).

use worker::Response;

use crate::http::{problem::ApiError, Cx};

pub async fn list(_cx: &mut Cx) -> Result<Response, ApiError> {
    Err(ApiError::NotFound)
}
pub async fn get(_cx: &mut Cx, _sku: &str) -> Result<Response, ApiError> {
    Err(ApiError::NotFound)
}
pub async fn put(_cx: &mut Cx, _sku: &str) -> Result<Response, ApiError> {
    Err(ApiError::NotFound)
}
pub async fn delete(_cx: &mut Cx, _sku: &str) -> Result<Response, ApiError> {
    Err(ApiError::NotFound)
}
