//! Outbound fetches (`worker::Fetch`): the one piece the worker crate leaves to `web_sys`, a
//! timeout signal, and the cancelling of an answer's unread body.

use worker::AbortSignal;

/// A signal that aborts a fetch after `ms` milliseconds (`AbortSignal.timeout`), which the
/// worker crate has no constructor for.
#[must_use]
pub fn timeout(ms: u32) -> AbortSignal {
    AbortSignal::from(web_sys::AbortSignal::timeout_with_u32(ms))
}

/// Cancels the body of an answer that will not be read, rather than leave it unread.
pub fn discard_body(response: worker::Response) {
    let raw: web_sys::Response = response.into();
    if let Some(stream) = raw.body() {
        super::body::discard(&stream);
    }
}

/// Gives `init` the text `body`.
pub fn with_text_body(init: &mut worker::RequestInit, body: &str) {
    init.with_body(Some(wasm_bindgen::JsValue::from_str(body)));
}
