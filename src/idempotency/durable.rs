//! `IdempotencyStore`: the SQLite-backed Durable Object that holds idempotency records (edge).
//!
//! Role: the default backend of [`super::store::RecordStore`]. The worker calls it over
//! `fetch` with JSON messages ([`super::row`]): `/claim`, `/complete`, `/release`, and `/probe`
//! for `/health/ready`.
//!
//! Consistency: one object has one writer; `sql.exec` is synchronous, so the claim's read,
//! decision ([`super::machine::claim`]) and write run with no `.await` between them and cannot
//! interleave with another request to the same object. That is what makes "exactly one of 50
//! concurrent duplicates starts" true without locks. The records are durable once `exec`
//! returns (the runtime confirms the write before the response leaves the object).
//!
//! Why one object per user (`get_by_name(user_key)`): a record is only ever read by its own
//! user, so per-user objects give each user a serial, strongly consistent store while
//! different users never queue behind each other or behind one global object (which would be
//! a throughput ceiling and a single hot spot). Objects are created near their first caller, so
//! a user's records live close to that user. The object's storage also stays small, and deleting
//! a user's data is deleting one object's rows.
//!
//! Retention: every row carries `expires_at` (creation + retention). The claim already ignores
//! an expired record (it is enforced from the stored timestamps, never from the alarm), and
//! an alarm at the earliest `expires_at` deletes expired rows, because response bodies hold
//! personal data (email, shipping address).

use worker::{durable_object, DurableObject, Env, Request, Response, SqlStorage, State};

use super::key::Fingerprint;
use super::machine::{claim, Release};
use super::row::{ClaimCall, CompleteCall, ReleaseCall, Row, WireAction, COMPLETED, IN_PROGRESS};
use crate::platform::durable::at_time;
use crate::time::UnixMillis;

/// The Durable Object class bound as `IDEMPOTENCY`.
#[durable_object]
pub struct IdempotencyStore {
    sql: SqlStorage,
    state: State,
}

const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS records (
        key TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
        attempt TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        locked_until INTEGER NOT NULL,
        status INTEGER,
        content_type TEXT,
        location TEXT,
        body TEXT
    )",
    "CREATE INDEX IF NOT EXISTS records_by_expiry ON records (expires_at)",
];

impl DurableObject for IdempotencyStore {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        for statement in SCHEMA {
            if let Err(e) = sql.exec(statement, None) {
                crate::http::log_event(
                    "error",
                    "idempotency schema not applied",
                    &serde_json::json!({ "error": e.to_string() }),
                );
            }
        }
        Self { sql, state }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        match req.path().as_str() {
            "/probe" => self.probe(),
            "/claim" => {
                let call: ClaimCall = req.json().await?;
                let reply = self.claim(&call)?;
                if let WireAction::Start { created_at, .. } = &reply {
                    let expires =
                        UnixMillis(*created_at).plus_seconds(call.policy.retention_seconds);
                    // The alarm only collects garbage (retention is enforced from stored
                    // timestamps): a failure to arm it must not fail the claim just written.
                    if let Err(e) = self.ensure_alarm(expires).await {
                        crate::http::log_event(
                            "error",
                            "idempotency alarm not armed",
                            &serde_json::json!({ "error": e.to_string() }),
                        );
                    }
                }
                Response::from_json(&reply)
            }
            "/complete" => {
                let call: CompleteCall = req.json().await?;
                self.complete(&call)?;
                Response::ok("{}")
            }
            "/release" => {
                let call: ReleaseCall = req.json().await?;
                self.release(&call)?;
                Response::ok("{}")
            }
            _ => Response::error("not found", 404),
        }
    }

    /// Deletes expired records, then re-arms for the next expiry (if any record is left).
    async fn alarm(&self) -> worker::Result<Response> {
        let now = crate::http::now_millis();
        self.sql.exec(
            // A record still leased past retention stays until its lease ends.
            "DELETE FROM records WHERE expires_at <= ? AND locked_until <= ?",
            vec![int(now), int(now)],
        )?;
        #[derive(serde::Deserialize)]
        struct Next {
            next: Option<u64>,
        }
        let next: Vec<Next> = self
            .sql
            .exec(
                "SELECT min(max(expires_at, locked_until)) AS next FROM records",
                None,
            )?
            .to_array()?;
        if let Some(at) = next.first().and_then(|n| n.next) {
            self.state.storage().set_alarm(at_time(at)).await?;
        }
        Response::ok("collected")
    }
}

