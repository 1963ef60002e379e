//! edgecart: a stateless storefront API for the edge, compiled to WebAssembly and run as a
//! Cloudflare Worker.
//!
//! # Layout
//!
//! - `lib.rs` (this file): the fetch entry point and the route table, nothing else.
//! - [`config`]: typed configuration from the worker's variables (pure).
//! - [`time`]: calendar arithmetic on an injected `now` (pure).
//! - [`http`]: the transport edge: request context, problem+json, responders, logging.
//! - [`health`]: liveness and readiness probes.
//! - [`hash`]: SHA-256 and hex for ETags, storage keys and fingerprints (pure).
//! - [`auth`]: bearer tokens (JWT, PASETO v4.public) → a verified [`auth::Identity`].
//! - [`catalogue`]: products in D1, served from the edge cache.
//! - [`cart`]: carts in Workers KV.
//! - [`orders`]: idempotent checkout into D1.
//! - [`idempotency`]: idempotency records; the `IdempotencyStore` Durable Object.
//! - [`limits`]: edgecart's own rate limits (the Workers Rate Limiting binding).
//! - [`cors`], [`openapi`], [`problems`]: CORS, the OpenAPI document, problem explanations.
//! - [`assets`]: the storefront's static files, for paths that are no API route.
//! - [`runtime`]: how Rust futures are scheduled on workerd.
//!
//! Pure modules never touch `worker` types, a clock or storage; that keeps them testable
//! natively with `cargo test`.

pub mod assets;
pub mod auth;
pub mod cart;
pub mod catalogue;
pub mod config;
pub mod cors;
pub mod d1;
pub mod hash;
pub mod health;
pub mod http;
pub mod idempotency;
pub mod js_text;
pub mod limits;
pub mod openapi;
pub mod orders;
pub mod problems;
pub mod runtime;
pub mod time;

pub use idempotency::durable::IdempotencyStore;

use http::problem::ApiError;
use http::Cx;
use worker::{event, Context, Env, Method, Response};

/// Once per wasm instance (at load, and again after a panic re-initialises it).
#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The crons (`[triggers]` in `wrangler.toml`): re-send order events the queue never got (the
/// outbox sweep), and collect expired idempotency records of the D1 backend. (Durable Object
/// records are collected by the object's own alarm.)
#[event(scheduled)]
async fn scheduled(_event: worker::ScheduledEvent, env: Env, _ctx: worker::ScheduleContext) {
    orders::delivery::sweep(&env).await;
    idempotency::cleanup::run(&env).await;
}

/// The `ORDER_EVENTS` consumer and its dead-letter queue's (`src/orders/delivery.rs`).
#[event(queue)]
async fn order_events(
    batch: worker::MessageBatch<wasm_bindgen::JsValue>,
    env: Env,
    _ctx: Context,
) -> worker::Result<()> {
    orders::delivery::consume(&batch, &env).await;
    Ok(())
}

/// The fetch handler as the worker crate exports it. `src/entry.mjs` calls it only for the
/// first request after a panic (through worker-build's wrapper, which re-creates the wasm
/// instance); every other request comes in through [`edgecart_fetch`].
#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> worker::Result<Response> {
    // The worker crate's `Context` does not expose `ctx.cache`: this one request (after a
    // panic) takes the Cache API path.
    Ok(serve(req, env, ctx, None).await)
}

/// The fetch entry `src/entry.mjs` calls: serves the request on [`runtime::run`] and hands
/// the response to `resolve` (the `resolve` of the promise the entry returned to workerd).
/// The same handler as [`fetch`], without `future_to_promise`'s closure and task queue.
///
/// Nothing here can fail but a panic, which traps: the trap leaves through the entry (the
/// promise rejects, workerd answers 500), or through whatever resumed the request (a promise
/// reaction, or a microtask of the task queue), and then the request ends when workerd sees
/// that nothing can finish it (a 500, once its other pending I/O is done). The panic hook
/// flags the instance for re-creation either way.
#[wasm_bindgen::prelude::wasm_bindgen(js_name = edgecartFetch)]
pub fn edgecart_fetch(
    req: web_sys::Request,
    env: Env,
    ctx: worker::worker_sys::Context,
    resolve: js_sys::Function,
) {
    let workers_cache = catalogue::workers_cache::WorkersCache::detect(ctx.as_ref());
    runtime::run(async move {
        let response = serve(req, env, Context::new(ctx), workers_cache).await;
        let response: web_sys::Response = response.into();
        // `resolve` of a pending promise does not throw.
        let _ = resolve.call1(&wasm_bindgen::JsValue::UNDEFINED, &response);
    });
}

async fn serve(
    req: web_sys::Request,
    env: Env,
    ctx: Context,
    workers_cache: Option<catalogue::workers_cache::WorkersCache>,
) -> Response {
    let mut cx = Cx::new(req, env, ctx);
    cx.workers_cache = workers_cache;
    let result = route(&mut cx).await;
    cx.finish(result).await
}

const GET: &str = "GET, HEAD";

/// The scope of catalogue writes.
pub const CATALOG_WRITE: &str = "catalog:write";
/// The scope of the merchant's order routes: fulfilment, and events in `GET /orders/{id}`.
pub const ORDERS_WRITE: &str = "orders:write";

