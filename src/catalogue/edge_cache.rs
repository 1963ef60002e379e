//! The catalogue's Cache API adapter: stores and replays public catalogue responses, and
//! mirrors the catalogue generation, in the edge cache of the location serving the request.
//!
//! Role: thin. What to store, under which key and with which headers is decided in
//! `caching.rs` (pure); this file only moves [`Representation`]s into `caches.default` and
//! [`Hit`]s (a stored representation's headers and its body as a stream) out of it. A cache
//! failure is never an error for the client: a failed lookup is a miss, a failed store is
//! logged. (A body stream that fails after the hit's headers went out ends that response
//! early, as any streamed response would.)
//!
//! # Invalidation and consistency
//!
//! Every entry's key contains the catalogue generation (a counter in D1's `catalogue_meta`,
//! bumped in the same transaction as every product write). Each location mirrors the
//! generation in its own cache under a fixed key for at most
//! [`CachePolicy::generation_ttl`] seconds (30 by default) and reads D1 only when its mirror
//! is missing. A write bumps D1, then overwrites the mirror of the location that served it
//! and deletes the product's old entry, before answering: in that location the next read of
//! the product or of any listing page uses a new key, so it is a miss that reads the new
//! content from D1 at once.
//!
//! Other locations keep their own mirror (the Cache API stores per data centre; there is no
//! global purge without the zone purge API). They see the change when their mirror expires:
//! within `generation_ttl` seconds (30 by default), after which every key they compute is
//! new. Clients and intermediaries may additionally keep a response for `max-age` (and serve
//! it stale for `stale-while-revalidate`), as `Cache-Control` allows them.
//!
//! One race remains: a read that misses the mirror, reads generation N from D1, and stores
//! the mirror *after* a concurrent write stored N+1 puts N back. That location then serves
//! the previous catalogue until the mirror expires (the same bound as other locations).
//!
//! The Cache API does nothing on `*.workers.dev` hosts (custom domains only): there every
//! request is a miss and reads D1, which stays correct.

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::{Cache, Context, Headers, Response};

use super::caching::{generation_key, CachePolicy, Representation};
use super::store;
use crate::http::problem::ApiError;

fn log_failure(what: &str, e: &worker::Error) {
    crate::http::log_event(
        "warn",
        "edge cache failed",
        &serde_json::json!({ "operation": what, "error": e.to_string() }),
    );
}

#[wasm_bindgen]
extern "C" {
    /// `caches.default`.
    type EdgeCache;

    #[wasm_bindgen(method, catch, js_name = match)]
    fn match_key(this: &EdgeCache, key: &str) -> Result<js_sys::Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = put)]
    fn put_key(
        this: &EdgeCache,
        key: &str,
        response: &web_sys::Response,
    ) -> Result<js_sys::Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = delete)]
    fn delete_key(this: &EdgeCache, key: &str) -> Result<js_sys::Promise, JsValue>;
}

/// `caches.default`.
fn edge_cache() -> Result<EdgeCache, JsValue> {
    let caches = js_sys::Reflect::get(&js_sys::global(), &"caches".into())?;
    js_sys::Reflect::get(&caches, &"default".into()).map(JsCast::unchecked_into)
}

/// Runs one Cache API call to its end through `runtime::settled` (on the request path: a
/// request torn down meanwhile is let go of).
async fn settle(
    call: impl FnOnce(&EdgeCache) -> Result<js_sys::Promise, JsValue>,
) -> Result<(), worker::Error> {
    let promise = call(&edge_cache()?)?;
    crate::runtime::settled(promise).await?;
    Ok(())
}

/// The cached response under `key`, read with the runtime's own `caches.default.match` and
/// awaited through `runtime::settled` (the worker crate's `Cache::get` and `Response::bytes`
/// await through `JsFuture` and read the body chunk by chunk: on a cache hit, the two lookups
/// this route makes are most of its own work). `None` on a miss or any failure (logged).
async fn matched(key: &str, what: &str) -> Option<web_sys::Response> {
    let failed = |e: &JsValue| {
        log_failure(what, &worker::Error::from(e.clone()));
    };
    let promise = edge_cache()
        .and_then(|cache| cache.match_key(key))
        .map_err(|e| failed(&e))
        .ok()?;
    let found = crate::runtime::settled(promise)
        .await
        .map_err(|e| failed(&e))
        .ok()?;
    found.dyn_into::<web_sys::Response>().ok()
}

