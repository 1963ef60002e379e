//! HTTP handlers of the catalogue routes: `GET`/`HEAD /products`, `GET`/`HEAD`/`PUT`/`DELETE
//! /products/{sku}`.
//!
//! Thin glue: parse the request into pure values (`listing.rs`, `write.rs`, `caching.rs`),
//! ask the edge cache (`edge_cache.rs`) and D1 (`store.rs`), and answer. Where the platform
//! provides Workers Cache (`platform/workers_cache.rs`), reads skip the edge cache, read D1 at the
//! primary and carry `Cache-Tag`; writes purge the tags of what they changed. Reads never look at
//! `Authorization`: the catalogue is the same for everyone, so a request with a bearer token
//! is served the same public entry. Validation happens before any storage is touched, so a
//! refused request changes nothing.

use worker::{D1Database, Headers, Response};

use super::caching::{
    cache_key, evaluate, generation_key, listing_tags, product_key, product_tag, write_purge,
    CachePolicy, Freshness, IfNoneMatch, Mirror, Representation,
};
use super::edge_cache;
use super::listing::{paginate, ListQuery};
use super::model::{Product, Sku};
use super::store::{self, ReadFrom, Upserted};
use super::write::ProductInput;
use crate::http::precondition::{self, IfMatch, Precondition};
use crate::http::{problem::ApiError, Cx};

/// `Cache-Status` (RFC 9211) of a response served from the edge cache.
pub const CACHE_STATUS_HIT: &str = "edgecart; hit";
/// `Cache-Status` of a response read from D1 and stored in the edge cache.
pub const CACHE_STATUS_STORED: &str = "edgecart; fwd=uri-miss; stored";
/// `Cache-Status` of a response read from D1 with Workers Cache in front: edgecart's own
/// cache was not used (Workers Cache stores the response, and answers its hits without
/// running the worker).
pub const CACHE_STATUS_BYPASS: &str = "edgecart; fwd=bypass; detail=workers-cache";

/// Where a read's representation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    Hit,
    Stored,
    Bypass,
}

impl Served {
    fn cache_status(self) -> &'static str {
        match self {
            Self::Hit => CACHE_STATUS_HIT,
            Self::Stored => CACHE_STATUS_STORED,
            Self::Bypass => CACHE_STATUS_BYPASS,
        }
    }
}

/// The request's conditional headers, parsed before any I/O.
struct Conditions {
    if_none_match: Option<IfNoneMatch>,
    if_modified_since: Option<String>,
}

impl Conditions {
    fn read(cx: &Cx) -> Result<Self, ApiError> {
        let if_none_match = cx
            .header("if-none-match")
            .map(|v| IfNoneMatch::parse(&v))
            .transpose()?;
        Ok(Self {
            if_none_match,
            if_modified_since: cx.header("if-modified-since"),
        })
    }
}

fn parse_sku(text: &str) -> Result<Sku, ApiError> {
    Sku::parse(text).map_err(|_| {
        ApiError::BadRequest(
            "A sku is 1 to 64 characters of lower-case letters, digits and `-`.".into(),
        )
    })
}

fn database(cx: &Cx) -> Result<D1Database, ApiError> {
    store::database(&cx.env)
}

/// The request's origin (`https://shop.example`): the edge cache's keys live under it.
///
/// # Errors
/// 500 when the runtime gives no parsable URL.
pub fn origin(cx: &Cx) -> Result<String, ApiError> {
    Ok(cx.origin().to_owned())
}

fn now_secs(cx: &Cx) -> i64 {
    i64::try_from(cx.now.seconds()).unwrap_or(i64::MAX)
}

fn product_path(sku: &Sku) -> String {
    format!("/products/{sku}")
}

/// What a 200 carries: the bytes just generated, or a cache hit's stored body as a stream.
enum Payload {
    Bytes(Vec<u8>),
    Stream(worker::ResponseBody),
}

