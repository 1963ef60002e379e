//! The idempotency state machine (pure): given the stored record, the request's fingerprint
//! and `now`, what happens next.
//!
//! Both stores (the Durable Object and D1) run exactly this code between their read and their
//! write, so the two backends cannot drift apart. No `worker` types, no clock: `now` is a
//! parameter, which is what lets every row of the decision table be a native test.
//!
//! A record goes `in_progress` (claimed, with a lease) → `completed` (response stored), or is
//! released: deleted when the operation never began, unlocked (lease ended, creation time
//! kept) when it may have had a side effect, so that the next retry finishes that same
//! operation instead of starting another.

use serde::{Deserialize, Serialize};

use super::key::Fingerprint;
use crate::time::UnixMillis;

/// The two durations that govern records, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// How long a claim blocks duplicates (`IDEMPOTENCY_LEASE_SECONDS`).
    pub lease_seconds: u64,
    /// How long a record is honoured after its creation (`IDEMPOTENCY_RETENTION_SECONDS`).
    pub retention_seconds: u64,
}

/// A response as stored for replay: the status, the headers that matter, and the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: String,
    pub location: Option<String>,
    pub body: String,
}

/// Where a record stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordState {
    /// Claimed by an attempt; duplicates wait until `locked_until` (then one may take over).
    InProgress { locked_until: UnixMillis },
    /// Finished; duplicates get this response back.
    Completed(StoredResponse),
}

/// An idempotency record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub fingerprint: Fingerprint,
    /// A random token written by each claim. Finishing or releasing is conditional on it, so a
    /// slow attempt whose lease was taken over cannot overwrite or delete its successor's claim.
    pub attempt: String,
    /// When the operation was first claimed; part of the operation id, the base of retention.
    pub created_at: UnixMillis,
    pub state: RecordState,
}

impl Record {
    /// When the record stops being honoured; the alarm / scheduled cleanup deletes it then.
    #[must_use]
    pub fn expires_at(&self, policy: Policy) -> UnixMillis {
        self.created_at.plus_seconds(policy.retention_seconds)
    }
}

/// What the handler does with a request, decided from the stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextAction {
    /// Run the operation. `created_at` is the record's creation time (kept on takeover, so the
    /// operation id is the crashed attempt's); `resumed` says an earlier attempt may already
    /// have done part of the work.
    Start {
        created_at: UnixMillis,
        resumed: bool,
    },
    /// Send the stored response again.
    Replay(StoredResponse),
    /// Another attempt holds the lease: 409 with `Retry-After`.
    InFlight { retry_after: u64 },
    /// Same key, different request: 422.
    Mismatch,
}

/// The decision table (semantics.md §2):
///
/// | stored record                        | fingerprint | → action                        |
/// |--------------------------------------|-------------|---------------------------------|
/// | none                                 | –           | `Start` (new, `created_at = now`) |
/// | any, retention passed                | –           | `Start` (new, `created_at = now`) |
/// | any, within retention                | differs     | `Mismatch`                      |
/// | in progress, lease holds             | same        | `InFlight` (seconds left, ≥ 1)  |
/// | in progress, lease ended             | same        | `Start` (take over, `resumed`)  |
/// | completed                            | same        | `Replay`                        |
#[must_use]
pub fn decide(
    stored: Option<&Record>,
    fingerprint: &Fingerprint,
    now: UnixMillis,
    policy: Policy,
) -> NextAction {
    let fresh = NextAction::Start {
        created_at: now,
        resumed: false,
    };
    let Some(record) = stored else {
        return fresh;
    };
    if now >= record.expires_at(policy) {
        // A live lease is honoured even past retention: an attempt is working on this key
        // right now, and starting afresh would run a second operation (a second order) beside
        // it. Once the lease ends, the expired record starts afresh.
        if let RecordState::InProgress { locked_until } = &record.state {
            if now < *locked_until {
                return in_flight(*locked_until, now);
            }
        }
        return fresh;
    }
    if record.fingerprint != *fingerprint {
        return NextAction::Mismatch;
    }
    match &record.state {
        RecordState::InProgress { locked_until } if now < *locked_until => {
            in_flight(*locked_until, now)
        }
        RecordState::InProgress { .. } => NextAction::Start {
            created_at: record.created_at,
            resumed: true,
        },
        RecordState::Completed(response) => NextAction::Replay(response.clone()),
    }
}

