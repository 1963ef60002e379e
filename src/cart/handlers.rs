//! The HTTP edge of the cart routes: authenticate, parse, decide (pure), store, answer.
//!
//! Every route answers 200 with the whole priced cart, `ETag: "<version>"` and
//! `Cache-Control: private, no-store`. The user is only ever the verified identity: nothing
//! in the path, headers or body can name another user's cart. Every check (token, sku,
//! body, `If-Match`, catalogue, limits) runs before the one KV write, so a refused request
//! changes nothing.

use worker::Response;

use super::model::{price, Cart, CartId, Change, Outcome, Requested};
use super::store;
use crate::auth::{authenticate, Identity};
use crate::catalogue::model::{Product, Sku, SkuError};
use crate::http::precondition::{etag, evaluate, IfMatch, Precondition};
use crate::http::{self, problem::ApiError, Cx, PRIVATE_NO_STORE};

/// `GET /cart` (and `HEAD`).
///
/// # Errors
/// 401, 429/503 from storage.
pub async fn get(cx: &mut Cx) -> Result<Response, ApiError> {
    let identity = authenticate(cx).await?;
    let (cart, priced) = store::load_priced(&cx.env, &identity.user_key()).await?;
    respond(&cart, &priced)
}

/// `DELETE /cart`: remove every line.
///
/// # Errors
/// 401, 400 (malformed `If-Match`), 412, 429/503.
pub async fn clear(cx: &mut Cx) -> Result<Response, ApiError> {
    let identity = authenticate(cx).await?;
    write(cx, &identity, Write::Clear).await
}

/// `PUT /cart/items/{sku}` with `{"quantity": n}`; 0 removes the line.
///
/// # Errors
/// 401, 400 (sku, JSON, `If-Match`), 413, 422 (quantity, unknown sku, currency, 50 lines),
/// 412, 429/503.
pub async fn set_item(cx: &mut Cx, sku: &str) -> Result<Response, ApiError> {
    let identity = authenticate(cx).await?;
    let sku = parse_sku(sku)?;
    let body: serde_json::Value = cx.json_body().await?;
    let requested = Requested::from_body(&body)?;
    write(cx, &identity, Write::Line(sku, requested)).await
}

/// `DELETE /cart/items/{sku}`: remove one line (200 with the cart even if it was absent).
///
/// # Errors
/// 401, 400 (sku, `If-Match`), 412, 429/503.
pub async fn remove_item(cx: &mut Cx, sku: &str) -> Result<Response, ApiError> {
    let identity = authenticate(cx).await?;
    let sku = parse_sku(sku)?;
    write(cx, &identity, Write::Line(sku, Requested::Remove)).await
}

/// A parsed cart write, before it meets the stored cart.
enum Write {
    Line(Sku, Requested),
    Clear,
}

fn parse_sku(text: &str) -> Result<Sku, ApiError> {
    Sku::parse(text).map_err(|e| {
        ApiError::BadRequest(
            match e {
                SkuError::Empty => "The sku in the path is empty.",
                SkuError::TooLong => "The sku in the path is longer than 64 characters.",
                SkuError::OutsideAlphabet => {
                    "The sku in the path may only contain a-z, 0-9 and '-'."
                }
            }
            .into(),
        )
    })
}

/// Load, check `If-Match`, apply, store if changed, answer with the priced result.
async fn write(cx: &mut Cx, identity: &Identity, write: Write) -> Result<Response, ApiError> {
    let if_match = cx
        .header("if-match")
        .map(|v| IfMatch::parse(&v))
        .transpose()
        .map_err(|_| {
            ApiError::BadRequest("If-Match must be `*` or a list of quoted entity tags.".into())
        })?;
    let ttl = cx.config()?.cart_ttl_seconds;
    let user_key = identity.user_key();
    let current = store::load(&cx.env, &user_key).await?;
    match evaluate(if_match.as_ref(), current.version()) {
        Precondition::Holds => {}
        Precondition::Fails => return Err(ApiError::PreconditionFailed),
    }
    // One catalogue query serves both the decision and the pricing of the answer.
    let mut skus = current.skus();
    if let Write::Line(sku, Requested::Set(_)) = &write {
        skus.push(sku.clone());
    }
    let products = store::products(&cx.env, &skus).await?;
    let change = match &write {
        Write::Line(sku, Requested::Set(quantity)) => Change::Set {
            sku,
            quantity: *quantity,
            product: find(&products, sku),
        },
        Write::Line(sku, Requested::Remove) => Change::Remove { sku },
        Write::Clear => Change::Clear,
    };
    let cart = match current.apply(change, cx.now)? {
        Outcome::Unchanged => current,
        Outcome::Changed(next) => {
            let next = next.identified(fresh_cart_id()?);
            store::save(&cx.env, &user_key, &next, ttl).await?;
            next
        }
    };
    respond(&cart, &price(&cart, &products))
}

/// A new cart's id: 128 random bits.
fn fresh_cart_id() -> Result<CartId, ApiError> {
    CartId::parse(&http::random_id()).map_err(ApiError::Internal)
}

fn find<'a>(products: &'a [Product], sku: &Sku) -> Option<&'a Product> {
    products.iter().find(|p| &p.sku == sku)
}

fn respond(cart: &Cart, priced: &super::PricedCart) -> Result<Response, ApiError> {
    let mut response = http::json(200, priced, PRIVATE_NO_STORE)?;
    let _ = response.headers_mut().set("ETag", &etag(cart.version()));
    Ok(response)
}
