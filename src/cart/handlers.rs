//! HTTP handlers of the cart routes (scaffold: being built).

use worker::Response;

use crate::http::{problem::ApiError, Cx};

pub async fn get(_cx: &mut Cx) -> Result<Response, ApiError> {
    Err(ApiError::NotFound)
}
pub async fn clear(_cx: &mut Cx) -> Result<Response, ApiError> {
    Err(ApiError::NotFound)
}
pub async fn set_item(_cx: &mut Cx, _sku: &str) -> Result<Response, ApiError> {
    Err(ApiError::NotFound)
}
pub async fn remove_item(_cx: &mut Cx, _sku: &str) -> Result<Response, ApiError> {
    Err(ApiError::NotFound)
}
