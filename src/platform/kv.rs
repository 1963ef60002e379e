//! A Workers KV namespace, reduced to the two calls the cart makes: `get(key)` as text and
//! `put(key, text, { expirationTtl, metadata })`.
//!
//! Bypasses the worker crate: `worker::kv::KvStore` looks up all five methods of the binding
//! and builds an options object on each use, goes through serde for the metadata, and awaits
//! through `JsFuture`; here each call is one method call on the binding as the runtime hands
//! it over, awaited through [`super::runtime::settled`] (so a call whose request is torn down
//! is let go of), and the value comes back through [`super::text`].

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::Env;

use super::js_message;
use crate::http::problem::ApiError;

#[wasm_bindgen]
extern "C" {
    /// A KV namespace as the runtime hands it over.
    type KvNamespace;

    #[wasm_bindgen(method, catch, js_name = get)]
    fn get_text(this: &KvNamespace, key: &str) -> Result<js_sys::Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = put)]
    fn put_text(
        this: &KvNamespace,
        key: &str,
        value: &str,
        options: &js_sys::Object,
    ) -> Result<js_sys::Promise, JsValue>;
}

/// A value of a key's KV metadata object.
pub enum Meta<'a> {
    /// A number (exact below 2^53).
    Number(f64),
    Text(&'a str),
}

/// Why a KV call did not give its answer.
#[derive(Debug)]
pub enum KvError {
    /// The binding threw or its promise rejected: the JS error's message.
    Failed(String),
    /// The options object of a `put` could not be built: the JS error's message.
    Options(String),
    /// A read whose value is neither absent nor text (the stored value is the
    /// [`ApiError::Internal`] of [`super::text`]).
    NotText(ApiError),
}

/// One KV namespace binding.
pub struct Namespace(KvNamespace);

impl Namespace {
    /// The binding `name`, when it is an object.
    #[must_use]
    pub fn of(env: &Env, name: &str) -> Option<Self> {
        super::binding(env, name).map(|b| Self(b.unchecked_into()))
    }

    /// Reads `key` and drops the value: whether the namespace answers.
    ///
    /// # Errors
    /// [`KvError::Failed`].
    pub async fn touch(&self, key: &str) -> Result<(), KvError> {
        let failed = |e: JsValue| KvError::Failed(js_message(&e));
        let promise = self.0.get_text(key).map_err(failed)?;
        super::runtime::settled(promise)
            .await
            .map(drop)
            .map_err(failed)
    }

    /// The text stored under `key`; `None` when nothing is (never written, or expired).
    ///
    /// # Errors
    /// [`KvError::Failed`], or [`KvError::NotText`] naming `what`.
    pub async fn get(&self, key: &str, what: &str) -> Result<Option<String>, KvError> {
        let failed = |e: JsValue| KvError::Failed(js_message(&e));
        let promise = self.0.get_text(key).map_err(failed)?;
        let value = super::runtime::settled(promise).await.map_err(failed)?;
        super::text::optional_text(&value, what).map_err(KvError::NotText)
    }

    /// Stores `value` under `key` with `metadata` and `expirationTtl = ttl_seconds`.
    ///
    /// # Errors
    /// [`KvError::Options`] or [`KvError::Failed`].
    pub async fn put<'a>(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: u64,
        metadata: impl IntoIterator<Item = (&'a str, Meta<'a>)>,
    ) -> Result<(), KvError> {
        let options = put_options(ttl_seconds, metadata)?;
        let failed = |e: JsValue| KvError::Failed(js_message(&e));
        let promise = self.0.put_text(key, value, &options).map_err(failed)?;
        super::runtime::settled(promise)
            .await
            .map(drop)
            .map_err(failed)
    }
}

/// `{ expirationTtl, metadata }` for KV's `put`.
fn put_options<'a>(
    ttl_seconds: u64,
    metadata: impl IntoIterator<Item = (&'a str, Meta<'a>)>,
) -> Result<js_sys::Object, KvError> {
    let set = |target: &js_sys::Object, name: &str, value: &JsValue| {
        js_sys::Reflect::set(target, &name.into(), value)
            .map(drop)
            .map_err(|e| KvError::Options(js_message(&e)))
    };
    let meta = js_sys::Object::new();
    for (name, value) in metadata {
        match value {
            Meta::Number(n) => set(&meta, name, &n.into())?,
            Meta::Text(t) => set(&meta, name, &t.into())?,
        }
    }
    // TTLs stay far below 2^53: exact as JS numbers.
    #[allow(clippy::cast_precision_loss)]
    let ttl = ttl_seconds as f64;
    let options = js_sys::Object::new();
    set(&options, "expirationTtl", &ttl.into())?;
    set(&options, "metadata", &meta)?;
    Ok(options)
}
