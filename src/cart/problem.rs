//! How the cart's refusals ([`CartError`]) reach the client: one API error each.
//!
//! The pure model says what went wrong in the cart's terms and explains it; this is where
//! that meets the transport, so the model needs nothing from [`crate::http`].

use super::model::CartError;
use crate::http::problem::ApiError;

/// Every refusal is a 422 carrying the refusal's explanation, except an exhausted version
/// counter: a 500 whose explanation goes to the log.
impl From<CartError> for ApiError {
    fn from(e: CartError) -> Self {
        match e {
            CartError::VersionExhausted => ApiError::Internal(e.to_string()),
            CartError::QuantityMissing
            | CartError::UnknownMember
            | CartError::QuantityNotAnInteger
            | CartError::QuantityOutOfRange
            | CartError::UnknownSku(_)
            | CartError::CurrencyMismatch { .. }
            | CartError::TooManyLines => ApiError::InvalidValue(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::model::{Currency, Sku};

    /// The status and `detail` a client is shown for `e` (outside development).
    fn shown(e: CartError) -> (u16, String) {
        let response = ApiError::from(e).to_response(false);
        (response.status, response.problem.detail)
    }

    fn invalid(detail: &str) -> (u16, String) {
        (422, detail.to_owned())
    }

    #[test]
    fn a_missing_quantity_is_a_422_asking_for_one() {
        assert_eq!(
            shown(CartError::QuantityMissing),
            invalid("The body must be a JSON object with an integer `quantity`.")
        );
    }

    #[test]
    fn another_member_is_a_422_naming_the_only_one_allowed() {
        assert_eq!(
            shown(CartError::UnknownMember),
            invalid("The body must have `quantity` as its only member.")
        );
    }

    #[test]
    fn a_quantity_that_is_no_integer_is_a_422_giving_the_range() {
        assert_eq!(
            shown(CartError::QuantityNotAnInteger),
            invalid("`quantity` must be an integer from 0 to 99.")
        );
    }

    #[test]
    fn a_quantity_out_of_range_is_a_422_saying_what_zero_does() {
        assert_eq!(
            shown(CartError::QuantityOutOfRange),
            invalid("`quantity` must be from 0 to 99 (0 removes the line).")
        );
    }

    #[test]
    fn an_unknown_sku_is_a_422_naming_it() {
        let sku = Sku::parse("green-tea").unwrap();
        assert_eq!(
            shown(CartError::UnknownSku(sku)),
            invalid("There is no product `green-tea`.")
        );
    }

    #[test]
    fn a_second_currency_is_a_422_naming_both() {
        let e = CartError::CurrencyMismatch {
            cart: Currency::parse("EUR").unwrap(),
            product: Currency::parse("USD").unwrap(),
        };
        assert_eq!(
            shown(e),
            invalid(
                "This cart is in EUR; the product is priced in USD. A cart holds one currency."
            )
        );
    }

    #[test]
    fn too_many_lines_is_a_422_giving_the_limit() {
        assert_eq!(
            shown(CartError::TooManyLines),
            invalid("A cart holds at most 50 lines.")
        );
    }

    #[test]
    fn an_exhausted_version_is_a_500_whose_reason_goes_to_the_log() {
        let error = ApiError::from(CartError::VersionExhausted);
        assert_eq!(
            error,
            ApiError::Internal("cart version counter exhausted".into())
        );
        assert_eq!(error.to_response(false).status, 500);
        assert_eq!(
            error.log_detail().as_deref(),
            Some("cart version counter exhausted")
        );
    }
}
