//! D1 reads and writes: where a read starts, sessions and their bookmarks.
//!
//! Statements are the worker crate's ([`D1PreparedStatement`]); they are run, batched and
//! awaited by [`crate::platform::d1`] (through `runtime::settled`, not the worker crate's
//! `JsFuture`), whose functions are re-exported here.
//!
//! Sessions (D1 read replication): [`read`] runs a read in a session
//! (`D1Database::with_session`), which D1 may answer from a replica in the worker's region,
//! and falls back once to the primary when the session fails; [`Session::primary`] runs
//! writes on the primary and says where in the database's history they landed
//! ([`Bookmark`]), so a later read can start from there and see them. A session's statements
//! and batches are awaited by the platform layer too (the worker crate's
//! `D1DatabaseSession::batch` awaits through `JsFuture` as well).

use worker::{D1Database, D1DatabaseSession, D1PreparedStatement};

use crate::http::problem::ApiError;
pub use crate::platform::d1::{all, bind, first, first_column, run, Column, Outcome, Param};

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
    /// The handle batches are sent through.
    fn handle(&self) -> Handle<'_>;
}

impl Database for D1Database {
    fn prepare(&self, sql: &str) -> D1PreparedStatement {
        D1Database::prepare(self, sql)
    }

    fn handle(&self) -> Handle<'_> {
        Handle::Primary(self)
    }
}

impl Database for D1DatabaseSession {
    fn prepare(&self, sql: &str) -> D1PreparedStatement {
        D1DatabaseSession::prepare(self, sql)
    }

    fn handle(&self) -> Handle<'_> {
        Handle::Session(self)
    }
}

impl Database for Handle<'_> {
    fn prepare(&self, sql: &str) -> D1PreparedStatement {
        match self {
            Self::Primary(db) => Database::prepare(*db, sql),
            Self::Session(s) => Database::prepare(*s, sql),
        }
    }

    fn handle(&self) -> Handle<'_> {
        *self
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

/// Runs statements as one transaction (`batch`): one outcome per statement, in order.
///
/// # Errors
/// D1's error (the whole batch was rolled back).
pub async fn batch(
    db: &impl Database,
    statements: Vec<D1PreparedStatement>,
) -> Result<Vec<Outcome>, worker::Error> {
    crate::platform::d1::batch(db.handle(), &statements).await
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
