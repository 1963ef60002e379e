//! edgecart: a stateless storefront API for the edge, compiled to WebAssembly and run as a
//! Cloudflare Worker.
//!
//! # Layout
//!
//! - `lib.rs` (this file): the module list and the route table (`Route`), nothing else.
//! - [`platform`]: the only code that uses JavaScript bindings (`wasm_bindgen`, `js_sys`,
//!   `web_sys`, `worker_sys`): the entry points, the executor, one adapter per binding.
//! - [`config`]: typed configuration from the worker's variables (pure).
//! - [`time`]: calendar arithmetic on an injected `now` (pure).
//! - [`http`]: the transport edge: request context, problem+json, responders, logging.
//! - [`health`]: liveness and readiness probes.
//! - [`hash`]: SHA-256 and hex for ETags, storage keys and fingerprints (pure).
//! - [`json`]: strict JSON (no duplicate member) for tokens and request bodies (pure).
//! - [`auth`]: bearer tokens (JWT, PASETO v4.public) → a verified [`auth::Identity`].
//! - [`catalogue`]: products in D1, served from the edge cache.
//! - [`cart`]: carts in Workers KV.
//! - [`orders`]: idempotent checkout into D1.
//! - [`ports`]: the storage the cart and checkout flows need, as narrow traits; [`stores`]:
//!   their Workers adapters.
//! - [`idempotency`]: idempotency records; the `IdempotencyStore` Durable Object.
//! - [`limits`]: edgecart's own rate limits (the Workers Rate Limiting binding).
//! - [`cors`], [`openapi`], [`problems`]: CORS, the OpenAPI document, problem explanations.
//! - [`assets`]: the storefront's static files, for paths that are no API route.
//! - [`dev`]: the development routes (`/dev/*`).
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
pub mod dev;
pub mod hash;
pub mod health;
pub mod http;
pub mod idempotency;
pub mod json;
pub mod limits;
pub mod openapi;
pub mod orders;
pub mod platform;
pub mod ports;
pub mod problems;
pub mod stores;
pub mod time;

use http::problem::ApiError;
use http::Cx;
use worker::Response;

/// Serves one request: routes it ([`route`]) and turns the outcome into the response
/// ([`Cx::finish`]). Called by the fetch entry points ([`platform::entry`]).
pub(crate) async fn serve(mut cx: Cx) -> Response {
    let result = route(&mut cx).await;
    cx.finish(result).await
}

/// The scope of catalogue writes.
pub const CATALOG_WRITE: &str = "catalog:write";
/// The scope of the merchant's order routes: fulfilment, and events in `GET /orders/{id}`.
pub const ORDERS_WRITE: &str = "orders:write";