/// `Cache-Status`, and on a hit the stored representation's `Age` (RFC 9111 §4: a cache that
/// answers from storage says how old the answer is, so a client's `max-age` counts from the
/// representation's `Date`, not from when it received the copy).
fn set_cache_headers(headers: &Headers, cx: &Cx, rep: &Representation, served: Served) {
    let _ = headers.set("Cache-Status", served.cache_status());
    if let Served::Hit = served {
        let _ = headers.set("Age", &rep.age(now_secs(cx)).to_string());
    }
}

/// This location's mirror under `mirror_key` and, when it has one, the entry stored under the
/// key `entry_key` makes of its value: the hit's answer, or the mirror (if any) for the miss.
async fn mirrored_hit(
    cx: &Cx,
    mirror_key: &str,
    conditions: &Conditions,
    entry_key: impl FnOnce(u64) -> String,
) -> Result<Response, Option<super::caching::Mirror>> {
    let mirror = edge_cache::mirrored(mirror_key).await;
    if let Some(m) = &mirror {
        if let Some(hit) = edge_cache::lookup(&entry_key(m.value)).await {
            return Ok(respond(
                cx,
                &hit.rep,
                Payload::Stream(hit.body),
                Served::Hit,
                conditions,
            ));
        }
    }
    Err(mirror)
}

/// Answers a read from a representation: 304 or 200, with `Cache-Status` (and `Age` on a hit)
/// and, behind Workers Cache, its `Cache-Tag`.
fn respond(
    cx: &Cx,
    rep: &Representation,
    payload: Payload,
    served: Served,
    conditions: &Conditions,
) -> Response {
    respond_tagged(cx, rep, payload, served, conditions, None)
}

fn respond_tagged(
    cx: &Cx,
    rep: &Representation,
    payload: Payload,
    served: Served,
    conditions: &Conditions,
    tags: Option<&str>,
) -> Response {
    let headers = Headers::new();
    if let Some(tags) = tags {
        let _ = headers.set("Cache-Tag", tags);
    }
    let freshness = evaluate(
        conditions.if_none_match.as_ref(),
        conditions.if_modified_since.as_deref(),
        rep,
        now_secs(cx),
    );
    match freshness {
        Freshness::NotModified => {
            // A 304 carries no body: a cached body stream is cancelled, not left unread.
            if let Payload::Stream(body) = &payload {
                crate::http::discard_body(body);
            }
            for (name, value) in rep.not_modified_headers() {
                let _ = headers.set(name, &value);
            }
            set_cache_headers(&headers, cx, rep, served);
            Response::builder()
                .with_status(304)
                .with_headers(headers)
                .empty()
        }
        Freshness::Modified => {
            for (name, value) in rep.headers() {
                let _ = headers.set(name, &value);
            }
            set_cache_headers(&headers, cx, rep, served);
            let builder = Response::builder().with_status(200).with_headers(headers);
            match payload {
                Payload::Bytes(bytes) => builder.fixed(bytes),
                Payload::Stream(body) => builder.body(body),
            }
        }
    }
}

/// A miss: stores `rep` after the response (`waitUntil`) and answers from it; its body moves
/// into the 200 (the store has its own copy).
fn store_and_respond(
    cx: &Cx,
    key: String,
    mut rep: Representation,
    conditions: &Conditions,
) -> Response {
    edge_cache::store_later(&cx.ctx, key, &rep);
    let payload = Payload::Bytes(std::mem::take(&mut rep.body));
    respond(cx, &rep, payload, Served::Stored, conditions)
}

