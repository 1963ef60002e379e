//! The public catalogue: products in D1, served cacheable from the edge cache.

pub mod handlers;
pub mod model;
