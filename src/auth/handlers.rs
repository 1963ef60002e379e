//! `GET /me` and `POST /dev/token` (scaffold: being built).

use worker::Response;

use crate::http::{problem::ApiError, Cx};

pub async fn me(_cx: &mut Cx) -> Result<Response, ApiError> {
    Err(ApiError::NotFound)
}
pub async fn dev_token(_cx: &mut Cx) -> Result<Response, ApiError> {
    Err(ApiError::NotFound)
}