/// `/dev/token` exists only when `ENVIRONMENT=development` and `DEV_TOKEN_KEY` is set.
fn dev_tokens_enabled(cx: &mut Cx) -> bool {
    cx.config()
        .is_ok_and(|c| c.is_development() && c.dev_token_key.is_some())
}

/// `/session/guest` exists only when `GUEST_TOKEN_KEY` is set.
fn guest_sessions_enabled(cx: &mut Cx) -> bool {
    cx.config().is_ok_and(|c| c.guest_token_key.is_some())
}

/// The route table: path → route template, allowed methods and named handler. `OPTIONS` on
/// any route is a CORS preflight; a known path with another method is 405 with `Allow`.
async fn route(cx: &mut Cx) -> Result<Response, ApiError> {
    use Method::{Delete, Get, Head, Options, Post, Put};
    let path = cx.path.clone();
    // One leading `/` only: `//products/x` is not `/products/x`.
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(&path).split('/').collect();
    // An empty segment anywhere (`//products/x`, `/products/`, `/cart//items/x`) names
    // nothing: 404, before any handler, so no such spelling reaches the edge cache as an entry
    // of its own that a write's purge would never reach. (`/` alone is the storefront page.)
    if segments.len() > 1 && segments.contains(&"") {
        return Err(ApiError::NotFound);
    }
    let method = cx.method.clone();
    let (template, allow): (&'static str, &'static str) = match segments.as_slice() {
        ["health"] => ("/health", GET),
        ["health", "ready"] => ("/health/ready", GET),
        ["me"] => ("/me", GET),
        ["products"] => ("/products", GET),
        ["products", _] => ("/products/{sku}", "GET, HEAD, PUT, DELETE"),
        ["cart"] => ("/cart", "GET, HEAD, DELETE"),
        ["cart", "items", _] => ("/cart/items/{sku}", "PUT, DELETE"),
        ["cart", "merge"] => ("/cart/merge", "POST"),
        ["session", "guest"] if guest_sessions_enabled(cx) => ("/session/guest", "POST"),
        ["orders"] => ("/orders", "GET, HEAD, POST"),
        ["orders", _] => ("/orders/{id}", GET),
        ["orders", _, "cancel"] => ("/orders/{id}/cancel", "POST"),
        ["orders", _, "fulfilment"] => ("/orders/{id}/fulfilment", "POST"),
        ["openapi.json"] => ("/openapi.json", GET),
        ["problems", _] => ("/problems/{kind}", GET),
        ["dev", "token"] if dev_tokens_enabled(cx) => ("/dev/token", "POST"),
        ["dev", "panic"] if cx.is_development() => ("/dev/panic", GET),
        ["dev", "runtime"] if cx.is_development() => ("/dev/runtime", GET),
        ["dev", "hang"] if cx.is_development() => ("/dev/hang", GET),
        // Not an API route: the storefront's static files (`public/`), or 404.
        _ => return assets::serve(cx).await,
    };
    cx.route = template;
    if cx.unknown_method.is_some() {
        return Err(ApiError::MethodNotAllowed { allow });
    }
    if method == Options {
        return cors::preflight(cx);
    }
    let read = matches!(method, Get | Head);
    match (segments.as_slice(), method) {
        (["health"], _) if read => health::live(),
        (["health", "ready"], _) if read => health::ready(cx).await,
        (["me"], _) if read => auth::handlers::me(cx).await,
        (["products"], _) if read => catalogue::handlers::list(cx).await,
        (["products", sku], _) if read => catalogue::handlers::get(cx, sku).await,
        (["products", sku], Put) => catalogue::handlers::put(cx, sku).await,
        (["products", sku], Delete) => catalogue::handlers::delete(cx, sku).await,
        (["cart"], _) if read => cart::handlers::get(cx).await,
        (["cart"], Delete) => cart::handlers::clear(cx).await,
        (["cart", "items", sku], Put) => cart::handlers::set_item(cx, sku).await,
        (["cart", "items", sku], Delete) => cart::handlers::remove_item(cx, sku).await,
        (["cart", "merge"], Post) => cart::handlers::merge(cx).await,
        (["session", "guest"], Post) => auth::handlers::guest_session(cx).await,
        (["orders"], Post) => orders::handlers::create(cx).await,
        (["orders"], _) if read => orders::handlers::list(cx).await,
        (["orders", id], _) if read => orders::handlers::get(cx, id).await,
        (["orders", id, "cancel"], Post) => orders::handlers::cancel(cx, id).await,
        (["orders", id, "fulfilment"], Post) => orders::handlers::fulfil(cx, id).await,
        (["openapi.json"], _) if read => openapi::document(),
        (["problems", slug], _) if read => problems::explain(slug),
        (["dev", "token"], Post) => auth::handlers::dev_token(cx).await,
        // Development only: proves a panic costs one request, not the isolate's future.
        (["dev", "panic"], _) if read => {
            problems::panic_for_test(cx.query() == "after-await").await
        }
        // Development only: what this isolate holds right now (itself, when otherwise idle).
        (["dev", "runtime"], _) if read => health::in_flight(),
        // Development only: a request whose awaited promise never settles.
        (["dev", "hang"], _) if read => problems::hang_for_test().await,
        _ => Err(ApiError::MethodNotAllowed { allow }),
    }
}
