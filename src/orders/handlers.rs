//! HTTP handlers of the order routes (scaffold: being built).

use worker::Response;

use crate::http::{problem::ApiError, Cx};

pub async fn create(_cx: &mut Cx) -> Result<Response, ApiError> {
    Err(ApiError::NotFound)
}
pub async fn list(_cx: &mut Cx) -> Result<Response, ApiError> {
    Err(ApiError::NotFound)
}
pub async fn get(_cx: &mut Cx, _id: &str) -> Result<Response, ApiError> {
    Err(ApiError::NotFound)
}
