//! Idempotency records for `POST /orders` (semantics.md §2,
//! draft-ietf-httpapi-idempotency-key-header).
//!
//! # Layout
//!
//! - [`key`] (pure): the `Idempotency-Key` header parser, the request [`key::Fingerprint`], and
//!   the per-user [`key::RecordKey`].
//! - [`machine`] (pure): the decision table `(stored record, fingerprint, now) →`
//!   [`machine::NextAction`] — start, replay, in flight, mismatch — and the claim step.
//! - [`row`] (pure): the stored row and the worker ↔ object messages.
//! - [`store`] (edge): [`store::RecordStore`], the one interface the handler sees.
//! - [`durable`] (edge): the `IdempotencyStore` Durable Object (default backend).
//! - [`d1`] (edge): the same records in D1 (`IDEMPOTENCY_BACKEND=d1`).
//! - [`cleanup`] (edge): the scheduled deletion of expired D1 records.
//!
//! Workers KV never holds these records: it is eventually consistent and has no
//! compare-and-set, so two duplicates could both "claim" a key.

pub mod cleanup;
pub mod d1;
pub mod durable;
pub mod key;
pub mod machine;
pub mod row;
pub mod store;
