//! Workers Cache, where the platform provides it: a tiered cache in front of the worker (a
//! fresh hit never runs it), controlled by `Cache-Control` and `Cache-Tag` and purged
//! globally with `ctx.cache.purge({ tags })`.
//!
//! Detected per request (`ctx.cache` with a `purge` function), never assumed: Miniflare has
//! no Workers Cache, so locally `ctx.cache` is undefined and the catalogue takes the Cache
//! API path (`catalogue/edge_cache.rs`). With Workers Cache, the catalogue's responses carry tags
//! (`caching::product_tag`, `caching::listing_tags`) and bypass the per-location Cache API
//! (whose mirrors would otherwise refill the global cache with a location's older entry after
//! a purge); writes that change what shoppers see purge the tags they touched.
//!
//! Bypasses the worker crate: its `Context` does not expose `ctx.cache`.

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::Context;

#[wasm_bindgen]
extern "C" {
    /// `ctx.cache`.
    #[derive(Clone)]
    type PlatformCache;

    #[wasm_bindgen(method, catch)]
    fn purge(this: &PlatformCache, options: &JsValue) -> Result<js_sys::Promise, JsValue>;
}

/// `ctx.cache`, found with a `purge` function.
#[derive(Clone)]
pub struct WorkersCache(PlatformCache);

impl WorkersCache {
    /// `ctx.cache` when the runtime provides one that can purge; `None` otherwise (locally,
    /// or a runtime without Workers Cache).
    #[must_use]
    pub(super) fn detect(ctx: &JsValue) -> Option<Self> {
        let cache = js_sys::Reflect::get(ctx, &"cache".into()).ok()?;
        if !cache.is_object() {
            return None;
        }
        let purge = js_sys::Reflect::get(&cache, &"purge".into()).ok()?;
        purge.is_function().then(|| Self(cache.unchecked_into()))
    }

    /// Purges `tags` everywhere: the call is made now (before the response), its completion
    /// awaited after the response (`waitUntil`); a failure is logged (the entries then live
    /// out their `s-maxage`).
    pub fn purge_later(&self, ctx: &Context, tags: &[String]) {
        if tags.is_empty() {
            return;
        }
        let list: js_sys::Array = tags.iter().map(|t| JsValue::from_str(t)).collect();
        let options = js_sys::Object::new();
        if js_sys::Reflect::set(&options, &"tags".into(), &list).is_err() {
            return;
        }
        match self.0.purge(&options) {
            Ok(promise) => ctx.wait_until(async move {
                if let Err(e) = super::runtime::settled(promise).await {
                    log_failure(&e);
                }
            }),
            Err(e) => log_failure(&e),
        }
    }
}

fn log_failure(e: &JsValue) {
    crate::http::log::event(
        "warn",
        "workers cache purge failed",
        &serde_json::json!(worker::Error::from(e.clone()).to_string()),
    );
}
