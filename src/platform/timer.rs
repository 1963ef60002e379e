//! Sleeping: a JavaScript timer (`setTimeout`, the worker's only way to sleep).
//!
//! Bypasses the worker crate: its `Delay` is not awaited through [`super::runtime::settled`];
//! here the timer is a promise that is, like every await of a request, so a request torn down
//! while it waits is let go of.

/// Waits `ms` milliseconds.
pub async fn sleep(ms: u64) {
    #[allow(clippy::cast_precision_loss)] // the test delays it serves are far below 2^53 ms
    let _ = super::runtime::settled(timer(ms as f64)).await;
}

#[wasm_bindgen::prelude::wasm_bindgen(
    inline_js = "export function timer(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }"
)]
extern "C" {
    fn timer(ms: f64) -> js_sys::Promise;
}
