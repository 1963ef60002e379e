//! How Rust futures are driven on workerd.
//!
//! Every `await` on a JS promise (a signature check, a KV read, a D1 query) resumes through
//! `wasm-bindgen-futures`' task queue, which asks the host to run it soon. The queue picks its
//! way of asking once, when it is created: the global `queueMicrotask` when there is one,
//! otherwise a reaction on an already-resolved promise. Both run the queue in the same
//! microtask checkpoint, before any I/O or timer, so the order of work is the same. On workerd
//! they differ in cost: `queueMicrotask` is a host API that wraps each callback (for async
//! context tracking and error reporting), while a promise reaction stays inside V8. A request
//! resumes four to six times, and the measured difference on `GET /cart` was about 100 µs of
//! CPU per request (`bench/`, README "Measured figures").
//!
//! [`prefer_promise_jobs`] therefore creates the queue once, at start-up (and again after a
//! re-initialisation following a panic, since `start` runs again), with `queueMicrotask`
//! hidden for the duration of that one synchronous call and put back exactly as it was right
//! after (an own property is set back; a shadow over an inherited one is deleted). Nothing
//! else runs in between, so no other code can observe the global missing. If the global
//! cannot be hidden (a frozen global), the queue simply keeps `queueMicrotask`: slower, just as
//! correct.
//!
//! One difference in failure: a trap inside the queue now surfaces as an unhandled promise
//! rejection, not as an `error` event. Recovery does not depend on that event (the panic hook
//! sets the re-initialisation flag, and wasm-bindgen's glue marks a trapped instance for
//! re-creation; see `src/entry.mjs`).

use js_sys::Reflect;
use wasm_bindgen::JsValue;

/// Creates `wasm-bindgen-futures`' task queue so that it schedules with promise reactions.
/// Call once per wasm instance, before any future is spawned.
pub fn prefer_promise_jobs() {
    let global = js_sys::global();
    let name = JsValue::from_str("queueMicrotask");
    let Ok(saved) = Reflect::get(&global, &name) else {
        wasm_bindgen_futures::spawn_local(async {});
        return;
    };
    let own = js_sys::Object::has_own(&global, &name);
    let hidden = Reflect::set(&global, &name, &JsValue::UNDEFINED).unwrap_or(false);
    // The first spawned future creates the queue, which looks at `queueMicrotask` now.
    wasm_bindgen_futures::spawn_local(async {});
    if hidden {
        let restored = if own {
            Reflect::set(&global, &name, &saved)
        } else {
            Reflect::delete_property(&global, &name)
        };
        if !restored.unwrap_or(false) {
            // Never leave the global hidden: fall back to an own property holding the original.
            let _ = Reflect::set(&global, &name, &saved);
        }
    }
}