/// A cache hit: the stored representation's headers (its `body` is left empty: a hit is never
/// stored again or hashed) and the stored body as a stream, passed to the client as it is,
/// never read into wasm.
pub struct Hit {
    pub rep: Representation,
    pub body: web_sys::ReadableStream,
}

/// The stored response for `key`, or `None` on a miss (or any cache failure).
pub async fn lookup(key: &str) -> Option<Hit> {
    let response = matched(key, "lookup").await?;
    if response.status() != 200 {
        return None;
    }
    let headers = response.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let (etag, last_modified, date, cache_control) = (
        header("ETag"),
        header("Last-Modified"),
        header("Date"),
        header("Cache-Control"),
    );
    let rep = Representation::from_stored(Vec::new(), etag, last_modified, date, cache_control)?;
    Some(Hit {
        rep,
        body: response.body()?,
    })
}

fn to_response(rep: &Representation) -> Response {
    let headers = Headers::new();
    for (name, value) in rep.headers() {
        let _ = headers.set(name, &value);
    }
    Response::builder()
        .with_status(200)
        .with_headers(headers)
        .fixed(rep.body.clone())
}

/// Stores `rep` under `key` after the response has been sent (`waitUntil`).
pub fn store_later(ctx: &Context, key: String, rep: &Representation) {
    let response = to_response(rep);
    ctx.wait_until(async move {
        if let Err(e) = Cache::default().put(key.as_str(), response).await {
            log_failure("store", &e);
        }
    });
}

/// Removes the entry under `key`, if any.
pub async fn forget(key: &str) {
    if let Err(e) = settle(|cache| cache.delete_key(key)).await {
        log_failure("delete", &e);
    }
}

fn generation_response(generation: u64, policy: CachePolicy) -> Response {
    let ttl = policy.generation_ttl();
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "text/plain");
    let _ = headers.set(
        "Cache-Control",
        &format!("public, max-age={ttl}, s-maxage={ttl}"),
    );
    Response::builder()
        .with_status(200)
        .with_headers(headers)
        .fixed(generation.to_string().into_bytes())
}

/// This location's mirrored generation, if it has one (no D1 read, no store).
pub async fn mirrored_generation(origin: &str) -> Option<u64> {
    let response = matched(&generation_key(origin), "generation lookup").await?;
    let text = crate::runtime::settled(response.text().ok()?).await.ok()?;
    text.as_string()?.trim().parse::<u64>().ok()
}

/// The catalogue generation as this location knows it: its mirror, or D1 (then mirrored
/// after the response, through `waitUntil`). Reads only: a write must not use this, or its
/// deferred store of the old generation could land after the write's new one.
///
/// # Errors
/// 503 when the mirror is missing and D1 cannot be read.
pub async fn generation(
    db: &worker::D1Database,
    ctx: &Context,
    origin: &str,
    policy: CachePolicy,
) -> Result<u64, ApiError> {
    if let Some(g) = mirrored_generation(origin).await {
        return Ok(g);
    }
    let generation = store::generation(db).await?;
    let key = generation_key(origin);
    let response = generation_response(generation, policy);
    ctx.wait_until(async move {
        if let Err(e) = Cache::default().put(key.as_str(), response).await {
            log_failure("generation store", &e);
        }
    });
    Ok(generation)
}

/// After a change made elsewhere in D1 that bumped the generation (a checkout's stock
/// decrement): this location's mirror goes, so its next read asks D1 and serves new entries.
pub async fn forget_generation(origin: &str) {
    forget(&generation_key(origin)).await;
}

/// Overwrites this location's mirror with a generation just written to D1, before the write
/// is answered. If that fails the mirror is deleted, so the next read asks D1.
pub async fn publish_generation(origin: &str, generation: u64, policy: CachePolicy) {
    let key = generation_key(origin);
    let response: web_sys::Response = generation_response(generation, policy).into();
    if let Err(e) = settle(|cache| cache.put_key(&key, &response)).await {
        log_failure("generation publish", &e);
        forget(&key).await;
    }
}
