//! The cart's flows: reads and writes as functions of a plain request value and the stores
//! ([`crate::ports`]), so the native tests drive them with in-memory fakes and the handlers
//! only authenticate, parse and answer.
//!
//! Every check (`If-Match`, catalogue, limits of the model) runs before the one write, so a
//! refused request changes nothing. A merge writes twice (see [`merge`]).

use super::model::{price, Cart, CartId, Change, MergeReport, Outcome, PricedCart, Requested};
use crate::catalogue::model::{Product, Sku};
use crate::d1::Start;
use crate::http::precondition::{evaluate, IfMatch, Precondition};
use crate::http::problem::ApiError;
use crate::ports::{CartStore, Catalogue};
use crate::time::UnixMillis;

/// A parsed cart write, before it meets the stored cart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Set (or, with [`Requested::Remove`], remove) one line.
    Line(Sku, Requested),
    /// Remove every line.
    Clear,
}

/// A cart write as the flow takes it.
#[derive(Debug, Clone)]
pub struct WriteRequest<'a> {
    /// The verified caller's [`crate::auth::Identity::user_key`].
    pub user_key: &'a str,
    pub if_match: Option<IfMatch>,
    pub write: Write,
    /// Where the request's catalogue reads start (its bookmark header).
    pub start: Start,
    pub now: UnixMillis,
}

/// A merge of a guest's cart into the caller's, as the flow takes it.
#[derive(Debug, Clone)]
pub struct MergeRequest<'a> {
    pub user_key: &'a str,
    /// The user key of the verified guest token's guest.
    pub guest_key: &'a str,
    pub if_match: Option<IfMatch>,
    pub start: Start,
    pub now: UnixMillis,
}

/// A merge's result: the caller's cart, priced, and what became of the guest's lines.
#[derive(Debug, Clone)]
pub struct Merged {
    pub cart: Cart,
    pub priced: PricedCart,
    pub report: MergeReport,
}

/// The user's cart priced as [`Catalogue::products_near`] reads the catalogue, from `start`
/// but no older than the cart's bookmark (`GET /cart`).
///
/// # Errors
/// As the stores fail.
pub async fn read(
    stores: &(impl CartStore + Catalogue),
    user_key: &str,
    start: Start,
) -> Result<(Cart, PricedCart), ApiError> {
    let cart = stores.load(user_key).await?;
    let start = start.at_least(cart.bookmark());
    let found = stores.products_near(&cart.skus(), &start).await?;
    let priced = price(&cart, &found);
    Ok((cart, priced))
}

/// Load, check `If-Match`, apply, store if changed; the resulting cart, priced.
///
/// # Errors
/// 412 when `If-Match` fails, 422 when the model refuses, and the stores' failures; nothing
/// is written in any of these cases.
pub async fn write(
    stores: &(impl CartStore + Catalogue),
    request: WriteRequest<'_>,
) -> Result<(Cart, PricedCart), ApiError> {
    let current = stores.load(request.user_key).await?;
    if let Precondition::Fails = evaluate(request.if_match.as_ref(), current.version()) {
        return Err(ApiError::PreconditionFailed);
    }
    // One catalogue query serves both the decision and the pricing of the answer.
    let mut skus = current.skus();
    if let Write::Line(sku, Requested::Set(_)) = &request.write {
        skus.push(sku.clone());
    }
    // From a replica near the user: a price or stock a few moments old is safe to show and
    // to check a quantity against, because checkout prices everything again on the primary.
    let start = request.start.at_least(current.bookmark());
    let products = stores.products_near(&skus, &start).await?;
    let change = match &request.write {
        Write::Line(sku, Requested::Set(quantity)) => Change::Set {
            sku,
            quantity: *quantity,
            product: find(&products, sku),
        },
        Write::Line(sku, Requested::Remove) => Change::Remove { sku },
        Write::Clear => Change::Clear,
    };
    let cart = match current.apply(change, request.now)? {
        Outcome::Unchanged => current,
        Outcome::Changed(next) => {
            let next = next.identified(fresh_cart_id()?);
            stores.save(request.user_key, &next).await?;
            next
        }
    };
    let priced = price(&cart, &products);
    Ok((cart, priced))
}

/// The guest's lines join the caller's cart, then the guest cart is emptied.
///
/// Two carts change, and KV has no transaction: the caller's cart is written first, with a
/// mark naming the guest cart state it took in, then the guest cart is emptied. Should the
/// second write fail, the retry finds the mark, adds nothing again, and empties the guest
/// cart. Every check runs before the first write.
///
/// # Errors
/// 412 when `If-Match` fails, 422 when the model refuses, and the stores' failures.
pub async fn merge(
    stores: &(impl CartStore + Catalogue),
    request: MergeRequest<'_>,
) -> Result<Merged, ApiError> {
    let current = stores.load(request.user_key).await?;
    if let Precondition::Fails = evaluate(request.if_match.as_ref(), current.version()) {
        return Err(ApiError::PreconditionFailed);
    }
    let guest_cart = stores.load(request.guest_key).await?;
    let merged = current.merge(&guest_cart, request.now)?;
    let cart = match merged.outcome {
        Outcome::Unchanged => current,
        Outcome::Changed(next) => {
            let next = next.identified(fresh_cart_id()?);
            stores.save(request.user_key, &next).await?;
            next
        }
    };
    if !guest_cart.is_empty() {
        let emptied = guest_cart.emptied(request.now)?;
        stores.save(request.guest_key, &emptied).await?;
    }
    let start = request.start.at_least(cart.bookmark());
    let products = stores.products_near(&cart.skus(), &start).await?;
    let priced = price(&cart, &products);
    Ok(Merged {
        cart,
        priced,
        report: merged.report,
    })
}

/// A new cart's id: 128 random bits.
fn fresh_cart_id() -> Result<CartId, ApiError> {
    CartId::parse(&crate::http::random_id()).map_err(ApiError::Internal)
}

fn find<'a>(products: &'a [Product], sku: &Sku) -> Option<&'a Product> {
    products.iter().find(|p| &p.sku == sku)
}
