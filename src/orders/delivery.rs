//! The `ORDER_EVENTS` consumer and the outbox sweep (edge).
//!
//! Delivery is at least once (semantics.md §6). A message names an event; the consumer reads
//! the event's row, counts the attempt in D1, POSTs the stored body to `ORDER_WEBHOOK_URL`
//! with the Standard Webhooks headers (`webhook-id` = the event id on every attempt), and:
//!
//! - 2xx → the event is `delivered`, the message acked;
//! - anything else (3xx included: redirects are not followed), a timeout or no connection →
//!   the message is retried after `ORDER_WEBHOOK_RETRY_BASE_SECONDS` doubled per attempt made;
//! - once the queue's `max_retries` are spent, the queue moves the message to the dead-letter
//!   queue `order-events-dlq`, which this worker also consumes: the event is marked
//!   `undelivered` (the merchant sees it in `GET /orders/{id}`), never dropped silently.
//!
//! With `ORDER_WEBHOOK_URL` (or its secret) unset an event is kept `pending` and the message
//! acked. The sweep (every cron run) re-sends pending events left untouched for
//! `ORDER_EVENTS_SWEEP_AFTER_SECONDS`: an event whose send failed after its commit, whose
//! message was lost, or that waited for a webhook to be configured.

use worker::{D1Database, Env, MessageExt, QueueRetryOptionsBuilder, RawMessage};

use super::events::{publish, EventMessage};
use super::model::EventId;
use super::store;
use super::webhook::{retry_delay_seconds, Attempt, SigningKey};
use crate::config::Config;
use crate::http::{log_event, now_millis, problem::ApiError};
use crate::platform::queue::Batch;
use crate::time::UnixMillis;

/// The dead-letter queue of `ORDER_EVENTS` (consumed here to mark events undelivered).
pub const DEAD_LETTER_QUEUE: &str = "order-events-dlq";
/// How many events one sweep round re-sends (a queue batch holds at most 100 messages).
const SWEEP_BATCH: u32 = 100;
/// Rounds per sweep run.
const SWEEP_ROUNDS: usize = 10;

/// Handles a batch of either queue. Never fails: every message is acked or retried.
pub async fn consume(batch: &Batch, env: &Env) {
    // `order-events-dlq`, or a copy's (`order-events-dlq-staging`).
    let dead_letters = batch.queue().starts_with(DEAD_LETTER_QUEUE);
    let (config, db) = match config_and_database(env) {
        Ok(setup) => setup,
        Err(e) => {
            // Nothing can be recorded: retry (the dead-letter queue's retries end in its
            // own log lines; the sweep re-sends the events once the worker works again).
            log("order events batch not handled", None, &e);
            batch.retry_all();
            return;
        }
    };
    // The batch's messages are delivered concurrently (each waits on its own webhook answer,
    // up to the timeout), then each is acked or retried.
    let messages: Vec<RawMessage> = batch.raw_iter().collect();
    let handled = futures_util::future::join_all(
        messages
            .iter()
            .map(|message| handle(message, dead_letters, &db, &config)),
    )
    .await;
    for (message, next) in messages.iter().zip(handled) {
        match next {
            Next::Ack => message.ack(),
            Next::RetryIn(seconds) => retry(message, seconds),
        }
    }
}

/// One message of either queue.
async fn handle(
    message: &RawMessage,
    dead_letters: bool,
    db: &D1Database,
    config: &Config,
) -> Next {
    let id = crate::platform::queue::body::<EventMessage>(message).map(|m| m.id);
    let Some(id) = id else {
        log_event(
            "warn",
            "order event message malformed",
            &serde_json::json!({ "message": message.id() }),
        );
        return Next::Ack;
    };
    let outcome = if dead_letters {
        dead_letter(db, &id).await
    } else {
        deliver(db, config, &id).await
    };
    outcome.unwrap_or_else(|e| {
        log("order event not handled", Some(&id), &e);
        Next::RetryIn(retry_delay_seconds(
            config.order_webhook_retry_base_seconds,
            1,
        ))
    })
}

/// What to do with a message.
enum Next {
    Ack,
    RetryIn(u32),
}

fn retry(message: &RawMessage, seconds: u32) {
    message.retry_with_options(
        &QueueRetryOptionsBuilder::new()
            .with_delay_seconds(seconds)
            .build(),
    );
}

