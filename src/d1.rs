//! D1 statements awaited through [`crate::runtime::settled`].
//!
//! The worker crate's `run`, `all`, `first` and `batch` await through `JsFuture`: a request
//! torn down while one of them is pending (its client went away) stays in the isolate for the
//! rest of its life, and with it whatever it held of its user. Through `settled`, the
//! abandoned promise is noticed when it is collected and the request is dropped
//! (`runtime`'s module docs). The statements themselves are the worker crate's
//! ([`D1PreparedStatement`]); only the awaiting and the reading of results are here.
//!
//! Sessions (D1 read replication): [`read`] runs a read in a session
//! (`D1Database::with_session`), which D1 may answer from a replica in the worker's region,
//! and falls back once to the primary when the session fails; [`Session::primary`] runs
//! writes on the primary and says where in the database's history they landed
//! ([`Bookmark`]), so a later read can start from there and see them. A session's statements
//! and batches are awaited here too, for the reason above (the worker crate's
//! `D1DatabaseSession::batch` awaits through `JsFuture` as well).

use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use worker::{D1Database, D1DatabaseSession, D1PreparedStatement};

use crate::http::problem::ApiError;

/// A point in the database's history as D1 names it (`getBookmark()`), accepted from a client
/// or from storage only when well-formed.
///
/// Miniflare's D1 hands out the bookmarks of the Durable Object storage it runs on, the
/// storage D1 itself is built on: four lower-case hex groups of 8, 8, 8 and 32 digits joined
/// by `-` (`00000000-00000001-00000000-00000000000000000000000000000000`), 59 bytes, ordered
/// as strings (D1's binding keeps the greater of two by comparing them). Anything else is not a
/// bookmark: a read given one starts on the primary instead, which is always correct, only
/// farther. A well-formed bookmark D1 refuses (another database's, one from the future) fails
/// the read, which [`read`] retries on the primary.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bookmark(String);

/// The lengths of a bookmark's hex groups.
const BOOKMARK_GROUPS: [usize; 4] = [8, 8, 8, 32];

