//! Orders: idempotent checkout of the caller's cart into D1.
//!
//! # Layout
//!
//! - [`model`] (pure): order ids, the checkout body, the checkout plan, listing cursors,
//!   and why each is refused ([`model::OrderError`], [`model::Refusal`]).
//! - [`problem`]: how those refusals become API errors.
//! - [`store`] (edge): the D1 adapter — the atomic checkout batch and the reads.
//! - [`flow`]: the checkout over the storage traits ([`crate::ports`]): claim, check out,
//!   complete or release.
//! - [`handlers`] (edge): `POST /orders`, `GET /orders`, `GET /orders/{id}`,
//!   `POST /orders/{id}/cancel` and `/fulfilment`; the checkout is wrapped in an idempotency
//!   claim ([`crate::idempotency`]).
//! - [`events`] (edge): the order events' outbox handed to the `ORDER_EVENTS` queue.

pub mod delivery;
pub mod events;
pub mod flow;
pub mod handlers;
pub mod model;
pub mod problem;
pub mod store;
pub mod webhook;
