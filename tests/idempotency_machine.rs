//! The idempotency state machine driven through random histories against an in-memory store
//! that applies claims, completions and releases exactly as the Durable Object and D1 adapters
//! do (read → `machine::claim` → conditional write; finishes conditional on the attempt).
//!
//! Whatever the interleaving of duplicates, retries, crashes (attempts that never finish),
//! releases and clock jumps, these hold:
//! - two attempts never hold a live lease on one key at the same time;
//! - a completed response is replayed unchanged until retention ends;
//! - a takeover resumes the same operation (same creation time, hence the same order id);
//! - a different body within retention is always a mismatch.

use std::collections::HashMap;

use edgecart::idempotency::key::Fingerprint;
use edgecart::idempotency::machine::{
    claim, NextAction, Policy, Record, RecordState, Release, StoredResponse,
};
use edgecart::time::UnixMillis;
use proptest::prelude::*;

const POLICY: Policy = Policy {
    lease_seconds: 30,
    retention_seconds: 600,
};

/// One record per key, like either backend.
#[derive(Default)]
struct MemoryStore {
    records: HashMap<&'static str, Record>,
}

impl MemoryStore {
    fn claim(&mut self, fp: &Fingerprint, attempt: &str, now: UnixMillis) -> NextAction {
        let (action, write) = claim(self.records.get("k"), fp, attempt, now, POLICY);
        if let Some(record) = write {
            self.records.insert("k", record);
        }
        action
    }

    fn complete(&mut self, attempt: &str, response: StoredResponse) {
        if let Some(r) = self.records.get_mut("k") {
            if r.attempt == attempt && matches!(r.state, RecordState::InProgress { .. }) {
                r.state = RecordState::Completed(response);
            }
        }
    }

