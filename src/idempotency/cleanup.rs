//! The scheduled cleanup of D1 idempotency records (edge).
//!
//! Role: garbage collection only. Retention is enforced when a record is read (an expired
//! record is treated as absent), so a late or skipped run never replays an old response; it
//! only leaves personal data (response bodies) stored longer than needed. The Durable Object
//! backend collects its own records with an alarm and needs nothing from here.
//!
//! Wiring (in `lib.rs`), with a cron in `wrangler.toml` (`[triggers] crons = ["17 * * * *"]`):
//!
//! ```ignore
//! #[event(scheduled)]
//! async fn scheduled(_event: worker::ScheduledEvent, env: Env, _ctx: worker::ScheduleContext) {
//!     idempotency::cleanup::run(&env).await;
//! }
//! ```

use worker::Env;

use crate::http::now_millis;
use crate::time::UnixMillis;

/// Deletes expired D1 records and logs one line with the count (or the failure).
pub async fn run(env: &Env) {
    let now = UnixMillis(now_millis());
    let outcome = match env.d1("DB") {
        Ok(db) => super::d1::collect_expired(&db, now)
            .await
            .map_err(|e| e.log_detail().unwrap_or_default()),
        Err(e) => Err(format!("d1 binding: {e}")),
    };
    match outcome {
        Ok(deleted) => crate::http::log_event(
            "info",
            "idempotency-cleanup",
            &serde_json::json!({ "deleted": deleted }),
        ),
        Err(error) => crate::http::log_event(
            "error",
            "idempotency-cleanup",
            &serde_json::json!({ "error": error }),
        ),
    }
}
