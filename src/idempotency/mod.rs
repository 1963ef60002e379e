//! Idempotency records for `POST /orders`: the key, the pure state machine, and the two stores
//! (a SQLite-backed Durable Object, or D1).

pub mod durable;
