//! The console, where log lines leave the worker (Workers Logs reads its methods as levels).
//!
//! Bypasses the worker crate: its `console_*!` macros format their arguments first; the line
//! here is already one JSON text.

/// Writes `text` to the console method of `level` (`error`, `warn`, anything else `log`).
/// Native builds (tests) have no console: the line is dropped.
pub fn write(level: &str, text: String) {
    #[cfg(target_arch = "wasm32")]
    {
        let text = wasm_bindgen::JsValue::from(text);
        match level {
            "error" => web_sys::console::error_1(&text),
            "warn" => web_sys::console::warn_1(&text),
            _ => web_sys::console::log_1(&text),
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (level, text);
    }
}