impl Bookmark {
    /// `text` as a bookmark, or `None` when it is not one (length, alphabet, shape).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let expected = BOOKMARK_GROUPS.iter().sum::<usize>() + BOOKMARK_GROUPS.len() - 1;
        if text.len() != expected {
            return None;
        }
        let mut groups = text.split('-');
        let shaped = BOOKMARK_GROUPS.iter().all(|&len| {
            groups
                .next()
                .is_some_and(|g| crate::hash::is_lower_hex(g, len))
        }) && groups.next().is_none();
        shaped.then(|| Self(text.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a read session starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Any replica, however far behind (`first-unconstrained`): for reads that depend on no
    /// write of the caller's.
    Anywhere,
    /// The primary (`first-primary`): when the caller named a point in history that is not a
    /// bookmark, nothing weaker is safe.
    Primary,
    /// A replica at least as new as the bookmark (or the primary).
    After(Bookmark),
}

impl Start {
    /// The start a client asks for with an optional bookmark header: none → [`Start::Anywhere`],
    /// a bookmark → [`Start::After`], anything else → [`Start::Primary`] (never an error).
    #[must_use]
    pub fn from_header(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            None | Some("") => Self::Anywhere,
            Some(text) => Bookmark::parse(text).map_or(Self::Primary, Self::After),
        }
    }

    /// This start, but no older than `bookmark` (the newer of two bookmarks wins; the primary
    /// is never older than anything).
    #[must_use]
    pub fn at_least(self, bookmark: Option<&Bookmark>) -> Self {
        match (self, bookmark) {
            (start, None) | (start @ Self::Primary, _) => start,
            (Self::Anywhere, Some(b)) => Self::After(b.clone()),
            (Self::After(a), Some(b)) => Self::After(a.max(b.clone())),
        }
    }

    fn constraint(&self) -> &str {
        match self {
            Self::Anywhere => "first-unconstrained",
            Self::Primary => "first-primary",
            Self::After(b) => b.as_str(),
        }
    }
}

/// Whether a failed read is worth one more try on the primary: D1 failures (503) are; a row
/// that does not decode or any other answer is not (the primary would give the same).
#[must_use]
pub fn retry_on_primary(e: &ApiError) -> bool {
    matches!(e, ApiError::Unavailable { .. })
}

/// A handle statements are prepared on and batches sent through: the database itself (the
/// primary) or one session.
#[derive(Clone, Copy)]
pub enum Handle<'a> {
    Primary(&'a D1Database),
    Session(&'a D1DatabaseSession),
}

/// What [`batch`] and the stores need of a database handle.
pub trait Database {
    /// A statement of `sql` (nothing is sent yet).
    fn prepare(&self, sql: &str) -> D1PreparedStatement;
    /// Sends `statements` as one batch.
    ///
    /// # Errors
    /// What the binding throws.
    fn send_batch(&self, statements: &js_sys::Array) -> Result<js_sys::Promise, JsValue>;
}

impl Database for D1Database {
    fn prepare(&self, sql: &str) -> D1PreparedStatement {
        D1Database::prepare(self, sql)
    }

    fn send_batch(&self, statements: &js_sys::Array) -> Result<js_sys::Promise, JsValue> {
        let database: &worker::worker_sys::D1Database = self.as_ref().unchecked_ref();
        database.batch(statements.clone())
    }
}

impl Database for D1DatabaseSession {
    fn prepare(&self, sql: &str) -> D1PreparedStatement {
        D1DatabaseSession::prepare(self, sql)
    }

    fn send_batch(&self, statements: &js_sys::Array) -> Result<js_sys::Promise, JsValue> {
        let session: &worker::worker_sys::D1DatabaseSession = self.as_ref().unchecked_ref();
        session.session_batch(statements.clone())
    }
}

impl Database for Handle<'_> {
    fn prepare(&self, sql: &str) -> D1PreparedStatement {
        match self {
            Self::Primary(db) => Database::prepare(*db, sql),
            Self::Session(s) => Database::prepare(*s, sql),
        }
    }

    fn send_batch(&self, statements: &js_sys::Array) -> Result<js_sys::Promise, JsValue> {
        match self {
            Self::Primary(db) => db.send_batch(statements),
            Self::Session(s) => s.send_batch(statements),
        }
    }
}

/// A D1 session, for the writes whose bookmark a later read must start from.
pub struct Session(D1DatabaseSession);

impl Session {
    /// A session whose first query goes to the primary (`first-primary`): writes go there
    /// anyway, and the session then knows the bookmark of what they wrote.
    ///
    /// # Errors
    /// When the binding refuses to make a session.
    pub fn primary(db: &D1Database) -> Result<Self, worker::Error> {
        db.with_session(Some(Start::Primary.constraint())).map(Self)
    }

    /// The handle to prepare and batch statements on.
    #[must_use]
    pub fn handle(&self) -> Handle<'_> {
        Handle::Session(&self.0)
    }

    /// The newest bookmark the session saw (after its queries), if D1 gave a well-formed one.
    /// One of another shape is logged (read-your-writes would silently stop working if D1
    /// changed its format) and not used.
    #[must_use]
    pub fn bookmark(&self) -> Option<Bookmark> {
        let text = self.0.get_bookmark().ok().flatten()?;
        let bookmark = Bookmark::parse(&text);
        if bookmark.is_none() {
            crate::http::log::event(
                "warn",
                "d1 gave a bookmark of an unknown shape",
                &serde_json::json!({ "length": text.len() }),
            );
        }
        bookmark
    }
}

/// Runs `query` in a session from `start` (D1 may answer it from a nearby replica). When the
/// session cannot be made or `query` fails with a D1 failure ([`retry_on_primary`]), it runs
/// once more on the primary without a session; that second failure is the answer (a 503 with
/// `Retry-After`). A read is safe to repeat; `query` must only read.
///
/// # Errors
/// `query`'s error on the primary, or its first error when that one is not worth a retry.
pub async fn read<T>(
    db: &D1Database,
    start: &Start,
    query: impl AsyncFn(Handle<'_>) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let failure = match db.with_session(Some(start.constraint())) {
        Ok(session) => match query(Handle::Session(&session)).await {
            Ok(value) => return Ok(value),
            Err(e) if retry_on_primary(&e) => e.log_detail().unwrap_or_default(),
            Err(e) => return Err(e),
        },
        Err(e) => format!("d1 session: {e}"),
    };
    log_fallback(&failure);
    query(Handle::Primary(db)).await
}

