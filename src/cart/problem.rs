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

    #[test]
    fn every_refusal_but_an_exhausted_version_is_a_422_explaining_it() {
        let sku = Sku::parse("green-tea").unwrap();
        let mismatch = CartError::CurrencyMismatch {
            cart: Currency::parse("EUR").unwrap(),
            product: Currency::parse("USD").unwrap(),
        };
        for (error, detail) in [
            (
                CartError::QuantityMissing,
                "The body must be a JSON object with an integer `quantity`.",
            ),
            (
                CartError::UnknownMember,
                "The body must have `quantity` as its only member.",
            ),
            (
                CartError::QuantityNotAnInteger,
                "`quantity` must be an integer from 0 to 99.",
            ),
            (
                CartError::QuantityOutOfRange,
                "`quantity` must be from 0 to 99 (0 removes the line).",
            ),
            (
                CartError::UnknownSku(sku),
                "There is no product `green-tea`.",
            ),
            (
                mismatch,
                "This cart is in EUR; the product is priced in USD. A cart holds one currency.",
            ),
            (CartError::TooManyLines, "A cart holds at most 50 lines."),
        ] {
            assert_eq!(shown(error), (422, detail.to_owned()));
        }
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
