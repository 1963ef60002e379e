//! How Rust futures are driven on workerd.
//!
//! - A request runs on [`run`], edgecart's own executor: its future is polled when the request
//!   arrives and again in the reaction of each [`settled`] promise it awaited (other wakes
//!   take a microtask).
//! - Rust awaits on JS promises (the signature check, the KV read, the D1 product query) go
//!   through [`settled`]: one short JS function and one callback per wasm instance, instead
//!   of `JsFuture`'s two wasm-bindgen closures per await.
//! - Both tables are per isolate and hold only what is in flight. A [`settled`] promise that
//!   never settles (workerd tears down a request's I/O, e.g. when its client goes away in the
//!   middle of its upload) is noticed when it is garbage-collected, and the request that
//!   waited on it is dropped (`GET /dev/runtime` and the foundation test "a request whose
//!   awaited promise never settles…"). Every await of a request goes through [`settled`]: the
//!   cart routes, `GET /me`, the catalogue (cache reads, the D1 queries and batches of reads,
//!   misses and writes, the cache stores and deletes a write waits for), checkout (the
//!   idempotency record in the Durable Object or D1, the order batch, the test delay), the
//!   rate limiters' `limit()` (`crate::limits`) and the readiness probes (`crate::d1`, the
//!   Durable Object stub called directly). The exceptions
//!   are once-per-isolate or rare work that awaits inside the worker crate (`JsFuture`, whose
//!   waker sits in a cycle with its own closures, so a request stuck there stays in the table
//!   for the life of the isolate): the first import of a key, a `JWT_JWKS_URL` fetch, and the
//!   development token signer.
//! - Everything else (`waitUntil` work, the Durable Object's own handlers, wakes from inside
//!   the worker crate, the first request after a panic, which goes through the worker crate's
//!   `#[event(fetch)]`) runs on `wasm-bindgen-futures`' task queue, through its public
//!   `spawn_local` only. (Earlier builds hid `queueMicrotask` while that queue was created, so
//!   that it would schedule with promise reactions instead; with the requests on [`run`] it made
//!   no measurable difference, `bench/RESULTS.md`, and it depended on the queue's internals.)
//!
//! Failures: a trap (a panic) inside a resumption surfaces as an unhandled promise rejection,
//! not as an `error` event, and the request is answered by workerd (500). Recovery does not
//! depend on that event (the panic hook sets the re-initialisation flag, and wasm-bindgen's
//! glue marks a trapped instance for re-creation; see `src/entry.mjs`).

use wasm_bindgen::JsValue;

/// Runs a request's future to completion: polled at once, and when a [`settled`] promise it
/// awaits settles, polled again right there, in that promise's reaction, not through a task
/// queue. Any other wake (a `JsFuture` or timer inside the worker crate) is deferred to a
/// microtask, because a future may wake before it has recorded why.
///
/// This is the fetch entry's executor (`src/entry.mjs` → [`super::entry::edgecart_fetch`]). The
/// worker crate's `#[event(fetch)]` export goes through wasm-bindgen's `future_to_promise`,
/// which makes a wasm-bindgen closure for the promise it returns and a queued task whose
/// every wake-up is one more trip through the task queue's microtask. Here a request is one
/// entry in a per-isolate table, and the common resumptions (the signature check, the KV
/// read, the D1 product query) poll it directly: the order of work is the same, with less
/// bookkeeping around it.
///
/// - Re-entrancy: the future is taken out of the table while it is polled, so the table is
///   never borrowed across a poll; a wake-up during the task's own poll marks it to be polled
///   once more, in a microtask after that poll returns.
/// - Lifetime: a task lives while it can still be woken. Its entry holds only a weak
///   reference to its waker; when the last waker is dropped while the task waits (every
///   [`settled`] promise it awaited was collected unsettled), nothing can ever wake it, and
///   the task is dropped. A completed future is dropped at once. Futures are always dropped
///   outside the table's borrow.
/// - Such a drop runs in a `FinalizationRegistry` callback, outside any request's context: a
///   future dropped there must not do I/O or wake another request (none of edgecart's do;
///   they only release JS handles).
pub fn run<F>(future: F)
where
    F: std::future::Future<Output = ()> + 'static,
{
    let Some(id) = TASKS.with(|t| t.borrow_mut().insert(Box::pin(future))) else {
        return;
    };
    poll_task(id);
}

type BoxedFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// Where a task is: its index in the table and the generation that index had when the task
/// was made (an index is reused; a stale id finds another generation and does nothing).
#[derive(Clone, Copy, PartialEq, Eq)]
struct TaskId {
    index: u32,
    generation: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TaskState {
    Idle,
    Polling,
    /// Woken during its own poll: polled again (in a microtask) once that poll returns.
    Repoll,
}

struct TaskEntry {
    generation: u32,
    /// `None` while it is being polled.
    future: Option<BoxedFuture>,
    state: TaskState,
    /// The task's waker while anything holds it (see [`run`], "Lifetime").
    waker: std::sync::Weak<TaskWaker>,
}

#[derive(Default)]
struct Tasks {
    entries: Vec<Option<TaskEntry>>,
    free: Vec<u32>,
    generation: u32,
    /// Set by [`wake_inline`] for the one wake it makes: that wake may poll at once.
    inline: bool,
}

impl Tasks {
    fn insert(&mut self, future: BoxedFuture) -> Option<TaskId> {
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.entries.push(None);
                u32::try_from(self.entries.len() - 1).ok()?
            }
        };
        *self.entries.get_mut(index as usize)? = Some(TaskEntry {
            generation,
            future: Some(future),
            state: TaskState::Idle,
            waker: std::sync::Weak::new(),
        });
        Some(TaskId { index, generation })
    }

    fn get_mut(&mut self, id: TaskId) -> Option<&mut TaskEntry> {
        self.entries
            .get_mut(id.index as usize)?
            .as_mut()
            .filter(|e| e.generation == id.generation)
    }

    /// Takes the task out of the table; the caller drops it after the borrow ends.
    fn remove(&mut self, id: TaskId) -> Option<TaskEntry> {
        self.get_mut(id)?;
        let entry = self.entries.get_mut(id.index as usize)?.take();
        self.free.push(id.index);
        entry
    }

    fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }
}

/// A task's waker: where the task is, not the task, so it is `Send + Sync` as `Waker`
/// requires (wasm32 here has one thread, and the table is per isolate).
struct TaskWaker(TaskId);

impl std::task::Wake for TaskWaker {
    fn wake(self: std::sync::Arc<Self>) {
        wake_task(self);
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        wake_task(std::sync::Arc::clone(self));
    }
}

/// Wakes a task. Only a wake made by [`wake_inline`] polls at once: a future may call
/// `wake` before it has recorded why (the worker crate's `Delay` wakes and then marks itself
/// done), so any other wake is deferred to a microtask of `wasm-bindgen-futures`' queue,
/// queued now, in the waking request's context; the deferred poll holds the waker, so the
/// task stays alive until then. A wake during the task's own poll marks it to be polled again
/// once that poll returns.
fn wake_task(waker: std::sync::Arc<TaskWaker>) {
    let id = waker.0;
    enum Next {
        Nothing,
        Now,
        Later,
    }
    let next = TASKS.with(|t| {
        let mut tasks = t.borrow_mut();
        let inline = std::mem::take(&mut tasks.inline);
        match tasks.get_mut(id) {
            None => Next::Nothing,
            Some(entry) if entry.state != TaskState::Idle => {
                entry.state = TaskState::Repoll;
                Next::Nothing
            }
            Some(_) if inline => Next::Now,
            Some(_) => Next::Later,
        }
    });
    match next {
        Next::Nothing => {}
        Next::Now => poll_task(id),
        Next::Later => defer(move || {
            poll_task(id);
            drop(waker);
        }),
    }
}

/// Runs `f` in a microtask (on wasm; natively, where there is no host to ask, when the
/// native tests call `tests::run_deferred`).
fn defer(f: impl FnOnce() + 'static) {
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_futures::spawn_local(async move { f() });
    #[cfg(not(target_arch = "wasm32"))]
    DEFERRED.with(|d| d.borrow_mut().push(Box::new(f)));
}

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    /// Native builds only (tests of the executor): deferred wakes waiting for the test to run
    /// them, the host's microtask queue's stand-in; not per-user state, there are no users.
    static DEFERRED: std::cell::RefCell<Vec<Box<dyn FnOnce()>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Wakes `waker`, and if it is one of [`run`]'s tasks, polls it right here. For wakes made by
/// edgecart's own code in a consistent state: the settlement of a [`settled`] promise.
fn wake_inline(waker: std::task::Waker) {
    let _ = TASKS.with(|t| t.try_borrow_mut().map(|mut tasks| tasks.inline = true));
    waker.wake();
    // A waker that was not a task's left the flag unused: clear it.
    let _ = TASKS.with(|t| t.try_borrow_mut().map(|mut tasks| tasks.inline = false));
}