fn log_fallback(detail: &str) {
    crate::http::log::event(
        "warn",
        "d1 session read failed, retried on the primary",
        &serde_json::json!(detail),
    );
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
    db: &impl Database,
    statements: Vec<D1PreparedStatement>,
) -> Result<Vec<Outcome>, worker::Error> {
    let statements: js_sys::Array = statements.iter().map(D1PreparedStatement::inner).collect();
    let results = outcome(db.send_batch(&statements)).await?;
    let results: js_sys::Array = results.dyn_into().map_err(worker::Error::from)?;
    Ok(results.iter().map(Outcome).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "00000000-00000001-00000000-00000000000000000000000000000000";
    const NEW: &str = "00000000-0000000a-00000000-00000000000000000000000000000000";

    #[test]
    fn only_well_formed_bookmarks_are_accepted() {
        assert!(Bookmark::parse(OLD).is_some());
        assert!(
            Bookmark::parse("0000abcd-00000001-00004f8c-0123456789abcdef0123456789abcdef")
                .is_some()
        );
        for bad in [
            "",
            "garbage",
            "first-primary",
            "first-unconstrained",
            // upper case, a group too short or too long, one group missing or extra
            "0000000A-00000001-00000000-00000000000000000000000000000000",
            "0000000-000000001-00000000-00000000000000000000000000000000",
            "00000000-00000001-00000000-0000000000000000000000000000000",
            "00000000-00000001-00000000",
            "00000000-00000001-00000000-00000000000000000000000000000000-0",
            // right length, wrong shape or alphabet
            "00000000000000001-00000000-00000000000000000000000000000000-",
            "0000000g-00000001-00000000-00000000000000000000000000000000",
            "00000000-00000001-00000000-0000000000000000000000000000000_",
            " 00000000-00000001-00000000-0000000000000000000000000000000",
        ] {
            assert_eq!(Bookmark::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Bookmark::parse(&OLD.repeat(100)), None);
    }

    #[test]
    fn a_header_picks_the_start_and_a_bad_one_means_the_primary() {
        assert_eq!(Start::from_header(None), Start::Anywhere);
        assert_eq!(Start::from_header(Some("  ")), Start::Anywhere);
        assert_eq!(
            Start::from_header(Some(&format!(" {OLD} "))),
            Start::After(Bookmark(OLD.into()))
        );
        assert_eq!(
            Start::from_header(Some("first-unconstrained")),
            Start::Primary
        );
        assert_eq!(Start::from_header(Some(&"f".repeat(5000))), Start::Primary);
        assert_eq!(
            Start::from_header(Some("garbage")).constraint(),
            "first-primary"
        );
        assert_eq!(Start::Anywhere.constraint(), "first-unconstrained");
        assert_eq!(Start::After(Bookmark(OLD.into())).constraint(), OLD);
    }

    #[test]
    fn the_newer_bookmark_wins_and_the_primary_stays_the_primary() {
        let (old, new) = (Bookmark(OLD.into()), Bookmark(NEW.into()));
        assert_eq!(Start::Anywhere.at_least(None), Start::Anywhere);
        assert_eq!(
            Start::Anywhere.at_least(Some(&old)),
            Start::After(old.clone())
        );
        assert_eq!(
            Start::After(old.clone()).at_least(Some(&new)),
            Start::After(new.clone())
        );
        assert_eq!(
            Start::After(new.clone()).at_least(Some(&old)),
            Start::After(new.clone())
        );
        assert_eq!(Start::Primary.at_least(Some(&new)), Start::Primary);
    }

    #[test]
    fn only_d1_failures_are_retried_on_the_primary() {
        assert!(retry_on_primary(&ApiError::Unavailable {
            retry_after: 1,
            what: "d1 find products: D1_ERROR: replica unreachable".into(),
        }));
        assert!(!retry_on_primary(&ApiError::Internal("decode".into())));
        assert!(!retry_on_primary(&ApiError::NotFound));
    }
}
