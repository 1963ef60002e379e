//! The one interface the checkout handler uses for idempotency records, whichever backend
//! holds them (edge).
//!
//! [`RecordStore`] has three operations: `claim` (atomic read-decide-write, returning the
//! [`NextAction`]), `complete` (store the response) and `release` (forget or unlock). The
//! backend is `IDEMPOTENCY_BACKEND`: the per-user Durable Object ([`super::durable`], default)
//! or D1 ([`super::d1`]); both run the same pure decision ([`super::machine`]).
//!
//! An enum rather than a trait object: there are exactly two backends, both known here, and
//! async trait objects over `!Send` JS handles buy nothing but boxing.

use serde::{de::DeserializeOwned, Serialize};
use worker::{D1Database, Env};

use super::key::{Fingerprint, RecordKey};
use super::machine::{NextAction, Policy, Release, StoredResponse};
use super::row::{ClaimCall, CompleteCall, ReleaseCall, WireAction};
use crate::config::{Config, IdempotencyBackend};
use crate::http::{problem::ApiError, unavailable};
use crate::platform::durable::CallError;
use crate::time::UnixMillis;

/// A Durable Object stub as the runtime hands it over (its `fetch`, awaited through
/// `runtime::settled`; the worker crate's `Stub` awaits through `JsFuture`).
pub type ObjectStub = crate::platform::durable::ObjectStub;

/// Where this request's records live.
pub enum RecordStore {
    /// The user's own `IdempotencyStore` object (its stub, called directly so the calls
    /// await through `runtime::settled`).
    DurableObject(ObjectStub),
    D1(D1Database),
}

impl RecordStore {
    /// Opens the configured backend for `user_key` (no I/O yet).
    ///
    /// # Errors
    /// 503 when the binding is missing.
    pub fn open(env: &Env, config: &Config, user_key: &str) -> Result<Self, ApiError> {
        match config.idempotency_backend {
            IdempotencyBackend::DurableObject => {
                let ns = env
                    .durable_object("IDEMPOTENCY")
                    .map_err(|e| unavailable("idempotency binding", &e))?;
                let stub = ns
                    .get_by_name(user_key)
                    .map_err(|e| unavailable("idempotency object", &e))?;
                Ok(Self::DurableObject(ObjectStub::of(stub)))
            }
            IdempotencyBackend::D1 => Ok(Self::D1(crate::catalogue::store::database(env)?)),
        }
    }

    /// Claims `key` atomically and says what to do.
    ///
    /// # Errors
    /// 503 when the store cannot be reached; 500 for an inconsistent record.
    pub async fn claim(
        &self,
        key: &RecordKey,
        fingerprint: &Fingerprint,
        attempt: &str,
        now: UnixMillis,
        policy: Policy,
    ) -> Result<NextAction, ApiError> {
        match self {
            Self::DurableObject(stub) => {
                let call = ClaimCall {
                    key: key.as_str().to_owned(),
                    fingerprint: fingerprint.as_str().to_owned(),
                    attempt: attempt.to_owned(),
                    now: now.0,
                    policy,
                };
                let reply: WireAction = call_object(stub, "claim", &call).await?;
                Ok(reply.into())
            }
            Self::D1(db) => {
                super::d1::claim_record(db, key, fingerprint, attempt, now, policy).await
            }
        }
    }

    /// Stores the finished response of `attempt`.
    ///
    /// # Errors
    /// 503 when the store cannot be reached.
    pub async fn complete(
        &self,
        key: &RecordKey,
        attempt: &str,
        response: &StoredResponse,
    ) -> Result<(), ApiError> {
        match self {
            Self::DurableObject(stub) => {
                let call = CompleteCall {
                    key: key.as_str().to_owned(),
                    attempt: attempt.to_owned(),
                    response: response.clone(),
                };
                let _: serde_json::Value = call_object(stub, "complete", &call).await?;
                Ok(())
            }
            Self::D1(db) => super::d1::complete(db, key, attempt, response).await,
        }
    }

    /// Gives the claim of `attempt` back.
    ///
    /// # Errors
    /// 503 when the store cannot be reached.
    pub async fn release(
        &self,
        key: &RecordKey,
        attempt: &str,
        how: Release,
    ) -> Result<(), ApiError> {
        match self {
            Self::DurableObject(stub) => {
                let call = ReleaseCall {
                    key: key.as_str().to_owned(),
                    attempt: attempt.to_owned(),
                    how,
                };
                let _: serde_json::Value = call_object(stub, "release", &call).await?;
                Ok(())
            }
            Self::D1(db) => super::d1::release(db, key, attempt, how).await,
        }
    }
}

/// POSTs `body` as JSON to the object's `/{op}` and decodes its JSON answer. The call and the
/// read of the answer await through `runtime::settled`: a request torn down in the middle is
/// let go of (the worker crate's `Stub::fetch_with_request` and `Response::json` await through
/// `JsFuture`).
async fn call_object<T: Serialize, R: DeserializeOwned>(
    stub: &ObjectStub,
    op: &str,
    body: &T,
) -> Result<R, ApiError> {
    let json = serde_json::to_string(body)
        .map_err(|e| ApiError::Internal(format!("encode idempotency {op}: {e}")))?;
    let answer = stub
        .post_json(&format!("https://idempotency.internal/{op}"), &json)
        .await
        .map_err(|e| match e {
            CallError::Build(e) => ApiError::Internal(format!("build idempotency {op}: {e}")),
            CallError::Failed(e) => unavailable("idempotency object", &e),
        })?;
    if answer.status() != 200 {
        return Err(ApiError::Unavailable {
            retry_after: 1,
            what: format!("idempotency object {op} answered {}", answer.status()),
        });
    }
    let decode = |e: String| ApiError::Internal(format!("decode idempotency {op}: {e}"));
    let text = answer
        .text()
        .await
        .map_err(|e| unavailable("idempotency object", &e))?
        .ok_or_else(|| decode("not text".into()))?;
    serde_json::from_str(&text).map_err(|e| decode(e.to_string()))
}