/// `GET /products?limit=&cursor=`: a page of the catalogue in sku order.
///
/// The page's key carries the listing generation this location mirrors. A hit costs two
/// cache lookups (mirror, entry). A miss reads the page through a D1 session at least as new
/// as the mirror's bookmark, and never at an older generation than the key names (see
/// `store::page_at`); without a mirror, the page and the generation come from one read, and
/// both are stored after the response.
///
/// # Errors
/// 400 for a malformed `limit`, `cursor` or `If-None-Match`; 503 when D1 is unreachable.
pub async fn list(cx: &mut Cx) -> Result<Response, ApiError> {
    let pairs = cx.query_pairs();
    let query = ListQuery::parse(&pairs)?;
    let conditions = Conditions::read(cx)?;
    let policy = CachePolicy::from_config(cx.config()?);
    let origin = origin(cx)?;
    let db = database(cx)?;
    if cx.workers_cache.is_some() {
        // Behind Workers Cache: read at the primary, tag, let Workers Cache store it.
        let (page, _) = store::page_at(
            &db,
            query.after.as_ref(),
            query.limit.saturating_add(1),
            ReadFrom::Primary,
            0,
        )
        .await?;
        let (body, skus) = listing_body(page.products, query.limit)?;
        let tags = listing_tags(skus.iter().map(Sku::as_str));
        let now = now_secs(cx);
        let mut rep = Representation::json(body, now, now, policy);
        let payload = Payload::Bytes(std::mem::take(&mut rep.body));
        return Ok(respond_tagged(
            cx,
            &rep,
            payload,
            Served::Bypass,
            &conditions,
            Some(&tags),
        ));
    }
    let params = query.canonical_params();
    let mirror = match mirrored_hit(cx, &generation_key(&origin), &conditions, |v| {
        cache_key(&origin, v, "/products", &params)
    })
    .await
    {
        Ok(hit) => return Ok(hit),
        Err(mirror) => mirror,
    };
    let (page, bookmark) = store::page_at(
        &db,
        query.after.as_ref(),
        query.limit.saturating_add(1),
        ReadFrom::Replica(mirror.as_ref().and_then(|m| m.bookmark.as_ref())),
        mirror.as_ref().map_or(0, |m| m.value),
    )
    .await?;
    let generation = match &mirror {
        Some(m) => m.value,
        None => {
            let read = Mirror {
                value: page.generation,
                bookmark,
            };
            edge_cache::mirror_later(&cx.ctx, generation_key(&origin), &read, policy);
            page.generation
        }
    };
    let key = cache_key(&origin, generation, "/products", &params);
    let (body, _) = listing_body(page.products, query.limit)?;
    // A page has no single modification time (a deletion changes it too); it was last
    // modified at the latest when it was generated, which is what it says.
    let now = now_secs(cx);
    let rep = Representation::json(body, now, now, policy);
    Ok(store_and_respond(cx, key, rep, &conditions))
}

/// A listing page's JSON (the shopper's view of up to `limit` of `rows`, and the cursor that
/// continues when there were more), and the skus it shows.
fn listing_body(rows: Vec<Product>, limit: u32) -> Result<(Vec<u8>, Vec<Sku>), ApiError> {
    let (items, next_cursor) = paginate(rows, limit, |p: &Product| &p.sku);
    let shown: Vec<_> = items.iter().map(Product::shopper).collect();
    let body = serde_json::to_vec(&serde_json::json!({
        "items": shown,
        "next_cursor": next_cursor,
    }))
    .map_err(|e| ApiError::Internal(format!("serialise listing: {e}")))?;
    Ok((body, items.into_iter().map(|p| p.sku).collect()))
}

/// A product page's representation, generated now.
fn product_rep(
    cx: &Cx,
    product: &Product,
    policy: CachePolicy,
) -> Result<Representation, ApiError> {
    let body = serde_json::to_vec(&product.shopper())
        .map_err(|e| ApiError::Internal(format!("serialise product: {e}")))?;
    let now = now_secs(cx);
    let last_modified = crate::time::parse_rfc3339(&product.updated_at).unwrap_or(now);
    Ok(Representation::json(body, last_modified, now, policy))
}

