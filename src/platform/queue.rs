//! Queue batches: the worker crate's `MessageBatch`, its bodies left as JS values and decoded
//! one message at a time, so a malformed message is acked on its own instead of failing the
//! batch's decoding.

use serde::de::DeserializeOwned;
use worker::RawMessage;

/// A batch as the queue handler receives it ([`super::entry`]).
pub type Batch = worker::MessageBatch<wasm_bindgen::JsValue>;

/// `message`'s body decoded as `T`, or `None` when it is not one.
#[must_use]
pub fn body<T: DeserializeOwned>(message: &RawMessage) -> Option<T> {
    serde_wasm_bindgen::from_value(message.body()).ok()
}