impl IdempotencyStore {
    /// Read, decide, write: synchronous from start to end (no `.await`), so atomic per object.
    fn claim(&self, call: &ClaimCall) -> worker::Result<WireAction> {
        let stored = self.read(&call.key)?;
        let record = match stored.as_ref().map(Row::to_record) {
            None => None,
            Some(Ok(record)) => Some(record),
            Some(Err(e)) => return Err(worker::Error::RustError(e)),
        };
        let fingerprint = Fingerprint::from_stored(call.fingerprint.clone());
        let (action, write) = claim(
            record.as_ref(),
            &fingerprint,
            &call.attempt,
            UnixMillis(call.now),
            call.policy,
        );
        if let Some(record) = write {
            let row = Row::from_record(&call.key, &record, call.policy);
            self.sql.exec(
                "INSERT OR REPLACE INTO records (key, fingerprint, state, attempt, created_at,
                    expires_at, locked_until, status, content_type, location, body)
                 VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL)",
                vec![
                    row.key.into(),
                    row.fingerprint.into(),
                    IN_PROGRESS.into(),
                    row.attempt.into(),
                    int(row.created_at),
                    int(row.expires_at),
                    int(row.locked_until),
                ],
            )?;
        }
        Ok(action.into())
    }

    /// Stores the response, only if `attempt` still holds the claim.
    fn complete(&self, call: &CompleteCall) -> worker::Result<()> {
        let r = &call.response;
        self.sql.exec(
            "UPDATE records SET state = ?, status = ?, content_type = ?, location = ?, body = ?,
                locked_until = 0
             WHERE key = ? AND attempt = ? AND state = ?",
            vec![
                COMPLETED.into(),
                int(u64::from(r.status)),
                r.content_type.clone().into(),
                r.location.clone().into(),
                r.body.clone().into(),
                call.key.clone().into(),
                call.attempt.clone().into(),
                IN_PROGRESS.into(),
            ],
        )?;
        Ok(())
    }

    /// Forgets or unlocks the claim, only if `attempt` still holds it.
    fn release(&self, call: &ReleaseCall) -> worker::Result<()> {
        let statement = match call.how {
            Release::Forget => "DELETE FROM records WHERE key = ? AND attempt = ? AND state = ?",
            Release::Unlock => {
                "UPDATE records SET locked_until = 0 WHERE key = ? AND attempt = ? AND state = ?"
            }
        };
        self.sql.exec(
            statement,
            vec![
                call.key.clone().into(),
                call.attempt.clone().into(),
                IN_PROGRESS.into(),
            ],
        )?;
        Ok(())
    }

    fn read(&self, key: &str) -> worker::Result<Option<Row>> {
        let rows: Vec<Row> = self
            .sql
            .exec(
                "SELECT key, fingerprint, state, attempt, created_at, expires_at, locked_until,
                    status, content_type, location, body
                 FROM records WHERE key = ?",
                vec![key.into()],
            )?
            .to_array()?;
        Ok(rows.into_iter().next())
    }

    /// Arms the alarm for `at` unless one is already set no later than that.
    async fn ensure_alarm(&self, at: UnixMillis) -> worker::Result<()> {
        let storage = self.state.storage();
        let current = storage.get_alarm().await?;
        let earlier_set = current.is_some_and(|c| u64::try_from(c).is_ok_and(|c| c <= at.0));
        if !earlier_set {
            storage.set_alarm(at_time(at.0)).await?;
        }
        Ok(())
    }

    /// A read-only SQL statement, for `/health/ready`.
    fn probe(&self) -> worker::Result<Response> {
        #[derive(serde::Deserialize)]
        struct Count {
            n: i64,
        }
        let rows: Vec<Count> = self
            .sql
            .exec("SELECT count(*) AS n FROM records", None)?
            .to_array()?;
        let n = rows.first().map_or(0, |r| r.n);
        Response::ok(format!("{{\"ok\":true,\"records\":{n}}}"))
    }
}

/// Milliseconds as a SQL integer (far inside JavaScript's safe range for any real date).
fn int(ms: u64) -> worker::SqlStorageValue {
    worker::SqlStorageValue::Integer(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// Calls the probe of one fixed object.
///
/// # Errors
/// A message for the readiness report.
pub async fn probe(env: &Env) -> Result<(), String> {
    let ns = env
        .durable_object("IDEMPOTENCY")
        .map_err(|e| e.to_string())?;
    let stub = super::store::ObjectStub::of(
        ns.get_by_name("edgecart:ready-probe")
            .map_err(|e| e.to_string())?,
    );
    // Awaited through `runtime::settled`, as every call of the request path.
    let resp = stub
        .get("https://idempotency.internal/probe")
        .await
        .map_err(|e| e.to_string())?;
    if resp.status() == 200 {
        Ok(())
    } else {
        Err(format!("probe answered {}", resp.status()))
    }
}
