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
use crate::runtime::settled;
use wasm_bindgen::{JsCast, JsValue};
use worker::{Method, Response};

const BINDING: &str = "ASSETS";

/// What a path that is no API route answers (see the module documentation).
///
/// # Errors
/// 404 when there is no such asset (or no binding), 405 for a method other than `GET`/`HEAD`
/// on an asset, 503 when the assets service fails or answers 5xx.
pub async fn serve(cx: &mut Cx) -> Result<Response, ApiError> {
    let Some(assets) = binding(cx) else {
        return Err(ApiError::NotFound);
    };
    cx.route = "/{asset}";
    let read = cx.unknown_method.is_none() && matches!(cx.method, Method::Get | Method::Head);
    let answer = if read {
        fetch(assets.fetch(&cx.req)).await?
    } else {
        // Only whether the asset exists matters: a HEAD of the same URL, its redirects (to the
        // canonical path of a page) not followed.
        let init = web_sys::RequestInit::new();
        init.set_method("HEAD");
        init.set_redirect(web_sys::RequestRedirect::Manual);
        fetch(assets.fetch_with_str_and_init(&cx.req.url(), &init)).await?
    };
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
    // The service's headers are immutable: copy them, so the request id can be added.
    let headers =
        web_sys::Headers::new_with_headers(&answer.headers()).map_err(|e| unavailable(&e))?;
    let builder = Response::builder()
        .with_status(answer.status())
        .with_headers(worker::Headers(headers));
    Ok(match answer.body() {
        Some(stream) => builder.stream(stream),
        None => builder.empty(),
    })
}

fn binding(cx: &Cx) -> Option<worker::worker_sys::Fetcher> {
    js_sys::Reflect::get(&cx.env, &JsValue::from_str(BINDING))
        .ok()
        .filter(JsValue::is_object)
        .map(JsCast::unchecked_into)
}

async fn fetch(promise: Result<js_sys::Promise, JsValue>) -> Result<web_sys::Response, ApiError> {
    let promise = promise.map_err(|e| unavailable(&e))?;
    let value = settled(promise).await.map_err(|e| unavailable(&e))?;
    value.dyn_into().map_err(|e| unavailable(&e))
}

fn unavailable(e: &JsValue) -> ApiError {
    ApiError::Unavailable {
        retry_after: 1,
        what: format!("assets: {}", worker::Error::from(e.clone())),
    }
}
