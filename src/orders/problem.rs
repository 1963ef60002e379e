//! How orders' domain errors ([`OrderError`], [`Refusal`]) reach the client: one API error
//! each, with the status, problem type and detail the API has always given.
//!
//! The pure model says what went wrong in the order's terms; this is where that meets the
//! transport, so the model needs nothing from [`crate::http`].

use super::model::{OrderError, Refusal};
use crate::http::problem::ApiError;

/// A body that is not JSON, a bad cursor or listing query are 400; a body of the wrong kind
/// or shape, an invalid email or address 422; a transition the order's state forbids 409.
impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::Body(body) => body.into(),
            OrderError::InvalidEmail | OrderError::InvalidAddress(_) => {
                ApiError::InvalidValue(e.to_string())
            }
            OrderError::BadCursor | OrderError::RepeatedParameter(_) | OrderError::BadLimit => {
                ApiError::BadRequest(e.to_string())
            }
            OrderError::NotCancellable => ApiError::OrderNotCancellable,
            OrderError::NotFulfillable => ApiError::OrderNotFulfillable,
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::CartChanged => ApiError::CartChanged,
            Refusal::PriceChanged {
                total_minor,
                currency,
            } => ApiError::PriceChanged {
                total_minor,
                currency: currency.as_str().to_owned(),
            },
            Refusal::EmptyCart => {
                ApiError::InvalidValue("The cart is empty: there is nothing to check out.".into())
            }
            Refusal::OutOfStock(sku) => ApiError::OutOfStock {
                sku: sku.as_str().to_owned(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::model::{Currency, Sku};
    use crate::http::problem::ProblemResponse;
    use crate::json::BodyError;

    fn shown(e: impl Into<ApiError>) -> ProblemResponse {
        e.into().to_response(false)
    }

    /// Status, problem type and detail of what the client is shown for `e`; and, where the
    /// detail is the error's own, that it is the error's explanation.
    fn check(e: OrderError, status: u16, type_uri: &str, detail: &str) {
        let explanation = e.to_string();
        let r = shown(e);
        assert_eq!(
            (
                r.status,
                r.problem.type_uri.as_str(),
                r.problem.detail.as_str()
            ),
            (status, type_uri, detail)
        );
        assert_eq!(explanation, detail);
    }

    #[test]
    fn a_body_that_is_no_json_is_a_400_naming_the_position() {
        check(
            OrderError::Body(BodyError::Syntax { line: 1, column: 2 }),
            400,
            "/problems/bad-request",
            "The body is not valid JSON (line 1, column 2).",
        );
    }

    #[test]
    fn a_body_of_the_wrong_shape_is_a_422_saying_why() {
        check(
            OrderError::Body(BodyError::Shape("missing field `cart_version`".into())),
            422,
            "/problems/invalid-value",
            "The body has the wrong shape: missing field `cart_version`.",
        );
    }

    #[test]
    fn an_invalid_email_is_a_422_that_does_not_quote_it() {
        check(
            OrderError::InvalidEmail,
            422,
            "/problems/invalid-value",
            "`email` is not a valid email address.",
        );
    }

    #[test]
    fn an_invalid_address_is_a_422_naming_the_rule() {
        check(
            OrderError::InvalidAddress("has more than 20 members"),
            422,
            "/problems/invalid-value",
            "`shipping_address` has more than 20 members.",
        );
    }

    #[test]
    fn a_foreign_cursor_is_a_400() {
        check(
            OrderError::BadCursor,
            400,
            "/problems/bad-request",
            "`cursor` is not a cursor this API issued.",
        );
    }

    #[test]
    fn a_repeated_parameter_is_a_400_naming_it() {
        check(
            OrderError::RepeatedParameter("limit".into()),
            400,
            "/problems/bad-request",
            "`limit` is given twice.",
        );
    }

    #[test]
    fn a_bad_limit_is_a_400_giving_the_range() {
        check(
            OrderError::BadLimit,
            400,
            "/problems/bad-request",
            "`limit` must be a whole number from 1 to 100.",
        );
    }

    #[test]
    fn cancelling_a_fulfilled_order_is_a_409_order_not_cancellable() {
        assert_eq!(
            ApiError::from(OrderError::NotCancellable),
            ApiError::OrderNotCancellable
        );
        check(
            OrderError::NotCancellable,
            409,
            "/problems/order-not-cancellable",
            "The order was already fulfilled: it can no longer be cancelled.",
        );
    }

    #[test]
    fn fulfilling_a_cancelled_order_is_a_409_order_not_fulfillable() {
        assert_eq!(
            ApiError::from(OrderError::NotFulfillable),
            ApiError::OrderNotFulfillable
        );
        check(
            OrderError::NotFulfillable,
            409,
            "/problems/order-not-fulfillable",
            "The order was cancelled: it can no longer be fulfilled.",
        );
    }

    #[test]
    fn refusals_map_to_their_problems() {
        assert_eq!(shown(Refusal::CartChanged).status, 409);
        let empty = shown(Refusal::EmptyCart);
        assert_eq!(
            (empty.status, empty.problem.detail.as_str()),
            (422, "The cart is empty: there is nothing to check out.")
        );
        let r = shown(Refusal::OutOfStock(Sku::parse("tea").unwrap()));
        assert_eq!((r.status, r.problem.sku.as_deref()), (409, Some("tea")));
        let problem = shown(Refusal::PriceChanged {
            total_minor: 500,
            currency: Currency::parse("EUR").unwrap(),
        });
        assert_eq!(problem.status, 409);
        assert_eq!(problem.problem.type_uri, "/problems/price-changed");
        assert_eq!(
            (
                problem.problem.total_minor,
                problem.problem.currency.as_deref()
            ),
            (Some(500), Some("EUR"))
        );
    }
}
