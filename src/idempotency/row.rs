//! The storage shape of a record and the messages between the worker and the Durable Object
//! (pure: plain serde types and conversions, shared by both backends).
//!
//! One row shape serves both stores (the object's SQLite table `records` and D1's
//! `idempotency_records` have the same columns), so a record means the same thing wherever
//! it lives. Times are integer milliseconds since the epoch.

use serde::{Deserialize, Serialize};

use super::key::Fingerprint;
use super::machine::{NextAction, Policy, Record, RecordState, Release, StoredResponse};
use crate::time::UnixMillis;

/// `state` column values.
pub const IN_PROGRESS: &str = "in_progress";
pub const COMPLETED: &str = "completed";

/// One stored record, column for column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub key: String,
    pub fingerprint: String,
    pub state: String,
    pub attempt: String,
    pub created_at: u64,
    pub expires_at: u64,
    pub locked_until: u64,
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub body: Option<String>,
}

impl Row {
    /// The record this row holds.
    ///
    /// # Errors
    /// A description when the row is inconsistent (an unknown state, a completed row without
    /// its response); the caller treats that as a 500, never as a replayable answer.
    pub fn to_record(&self) -> Result<Record, String> {
        let state = match self.state.as_str() {
            IN_PROGRESS => RecordState::InProgress {
                locked_until: UnixMillis(self.locked_until),
            },
            COMPLETED => match (&self.status, &self.content_type, &self.body) {
                (Some(status), Some(content_type), Some(body)) => {
                    RecordState::Completed(StoredResponse {
                        status: *status,
                        content_type: content_type.clone(),
                        location: self.location.clone(),
                        body: body.clone(),
                    })
                }
                _ => return Err("completed idempotency record without its response".into()),
            },
            _ => return Err("idempotency record in an unknown state".into()),
        };
        Ok(Record {
            fingerprint: Fingerprint::from_stored(self.fingerprint.clone()),
            attempt: self.attempt.clone(),
            created_at: UnixMillis(self.created_at),
            state,
        })
    }

    /// The row that stores `record` under `key`.
    #[must_use]
    pub fn from_record(key: &str, record: &Record, policy: Policy) -> Self {
        let (state, locked_until, response) = match &record.state {
            RecordState::InProgress { locked_until } => (IN_PROGRESS, locked_until.0, None),
            RecordState::Completed(r) => (COMPLETED, 0, Some(r)),
        };
        Self {
            key: key.to_owned(),
            fingerprint: record.fingerprint.as_str().to_owned(),
            state: state.to_owned(),
            attempt: record.attempt.clone(),
            created_at: record.created_at.0,
            expires_at: record.expires_at(policy).0,
            locked_until,
            status: response.map(|r| r.status),
            content_type: response.map(|r| r.content_type.clone()),
            location: response.and_then(|r| r.location.clone()),
            body: response.map(|r| r.body.clone()),
        }
    }
}

/// Worker → object: claim `key` for `attempt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimCall {
    pub key: String,
    pub fingerprint: String,
    pub attempt: String,
    pub now: u64,
    pub policy: Policy,
}

/// Worker → object: store the response of `attempt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteCall {
    pub key: String,
    pub attempt: String,
    pub response: StoredResponse,
}

/// Worker → object: give the claim of `attempt` back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseCall {
    pub key: String,
    pub attempt: String,
    pub how: Release,
}

/// Object → worker: the [`NextAction`] of a claim, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum WireAction {
    Start { created_at: u64, resumed: bool },
    Replay { response: StoredResponse },
    InFlight { retry_after: u64 },
    Mismatch,
}

impl From<NextAction> for WireAction {
    fn from(a: NextAction) -> Self {
        match a {
            NextAction::Start {
                created_at,
                resumed,
            } => Self::Start {
                created_at: created_at.0,
                resumed,
            },
            NextAction::Replay(response) => Self::Replay { response },
            NextAction::InFlight { retry_after } => Self::InFlight { retry_after },
            NextAction::Mismatch => Self::Mismatch,
        }
    }
}

impl From<WireAction> for NextAction {
    fn from(a: WireAction) -> Self {
        match a {
            WireAction::Start {
                created_at,
                resumed,
            } => Self::Start {
                created_at: UnixMillis(created_at),
                resumed,
            },
            WireAction::Replay { response } => Self::Replay(response),
            WireAction::InFlight { retry_after } => Self::InFlight { retry_after },
            WireAction::Mismatch => Self::Mismatch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idempotency::machine::claimed;

    const POLICY: Policy = Policy {
        lease_seconds: 30,
        retention_seconds: 60,
    };

    fn response() -> StoredResponse {
        StoredResponse {
            status: 409,
            content_type: "application/problem+json".into(),
            location: None,
            body: "{\"type\":\"/problems/cart-changed\"}".into(),
        }
    }

    #[test]
    fn records_survive_a_round_trip_through_a_row() {
        let fp = Fingerprint::of("POST", "/orders", b"{}");
        let open = claimed(
            fp.clone(),
            "a1".into(),
            UnixMillis(1000),
            UnixMillis(2000),
            POLICY,
        );
        let done = Record {
            state: RecordState::Completed(response()),
            ..open.clone()
        };
        for record in [open, done] {
            let row = Row::from_record("k", &record, POLICY);
            assert_eq!(row.expires_at, 61_000);
            assert_eq!(row.to_record(), Ok(record));
        }
    }

    #[test]
    fn an_inconsistent_row_is_an_error_not_a_replay() {
        let fp = Fingerprint::of("POST", "/orders", b"{}");
        let record = claimed(fp, "a".into(), UnixMillis(1), UnixMillis(1), POLICY);
        let mut row = Row::from_record("k", &record, POLICY);
        row.state = COMPLETED.into();
        assert!(row.to_record().is_err());
        row.state = "weird".into();
        assert!(row.to_record().is_err());
    }

    #[test]
    fn every_action_survives_the_wire() {
        for action in [
            NextAction::Start {
                created_at: UnixMillis(5),
                resumed: true,
            },
            NextAction::Replay(response()),
            NextAction::InFlight { retry_after: 3 },
            NextAction::Mismatch,
        ] {
            let json = serde_json::to_string(&WireAction::from(action.clone())).unwrap();
            let back: WireAction = serde_json::from_str(&json).unwrap();
            assert_eq!(NextAction::from(back), action);
        }
    }
}
