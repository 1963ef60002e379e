//! The public catalogue: products in D1, served cacheable from the edge cache.
//!
//! Pure (no `worker` types, no clock, no I/O; native tests):
//! - [`model`]: `Sku`, `Currency`, `Product`.
//! - [`write`]: validation of product write bodies.
//! - [`listing`]: the listing query and its opaque cursor codec.
//! - [`caching`]: `Cache-Control`, strong ETags, conditional requests, edge-cache keys.
//!
//! Edge adapters:
//! - [`store`]: D1 (products, revisions, catalogue generation); also used by cart and checkout.
//! - [`edge_cache`]: the Cache API (entries, the generation and revision mirrors; how soon a
//!   write is seen where).
//! - Workers Cache (`ctx.cache`), detected at runtime, purges by tag
//!   ([`crate::platform::workers_cache`]).
//! - [`handlers`]: the HTTP handlers of `/products` and `/products/{sku}`.

pub mod caching;
pub mod edge_cache;
pub mod handlers;
pub mod listing;
pub mod model;
pub mod store;
pub mod write;
