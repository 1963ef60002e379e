//! The Cache API of the serving location (`caches.default`), reduced to what the catalogue
//! does with it: look a key up, store a response under a key, delete a key.
//!
//! Bypasses the worker crate for the request path: `worker::Cache::get` and
//! `Response::bytes` await through `JsFuture` and read a body chunk by chunk, while a cache hit
//! is most of its route's own work. Here each call is one method call on `caches.default`,
//! awaited through [`super::runtime::settled`] (a call whose request is torn down is let go
//! of), and a hit's body stays a stream that is handed to the client unread.

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::ResponseBody;

use super::runtime::settled;

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

/// Runs one Cache API call to its end.
async fn call(
    call: impl FnOnce(&EdgeCache) -> Result<js_sys::Promise, JsValue>,
) -> Result<JsValue, worker::Error> {
    let promise = call(&edge_cache()?)?;
    Ok(settled(promise).await?)
}

/// A response found in the cache: its status and headers, and its body, read at most once.
pub struct Stored(web_sys::Response);

impl Stored {
    #[must_use]
    pub fn status(&self) -> u16 {
        self.0.status()
    }

    /// The value of header `name`, if present.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<String> {
        self.0.headers().get(name).ok().flatten()
    }

    /// The body as a stream, to pass on unread (`Empty` when there is none).
    #[must_use]
    pub fn into_body(self) -> ResponseBody {
        self.0
            .body()
            .map_or(ResponseBody::Empty, ResponseBody::Stream)
    }

    /// The body as text (a small stored value such as a mirror); `None` if reading fails.
    pub async fn text(self) -> Option<String> {
        let text = settled(self.0.text().ok()?).await.ok()?;
        text.as_string()
    }
}

/// The response stored under `key`: `None` on a miss.
///
/// # Errors
/// The runtime's error when the lookup throws or rejects.
pub async fn lookup(key: &str) -> Result<Option<Stored>, worker::Error> {
    let found = call(|cache| cache.match_key(key)).await?;
    Ok(found.dyn_into::<web_sys::Response>().ok().map(Stored))
}

/// Stores `response` under `key`, awaited to its end.
///
/// # Errors
/// The runtime's error when the store throws or rejects.
pub async fn put(key: &str, response: worker::Response) -> Result<(), worker::Error> {
    let response: web_sys::Response = response.into();
    call(|cache| cache.put_key(key, &response)).await.map(drop)
}

/// Deletes the entry under `key`, if any.
///
/// # Errors
/// The runtime's error when the delete throws or rejects.
pub async fn delete(key: &str) -> Result<(), worker::Error> {
    call(|cache| cache.delete_key(key)).await.map(drop)
}