/// One delivery attempt of event `id`.
async fn deliver(db: &D1Database, config: &Config, id: &EventId) -> Result<Next, ApiError> {
    let (Some(url), Some(key)) = (
        config.order_webhook_url.as_deref(),
        config
            .order_webhook_secret
            .as_ref()
            .and_then(|s| SigningKey::parse(s.expose())),
    ) else {
        // Kept pending: the sweep sends it once a webhook is configured.
        if store::is_pending(db, id).await? {
            log_event(
                "info",
                "order event kept: no webhook configured",
                &serde_json::json!({ "event": id.as_str() }),
            );
        }
        return Ok(Next::Ack);
    };
    let now = UnixMillis(now_millis());
    let Some(event) = store::begin_attempt(db, id, now).await? else {
        // No such event, or it is decided already (a duplicate message: a sweep raced a slow
        // delivery).
        return Ok(Next::Ack);
    };
    let attempts = event.attempts;
    let timestamp = now.seconds();
    let signature = key.sign(id.as_str(), timestamp, &event.body);
    let status = post(
        url,
        id.as_str(),
        timestamp,
        &signature,
        &event.body,
        config.order_webhook_timeout_seconds,
    )
    .await;
    let answer = status.map_or(Attempt::Failed, Attempt::from_status);
    let delivered = answer == Attempt::Delivered;
    store::record_answer(db, id, delivered, status, UnixMillis(now_millis())).await?;
    match answer {
        Attempt::Delivered => Ok(Next::Ack),
        Attempt::Failed => {
            log_event(
                "warn",
                "order event delivery failed",
                &serde_json::json!({ "event": id.as_str(), "attempts": attempts, "status": status }),
            );
            Ok(Next::RetryIn(retry_delay_seconds(
                config.order_webhook_retry_base_seconds,
                attempts,
            )))
        }
    }
}

/// A message of the dead-letter queue: its event is undelivered.
async fn dead_letter(db: &D1Database, id: &EventId) -> Result<Next, ApiError> {
    if store::mark_undelivered(db, id, UnixMillis(now_millis())).await? {
        log_event(
            "error",
            "order event undelivered",
            &serde_json::json!({ "event": id.as_str(), "queue": DEAD_LETTER_QUEUE }),
        );
    }
    Ok(Next::Ack)
}

/// POSTs the event; the answer's status, or `None` after a timeout or a failed connection.
/// Redirects are not followed (a 3xx is an answer like any other non-2xx).
async fn post(
    url: &str,
    id: &str,
    timestamp: u64,
    signature: &str,
    body: &str,
    timeout_seconds: u64,
) -> Option<u16> {
    use worker::{Fetch, Headers, Method, Request, RequestInit, RequestRedirect};
    let headers = Headers::new();
    for (name, value) in [
        ("Content-Type", "application/json"),
        ("User-Agent", "edgecart-webhooks"),
        ("webhook-id", id),
        ("webhook-timestamp", &timestamp.to_string()),
        ("webhook-signature", signature),
    ] {
        headers.set(name, value).ok()?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_redirect(RequestRedirect::Manual)
        .with_headers(headers);
    crate::platform::fetch::with_text_body(&mut init, body);
    let request = Request::new_with_init(url, &init).ok()?;
    let ms = u32::try_from(timeout_seconds.saturating_mul(1000)).unwrap_or(u32::MAX);
    let signal = crate::platform::fetch::timeout(ms);
    let response = Fetch::Request(request)
        .send_with_signal(&signal)
        .await
        .ok()?;
    let status = response.status_code();
    // The answer's body is not needed: cancel it rather than leave it unread.
    crate::platform::fetch::discard_body(response);
    Some(status)
}

/// The outbox sweep: re-sends pending events left untouched for
/// `ORDER_EVENTS_SWEEP_AFTER_SECONDS` (only while a webhook is configured).
pub async fn sweep(env: &Env) {
    let (config, db) = match config_and_database(env) {
        Ok(setup) => setup,
        Err(e) => return log("order events sweep not run", None, &e),
    };
    if config.order_webhook_url.is_none() {
        return;
    }
    let mut sent = 0usize;
    for _ in 0..SWEEP_ROUNDS {
        let now = UnixMillis(now_millis());
        let before = UnixMillis(
            now.0
                .saturating_sub(config.order_events_sweep_after_seconds.saturating_mul(1000)),
        );
        let ids = match store::stale_pending_events(&db, before, SWEEP_BATCH).await {
            Ok(ids) => ids,
            Err(e) => return log("order events sweep read failed", None, &e),
        };
        if ids.is_empty() || !publish(env, &ids).await {
            break;
        }
        if let Err(e) = store::touch_events(&db, &ids, now).await {
            return log("order events sweep touch failed", None, &e);
        }
        sent = sent.saturating_add(ids.len());
        if ids.len() < SWEEP_BATCH as usize {
            break;
        }
    }
    if sent > 0 {
        log_event(
            "info",
            "order events swept",
            &serde_json::json!({ "resent": sent }),
        );
    }
}

/// What the consumer and the sweep both need: the configuration and the D1 binding.
fn config_and_database(env: &Env) -> Result<(Config, D1Database), ApiError> {
    let config = crate::http::config_of(env)?;
    Ok((config, crate::catalogue::store::database(env)?))
}

fn log(what: &str, id: Option<&EventId>, e: &ApiError) {
    log_event(
        "error",
        what,
        &serde_json::json!({
            "event": id.map(EventId::as_str),
            "problem": e.kind().slug(),
            "detail": e.log_detail(),
        }),
    );
}
