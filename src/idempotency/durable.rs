//! `IdempotencyStore`: the SQLite-backed Durable Object that holds idempotency records.
//!
//! One object per user (named by the hashed user id): all of one user's keys are serialised
//! through one single-threaded object, while different users never contend. `sql.exec` is
//! synchronous, so a check-then-insert with no `.await` between cannot interleave with
//! another request to the same object.

use worker::{durable_object, DurableObject, Env, Request, Response, SqlStorage, State};

/// The Durable Object class bound as `IDEMPOTENCY`.
#[durable_object]
pub struct IdempotencyStore {
    sql: SqlStorage,
    #[allow(dead_code)]
    state: State,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    locked_until INTEGER NOT NULL,
    status INTEGER,
    content_type TEXT,
    location TEXT,
    body TEXT
)";

impl DurableObject for IdempotencyStore {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        if let Err(e) = sql.exec(SCHEMA, None) {
            worker::console_error!(
                "{{\"level\":\"error\",\"detail\":\"idempotency schema: {e}\"}}"
            );
        }
        Self { sql, state }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        match req.path().as_str() {
            "/probe" => self.probe(),
            _ => Response::error("not found", 404),
        }
    }
}

impl IdempotencyStore {
    /// A read-only SQL statement, for `/health/ready`.
    fn probe(&self) -> worker::Result<Response> {
        #[derive(serde::Deserialize)]
        struct Count {
            n: i64,
        }
        let rows: Vec<Count> = self
            .sql
            .exec("SELECT count(*) AS n FROM idempotency", None)?
            .to_array()?;
        let n = rows.first().map_or(0, |r| r.n);
        Response::ok(format!("{{\"ok\":true,\"records\":{n}}}"))
    }
}

/// Calls the probe of one fixed object.
///
/// # Errors
/// A message for the readiness report.
pub async fn probe(env: &Env) -> Result<(), String> {
    let ns = env
        .durable_object("IDEMPOTENCY")
        .map_err(|e| e.to_string())?;
    let stub = ns
        .get_by_name("edgecart:ready-probe")
        .map_err(|e| e.to_string())?;
    let resp = stub
        .fetch_with_str("https://idempotency.internal/probe")
        .await
        .map_err(|e| e.to_string())?;
    if resp.status_code() == 200 {
        Ok(())
    } else {
        Err(format!("probe answered {}", resp.status_code()))
    }
}
