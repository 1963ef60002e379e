//! Idempotency records in D1 (`IDEMPOTENCY_BACKEND=d1`), the alternative to the Durable Object
//! (edge).
//!
//! Role: the same semantics as [`super::durable`], in the table `idempotency_records`
//! (migration `0003_orders.sql`). A claim cannot hold a lock across D1 round trips, so it is
//! read → decide ([`super::machine::claim`], the same pure code the object runs) → conditional
//! write, retried when the write loses a race:
//!
//! - no row: `INSERT … ON CONFLICT (key) DO NOTHING`; one row changed means we own it;
//! - a row: `UPDATE … WHERE key = ? AND attempt = ?` (the attempt token read); every claim
//!   writes a fresh token, so the token acts as the row's version and exactly one of several
//!   racing takeovers wins.
//!
//! Consistency: D1 has one primary and this adapter uses no read replicas (no sessions), so
//! every read sees every committed write. Completion and release are conditional on the
//! attempt token too. Retention is enforced by the decision (`expires_at` in the past → start
//! afresh); [`collect_expired`] deletes old rows from the scheduled cleanup.

use worker::{D1Database, D1PreparedStatement};

use super::key::{Fingerprint, RecordKey};
use super::machine::{claim, NextAction, Policy, Release, StoredResponse};
use super::row::{Row, COMPLETED, IN_PROGRESS};
use crate::d1::Param;
use crate::http::{problem::ApiError, unavailable};
use crate::time::UnixMillis;

/// How many times a claim retries after losing a race before answering "in flight".
const CLAIM_ROUNDS: usize = 4;

/// Claims `key` for `attempt`.
///
/// # Errors
/// 503 when D1 fails; 500 when a stored row is inconsistent.
pub async fn claim_record(
    db: &D1Database,
    key: &RecordKey,
    fingerprint: &Fingerprint,
    attempt: &str,
    now: UnixMillis,
    policy: Policy,
) -> Result<NextAction, ApiError> {
    for _ in 0..CLAIM_ROUNDS {
        let stored = read(db, key).await?;
        let record = match stored.as_ref().map(Row::to_record) {
            None => None,
            Some(Ok(record)) => Some(record),
            Some(Err(e)) => return Err(ApiError::Internal(e)),
        };
        let (action, write) = claim(record.as_ref(), fingerprint, attempt, now, policy);
        let Some(new) = write else {
            return Ok(action);
        };
        let row = Row::from_record(key.as_str(), &new, policy);
        // ?1–?7 are the new row in both statements; a takeover adds ?8, the attempt it
        // replaces, so it only wins if nobody else took over first.
        let mut values = vec![
            text(&row.key),
            text(&row.fingerprint),
            text(IN_PROGRESS),
            text(&row.attempt),
            int(row.created_at),
            int(row.expires_at),
            int(row.locked_until),
        ];
        let sql = match &record {
            None => {
                "INSERT INTO idempotency_records (key, fingerprint, state, attempt,
                    created_at, expires_at, locked_until)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (key) DO NOTHING"
            }
            Some(old) => {
                values.push(text(&old.attempt));
                "UPDATE idempotency_records SET fingerprint = ?2, state = ?3, attempt = ?4,
                    created_at = ?5, expires_at = ?6, locked_until = ?7, status = NULL,
                    content_type = NULL, location = NULL, body = NULL
                 WHERE key = ?1 AND attempt = ?8"
            }
        };
        let statement = bind(db.prepare(sql), &values)?;
        if changes(&statement, "d1 claim idempotency record").await? == 1 {
            return Ok(action);
        }
        // Lost the race: another attempt wrote first. Read again and decide again.
    }
    Ok(NextAction::InFlight { retry_after: 1 })
}

/// Stores the response of `attempt` (no-op when another attempt holds the record now).
///
/// # Errors
/// 503 when D1 fails.
pub async fn complete(
    db: &D1Database,
    key: &RecordKey,
    attempt: &str,
    response: &StoredResponse,
) -> Result<(), ApiError> {
    let statement = bind(
        db.prepare(
            "UPDATE idempotency_records SET state = ?3, status = ?4, content_type = ?5,
                location = ?6, body = ?7, locked_until = 0
             WHERE key = ?1 AND attempt = ?2 AND state = ?8",
        ),
        &[
            text(key.as_str()),
            text(attempt),
            text(COMPLETED),
            int(u64::from(response.status)),
            text(&response.content_type),
            response.location.as_deref().map_or(Param::NULL, text),
            text(&response.body),
            text(IN_PROGRESS),
        ],
    )?;
    changes(&statement, "d1 complete idempotency record").await?;
    Ok(())
}

/// Forgets or unlocks the claim of `attempt`.
///
/// # Errors
/// 503 when D1 fails.
pub async fn release(
    db: &D1Database,
    key: &RecordKey,
    attempt: &str,
    how: Release,
) -> Result<(), ApiError> {
    let sql = match how {
        Release::Forget => {
            "DELETE FROM idempotency_records WHERE key = ?1 AND attempt = ?2 AND state = ?3"
        }
        Release::Unlock => {
            "UPDATE idempotency_records SET locked_until = 0
             WHERE key = ?1 AND attempt = ?2 AND state = ?3"
        }
    };
    let statement = bind(
        db.prepare(sql),
        &[text(key.as_str()), text(attempt), text(IN_PROGRESS)],
    )?;
    changes(&statement, "d1 release idempotency record").await?;
    Ok(())
}

/// Deletes records whose retention ended; returns how many. Called by the scheduled cleanup.
///
/// # Errors
/// 503 when D1 fails.
pub async fn collect_expired(db: &D1Database, now: UnixMillis) -> Result<usize, ApiError> {
    let statement = bind(
        db.prepare("DELETE FROM idempotency_records WHERE expires_at <= ?1 AND locked_until <= ?1"),
        &[int(now.0)],
    )?;
    changes(&statement, "d1 collect idempotency records").await
}

async fn read(db: &D1Database, key: &RecordKey) -> Result<Option<Row>, ApiError> {
    let statement = bind(
        db.prepare(
            "SELECT key, fingerprint, state, attempt, created_at, expires_at, locked_until,
                status, content_type, location, body
             FROM idempotency_records WHERE key = ?1",
        ),
        &[text(key.as_str())],
    )?;
    let result = crate::d1::all(&statement)
        .await
        .map_err(|e| unavailable("d1 read idempotency record", &e))?;
    let rows: Vec<Row> = result
        .results()
        .map_err(|e| ApiError::Internal(format!("decode idempotency row: {e}")))?;
    Ok(rows.into_iter().next())
}

async fn changes(statement: &D1PreparedStatement, what: &str) -> Result<usize, ApiError> {
    let result = crate::d1::run(statement)
        .await
        .map_err(|e| unavailable(what, &e))?;
    Ok(usize::try_from(result.changes()).unwrap_or(usize::MAX))
}

fn bind(stmt: D1PreparedStatement, values: &[Param]) -> Result<D1PreparedStatement, ApiError> {
    crate::d1::bind(&stmt, values).map_err(|e| unavailable("d1 bind", &e))
}

fn text(s: &str) -> Param {
    Param::text(s)
}

#[allow(clippy::cast_precision_loss)] // milliseconds of real dates are far below 2^53
fn int(n: u64) -> Param {
    Param::number(n as f64)
}
