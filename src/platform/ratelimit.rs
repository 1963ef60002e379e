//! A Workers Rate Limiting binding (`[[ratelimits]]`), reduced to its one call, `limit()`.
//!
//! Bypasses the worker crate: `worker::RateLimiter` checks the constructor's name, goes
//! through serde for the options and the outcome, and awaits through `JsFuture`; here the
//! binding is duck-typed and its promise awaited through [`super::runtime::settled`].

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::Env;

#[wasm_bindgen]
extern "C" {
    /// A rate-limit binding as the runtime hands it over.
    type Ratelimit;

    #[wasm_bindgen(method, catch)]
    fn limit(this: &Ratelimit, options: &js_sys::Object) -> Result<js_sys::Promise, JsValue>;
}

/// One rate-limit binding.
pub struct Limiter(Ratelimit);

impl Limiter {
    /// The binding `name`, or why it cannot be used. Duck-typed (an object with a `limit`
    /// method), not by constructor name, which differs between runtimes and versions.
    ///
    /// # Errors
    /// A message naming the binding: unreadable, missing, or not a rate limiter.
    pub fn of(env: &Env, name: &str) -> Result<Self, String> {
        let value = js_sys::Reflect::get(env.as_ref(), &JsValue::from_str(name))
            .map_err(|_| format!("{name}: binding unreadable"))?;
        if value.is_undefined() || value.is_null() {
            return Err(format!("{name}: binding missing"));
        }
        let limit = js_sys::Reflect::get(&value, &JsValue::from_str("limit"))
            .map_err(|_| format!("{name}: not a rate limiter"))?;
        if !value.is_object() || !limit.is_function() {
            return Err(format!("{name}: not a rate limiter"));
        }
        Ok(Self(value.unchecked_into()))
    }

    /// Counts one request under `key`: `Ok(Some(true))` while under the limit, `Ok(None)` when
    /// the answer has no boolean `success`.
    ///
    /// # Errors
    /// When the call throws or its promise rejects.
    pub async fn limit(&self, key: String) -> Result<Option<bool>, ()> {
        let options = js_sys::Object::new();
        js_sys::Reflect::set(&options, &JsValue::from_str("key"), &JsValue::from(key))
            .map_err(drop)?;
        let promise = self.0.limit(&options).map_err(drop)?;
        let outcome = super::runtime::settled(promise).await.map_err(drop)?;
        Ok(
            js_sys::Reflect::get(&outcome, &JsValue::from_str("success"))
                .ok()
                .and_then(|s| s.as_bool()),
        )
    }
}
