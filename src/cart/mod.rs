//! Carts in Workers KV: one value per user, priced from the catalogue at read time.
//!
//! - [`model`]: the pure core: [`model::Cart`], [`model::Quantity`], the [`model::Change`] →
//!   [`model::Outcome`] decision, and [`model::price`] into the response shape
//!   [`model::PricedCart`].
//! - [`problem`]: how the model's refusals ([`model::CartError`]) become API errors.
//! - [`store`]: the KV adapter, whose header states what KV's consistency guarantees.
//! - [`flow`]: reads, writes and the merge over the storage traits ([`crate::ports`]).
//! - [`handlers`]: the HTTP edge of `GET /cart`, `PUT`/`DELETE /cart/items/{sku}` and
//!   `DELETE /cart`.
//!
//! Checkout ([`crate::orders::flow`]) loads and prices the cart through the same traits, then
//! stores [`model::Cart::emptied`].

pub mod flow;
pub mod handlers;
pub mod model;
pub mod problem;
pub mod store;

pub use model::{price, Cart, PricedCart, PricedLine, Quantity};