impl Drop for TaskWaker {
    /// The task's last waker is gone. A task waiting now can never be woken: drop it. (A task
    /// being polled holds a waker itself, so this never runs during its poll.)
    fn drop(&mut self) {
        let id = self.0;
        // `try_with`: a waker can outlive the table when a thread ends (native tests).
        let orphan = TASKS.try_with(|t| {
            let mut tasks = t.try_borrow_mut().ok()?;
            let entry = tasks.get_mut(id)?;
            if entry.state != TaskState::Idle || entry.waker.strong_count() > 0 {
                return None;
            }
            tasks.remove(id)
        });
        drop(orphan);
    }
}

fn poll_task(id: TaskId) {
    let taken = TASKS.with(|t| {
        let mut tasks = t.borrow_mut();
        let entry = tasks.get_mut(id)?;
        if entry.state != TaskState::Idle {
            entry.state = TaskState::Repoll;
            return None;
        }
        let future = entry.future.take()?;
        let waker = entry.waker.upgrade().unwrap_or_else(|| {
            let waker = std::sync::Arc::new(TaskWaker(id));
            entry.waker = std::sync::Arc::downgrade(&waker);
            waker
        });
        entry.state = TaskState::Polling;
        Some((future, waker))
    });
    let Some((mut future, waker)) = taken else {
        return;
    };
    let ready = future
        .as_mut()
        .poll(&mut std::task::Context::from_waker(
            &std::task::Waker::from(std::sync::Arc::clone(&waker)),
        ))
        .is_ready();
    let (again, finished) = TASKS.with(|t| {
        let mut tasks = t.borrow_mut();
        if ready {
            return (false, (Some(future), tasks.remove(id)));
        }
        let Some(entry) = tasks.get_mut(id) else {
            return (false, (Some(future), None));
        };
        let again = entry.state == TaskState::Repoll;
        entry.state = TaskState::Idle;
        entry.future = Some(future);
        (again, (None, None))
    });
    // Outside the borrow: the finished future (and all it still owned).
    drop(finished);
    if again {
        // Woken during its own poll (a future that yields): polled again in a microtask, not
        // in a loop here, so a future that keeps yielding cannot hold the isolate; the
        // deferred poll keeps this waker, so the task stays alive until then.
        defer(move || {
            poll_task(id);
            drop(waker);
        });
    } else {
        // The drop removes the task if nothing else can wake it.
        drop(waker);
    }
}

/// How many requests and awaited promises this isolate holds right now (`GET /dev/runtime`):
/// both are 0 when it is idle, whatever happened to the requests before.
#[must_use]
pub fn in_flight() -> (usize, usize) {
    let tasks = TASKS.with(|t| t.borrow().len());
    let promises = SLOTS.with(|s| s.borrow().len());
    (tasks, promises)
}

/// Awaits a JS promise: `settled(promise).await` is `JsFuture::from(promise).await` without
/// its per-await cost.
///
/// `JsFuture` builds two wasm-bindgen closures for every promise (each a heap box, a JS
/// wrapper registered with a `FinalizationRegistry`, and a call back into wasm to drop it).
/// Here the promise is handed to a short JS function together with a slot number; its two
/// reactions call one callback made once per wasm instance, which stores the outcome in the
/// slot and wakes the waiting task. The request's work is the same; only the bookkeeping
/// around each `await` shrinks (a `GET /cart` awaits three promises).
///
/// Slots live in a per-isolate table that holds only promises in flight: a slot is reused
/// once both its promise has settled and its future is done with it, so a late settlement
/// never reaches another await. A future dropped before its promise settles leaves the slot
/// marked abandoned; the settlement then frees it.
///
/// A promise that never settles: workerd tears down a request's I/O when its client goes
/// away, and the promises of that I/O stay pending. The promise is registered with a
/// `FinalizationRegistry`, so when it is garbage-collected unsettled its slot is freed and
/// the waker it held dropped (and with it the waiting task, see [`run`]). For that the
/// promise is taken by value: nothing in Rust keeps it alive across the await.
#[must_use]
pub fn settled(promise: js_sys::Promise) -> Settled {
    let (slot, generation) = SLOTS.with(|s| s.borrow_mut().take());
    let result = RESUME.with(|resume| settle_js(&promise, slot, generation, resume));
    drop(promise);
    if let Err(error) = result {
        // `register` or `then` threw (never on a real promise): no reaction will come, so the
        // future answers the error at its first poll, which frees the slot.
        let previous = SLOTS.with(|s| {
            let mut slots = s.borrow_mut();
            slots
                .entries
                .get_mut(slot as usize)
                .map(|entry| std::mem::replace(&mut entry.1, Slot::Settled(Err(error))))
        });
        drop(previous);
    }
    Settled {
        slot,
        generation,
        done: false,
    }
}