    fn release(&mut self, attempt: &str, how: Release) {
        let holds = self.records.get("k").is_some_and(|r| {
            r.attempt == attempt && matches!(r.state, RecordState::InProgress { .. })
        });
        if !holds {
            return;
        }
        match how {
            Release::Forget => {
                self.records.remove("k");
            }
            Release::Unlock => {
                if let Some(r) = self.records.get_mut("k") {
                    r.state = RecordState::InProgress {
                        locked_until: UnixMillis(0),
                    };
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// A request arrives `dt` ms after the previous event, with body 0 or 1.
    Claim { dt: u64, body: u8 },
    /// The n-th started attempt (modulo) finishes.
    Complete { nth: usize },
    /// The n-th started attempt gives up.
    Release { nth: usize, unlock: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..40_000_u64, 0..2_u8).prop_map(|(dt, body)| Op::Claim { dt, body }),
        2 => (0..8_usize).prop_map(|nth| Op::Complete { nth }),
        1 => (0..8_usize, any::<bool>()).prop_map(|(nth, unlock)| Op::Release { nth, unlock }),
    ]
}

fn fingerprint(body: u8) -> Fingerprint {
    Fingerprint::of("POST", "/orders", &[body])
}

proptest! {
    #[test]
    fn random_histories_keep_the_idempotency_guarantees(ops in proptest::collection::vec(op(), 1..60)) {
        let mut store = MemoryStore::default();
        let mut now = UnixMillis(1_796_000_000_000);
        // (attempt, created_at, lease end, fingerprint body) of every attempt that started.
        let mut started: Vec<(String, UnixMillis, UnixMillis, u8)> = Vec::new();
        // The live holder: attempt name and lease end; cleared by its completion or release.
        let mut holder: Option<(String, UnixMillis)> = None;
        // The completed response and when its record was created.
        let mut done: Option<(StoredResponse, UnixMillis, u8)> = None;
        // The creation time of the current operation (the order id's input).
        let mut operation: Option<UnixMillis> = None;
        // Attempts that completed or released: a real attempt does nothing after that.
        let mut finished: Vec<String> = Vec::new();

        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Claim { dt, body } => {
                    now = UnixMillis(now.0 + dt);
                    let attempt = format!("a{i}");
                    match store.claim(&fingerprint(body), &attempt, now) {
                        NextAction::Start { created_at, resumed } => {
                            if let Some((_, until)) = &holder {
                                prop_assert!(now >= *until, "two live leases at once");
                            }
                            if let Some((_, created, _)) = &done {
                                prop_assert!(now >= created.plus_seconds(POLICY.retention_seconds),
                                    "started over a completed record within retention");
                                done = None;
                            }
                            if resumed {
                                prop_assert_eq!(Some(created_at), operation, "a takeover resumes the same operation");
                            } else {
                                prop_assert_eq!(created_at, now);
                                operation = Some(created_at);
                            }
                            let until = now.plus_seconds(POLICY.lease_seconds);
                            holder = Some((attempt.clone(), until));
                            started.push((attempt, created_at, until, body));
                        }
                        NextAction::Replay(response) => {
                            let (expected, _, done_body) = done.clone().expect("a replay needs a completion");
                            prop_assert_eq!(response, expected);
                            prop_assert_eq!(body, done_body);
                        }
                        NextAction::InFlight { retry_after } => {
                            let (_, until) = holder.clone().expect("in flight needs a holder");
                            prop_assert!(now < until);
                            prop_assert!((1..=POLICY.lease_seconds).contains(&retry_after));
                        }
                        NextAction::Mismatch => {
                            let record = store.records.get("k").expect("a mismatch needs a record");
                            prop_assert_ne!(record.fingerprint.clone(), fingerprint(body));
                        }
                    }
                }
                Op::Complete { nth } => {
                    if started.is_empty() { continue; }
                    let (attempt, created_at, _, body) = started[nth % started.len()].clone();
                    if finished.contains(&attempt) { continue; }
                    finished.push(attempt.clone());
                    let response = StoredResponse {
                        status: 201,
                        content_type: "application/json".into(),
                        location: Some(format!("/orders/{}", created_at.0)),
                        body: attempt.clone(),
                    };
                    let holds = holder.as_ref().is_some_and(|(a, _)| *a == attempt)
                        && store.records.get("k").is_some_and(|r| r.attempt == attempt);
                    store.complete(&attempt, response.clone());
                    if holds {
                        holder = None;
                        done = Some((response, created_at, body));
                    }
                }
                Op::Release { nth, unlock } => {
                    if started.is_empty() { continue; }
                    let (attempt, _, _, _) = started[nth % started.len()].clone();
                    if finished.contains(&attempt) { continue; }
                    finished.push(attempt.clone());
                    let holds = holder.as_ref().is_some_and(|(a, _)| *a == attempt)
                        && store.records.get("k").is_some_and(|r| {
                            r.attempt == attempt && matches!(r.state, RecordState::InProgress { .. })
                        });
                    store.release(&attempt, if unlock { Release::Unlock } else { Release::Forget });
                    if holds {
                        holder = None;
                        if !unlock {
                            operation = None;
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn a_slow_attempt_whose_lease_was_taken_over_cannot_overwrite_its_successor() {
    let mut store = MemoryStore::default();
    let t0 = UnixMillis(1_000_000);
    let fp = fingerprint(0);
    assert!(matches!(
        store.claim(&fp, "slow", t0),
        NextAction::Start { .. }
    ));
    let later = t0.plus_seconds(31);
    assert_eq!(
        store.claim(&fp, "fast", later),
        NextAction::Start {
            created_at: t0,
            resumed: true
        }
    );
    let response = |body: &str| StoredResponse {
        status: 201,
        content_type: "application/json".into(),
        location: None,
        body: body.into(),
    };
    store.complete("slow", response("slow"));
    store.release("slow", Release::Forget);
    assert!(matches!(
        store.claim(&fp, "dup", later),
        NextAction::InFlight { .. }
    ));
    store.complete("fast", response("fast"));
    assert_eq!(
        store.claim(&fp, "dup", later),
        NextAction::Replay(response("fast"))
    );
}