/// In flight until `locked_until`: retry after the whole seconds left, at least one.
fn in_flight(locked_until: UnixMillis, now: UnixMillis) -> NextAction {
    NextAction::InFlight {
        retry_after: locked_until.0.saturating_sub(now.0).div_ceil(1000).max(1),
    }
}

/// The record a successful claim writes: in progress, leased until `now + lease`.
#[must_use]
pub fn claimed(
    fingerprint: Fingerprint,
    attempt: String,
    created_at: UnixMillis,
    now: UnixMillis,
    policy: Policy,
) -> Record {
    Record {
        fingerprint,
        attempt,
        created_at,
        state: RecordState::InProgress {
            locked_until: now.plus_seconds(policy.lease_seconds),
        },
    }
}

/// A claim as one step: the decision, and the record to write when it is `Start`. Stores run
/// this between their read and their (atomic or conditional) write.
#[must_use]
pub fn claim(
    stored: Option<&Record>,
    fingerprint: &Fingerprint,
    attempt: &str,
    now: UnixMillis,
    policy: Policy,
) -> (NextAction, Option<Record>) {
    let action = decide(stored, fingerprint, now, policy);
    let write = match &action {
        NextAction::Start { created_at, .. } => Some(claimed(
            fingerprint.clone(),
            attempt.to_owned(),
            *created_at,
            now,
            policy,
        )),
        NextAction::Replay(_) | NextAction::InFlight { .. } | NextAction::Mismatch => None,
    };
    (action, write)
}