/// `GET /products/{sku}`: one product, 304 when the client's copy is current.
///
/// The page lives under one key per product: a change to another product, or a checkout that
/// leaves this one's band alone, leaves it cached. A hit costs one cache lookup. A miss, or a
/// mark a write left there, reads the row through a D1 session at least as new as the mark's
/// bookmark and never older than the revision it names (see `store::find_stored`); the page
/// is stored over it after the response.
///
/// # Errors
/// 400 for a sku outside its alphabet or a malformed `If-None-Match`; 404 when absent; 503
/// when D1 is unreachable.
pub async fn get(cx: &mut Cx, sku: &str) -> Result<Response, ApiError> {
    let sku = parse_sku(sku)?;
    let conditions = Conditions::read(cx)?;
    let policy = CachePolicy::from_config(cx.config()?);
    let origin = origin(cx)?;
    let db = database(cx)?;
    if cx.workers_cache.is_some() {
        // Behind Workers Cache: read at the primary, tag, let Workers Cache store it.
        let (found, _) = store::find_stored(&db, &sku, ReadFrom::Primary, 0).await?;
        let stored = found.ok_or(ApiError::NotFound)?;
        let mut rep = product_rep(cx, &stored.product, policy)?;
        let payload = Payload::Bytes(std::mem::take(&mut rep.body));
        let tag = product_tag(sku.as_str());
        return Ok(respond_tagged(
            cx,
            &rep,
            payload,
            Served::Bypass,
            &conditions,
            Some(&tag),
        ));
    }
    let key = product_key(&origin, sku.as_str());
    let mark = match edge_cache::product(&key).await {
        Some(edge_cache::Product::Page(mut hit)) => {
            // Stored for the generation's lifetime only; clients get the configured one.
            hit.rep.cache_control = policy.cache_control();
            let payload = Payload::Stream(hit.body);
            return Ok(respond(cx, &hit.rep, payload, Served::Hit, &conditions));
        }
        Some(edge_cache::Product::Mark(mark)) => Some(mark),
        None => None,
    };
    let (found, _) = store::find_stored(
        &db,
        &sku,
        ReadFrom::Replica(mark.as_ref().and_then(|m| m.bookmark.as_ref())),
        mark.as_ref().map_or(0, |m| m.value),
    )
    .await?;
    let stored = found.ok_or(ApiError::NotFound)?;
    let mut rep = product_rep(cx, &stored.product, policy)?;
    edge_cache::store_product_later(&cx.ctx, key, &rep, policy);
    let payload = Payload::Bytes(std::mem::take(&mut rep.body));
    Ok(respond(cx, &rep, payload, Served::Stored, &conditions))
}

/// Evaluates a write's `If-Match` against the stored product's `ETag` (the one `GET` sends):
/// 412 when it does not hold; otherwise the version the write must still find (`None`
/// without `If-Match`).
async fn expected_version(
    db: &D1Database,
    sku: &Sku,
    if_match: Option<&IfMatch>,
) -> Result<Option<i64>, ApiError> {
    let Some(if_match) = if_match else {
        return Ok(None);
    };
    let current = store::find(db, sku).await?;
    let tag = match &current {
        Some(product) => Some(product_etag(product)?),
        None => None,
    };
    match precondition::evaluate_tag(Some(if_match), tag.as_deref()) {
        Precondition::Fails => Err(ApiError::PreconditionFailed),
        Precondition::Holds => Ok(current.map(|p| p.version)),
    }
}

/// The strong `ETag` of a product, over the exact JSON `GET /products/{sku}` sends.
fn product_etag(product: &Product) -> Result<String, ApiError> {
    let body = serde_json::to_vec(&product.shopper())
        .map_err(|e| ApiError::Internal(format!("serialise product: {e}")))?;
    Ok(super::caching::strong_etag(&body))
}

/// After a committed write: this location's mirror of the listing generation takes the
/// write's value and bookmark, and the product's key a mark of them (over its page), so the
/// next read here is a miss that reads the write (see `edge_cache.rs`). A deleted product gets
/// the mark too: a replica behind the delete must not put its page back.
async fn invalidate(origin: &str, sku: &Sku, written: &store::Written, policy: CachePolicy) {
    let mirror = Mirror {
        value: written.generation,
        bookmark: written.bookmark.clone(),
    };
    edge_cache::publish(&generation_key(origin), &mirror, policy).await;
    edge_cache::publish(&product_key(origin, sku.as_str()), &mirror, policy).await;
}

