//! The catalogue's Cache API adapter: stores and replays public catalogue responses, and
//! mirrors the listing generation and marks changed products, in the edge cache of the
//! location serving the request.
//!
//! Role: thin. What to store, under which key and with which headers is decided in
//! `caching.rs` (pure); this file only moves [`Representation`]s and [`Mirror`]s into
//! `caches.default` and [`Hit`]s (a stored representation's headers and its body as a stream)
//! out of it. A cache failure is never an error for the client: a failed lookup is a miss, a
//! failed store is logged. (A body stream that fails after the hit's headers went out ends
//! that response early, as any streamed response would.)
//!
//! # Invalidation and consistency
//!
//! A product page lives under one fixed key per product, for at most
//! [`CachePolicy::generation_ttl`] seconds (30 by default) whatever `s-maxage` tells clients.
//! A listing page's key contains the listing generation (in D1, see `store.rs`: bumped
//! whenever what a shopper sees of any product changes), which each location mirrors under a
//! fixed key for the same time, with the bookmark of the D1 write that set it when known.
//! A merchant's write, before answering, overwrites in the location that served it the
//! generation's mirror and the product's key with a mark: the product's new revision and the
//! write's bookmark. A checkout or cancel that moved a product's band does the same for that
//! product and the generation, without a bookmark (its batch runs outside a session). The
//! next read here of the product finds the mark, or of any listing page a new key: a miss
//! that reads D1 at least as new as the write, and stores the page over the mark.
//!
//! Coarser than per product: a listing page has one key per generation, so any visible change
//! to any product turns every listing page into a miss (the Cache API cannot tell which pages
//! show a product; Workers Cache tags can).
//!
//! Other locations keep their own pages and mirrors (the Cache API stores per data centre;
//! there is no global purge without the zone purge API). They see the change when those expire:
//! within `generation_ttl` seconds (30 by default), plus the lag of the replica their next
//! miss reads. Clients and intermediaries may additionally keep a response for `max-age` (and
//! serve it stale for `stale-while-revalidate`), as `Cache-Control` allows them.
//!
//! One race remains: a read that misses, reads revision N from D1, and stores its page (or
//! the generation's mirror) *after* a concurrent write stored its mark N+1 puts N back. That location then serves the
//! previous content until the mirror expires (the same bound as other locations).
//!
//! The Cache API does nothing on `*.workers.dev` hosts (custom domains only): there every
//! request is a miss and reads D1, which stays correct.

use worker::{Cache, Context, Headers, Response, ResponseBody};

use super::caching::{generation_key, product_key, CachePolicy, Mirror, Representation};
use super::store::Revised;
use crate::platform::cache::{self, Stored};

fn log_failure(what: &str, e: &worker::Error) {
    crate::http::log_event(
        "warn",
        "edge cache failed",
        &serde_json::json!({ "operation": what, "error": e.to_string() }),
    );
}

/// The response stored under `key`, or `None` on a miss or any failure (logged).
async fn matched(key: &str, what: &str) -> Option<Stored> {
    cache::lookup(key)
        .await
        .map_err(|e| log_failure(what, &e))
        .ok()
        .flatten()
}

/// A cache hit: the stored representation's headers (its `body` is left empty: a hit is never
/// stored again or hashed) and the stored body as a stream, passed to the client as it is,
/// never read into wasm.
pub struct Hit {
    pub rep: Representation,
    pub body: ResponseBody,
}

/// The stored response for `key`, or `None` on a miss (or any cache failure).
pub async fn lookup(key: &str) -> Option<Hit> {
    hit(matched(key, "lookup").await?)
}

/// What a location holds under a product's key.
pub enum Product {
    /// The page.
    Page(Hit),
    /// A mark: the page moved on to this revision (with the write's bookmark when known).
    Mark(Mirror),
}

/// The page or mark stored under a product's key, or `None` on a miss (or any cache failure,
/// or a mark that does not parse). A mark is told apart by having no `ETag`.
pub async fn product(key: &str) -> Option<Product> {
    let response = matched(key, "product lookup").await?;
    if response.header("ETag").is_some() {
        return hit(response).map(Product::Page);
    }
    Mirror::parse(&response.text().await?).map(Product::Mark)
}

