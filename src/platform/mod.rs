//! The platform layer: the only code that speaks to workerd through JavaScript bindings.
//!
//! The rule: `wasm_bindgen`, `wasm_bindgen_futures`, `js_sys`, `web_sys` and the worker
//! crate's `worker_sys` (and its re-exports of the others) are used here and nowhere else
//! (`tests/boundary.rs` fails on any use outside `src/platform/`). The `worker` crate's own
//! types (`Env`, `Context`, `Response`, `D1Database`, `#[durable_object]`) may be used
//! anywhere on the edge; what crosses this layer's boundary is Rust: `String`, `Vec<u8>`,
//! Rust enums and structs, and `worker` types.
//!
//! - [`entry`]: the exported entry points (`#[event]`s, `edgecartFetch`, the post-panic path).
//! - [`runtime`]: the executor requests run on, and [`runtime::settled`], through which every
//!   promise a request awaits is awaited.
//! - [`text`]: JS strings into Rust `String`s in one native encode.
//! - One small adapter per binding, each saying in its docs why it bypasses the `worker`
//!   crate where it does: [`request`] (the request, its headers, `randomUUID`), [`body`] (body
//!   streams), [`cache`] (the Cache API), [`clock`], [`console`], [`kv`], [`d1`] (statements, batches, sessions),
//!   [`durable`] (the Durable Object stub), [`ratelimit`], [`workers_cache`] (`ctx.cache`),
//!   [`assets`] (the `ASSETS` fetcher), [`crypto`] (WebCrypto), [`fetch`] (abort signals of
//!   outbound fetches), [`queue`] (message bodies) and [`timer`].

pub mod assets;
pub mod body;
pub mod cache;
pub mod clock;
pub mod console;
#[cfg(target_arch = "wasm32")]
pub mod crypto;
pub mod d1;
pub mod durable;
pub mod entry;
pub mod fetch;
pub mod kv;
pub mod queue;
pub mod ratelimit;
pub mod request;
pub mod runtime;
pub mod text;
pub mod timer;
pub mod workers_cache;

use wasm_bindgen::{JsCast, JsValue};

/// The message of a thrown JS value (an `Error`'s message, or the value itself).
fn js_message(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|err| String::from(err.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

/// A binding of the worker's environment by name, when it is an object (no type check).
fn binding(env: &worker::Env, name: &str) -> Option<JsValue> {
    js_sys::Reflect::get(env, &JsValue::from_str(name))
        .ok()
        .filter(JsValue::is_object)
}
