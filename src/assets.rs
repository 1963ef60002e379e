//! The storefront's static files (`public/`), served through the `ASSETS` binding.
//!
//! `wrangler.toml` runs this worker ahead of its assets (`run_worker_first = true`), so every
//! request reaches the route table first and the API's paths never wait on an asset lookup. A
//! path that is no API route comes here:
//!
//! - `GET`/`HEAD`: the asset, as the assets service answers it (its `ETag`, 304s, the
//!   `_headers` file's CSP and other headers), or edgecart's own 404 problem when there is none;
//! - any other method on a path that has an asset (`POST /`): 405 with `Allow: GET, HEAD`,
//!   like every other route, where the assets service would answer a bare 405 of its own;
//! - without an `ASSETS` binding (the benches, some tests): 404.

use crate::http::{problem::ApiError, Cx};
use crate::platform::assets::Assets;
use worker::{Method, Response};

const BINDING: &str = "ASSETS";

/// What a path that is no API route answers (see the module documentation).
///
/// # Errors
/// 404 when there is no such asset (or no binding), 405 for a method other than `GET`/`HEAD`
/// on an asset, 503 when the assets service fails or answers 5xx.
pub async fn serve(cx: &mut Cx) -> Result<Response, ApiError> {
    let Some(assets) = Assets::of(&cx.env, BINDING) else {
        return Err(ApiError::NotFound);
    };
    cx.route = "/{asset}";
    let read = cx.unknown_method.is_none() && matches!(cx.method, Method::Get | Method::Head);
    let answer = if read {
        assets.fetch(&cx.req).await
    } else {
        // Only whether the asset exists matters: a HEAD of the same URL, its redirects (to the
        // canonical path of a page) not followed.
        assets.head(&cx.req.url()).await
    }
    .map_err(|e| unavailable(&e))?;
    match answer.status() {
        404 => return Err(ApiError::NotFound),
        // The service's own failure is a 503 problem (detail in the log), never a bare 5xx.
        status if status >= 500 => {
            return Err(ApiError::Unavailable {
                retry_after: 1,
                what: format!("assets: the service answered {status}"),
            })
        }
        _ => {}
    }
    if !read {
        return Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" });
    }
    answer.into_response().map_err(|e| unavailable(&e))
}

fn unavailable(e: &worker::Error) -> ApiError {
    ApiError::Unavailable {
        retry_after: 1,
        what: format!("assets: {e}"),
    }
}
