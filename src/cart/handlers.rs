//! The HTTP edge of the cart routes: authenticate, parse, run the flow ([`super::flow`]),
//! answer.
//!
//! Every route answers 200 with the whole priced cart, `ETag: "<version>"` and
//! `Cache-Control: private, no-store`. The user is only ever the verified identity: nothing
//! in the path, headers or body can name another user's cart. Every check (token, sku,
//! body, `If-Match`, catalogue, limits) runs before the one KV write, so a refused request
//! changes nothing.

use worker::Response;

use super::flow::{self, MergeRequest, Write, WriteRequest};
use super::model::Requested;
use crate::auth::{authenticate, Identity};
use crate::catalogue::model::{Sku, SkuError};
use crate::http::precondition::{etag, IfMatch};
use crate::http::{self, problem::ApiError, Cx, PRIVATE_NO_STORE};
use crate::stores::WorkersStores;

/// `GET /cart` (and `HEAD`).
///
/// # Errors
/// 401, 429/503 from storage.
pub async fn get(cx: &mut Cx) -> Result<Response, ApiError> {
    let identity = authenticate(cx).await?;
    let config = cx.shared_config()?;
    let stores = WorkersStores::new(cx, &config);
    let (cart, priced) = flow::read(&stores, &identity.user_key(), cx.read_start()).await?;
    respond(&cart, &priced)
}

/// `DELETE /cart`: remove every line.
///
/// # Errors
/// 401, 429 (write limit), 400 (malformed `If-Match`), 412, 429/503.
pub async fn clear(cx: &mut Cx) -> Result<Response, ApiError> {
    let identity = authenticate_writer(cx).await?;
    write(cx, &identity, Write::Clear).await
}

/// `PUT /cart/items/{sku}` with `{"quantity": n}`; 0 removes the line.
///
/// # Errors
/// 401, 429 (write limit), 400 (sku, JSON, `If-Match`), 413, 422 (quantity, unknown sku, currency, 50 lines),
/// 412, 429/503.
pub async fn set_item(cx: &mut Cx, sku: &str) -> Result<Response, ApiError> {
    let identity = authenticate_writer(cx).await?;
    let sku = parse_sku(sku)?;
    let body: serde_json::Value = cx.json_body().await?;
    let requested = Requested::from_body(&body)?;
    write(cx, &identity, Write::Line(sku, requested)).await
}

/// `DELETE /cart/items/{sku}`: remove one line (200 with the cart even if it was absent).
///
/// # Errors
/// 401, 429 (write limit), 400 (sku, `If-Match`), 412, 429/503.
pub async fn remove_item(cx: &mut Cx, sku: &str) -> Result<Response, ApiError> {
    let identity = authenticate_writer(cx).await?;
    let sku = parse_sku(sku)?;
    write(cx, &identity, Write::Line(sku, Requested::Remove)).await
}

/// `POST /cart/merge` with `{"guest_token": s}`: the guest's lines join the caller's cart
/// (quantities summed, capped at 99, at most 50 lines; what does not fit is reported in the
/// answer's `merge` member), then the guest cart is emptied. The caller must be an account,
/// not a guest. `If-Match` applies to the caller's cart.
///
/// Two KV values change, and KV has no transaction: the caller's cart is written first, with a
/// mark naming the guest cart state it took in, then the guest cart is emptied. Should the
/// second write fail (503), the retry finds the mark, adds nothing again, and empties the
/// guest cart. Every check runs before the first write.
///
/// # Errors
/// 401, 403 (a guest caller), 400 (JSON, `If-Match`), 413, 422 (body shape, a `guest_token`
/// that is no valid guest token), 412, 429/503.
pub async fn merge(cx: &mut Cx) -> Result<Response, ApiError> {
    let identity = authenticate(cx).await?;
    if identity.is_guest() {
        return Err(ApiError::Forbidden(
            "A guest session cannot merge a cart: sign in with an account first.".into(),
        ));
    }
    crate::limits::check_write(cx, &identity.user_key()).await?;
    let body = cx.body_bytes().await?;
    let guest_token = parse_merge_body(&body)?;
    let guest = crate::auth::verify_guest_token(cx, &guest_token).await?;
    let if_match = if_match(cx)?;
    let config = cx.shared_config()?;
    let stores = WorkersStores::new(cx, &config);
    let (user_key, guest_key) = (identity.user_key(), guest.user_key());
    let merged = flow::merge(
        &stores,
        MergeRequest {
            user_key: &user_key,
            guest_key: &guest_key,
            if_match,
            start: cx.read_start(),
            now: cx.now,
        },
    )
    .await?;
    let mut response = http::json(
        200,
        &MergeAnswer {
            cart: &merged.priced,
            merge: &merged.report,
        },
        PRIVATE_NO_STORE,
    )?;
    let _ = response
        .headers_mut()
        .set("ETag", &etag(merged.cart.version()));
    Ok(response)
}

/// The answer of a merge: the cart's members, and `merge`.
#[derive(serde::Serialize)]
struct MergeAnswer<'a> {
    #[serde(flatten)]
    cart: &'a super::PricedCart,
    merge: &'a super::model::MergeReport,
}

/// `{"guest_token": "<token>"}`, nothing else.
fn parse_merge_body(body: &[u8]) -> Result<String, ApiError> {
    let value: serde_json::Value = http::parse_json_body(body)?;
    let object = value.as_object().ok_or_else(|| {
        ApiError::InvalidValue("The body must be a JSON object `{\"guest_token\": \"…\"}`.".into())
    })?;
    if object.keys().any(|k| k != "guest_token") {
        return Err(ApiError::InvalidValue(
            "The body may only hold `guest_token`.".into(),
        ));
    }
    match object.get("guest_token") {
        Some(serde_json::Value::String(token)) => Ok(token.clone()),
        _ => Err(ApiError::InvalidValue(
            "`guest_token` must be a string: the token of the guest session.".into(),
        )),
    }
}

fn if_match(cx: &Cx) -> Result<Option<IfMatch>, ApiError> {
    cx.header("if-match")
        .map(|v| IfMatch::parse(&v))
        .transpose()
        .map_err(|_| {
            ApiError::BadRequest("If-Match must be `*` or a list of quoted entity tags.".into())
        })
}

/// The verified caller of a cart write, within the write limit (429 before anything is read).
async fn authenticate_writer(cx: &mut Cx) -> Result<Identity, ApiError> {
    let identity = authenticate(cx).await?;
    crate::limits::check_write(cx, &identity.user_key()).await?;
    Ok(identity)
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

/// Checks `If-Match`'s syntax, then runs the write ([`flow::write`]) and answers.
async fn write(cx: &mut Cx, identity: &Identity, write: Write) -> Result<Response, ApiError> {
    let if_match = if_match(cx)?;
    let config = cx.shared_config()?;
    let stores = WorkersStores::new(cx, &config);
    let user_key = identity.user_key();
    let request = WriteRequest {
        user_key: &user_key,
        if_match,
        write,
        start: cx.read_start(),
        now: cx.now,
    };
    let (cart, priced) = flow::write(&stores, request).await?;
    respond(&cart, &priced)
}

fn respond(cart: &super::Cart, priced: &super::PricedCart) -> Result<Response, ApiError> {
    let mut response = http::json(200, priced, PRIVATE_NO_STORE)?;
    let _ = response.headers_mut().set("ETag", &etag(cart.version()));
    Ok(response)
}
