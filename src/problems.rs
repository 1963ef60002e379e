//! `GET /problems/{kind}`: a short human explanation of each problem `type`.

use worker::{Headers, Response};

use crate::http::problem::{ApiError, ProblemKind};

/// Answers with the explanation of one problem kind, as plain text.
///
/// # Errors
/// 404 for an unknown kind.
pub fn explain(slug: &str) -> Result<Response, ApiError> {
    let kind = ProblemKind::from_slug(slug).ok_or(ApiError::NotFound)?;
    let (slug, status, title, explanation) = kind.describe();
    let text = format!("{title} ({status})\n\ntype: /problems/{slug}\n\n{explanation}\n");
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "text/plain; charset=utf-8");
    let _ = headers.set("Cache-Control", "public, max-age=86400");
    Ok(Response::builder()
        .with_headers(headers)
        .fixed(text.into_bytes()))
}

/// Panics on purpose; routed only in development, for the test that the next request still
/// succeeds. With `after_await` (`/dev/panic?after-await`) it panics once the request has
/// been resumed by a settled promise, not in its first poll.
///
/// # Errors
/// Never returns.
#[allow(clippy::panic)]
pub async fn panic_for_test(after_await: bool) -> Result<Response, ApiError> {
    if after_await {
        let resolved = js_sys::Promise::resolve(&wasm_bindgen::JsValue::NULL);
        let _ = crate::runtime::settled(resolved).await;
    }
    panic!("deliberate panic from /dev/panic")
}

/// `GET /dev/hang` (development only): awaits a promise that never settles, as a request does
/// whose I/O workerd tore down when its client went away. workerd answers the client itself
/// once nothing can finish the request; the isolate must then let go of the request (see
/// `runtime::settled`), which `GET /dev/runtime` shows after a garbage collection.
///
/// # Errors
/// Never returns (a 500 if the promise that never settles ever did).
pub async fn hang_for_test() -> Result<Response, ApiError> {
    let never = js_sys::Promise::new(&mut |_resolve, _reject| {});
    let _ = crate::runtime::settled(never).await;
    Err(ApiError::Internal(
        "a promise that never settles settled".into(),
    ))
}
