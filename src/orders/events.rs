//! Order events after their D1 commit: handed to the `ORDER_EVENTS` queue (edge).
//!
//! The event rows are written in the transition's own batch (the outbox, see
//! [`super::store`]); this only tells the queue about them. The message carries the event id
//! alone: the consumer reads the row (body, delivery state) from D1, the one source of truth,
//! so a duplicate message (a sweep racing a slow send) finds an event already delivered and
//! does nothing. A send that fails is logged and left to the outbox sweep, which re-sends
//! pending events nobody touched for a while: none is lost between the commit and the queue.

use serde::{Deserialize, Serialize};
use worker::Env;

use super::model::EventId;

/// The queue binding (producer and consumer).
pub const QUEUE_BINDING: &str = "ORDER_EVENTS";

/// The message on the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMessage {
    pub id: EventId,
}

/// Sends the events' ids to the queue after the response (`waitUntil`), so the shopper does
/// not wait for the queue's round trip: the events are already committed in D1, and a send
/// that fails or never runs (the isolate goes away) is re-sent by the outbox sweep.
pub fn publish_after_response(ctx: &worker::Context, env: &Env, ids: Vec<EventId>) {
    let env = env.clone();
    ctx.wait_until(async move {
        publish(&env, &ids).await;
    });
}

/// Sends the events' ids to the queue, awaited; whether it did. Never fails: the D1 commit
/// already happened, and the sweep re-sends.
pub async fn publish(env: &Env, ids: &[EventId]) -> bool {
    if ids.is_empty() {
        return true;
    }
    let queue = match env.queue(QUEUE_BINDING) {
        Ok(queue) => queue,
        Err(e) => {
            log_send_failure("no queue binding", &e.to_string());
            return false;
        }
    };
    let messages: Vec<EventMessage> = ids
        .iter()
        .map(|id| EventMessage { id: id.clone() })
        .collect();
    match queue.send_batch(messages).await {
        Ok(()) => true,
        Err(e) => {
            log_send_failure("queue send failed", &e.to_string());
            false
        }
    }
}

fn log_send_failure(what: &str, detail: &str) {
    crate::http::log_event(
        "warn",
        "order event not queued",
        &serde_json::json!({ "reason": what, "detail": detail, "then": "the outbox sweep re-sends it" }),
    );
}