/// After a checkout or cancel committed in D1 (orders): this location's cached pages of the
/// products whose shopper-visible stock it changed, and its listings, show the change from
/// the next read; nothing happens when no band (or low count) moved.
///
/// Behind Workers Cache, the changed products' tags are purged everywhere as well (the
/// listing pages that show them carry their tags).
pub async fn stock_changed(cx: &Cx, policy: CachePolicy, revised: &store::Revised) {
    if revised.generation.is_none() {
        return;
    }
    if let Some(wc) = &cx.workers_cache {
        let tags: Vec<String> = revised
            .skus
            .iter()
            .map(|s| product_tag(s.as_str()))
            .collect();
        wc.purge_later(&cx.ctx, &tags);
    }
    edge_cache::revised(cx.origin(), revised, policy).await;
}

/// A write's answer: `no-store`, the merchant's view (the shopper's and the exact `stock`),
/// with the `ETag` a `GET` will return (over the shopper's view, so `If-Match` works with
/// either) and, when created, its `Location`.
fn written(status: u16, product: &Product) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(&product.merchant())
        .map_err(|e| ApiError::Internal(format!("serialise product: {e}")))?;
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "application/json");
    let _ = headers.set("Cache-Control", "no-store");
    let _ = headers.set("ETag", &product_etag(product)?);
    if status == 201 {
        let _ = headers.set("Location", &product_path(&product.sku));
    }
    Ok(Response::builder()
        .with_status(status)
        .with_headers(headers)
        .fixed(body))
}

/// `PUT /products/{sku}` (scope `catalog:write`): create (201) or replace (200).
///
/// # Errors
/// 401/403 without a token or scope; 400 for a bad sku or malformed JSON; 413 when the body
/// is over 16 KiB; 422 for an invalid body; 503 when D1 is unreachable.
pub async fn put(cx: &mut Cx, sku: &str) -> Result<Response, ApiError> {
    crate::auth::require_scope(cx, crate::CATALOG_WRITE).await?;
    let sku = parse_sku(sku)?;
    let if_match = precondition::parse_header(cx.header("if-match").as_deref())?;
    let body: serde_json::Value = cx.json_body().await?;
    let input = ProductInput::from_json(&sku, &body)?;
    let policy = CachePolicy::from_config(cx.config()?);
    let origin = origin(cx)?;
    let db = database(cx)?;
    let expected = expected_version(&db, &sku, if_match.as_ref()).await?;
    let (stored, upserted, written_at) = store::upsert(&db, &input, cx.now, expected)
        .await?
        .ok_or(ApiError::PreconditionFailed)?;
    invalidate(&origin, &sku, &written_at, policy).await;
    if let Some(wc) = &cx.workers_cache {
        let created = upserted == Upserted::Created;
        wc.purge_later(&cx.ctx, &write_purge(sku.as_str(), created));
    }
    let status = match upserted {
        Upserted::Created => 201,
        Upserted::Updated => 200,
    };
    written(status, &stored.product)
}

/// `DELETE /products/{sku}` (scope `catalog:write`): 204, or 404 when absent.
///
/// # Errors
/// 401/403 without a token or scope; 400 for a bad sku; 404 when absent; 503 when D1 is
/// unreachable.
pub async fn delete(cx: &mut Cx, sku: &str) -> Result<Response, ApiError> {
    crate::auth::require_scope(cx, crate::CATALOG_WRITE).await?;
    let sku = parse_sku(sku)?;
    let if_match = precondition::parse_header(cx.header("if-match").as_deref())?;
    let policy = CachePolicy::from_config(cx.config()?);
    let origin = origin(cx)?;
    let db = database(cx)?;
    let expected = expected_version(&db, &sku, if_match.as_ref()).await?;
    let written_at = store::delete(&db, &sku, expected)
        .await?
        .ok_or(match expected {
            // It was there at the precondition check: it changed or vanished since.
            Some(_) => ApiError::PreconditionFailed,
            None => ApiError::NotFound,
        })?;
    invalidate(&origin, &sku, &written_at, policy).await;
    if let Some(wc) = &cx.workers_cache {
        wc.purge_later(&cx.ctx, &write_purge(sku.as_str(), false));
    }
    let headers = Headers::new();
    let _ = headers.set("Cache-Control", "no-store");
    Ok(Response::builder()
        .with_status(204)
        .with_headers(headers)
        .empty())
}
