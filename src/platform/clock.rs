//! The runtime's clock.
//!
//! Bypasses the worker crate: `worker::Date::now` constructs a JS `Date` (`new Date()`), where
//! the static `Date.now()` answers the number alone.

/// Milliseconds since the epoch from the runtime's clock (`Date.now()` on wasm; the static
/// call, not `new Date()`, which allocates a JS object twice per request for nothing).
#[must_use]
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // ms since 1970 fit u64
pub fn now_millis() -> u64 {
    js_sys::Date::now() as u64
}
