//! D1 statements awaited through [`crate::runtime::settled`].
//!
//! The worker crate's `run`, `all`, `first` and `batch` await through `JsFuture`: a request
//! torn down while one of them is pending (its client went away) stays in the isolate for the
//! rest of its life, and with it whatever it held of its user. Through `settled`, the
//! abandoned promise is noticed when it is collected and the request is dropped
//! (`runtime`'s module docs). The statements themselves are the worker crate's
//! ([`D1PreparedStatement`]); only the awaiting and the reading of results are here.

use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use worker::{D1Database, D1PreparedStatement};

/// A D1 result object (`{ success, results, meta }`) of `run`, `all` or one statement of a
/// `batch`.
pub struct Outcome(JsValue);

impl Outcome {
    fn field(&self, name: &str) -> JsValue {
        js_sys::Reflect::get(&self.0, &name.into()).unwrap_or(JsValue::UNDEFINED)
    }

    /// The rows, each decoded as `T`; none when the statement returned no rows.
    ///
    /// # Errors
    /// When a row does not decode as `T` (the message may quote a value).
    pub fn results<T: DeserializeOwned>(&self) -> Result<Vec<T>, worker::Error> {
        let rows = self.field("results");
        if rows.is_null() || rows.is_undefined() {
            return Ok(Vec::new());
        }
        let rows: js_sys::Array = rows.dyn_into().map_err(worker::Error::from)?;
        rows.iter()
            .map(|row| serde_wasm_bindgen::from_value(row).map_err(worker::Error::from))
            .collect()
    }

    /// Whether the statement succeeded (D1 reports failures of a batch per statement).
    #[must_use]
    pub fn success(&self) -> bool {
        self.field("success").as_bool().unwrap_or(false)
    }

    /// The failure D1 reported for this statement, if any.
    #[must_use]
    pub fn error(&self) -> Option<String> {
        self.field("error").as_string()
    }

    /// How many rows the statement changed (`meta.changes`; 0 when D1 does not say).
    #[must_use]
    pub fn changes(&self) -> u64 {
        js_sys::Reflect::get(&self.field("meta"), &"changes".into())
            .ok()
            .and_then(|v| v.as_f64())
            // `as` saturates: NaN and negatives give 0.
            .map_or(0, |n| {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let n = n as u64;
                n
            })
    }
}

async fn outcome(promise: Result<js_sys::Promise, JsValue>) -> Result<JsValue, worker::Error> {
    crate::runtime::settled(promise?)
        .await
        .map_err(worker::Error::from)
}

/// Runs a statement for its effect (`run`).
///
/// # Errors
/// D1's error (unreachable, a constraint, bad SQL).
pub async fn run(statement: &D1PreparedStatement) -> Result<Outcome, worker::Error> {
    outcome(statement.inner().run()).await.map(Outcome)
}

/// Runs a query for its rows (`all`).
///
/// # Errors
/// D1's error.
pub async fn all(statement: &D1PreparedStatement) -> Result<Outcome, worker::Error> {
    outcome(statement.inner().all()).await.map(Outcome)
}

/// The first row of a query decoded as `T` (`first()`); `None` when there is no row.
///
/// # Errors
/// D1's error, or a row that does not decode as `T`.
pub async fn first<T: DeserializeOwned>(
    statement: &D1PreparedStatement,
) -> Result<Option<T>, worker::Error> {
    let row = outcome(statement.inner().first(None)).await?;
    serde_wasm_bindgen::from_value(row).map_err(worker::Error::from)
}

/// One column of the first row of a query, as the JS value D1 gives (`first(column)`);
/// `null` when there is no row.
///
/// # Errors
/// D1's error.
pub async fn first_column(
    statement: &D1PreparedStatement,
    column: &str,
) -> Result<JsValue, worker::Error> {
    outcome(statement.inner().first(Some(column))).await
}

/// Runs statements as one transaction (`batch`): one outcome per statement, in order.
///
/// # Errors
/// D1's error (the whole batch was rolled back).
pub async fn batch(
    db: &D1Database,
    statements: Vec<D1PreparedStatement>,
) -> Result<Vec<Outcome>, worker::Error> {
    let statements: js_sys::Array = statements.iter().map(D1PreparedStatement::inner).collect();
    let database: &worker::worker_sys::D1Database = db.as_ref().unchecked_ref();
    let results = outcome(database.batch(statements)).await?;
    let results: js_sys::Array = results.dyn_into().map_err(worker::Error::from)?;
    Ok(results.iter().map(Outcome).collect())
}