/// How an attempt that did not finish gives its claim back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Release {
    /// Nothing was done yet: forget the record, as if the request never came.
    Forget,
    /// A side effect may have happened: end the lease now but keep the record (and its
    /// creation time), so the next retry takes over and finishes the same operation.
    Unlock,
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        lease_seconds: 30,
        retention_seconds: 86_400,
    };
    const T0: UnixMillis = UnixMillis(1_796_000_000_000);

    fn fp(body: &str) -> Fingerprint {
        Fingerprint::of("POST", "/orders", body.as_bytes())
    }

    fn response() -> StoredResponse {
        StoredResponse {
            status: 201,
            content_type: "application/json".into(),
            location: Some("/orders/ord_1".into()),
            body: "{}".into(),
        }
    }

    fn in_progress(locked_until: UnixMillis) -> Record {
        Record {
            fingerprint: fp("a"),
            attempt: "att".into(),
            created_at: T0,
            state: RecordState::InProgress { locked_until },
        }
    }

    fn completed() -> Record {
        Record {
            fingerprint: fp("a"),
            attempt: "att".into(),
            created_at: T0,
            state: RecordState::Completed(response()),
        }
    }

    fn ms(n: u64) -> UnixMillis {
        UnixMillis(T0.0 + n)
    }

    #[test]
    fn every_row_of_the_decision_table_holds() {
        let lease_end = T0.plus_seconds(30);
        let retention_end = T0.plus_seconds(86_400);
        let table: Vec<(&str, Option<Record>, &str, UnixMillis, NextAction)> = vec![
            (
                "no record starts a new operation",
                None,
                "a",
                ms(5),
                NextAction::Start {
                    created_at: ms(5),
                    resumed: false,
                },
            ),
            (
                "a held lease is in flight, retry after the seconds left",
                Some(in_progress(lease_end)),
                "a",
                ms(10_000),
                NextAction::InFlight { retry_after: 20 },
            ),
            (
                "a fraction of a second left rounds up to one second",
                Some(in_progress(lease_end)),
                "a",
                ms(29_999),
                NextAction::InFlight { retry_after: 1 },
            ),
            (
                "a lease that just ended is taken over with the original creation time",
                Some(in_progress(lease_end)),
                "a",
                lease_end,
                NextAction::Start {
                    created_at: T0,
                    resumed: true,
                },
            ),
            (
                "an unlocked record is taken over at once",
                Some(in_progress(UnixMillis(0))),
                "a",
                ms(1),
                NextAction::Start {
                    created_at: T0,
                    resumed: true,
                },
            ),
            (
                "a completed record is replayed",
                Some(completed()),
                "a",
                ms(60_000),
                NextAction::Replay(response()),
            ),
            (
                "a completed record is replayed until the last millisecond of retention",
                Some(completed()),
                "a",
                UnixMillis(retention_end.0 - 1),
                NextAction::Replay(response()),
            ),
            (
                "another body with a completed key is a mismatch",
                Some(completed()),
                "b",
                ms(1),
                NextAction::Mismatch,
            ),
            (
                "another body with an in-flight key is a mismatch, not in flight",
                Some(in_progress(lease_end)),
                "b",
                ms(1),
                NextAction::Mismatch,
            ),
            (
                "another body after the lease ended is still a mismatch",
                Some(in_progress(lease_end)),
                "b",
                lease_end,
                NextAction::Mismatch,
            ),
            (
                "a completed record past retention starts afresh",
                Some(completed()),
                "a",
                retention_end,
                NextAction::Start {
                    created_at: retention_end,
                    resumed: false,
                },
            ),
            (
                "a key reused with another body after retention starts afresh",
                Some(completed()),
                "b",
                retention_end,
                NextAction::Start {
                    created_at: retention_end,
                    resumed: false,
                },
            ),
            (
                "a lease still held past retention is in flight, not started afresh",
                Some(Record {
                    state: RecordState::InProgress {
                        locked_until: retention_end.plus_seconds(20),
                    },
                    ..in_progress(lease_end)
                }),
                "b",
                retention_end.plus_seconds(5),
                NextAction::InFlight { retry_after: 15 },
            ),
            (
                "an abandoned claim past retention starts afresh, not resumed",
                Some(in_progress(lease_end)),
                "a",
                retention_end,
                NextAction::Start {
                    created_at: retention_end,
                    resumed: false,
                },
            ),
        ];
        for (name, stored, body, now, expected) in table {
            assert_eq!(
                decide(stored.as_ref(), &fp(body), now, POLICY),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn only_a_start_writes_a_record() {
        let (action, write) = claim(None, &fp("a"), "n", T0, POLICY);
        assert_eq!(
            action,
            NextAction::Start {
                created_at: T0,
                resumed: false
            }
        );
        assert_eq!(write, Some(claimed(fp("a"), "n".into(), T0, T0, POLICY)));
        let (action, write) = claim(Some(&completed()), &fp("a"), "n", ms(1), POLICY);
        assert_eq!((action, write), (NextAction::Replay(response()), None));
        let (_, write) = claim(Some(&completed()), &fp("b"), "n", ms(1), POLICY);
        assert_eq!(write, None);
        let (_, write) = claim(Some(&in_progress(ms(5))), &fp("a"), "n", ms(1), POLICY);
        assert_eq!(write, None);
    }

    #[test]
    fn a_takeover_writes_a_new_attempt_and_keeps_the_creation_time() {
        let (_, write) = claim(Some(&in_progress(ms(5))), &fp("a"), "new", ms(10), POLICY);
        assert_eq!(
            write,
            Some(claimed(fp("a"), "new".into(), T0, ms(10), POLICY))
        );
    }

    #[test]
    fn a_claim_is_leased_for_the_configured_seconds() {
        let r = claimed(fp("a"), "x".into(), T0, ms(500), POLICY);
        assert_eq!(
            r.state,
            RecordState::InProgress {
                locked_until: ms(30_500)
            }
        );
        assert_eq!(r.expires_at(POLICY), T0.plus_seconds(86_400));
    }

    #[test]
    fn a_fresh_claim_then_a_duplicate_is_in_flight_and_after_the_lease_a_takeover() {
        let first = claimed(fp("a"), "1".into(), T0, T0, POLICY);
        assert_eq!(
            decide(Some(&first), &fp("a"), ms(1), POLICY),
            NextAction::InFlight { retry_after: 30 }
        );
        assert_eq!(
            decide(Some(&first), &fp("a"), ms(30_000), POLICY),
            NextAction::Start {
                created_at: T0,
                resumed: true
            }
        );
    }
}
