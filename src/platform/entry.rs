//! The worker's exported entry points: the `#[event]`s the worker crate exports, and
//! `edgecartFetch`, the fetch entry `src/entry.mjs` calls. They turn the runtime's arguments
//! into Rust ones ([`super::request::Request`], `worker` types) and hand them to the route
//! table ([`crate::serve`]) or the cron and queue handlers. The Durable Object class is
//! exported where its type is defined (`#[durable_object]`), and named here with the rest.

use worker::{event, Context, Env, Response};

use super::request::Request;
use super::workers_cache::WorkersCache;
use crate::http::Cx;

/// The Durable Object class workerd binds by name (`[[durable_objects]]` in `wrangler.toml`).
pub use crate::idempotency::durable::IdempotencyStore;

/// Once per wasm instance (at load, and again after a panic re-initialises it).
#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The crons (`[triggers]` in `wrangler.toml`): re-send order events the queue never got (the
/// outbox sweep), and collect expired idempotency records of the D1 backend. (Durable Object
/// records are collected by the object's own alarm.)
#[event(scheduled)]
async fn scheduled(_event: worker::ScheduledEvent, env: Env, _ctx: worker::ScheduleContext) {
    crate::orders::delivery::sweep(&env).await;
    crate::idempotency::cleanup::run(&env).await;
}

/// The `ORDER_EVENTS` consumer and its dead-letter queue's (`src/orders/delivery.rs`).
#[event(queue)]
async fn order_events(batch: super::queue::Batch, env: Env, _ctx: Context) -> worker::Result<()> {
    crate::orders::delivery::consume(&batch, &env).await;
    Ok(())
}

/// The fetch handler as the worker crate exports it. `src/entry.mjs` calls it only for the
/// first request after a panic (through worker-build's wrapper, which re-creates the wasm
/// instance); every other request comes in through [`edgecart_fetch`].
#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> worker::Result<Response> {
    // The worker crate's `Context` does not expose `ctx.cache`: this one request (after a
    // panic) takes the Cache API path.
    Ok(serve(req, env, ctx, None).await)
}

/// The fetch entry `src/entry.mjs` calls: serves the request on [`super::runtime::run`] and
/// hands the response to `resolve` (the `resolve` of the promise the entry returned to
/// workerd). The same handler as `fetch` above, without `future_to_promise`'s closure and task
/// queue.
///
/// Nothing here can fail but a panic, which traps: the trap leaves through the entry (the
/// promise rejects, workerd answers 500), or through whatever resumed the request (a promise
/// reaction, or a microtask of the task queue), and then the request ends when workerd sees
/// that nothing can finish it (a 500, once its other pending I/O is done). The panic hook
/// flags the instance for re-creation either way.
#[wasm_bindgen::prelude::wasm_bindgen(js_name = edgecartFetch)]
pub fn edgecart_fetch(
    req: web_sys::Request,
    env: Env,
    ctx: worker::worker_sys::Context,
    resolve: js_sys::Function,
) {
    let workers_cache = WorkersCache::detect(ctx.as_ref());
    super::runtime::run(async move {
        let response = serve(req, env, Context::new(ctx), workers_cache).await;
        let response: web_sys::Response = response.into();
        // `resolve` of a pending promise does not throw.
        let _ = resolve.call1(&wasm_bindgen::JsValue::UNDEFINED, &response);
    });
}

async fn serve(
    req: web_sys::Request,
    env: Env,
    ctx: Context,
    workers_cache: Option<WorkersCache>,
) -> Response {
    let mut cx = Cx::new(Request::new(req), env, ctx);
    cx.workers_cache = workers_cache;
    crate::serve(cx).await
}