/// Awaits an already resolved promise through [`settled`], so that the request is resumed in
/// a promise reaction (`/dev/panic?after-await`).
pub async fn resumed() {
    let _ = settled(js_sys::Promise::resolve(&JsValue::NULL)).await;
}

/// Awaits, through [`settled`], a promise that never settles, as a request does whose I/O
/// workerd tore down when its client went away (`/dev/hang`).
pub async fn never_settled() {
    let never = js_sys::Promise::new(&mut |_resolve, _reject| {});
    let _ = settled(never).await;
}

#[wasm_bindgen::prelude::wasm_bindgen(inline_js = "
const lost = new FinalizationRegistry((held) => {
  // A callback of an instance that a panic replaced throws; its table went with it.
  try { held.resume(held.slot, held.generation, undefined, 2); } catch {}
});
export function settle(promise, slot, generation, resume) {
  const held = { slot, generation, resume };
  lost.register(promise, held, held);
  promise.then(
    (value) => { lost.unregister(held); resume(slot, generation, value, 0); },
    (error) => { lost.unregister(held); resume(slot, generation, error, 1); },
  );
}")]
extern "C" {
    #[wasm_bindgen(catch, js_name = settle)]
    fn settle_js(
        promise: &js_sys::Promise,
        slot: u32,
        generation: u32,
        resume: &js_sys::Function,
    ) -> Result<(), JsValue>;
}

/// What [`resume`] is told: the promise fulfilled, rejected, or was collected unsettled.
const FULFILLED: u32 = 0;
const REJECTED: u32 = 1;

enum Slot {
    Free,
    /// Not settled yet; the waker of the task awaiting it, once polled.
    Waiting(Option<std::task::Waker>),
    Settled(Result<JsValue, JsValue>),
    /// Its future was dropped first; the settlement frees the slot.
    Abandoned,
}

/// Each slot with its generation: a [`Settled`] only touches the slot it was given, never a
/// later use of the same index.
#[derive(Default)]
struct Slots {
    entries: Vec<(u32, Slot)>,
    free: Vec<u32>,
    generation: u32,
}

impl Slots {
    fn take(&mut self) -> (u32, u32) {
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        let slot = self.free.pop().unwrap_or_else(|| {
            self.entries.push((0, Slot::Free));
            u32::try_from(self.entries.len() - 1).unwrap_or(u32::MAX)
        });
        if let Some(entry) = self.entries.get_mut(slot as usize) {
            *entry = (generation, Slot::Waiting(None));
        }
        (slot, generation)
    }

    fn get_mut(&mut self, slot: u32, generation: u32) -> Option<&mut Slot> {
        self.entries
            .get_mut(slot as usize)
            .filter(|(g, _)| *g == generation)
            .map(|(_, entry)| entry)
    }

    fn release(&mut self, slot: u32) {
        if let Some(entry) = self.entries.get_mut(slot as usize) {
            entry.1 = Slot::Free;
            self.free.push(slot);
        }
    }

    fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }
}

thread_local! {
    /// Requests in flight in this isolate (see [`run`]): each entry is one request's future,
    /// from its start to its response (or until nothing can wake it), then freed; so it is
    /// not per-user state beyond the request that holds it.
    static TASKS: std::cell::RefCell<Tasks> = std::cell::RefCell::new(Tasks::default());
    /// Promises in flight in this isolate (see [`settled`]). Not per-user state: a result
    /// stays only from its promise's settlement to the next poll of the future awaiting it,
    /// inside the request that made it; then the slot is empty again.
    static SLOTS: std::cell::RefCell<Slots> = std::cell::RefCell::new(Slots::default());
    /// The one callback every settlement calls, made once per wasm instance and kept: a
    /// function, the same for every user, so not per-user state.
    static RESUME: js_sys::Function = {
        let resume =
            wasm_bindgen::closure::Closure::<dyn FnMut(u32, u32, JsValue, u32)>::new(resume);
        wasm_bindgen::JsCast::unchecked_into(resume.into_js_value())
    };
}

