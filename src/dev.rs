//! The development routes, `/dev/*`: routed only when `ENVIRONMENT=development` (and, for
//! `/dev/token`, `DEV_TOKEN_KEY` is set); anywhere else they are no route at all, so the
//! path falls through to the static files (404).

use serde::Serialize;
use worker::Response;

use crate::http::{self, problem::ApiError, Cx};

/// One development route.
#[derive(Clone, Copy)]
pub enum Route {
    /// `POST /dev/token`: a signed test token (`auth::handlers::dev_token`).
    Token,
    /// `GET /dev/panic`: proves a panic costs one request, not the isolate's future.
    Panic,
    /// `GET /dev/runtime`: what this isolate holds right now.
    Runtime,
    /// `GET /dev/hang`: a request whose awaited promise never settles.
    Hang,
}

impl Route {
    /// The development route `segments` (after `/dev`) name, if it is routed here and now.
    pub fn parse(segments: &[&str], cx: &mut Cx) -> Option<Self> {
        let route = match segments {
            ["token"] => Self::Token,
            ["panic"] => Self::Panic,
            ["runtime"] => Self::Runtime,
            ["hang"] => Self::Hang,
            _ => return None,
        };
        let enabled = match route {
            Self::Token => cx
                .config()
                .is_ok_and(|c| c.is_development() && c.dev_token_key.is_some()),
            Self::Panic | Self::Runtime | Self::Hang => cx.is_development(),
        };
        enabled.then_some(route)
    }
}

/// Answers a development route.
///
/// # Errors
/// Those of each handler; 405 for a method the route does not take.
pub async fn serve(cx: &mut Cx, route: Route) -> Result<Response, ApiError> {
    match route {
        Route::Token => crate::methods!(cx, "/dev/token", {
            POST => crate::auth::handlers::dev_token(cx).await,
        }),
        Route::Panic => crate::methods!(cx, "/dev/panic", {
            GET => panic_for_test(cx.query() == "after-await").await,
        }),
        Route::Runtime => crate::methods!(cx, "/dev/runtime", { GET => in_flight() }),
        Route::Hang => crate::methods!(cx, "/dev/hang", { GET => hang_for_test().await }),
    }
}

/// Panics on purpose, for the test that the next request still succeeds. With `after_await`
/// (`/dev/panic?after-await`) it panics once the request has been resumed by a settled
/// promise, not in its first poll.
#[allow(clippy::panic)]
async fn panic_for_test(after_await: bool) -> Result<Response, ApiError> {
    if after_await {
        crate::platform::runtime::resumed().await;
    }
    panic!("deliberate panic from /dev/panic")
}

/// Awaits a promise that never settles, as a request does whose I/O workerd tore down when its
/// client went away. workerd answers the client itself once nothing can finish the request;
/// the isolate must then let go of the request (see `runtime::settled`), which
/// `GET /dev/runtime` shows after a garbage collection.
async fn hang_for_test() -> Result<Response, ApiError> {
    crate::platform::runtime::never_settled().await;
    Err(ApiError::Internal(
        "a promise that never settles settled".into(),
    ))
}

#[derive(Serialize)]
struct InFlight {
    /// Requests this isolate is serving, this one included.
    requests: usize,
    /// Promises those requests await.
    promises: usize,
}

/// How many requests and awaited promises the isolate holds. Both go back to 1 and 0 (this
/// request) once earlier requests are done, also when their clients went away mid-request
/// (tests/worker/foundation.test.mjs).
fn in_flight() -> Result<Response, ApiError> {
    let (requests, promises) = crate::platform::runtime::in_flight();
    http::json(200, &InFlight { requests, promises }, "no-store")
}
