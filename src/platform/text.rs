//! JS strings into Rust `String`s with one native UTF-8 encode straight into wasm memory.
//!
//! wasm-bindgen's own conversion (`JsValue::as_string`, and every `String` an import returns)
//! copies a string into wasm memory one UTF-16 unit at a time in a JS loop (its
//! `passStringToWasm0`), switching to `TextEncoder.encodeInto` only after the first non-ASCII
//! character. For the few long strings of every authenticated request (the bearer token, the
//! stored cart, the catalogue rows) that loop was the largest single item of edgecart's own
//! per-request work: about 30,000 instructions per `GET /cart` (callgrind, see `bench/README.md`).
//! [`text`] asks for the string's length, makes room for its worst-case UTF-8 size and has
//! `TextEncoder.encodeInto` write it there in one native call.
//!
//! The bytes are the same as wasm-bindgen's: both are the WHATWG UTF-8 encoding, with an
//! unpaired surrogate becoming U+FFFD.

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

use crate::http::problem::ApiError;

#[wasm_bindgen(inline_js = "
const utf8 = new TextEncoder();
export function text_units(value) { return typeof value === 'string' ? value.length : -1; }
export function encode_text(value, into) { return utf8.encodeInto(value, into).written; }
")]
extern "C" {
    /// The string's length in UTF-16 units, or -1 when `value` is not a string.
    fn text_units(value: &JsValue) -> f64;
    /// Writes `value`'s UTF-8 into `into` (a view of wasm memory, not a copy); the number of
    /// bytes written.
    fn encode_text(value: &JsValue, into: &mut [u8]) -> u32;
}

/// `value` as a `String` when it is a JS string, else `None` (as `JsValue::as_string`).
#[must_use]
pub(super) fn text(value: &JsValue) -> Option<String> {
    let units = text_units(value);
    if units < 0.0 {
        return None;
    }
    // One UTF-16 unit never takes more than three UTF-8 bytes (a surrogate pair: two units,
    // four bytes); a JS string is shorter than 2^30 units, so this fits a wasm32 usize.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let mut bytes = vec![0u8; (units as usize).saturating_mul(3)];
    let written = encode_text(value, &mut bytes) as usize;
    bytes.truncate(written);
    // encodeInto writes well-formed UTF-8, so this never fails; if it ever did, the value is
    // reported as not text rather than trusted.
    String::from_utf8(bytes).ok()
}

#[wasm_bindgen]
extern "C" {
    /// `Headers` as seen by [`header`]: only its `get`, answering the raw JS value.
    type RawHeaders;
    #[wasm_bindgen(method, catch, js_name = get)]
    fn get(this: &RawHeaders, name: &str) -> Result<JsValue, JsValue>;
}

/// A request header's value through [`text`]; `None` when absent (or `name` is not a valid
/// header name, which `Headers.get` refuses).
#[must_use]
pub(super) fn header(headers: &web_sys::Headers, name: &str) -> Option<String> {
    use wasm_bindgen::JsCast;
    let value = headers.unchecked_ref::<RawHeaders>().get(name).ok()?;
    text(&value)
}

/// A storage read's value as text: `None` for `null` / `undefined` (nothing stored), a 500
/// naming `what` for anything that is not a string (a bug, never the client's doing).
///
/// # Errors
/// [`ApiError::Internal`] when the value is neither absent nor text.
pub(super) fn optional_text(value: &JsValue, what: &str) -> Result<Option<String>, ApiError> {
    if value.is_null() || value.is_undefined() {
        return Ok(None);
    }
    text(value)
        .map(Some)
        .ok_or_else(|| ApiError::Internal(format!("{what} returned something other than text")))
}