fn resume(slot: u32, generation: u32, value: JsValue, outcome: u32) {
    let held = SLOTS.with(|s| {
        let mut slots = s.borrow_mut();
        let entry = slots.get_mut(slot, generation)?;
        match std::mem::replace(entry, Slot::Free) {
            Slot::Waiting(waker) if outcome == FULFILLED || outcome == REJECTED => {
                *entry = Slot::Settled(if outcome == FULFILLED {
                    Ok(value)
                } else {
                    Err(value)
                });
                waker.map(Held::Wake)
            }
            // Collected unsettled: nothing will ever settle it. Freed; the waker it held is
            // dropped below, which drops the task if nothing else can wake it.
            Slot::Waiting(waker) => {
                slots.release(slot);
                waker.map(Held::Drop)
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
    // Outside the borrow: the task is polled right away (see `run`), and dropping a waker can
    // drop a task whose futures touch this table.
    match held {
        Some(Held::Wake(waker)) => wake_inline(waker),
        Some(Held::Drop(waker)) => drop(waker),
        None => {}
    }
}

enum Held {
    Wake(std::task::Waker),
    Drop(std::task::Waker),
}

/// The future of [`settled`]: the promise's value, or its rejection as `Err`.
pub struct Settled {
    slot: u32,
    generation: u32,
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
        let (slot, generation) = (self.slot, self.generation);
        // A waker replaced here is dropped after the borrow ends (see `resume`).
        let mut replaced = None;
        let outcome = SLOTS.with(|s| {
            let mut slots = s.borrow_mut();
            let Some(entry) = slots.get_mut(slot, generation) else {
                // Freed because its promise was collected unsettled: it never will settle.
                return Some(Err(JsValue::from_str("promise lost")));
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
        let held = SLOTS.try_with(|s| {
            let mut slots = s.try_borrow_mut().ok()?;
            let (slot, generation) = (self.slot, self.generation);
            let entry = slots.get_mut(slot, generation)?;
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

#[cfg(test)]
mod tests {
    //! The executor is plain Rust (only [`settled`] touches JS), so its rules are checked
    //! natively with hand-made futures.
    use super::{in_flight, run};
    use std::cell::{Cell, RefCell};
    use std::future::Future;
    use std::pin::Pin;
    use std::rc::Rc;
    use std::task::{Context, Poll, Waker};

    fn tasks() -> usize {
        in_flight().0
    }

    /// Runs the deferred wakes, as the host's microtask checkpoint would.
    fn run_deferred() {
        loop {
            let batch = super::DEFERRED.with(|d| std::mem::take(&mut *d.borrow_mut()));
            if batch.is_empty() {
                return;
            }
            for f in batch {
                f();
            }
        }
    }

    /// Pending until `open` is set; keeps the latest waker in `waker`.
    struct Gate {
        open: Rc<Cell<bool>>,
        waker: Rc<RefCell<Option<Waker>>>,
        polls: Rc<Cell<u32>>,
    }

    impl Future for Gate {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.set(self.polls.get() + 1);
            if self.open.get() {
                return Poll::Ready(());
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// The test's handles on a [`Gate`].
    struct Probe {
        open: Rc<Cell<bool>>,
        waker: Rc<RefCell<Option<Waker>>>,
        polls: Rc<Cell<u32>>,
    }

    impl Probe {
        /// Opens the gate and wakes its task (as a settling promise would).
        fn open_and_wake(&self) {
            self.open.set(true);
            let waker = self.waker.borrow_mut().take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    fn gate() -> (Gate, Probe) {
        let probe = Probe {
            open: Rc::new(Cell::new(false)),
            waker: Rc::new(RefCell::new(None)),
            polls: Rc::new(Cell::new(0)),
        };
        let g = Gate {
            open: Rc::clone(&probe.open),
            waker: Rc::clone(&probe.waker),
            polls: Rc::clone(&probe.polls),
        };
        (g, probe)
    }

    /// Runs a task that waits on a gate and then sets the returned flag.
    fn gated_task() -> (Probe, Rc<Cell<bool>>) {
        let (g, probe) = gate();
        let done = Rc::new(Cell::new(false));
        let d = Rc::clone(&done);
        run(async move {
            g.await;
            d.set(true);
        });
        (probe, done)
    }

    /// Sets its flag when dropped.
    struct DropFlag(Rc<Cell<bool>>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }

    #[test]
    fn a_ready_future_runs_at_once_and_leaves_nothing() {
        let ran = Rc::new(Cell::new(false));
        let r = Rc::clone(&ran);
        run(async move { r.set(true) });
        assert!(ran.get());
        assert_eq!(tasks(), 0);
    }

    #[test]
    fn a_waiting_future_is_polled_where_it_is_woken_and_then_freed() {
        let (probe, done) = gated_task();
        assert_eq!((probe.polls.get(), done.get(), tasks()), (1, false, 1));
        // A wake from the task's own code path (a settled promise's reaction) polls at once.
        probe.open.set(true);
        let waker = probe.waker.borrow_mut().take();
        if let Some(waker) = waker {
            super::wake_inline(waker);
        }
        assert_eq!((probe.polls.get(), done.get(), tasks()), (2, true, 0));
    }

    #[test]
    fn any_other_wake_is_deferred_so_a_future_may_wake_before_it_records_why() {
        // The worker crate's `Delay` calls `wake` and only then marks itself done; polled
        // inside that `wake`, it would still be pending and never be woken again.
        let (probe, done) = gated_task();
        let waker = probe.waker.borrow_mut().take();
        if let Some(waker) = waker {
            waker.wake();
        }
        probe.open.set(true);
        assert_eq!((probe.polls.get(), done.get(), tasks()), (1, false, 1));
        // The deferred poll holds the task alive, though no other waker is left.
        run_deferred();
        assert_eq!((probe.polls.get(), done.get(), tasks()), (2, true, 0));
    }

    #[test]
    fn a_future_nothing_can_wake_is_dropped_with_its_last_waker() {
        let (g, probe) = gate();
        let dropped = Rc::new(Cell::new(false));
        let flag = DropFlag(Rc::clone(&dropped));
        run(async move {
            let _flag = flag;
            g.await;
        });
        assert_eq!((tasks(), dropped.get()), (1, false));
        // Its promise was collected unsettled: the waker it held goes, and the task with it.
        drop(probe.waker.borrow_mut().take());
        assert_eq!((tasks(), dropped.get()), (0, true));
    }

    #[test]
    fn a_future_that_returns_pending_without_a_waker_is_dropped_at_once() {
        let dropped = Rc::new(Cell::new(false));
        let flag = DropFlag(Rc::clone(&dropped));
        run(async move {
            let _flag = flag;
            std::future::pending::<()>().await;
        });
        assert_eq!((tasks(), dropped.get()), (0, true));
    }

    #[test]
    fn a_wake_during_its_own_poll_polls_again_after_it_not_inside_it() {
        struct YieldOnce {
            yielded: bool,
            depth: Rc<Cell<u32>>,
            deepest: Rc<Cell<u32>>,
        }
        impl Future for YieldOnce {
            type Output = ();
            fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
                self.depth.set(self.depth.get() + 1);
                self.deepest.set(self.deepest.get().max(self.depth.get()));
                let out = if self.yielded {
                    Poll::Ready(())
                } else {
                    self.yielded = true;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                };
                self.depth.set(self.depth.get() - 1);
                out
            }
        }
        let deepest = Rc::new(Cell::new(0));
        let done = Rc::new(Cell::new(false));
        let d = Rc::clone(&done);
        let yielding = YieldOnce {
            yielded: false,
            depth: Rc::new(Cell::new(0)),
            deepest: Rc::clone(&deepest),
        };
        run(async move {
            yielding.await;
            d.set(true);
        });
        // It kept no waker: the pending re-poll alone keeps it alive.
        assert_eq!((done.get(), tasks()), (false, 1));
        run_deferred();
        assert_eq!((done.get(), deepest.get(), tasks()), (true, 1, 0));
    }

    #[test]
    fn a_stale_waker_never_reaches_the_task_that_reuses_its_place() {
        let (first, first_probe) = gate();
        run(first);
        let stale = first_probe.waker.borrow().clone();
        first_probe.open_and_wake();
        run_deferred();
        assert_eq!(tasks(), 0);
        let (second, second_probe) = gate();
        run(second);
        assert_eq!((second_probe.polls.get(), tasks()), (1, 1));
        if let Some(stale) = stale {
            stale.wake();
        }
        run_deferred();
        assert_eq!(
            second_probe.polls.get(),
            1,
            "the old task's waker polled the new task"
        );
        second_probe.open_and_wake();
        run_deferred();
        assert_eq!((second_probe.polls.get(), tasks()), (2, 0));
    }
}