/// Every API route, parsed from the path once ([`Route::parse`]); [`Route::serve`] gives each
/// its template, `Allow` and handlers in one exhaustive match.
enum Route<'a> {
    Health,
    HealthReady,
    Me,
    Products,
    Product(&'a str),
    Cart,
    CartItem(&'a str),
    CartMerge,
    /// Only when `GUEST_TOKEN_KEY` is set.
    GuestSession,
    Orders,
    Order(&'a str),
    OrderCancel(&'a str),
    OrderFulfilment(&'a str),
    OpenApi,
    Problem(&'a str),
    /// `/dev/*`, only in development ([`dev`]).
    Dev(dev::Route),
}

impl<'a> Route<'a> {
    /// The route a path's segments name, or `None` for a path that is no API route.
    fn parse(segments: &[&'a str], cx: &mut Cx) -> Option<Self> {
        Some(match *segments {
            ["health"] => Self::Health,
            ["health", "ready"] => Self::HealthReady,
            ["me"] => Self::Me,
            ["products"] => Self::Products,
            ["products", sku] => Self::Product(sku),
            ["cart"] => Self::Cart,
            ["cart", "items", sku] => Self::CartItem(sku),
            ["cart", "merge"] => Self::CartMerge,
            ["session", "guest"] if cx.config().is_ok_and(|c| c.guest_token_key.is_some()) => {
                Self::GuestSession
            }
            ["orders"] => Self::Orders,
            ["orders", id] => Self::Order(id),
            ["orders", id, "cancel"] => Self::OrderCancel(id),
            ["orders", id, "fulfilment"] => Self::OrderFulfilment(id),
            ["openapi.json"] => Self::OpenApi,
            ["problems", slug] => Self::Problem(slug),
            ["dev", ref rest @ ..] => Self::Dev(dev::Route::parse(rest, cx)?),
            _ => return None,
        })
    }

    /// Answers the request on this route (`OPTIONS` is a CORS preflight; another method than
    /// those listed, 405 with `Allow`).
    async fn serve(self, cx: &mut Cx) -> Result<Response, ApiError> {
        match self {
            Self::Health => methods!(cx, "/health", { GET => health::live() }),
            Self::HealthReady => methods!(cx, "/health/ready", { GET => health::ready(cx).await }),
            Self::Me => methods!(cx, "/me", { GET => auth::handlers::me(cx).await }),
            Self::Products => {
                methods!(cx, "/products", { GET => catalogue::handlers::list(cx).await })
            }
            Self::Product(sku) => methods!(cx, "/products/{sku}", {
                GET => catalogue::handlers::get(cx, sku).await,
                PUT => catalogue::handlers::put(cx, sku).await,
                DELETE => catalogue::handlers::delete(cx, sku).await,
            }),
            Self::Cart => methods!(cx, "/cart", {
                GET => cart::handlers::get(cx).await,
                DELETE => cart::handlers::clear(cx).await,
            }),
            Self::CartItem(sku) => methods!(cx, "/cart/items/{sku}", {
                PUT => cart::handlers::set_item(cx, sku).await,
                DELETE => cart::handlers::remove_item(cx, sku).await,
            }),
            Self::CartMerge => {
                methods!(cx, "/cart/merge", { POST => cart::handlers::merge(cx).await })
            }
            Self::GuestSession => methods!(cx, "/session/guest", {
                POST => auth::handlers::guest_session(cx).await,
            }),
            Self::Orders => methods!(cx, "/orders", {
                GET => orders::handlers::list(cx).await,
                POST => orders::handlers::create(cx).await,
            }),
            Self::Order(id) => {
                methods!(cx, "/orders/{id}", { GET => orders::handlers::get(cx, id).await })
            }
            Self::OrderCancel(id) => methods!(cx, "/orders/{id}/cancel", {
                POST => orders::handlers::cancel(cx, id).await,
            }),
            Self::OrderFulfilment(id) => methods!(cx, "/orders/{id}/fulfilment", {
                POST => orders::handlers::fulfil(cx, id).await,
            }),
            Self::OpenApi => methods!(cx, "/openapi.json", { GET => openapi::document() }),
            Self::Problem(slug) => {
                methods!(cx, "/problems/{kind}", { GET => problems::explain(slug) })
            }
            Self::Dev(route) => dev::serve(cx, route).await,
        }
    }
}

/// Routes the request: a path with an empty segment is 404; a path that is no API route goes
/// to the storefront's static files (`public/`), or 404.
async fn route(cx: &mut Cx) -> Result<Response, ApiError> {
    let path = cx.path.clone();
    // One leading `/` only: `//products/x` is not `/products/x`.
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(&path).split('/').collect();
    // An empty segment anywhere (`//products/x`, `/products/`, `/cart//items/x`) names
    // nothing: 404, before any handler, so no such spelling reaches the edge cache as an entry
    // of its own that a write's purge would never reach. (`/` alone is the storefront page.)
    if segments.len() > 1 && segments.contains(&"") {
        return Err(ApiError::NotFound);
    }
    match Route::parse(&segments, cx) {
        Some(route) => route.serve(cx).await,
        None => assets::serve(cx).await,
    }
}
