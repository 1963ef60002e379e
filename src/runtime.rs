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

/// Awaits a JS promise: `settled(promise).await` is `JsFuture::from(promise).await` without
/// its per-await cost.
///
/// `JsFuture` builds two wasm-bindgen closures for every promise (each a heap box, a JS
/// wrapper registered with a `FinalizationRegistry`, and a call back into wasm to drop it).
/// Here the promise is handed to a four-line JS function together with a slot number; its
/// two reactions call one callback made once per wasm instance, which stores the outcome in
/// the slot and wakes the waiting task. The request's work is the same; only the bookkeeping
/// around each `await` shrinks (a `GET /cart` awaits three promises).
///
/// Slots live in a per-isolate table that holds only promises in flight: a slot is reused
/// once both its promise has settled and its future is done with it, so a late settlement
/// never reaches another await. A future dropped before its promise settles leaves the slot
/// marked abandoned; the settlement then frees it.
#[must_use]
pub fn settled(promise: &js_sys::Promise) -> Settled {
    let slot = SLOTS.with(|s| s.borrow_mut().take());
    if let Err(error) = RESUME.with(|resume| settle_js(promise, slot, resume)) {
        // `then` threw (it never does on a real promise): no reaction will come, so the
        // future answers the error at its first poll, which frees the slot.
        let previous = SLOTS.with(|s| {
            let mut slots = s.borrow_mut();
            slots
                .entries
                .get_mut(slot as usize)
                .map(|entry| std::mem::replace(entry, Slot::Settled(Err(error))))
        });
        drop(previous);
    }
    Settled { slot, done: false }
}

#[wasm_bindgen::prelude::wasm_bindgen(inline_js = "
export function settle(promise, slot, resume) {
  promise.then((value) => resume(slot, value, false), (error) => resume(slot, error, true));
}")]
extern "C" {
    #[wasm_bindgen(catch, js_name = settle)]
    fn settle_js(
        promise: &js_sys::Promise,
        slot: u32,
        resume: &js_sys::Function,
    ) -> Result<(), JsValue>;
}

enum Slot {
    Free,
    /// Not settled yet; the waker of the task awaiting it, once polled.
    Waiting(Option<std::task::Waker>),
    Settled(Result<JsValue, JsValue>),
    /// Its future was dropped first; the settlement frees the slot.
    Abandoned,
}

#[derive(Default)]
struct Slots {
    entries: Vec<Slot>,
    free: Vec<u32>,
}

impl Slots {
    fn take(&mut self) -> u32 {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.entries.push(Slot::Free);
            u32::try_from(self.entries.len() - 1).unwrap_or(u32::MAX)
        });
        if let Some(entry) = self.entries.get_mut(slot as usize) {
            *entry = Slot::Waiting(None);
        }
        slot
    }

    fn release(&mut self, slot: u32) {
        if let Some(entry) = self.entries.get_mut(slot as usize) {
            *entry = Slot::Free;
            self.free.push(slot);
        }
    }
}

thread_local! {
    /// Promises in flight in this isolate (see [`settled`]). Not per-user state: a result
    /// stays only from its promise's settlement to the next poll of the future awaiting it,
    /// inside the request that made it; then the slot is empty again.
    static SLOTS: std::cell::RefCell<Slots> = std::cell::RefCell::new(Slots::default());
    /// The one callback every settlement calls, made once per wasm instance and kept: a
    /// function, the same for every user, so not per-user state.
    static RESUME: js_sys::Function = {
        let resume = wasm_bindgen::closure::Closure::<dyn FnMut(u32, JsValue, bool)>::new(resume);
        wasm_bindgen::JsCast::unchecked_into(resume.into_js_value())
    };
}

fn resume(slot: u32, value: JsValue, failed: bool) {
    let waker = SLOTS.with(|s| {
        let mut slots = s.borrow_mut();
        let entry = slots.entries.get_mut(slot as usize)?;
        match std::mem::replace(entry, Slot::Free) {
            Slot::Waiting(waker) => {
                *entry = Slot::Settled(if failed { Err(value) } else { Ok(value) });
                waker
            }
            Slot::Abandoned => {
                slots.release(slot);
                None
            }
            // A promise settles once; anything else would be a bookkeeping bug, left alone.
            other @ (Slot::Free | Slot::Settled(_)) => {
                *entry = other;
                None
            }
        }
    });
    // Woken (or dropped) outside the borrow: the task is polled later, from the task queue,
    // and dropping a waker can drop a task whose futures touch this table.
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The future of [`settled`]: the promise's value, or its rejection as `Err`.
pub struct Settled {
    slot: u32,
    done: bool,
}

impl std::future::Future for Settled {
    type Output = Result<JsValue, JsValue>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        if self.done {
            // Polled again after it answered: the slot may already serve another await.
            return std::task::Poll::Ready(Err(JsValue::from_str("promise already awaited")));
        }
        let slot = self.slot;
        // A waker replaced here is dropped after the borrow ends (see `resume`).
        let mut replaced = None;
        let outcome = SLOTS.with(|s| {
            let mut slots = s.borrow_mut();
            let Some(entry) = slots.entries.get_mut(slot as usize) else {
                return Some(Err(JsValue::from_str("promise slot lost")));
            };
            match std::mem::replace(entry, Slot::Free) {
                Slot::Waiting(waker) => {
                    if waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        *entry = Slot::Waiting(waker);
                    } else {
                        *entry = Slot::Waiting(Some(cx.waker().clone()));
                        replaced = waker;
                    }
                    None
                }
                Slot::Settled(result) => {
                    slots.release(slot);
                    Some(result)
                }
                // Only a bookkeeping bug gets here: an error, never a hang (the slot is left
                // as it was).
                other @ (Slot::Free | Slot::Abandoned) => {
                    *entry = other;
                    Some(Err(JsValue::from_str("promise slot lost")))
                }
            }
        });
        drop(replaced);
        match outcome {
            Some(result) => {
                self.done = true;
                std::task::Poll::Ready(result)
            }
            None => std::task::Poll::Pending,
        }
    }
}

impl Drop for Settled {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Whatever the slot held (a waker, an unread result) is dropped after the borrow ends.
        let held = SLOTS.with(|s| {
            let mut slots = s.borrow_mut();
            let slot = self.slot;
            let entry = slots.entries.get_mut(slot as usize)?;
            match std::mem::replace(entry, Slot::Free) {
                settled @ Slot::Settled(_) => {
                    slots.release(slot);
                    Some(settled)
                }
                waiting @ Slot::Waiting(_) => {
                    *entry = Slot::Abandoned;
                    Some(waiting)
                }
                other @ (Slot::Free | Slot::Abandoned) => {
                    *entry = other;
                    None
                }
            }
        });
        drop(held);
    }
}