/// A stored 200's representation and body stream.
fn hit(response: Stored) -> Option<Hit> {
    if response.status() != 200 {
        return None;
    }
    let (etag, last_modified, date, cache_control) = (
        response.header("ETag"),
        response.header("Last-Modified"),
        response.header("Date"),
        response.header("Cache-Control"),
    );
    let rep = Representation::from_stored(Vec::new(), etag, last_modified, date, cache_control)?;
    Some(Hit {
        rep,
        body: response.into_body(),
    })
}

fn to_response(rep: &Representation, cache_control: &str) -> Response {
    let headers = Headers::new();
    for (name, value) in rep.headers() {
        let value = if name == "Cache-Control" {
            cache_control
        } else {
            &value
        };
        let _ = headers.set(name, value);
    }
    Response::builder()
        .with_status(200)
        .with_headers(headers)
        .fixed(rep.body.clone())
}

/// Stores `rep` under `key` after the response has been sent (`waitUntil`), for as long as
/// its own `Cache-Control` says (a listing page).
pub fn store_later(ctx: &Context, key: String, rep: &Representation) {
    put_later(ctx, key, to_response(rep, &rep.cache_control), "store");
}

/// Stores a product page under its key after the response has been sent, for
/// [`CachePolicy::generation_ttl`] seconds ([`CachePolicy::entry_control`]).
pub fn store_product_later(ctx: &Context, key: String, rep: &Representation, policy: CachePolicy) {
    put_later(ctx, key, to_response(rep, &policy.entry_control()), "store");
}

fn put_later(ctx: &Context, key: String, response: Response, what: &'static str) {
    ctx.wait_until(async move {
        if let Err(e) = Cache::default().put(key.as_str(), response).await {
            log_failure(what, &e);
        }
    });
}

/// Removes the entry under `key`, if any.
pub async fn forget(key: &str) {
    if let Err(e) = cache::delete(key).await {
        log_failure("delete", &e);
    }
}

fn mirror_response(mirror: &Mirror, policy: CachePolicy) -> Response {
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
        .fixed(mirror.to_text().into_bytes())
}

/// This location's mirror of the listing generation under `key`, if it has one that parses
/// (no D1 read, no store).
pub async fn mirrored(key: &str) -> Option<Mirror> {
    let response = matched(key, "mirror lookup").await?;
    Mirror::parse(&response.text().await?)
}

/// Stores a mirror read from D1 after the response (`waitUntil`). Reads only: a write must
/// not use this, or its deferred store of an old value could land after the write's new one.
pub fn mirror_later(ctx: &Context, key: String, mirror: &Mirror, policy: CachePolicy) {
    put_later(ctx, key, mirror_response(mirror, policy), "mirror store");
}

/// Overwrites this location's mirror or product mark under `key` with a value just written to
/// D1, before the write is answered. If that fails the key is deleted, so the next read asks
/// D1.
pub async fn publish(key: &str, mirror: &Mirror, policy: CachePolicy) {
    if let Err(e) = cache::put(key, mirror_response(mirror, policy)).await {
        log_failure("mirror publish", &e);
        forget(key).await;
    }
}

/// After a checkout or cancel committed: this location's keys of the products whose
/// shopper-visible stock it changed take a mark, and its mirror of the listing generation the
/// new generation
/// (no bookmark: the order batch ran outside a session, so a miss that reads a replica
/// older than it reads again at the primary). Products it did not change keep their pages.
pub async fn revised(origin: &str, revised: &Revised, policy: CachePolicy) {
    let Some(generation) = revised.generation else {
        return;
    };
    let mirror = Mirror {
        value: generation,
        bookmark: None,
    };
    for sku in &revised.skus {
        publish(&product_key(origin, sku.as_str()), &mirror, policy).await;
    }
    publish(&generation_key(origin), &mirror, policy).await;
}
