//! Orders: idempotent checkout of the caller's cart into D1.

pub mod handlers;
