//! Carts in Workers KV: one value per user, priced from the catalogue at read time.

pub mod handlers;
