//! D1: statements bound, run and batched, awaited through [`super::runtime::settled`], and the
//! results read.
//!
//! Bypasses the worker crate for the awaiting and the results: its `run`, `all`, `first` and
//! `batch` (and `D1DatabaseSession::batch`) await through `JsFuture`, so a request torn down
//! while one of them is pending (its client went away) would stay in the isolate for the rest
//! of its life, and with it whatever it held of its user; through `settled`, the abandoned
//! promise is noticed when it is collected and the request is dropped (`runtime`'s module
//! docs). The statements themselves, the database and its sessions are the worker crate's
//! ([`D1PreparedStatement`], [`D1Database`], [`D1DatabaseSession`]); sessions and bookmarks
//! are used in [`crate::d1`].

use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use worker::{D1Database, D1DatabaseSession, D1PreparedStatement, Env};

use crate::d1::Handle;

/// A value bound to a statement's parameter.
#[derive(Clone)]
pub struct Param(JsValue);

impl Param {
    /// SQL `NULL`.
    pub const NULL: Self = Self(JsValue::NULL);

    /// A text value.
    #[must_use]
    pub fn text(s: &str) -> Self {
        Self(JsValue::from_str(s))
    }

    /// A number (D1 stores an integral one as an integer; exact below 2^53).
    #[must_use]
    pub fn number(n: f64) -> Self {
        Self(JsValue::from_f64(n))
    }
}

/// `statement` with `values` bound to its parameters, in order.
///
/// # Errors
/// What the binding throws (a value of a type D1 refuses).
pub fn bind(
    statement: &D1PreparedStatement,
    values: &[Param],
) -> Result<D1PreparedStatement, worker::Error> {
    let values: js_sys::Array = values.iter().map(|p| &p.0).collect();
    statement
        .inner()
        .bind(values)
        .map(D1PreparedStatement::from)
        .map_err(worker::Error::from)
}

/// The binding `name` when it is a D1 database (type-checked as `Env::d1` checks it, in one
/// call into JS: `Env::d1` brings the constructor's name into wasm as a `String` to compare it,
/// on every request; a binding of another type would otherwise reach workers-rs's `prepare`,
/// which panics on it).
#[must_use]
pub fn database(env: &Env, name: &str) -> Option<D1Database> {
    let binding = d1_binding(env, name);
    if binding.is_undefined() {
        return None;
    }
    Some(binding.unchecked_into())
}

#[wasm_bindgen::prelude::wasm_bindgen(inline_js = "
export function d1_binding(env, name) {
  const binding = env[name];
  const type = binding?.constructor?.name;
  return type === 'D1Database' || type === 'BetaDatabase' ? binding : undefined;
}")]
extern "C" {
    /// The binding `name` when it is a D1 database, else `undefined`.
    fn d1_binding(env: &JsValue, name: &str) -> JsValue;
}

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

    /// The rows decoded as one `Vec<T>` in one pass; none when the statement returned no
    /// rows.
    ///
    /// # Errors
    /// When the rows do not decode (the message may quote a value).
    pub fn rows<T: DeserializeOwned>(&self) -> Result<Vec<T>, String> {
        let rows = self.field("results");
        if rows.is_null() || rows.is_undefined() {
            return Ok(Vec::new());
        }
        serde_wasm_bindgen::from_value(rows).map_err(|e| e.to_string())
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

/// One column of a first row, as D1 gave it ([`first_column`]).
pub struct Column(JsValue);

impl Column {
    /// The value when it is a number.
    #[must_use]
    pub fn number(&self) -> Option<f64> {
        self.0.as_f64()
    }

    /// The value as text: `None` for `null` (no row), a 500 naming `what` for anything that is
    /// not a string.
    ///
    /// # Errors
    /// [`crate::http::problem::ApiError::Internal`] when the value is neither absent nor text.
    pub fn text(&self, what: &str) -> Result<Option<String>, crate::http::problem::ApiError> {
        super::text::optional_text(&self.0, what)
    }
}

async fn outcome(promise: Result<js_sys::Promise, JsValue>) -> Result<JsValue, worker::Error> {
    super::runtime::settled(promise?)
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

/// One column of the first row of a query (`first(column)`); `null` when there is no row.
///
/// # Errors
/// D1's error.
pub async fn first_column(
    statement: &D1PreparedStatement,
    column: &str,
) -> Result<Column, worker::Error> {
    outcome(statement.inner().first(Some(column)))
        .await
        .map(Column)
}

/// Runs statements as one transaction (`batch`) on `handle`: one outcome per statement, in
/// order.
///
/// # Errors
/// D1's error (the whole batch was rolled back).
pub async fn batch(
    handle: Handle<'_>,
    statements: &[D1PreparedStatement],
) -> Result<Vec<Outcome>, worker::Error> {
    let statements: js_sys::Array = statements.iter().map(D1PreparedStatement::inner).collect();
    let promise = match handle {
        Handle::Primary(db) => {
            let database: &worker::worker_sys::D1Database = db.as_ref().unchecked_ref();
            database.batch(statements)
        }
        Handle::Session(session) => session_sys(session).session_batch(statements),
    };
    let results = outcome(promise).await?;
    let results: js_sys::Array = results.dyn_into().map_err(worker::Error::from)?;
    Ok(results.iter().map(Outcome).collect())
}

fn session_sys(session: &D1DatabaseSession) -> &worker::worker_sys::D1DatabaseSession {
    session.as_ref().unchecked_ref()
}
