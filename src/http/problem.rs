//! The one API error type and its single mapping to RFC 9457 problem details.
//!
//! Pure: no `worker` types. Every failure in edgecart becomes an [`ApiError`]; its one
//! `match` ([`ApiError::kind`]) picks the status, the stable problem `type` and the public
//! text. Internal detail travels separately ([`ApiError::log_detail`]) and reaches the body
//! only in development. Nothing here may contain a token, key or secret.

use serde::Serialize;

/// A kind of problem: one stable `type` URI (`/problems/{slug}`), a title and a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    BadRequest,
    MissingToken,
    InvalidToken,
    InsufficientScope,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    RequestInFlight,
    CartChanged,
    PriceChanged,
    OutOfStock,
    OrderNotCancellable,
    OrderNotFulfillable,
    PreconditionFailed,
    PayloadTooLarge,
    InvalidValue,
    IdempotencyKeyReused,
    RateLimited,
    Unavailable,
    Misconfigured,
    Internal,
}

impl ProblemKind {
    /// Every kind, for `GET /problems/{slug}` and the OpenAPI document.
    pub const ALL: [ProblemKind; 21] = [
        Self::BadRequest,
        Self::MissingToken,
        Self::InvalidToken,
        Self::InsufficientScope,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::RequestInFlight,
        Self::CartChanged,
        Self::PriceChanged,
        Self::OutOfStock,
        Self::OrderNotCancellable,
        Self::OrderNotFulfillable,
        Self::PreconditionFailed,
        Self::PayloadTooLarge,
        Self::InvalidValue,
        Self::IdempotencyKeyReused,
        Self::RateLimited,
        Self::Unavailable,
        Self::Misconfigured,
        Self::Internal,
    ];

    /// (slug, status, title, explanation), one row per kind.
    #[must_use]
    pub fn describe(self) -> (&'static str, u16, &'static str, &'static str) {
        match self {
            Self::BadRequest => ("bad-request", 400, "Bad request",
                "The request is malformed: invalid JSON, a malformed header or query value, or a path segment outside its alphabet. Fix the request; retrying it unchanged will fail again."),
            Self::MissingToken => ("missing-token", 401, "Authentication required",
                "This route needs a bearer token: send `Authorization: Bearer <token>`."),
            Self::InvalidToken => ("invalid-token", 401, "Invalid token",
                "The bearer token was refused: it is malformed, expired, not yet valid, signed by an unknown key, or issued for another audience. Sign in again to get a new token."),
            Self::InsufficientScope => ("insufficient-scope", 403, "Insufficient scope",
                "The token is valid but lacks the scope this operation needs (see the WWW-Authenticate header)."),
            Self::Forbidden => ("forbidden", 403, "Forbidden",
                "This identity may not do this: a guest session cannot merge a cart into another guest's. Sign in with an account first."),
            Self::NotFound => ("not-found", 404, "Not found",
                "No such route or resource, or it belongs to someone else."),
            Self::MethodNotAllowed => ("method-not-allowed", 405, "Method not allowed",
                "The route exists but not for this method; the Allow header lists the methods it answers."),
            Self::RequestInFlight => ("request-in-flight", 409, "Request in flight",
                "A request with this Idempotency-Key is still being processed. Retry with the same key after Retry-After seconds."),
            Self::CartChanged => ("cart-changed", 409, "Cart changed",
                "The cart changed since the version you checked out. Reload the cart, review it, and check out again with a new Idempotency-Key."),
            Self::PriceChanged => ("price-changed", 409, "Price changed",
                "The cart's total is not the `expected_total_minor` you sent: a price changed since you saw it. The problem's `total_minor` and `currency` are the total now; show it and check out again with a new Idempotency-Key."),
            Self::OutOfStock => ("out-of-stock", 409, "Out of stock",
                "Not enough stock for an item in the cart. Change the quantity or remove the item and check out again."),
            Self::OrderNotCancellable => ("order-not-cancellable", 409, "Order not cancellable",
                "The order was already fulfilled: it can no longer be cancelled."),
            Self::OrderNotFulfillable => ("order-not-fulfillable", 409, "Order not fulfillable",
                "The order was cancelled: it can no longer be fulfilled."),
            Self::PreconditionFailed => ("precondition-failed", 412, "Precondition failed",
                "The If-Match header does not match the current version. Reload and retry with the new ETag."),
            Self::PayloadTooLarge => ("payload-too-large", 413, "Payload too large",
                "The request body is larger than 16 KiB."),
            Self::InvalidValue => ("invalid-value", 422, "Invalid value",
                "The request is well-formed but a value is not acceptable (out of range, unknown product, empty cart)."),
            Self::IdempotencyKeyReused => ("idempotency-key-reused", 422, "Idempotency-Key reused",
                "This Idempotency-Key was already used with a different request body. Use a new key for a new request."),
            Self::RateLimited => ("rate-limited", 429, "Too many requests",
                "Too many requests in a short time: from this user or client address (edgecart's own limits on writes, token minting and refused tokens), or to the storage behind this resource. Nothing was changed. Retry after Retry-After seconds."),
            Self::Unavailable => ("unavailable", 503, "Service unavailable",
                "A storage binding or the identity provider's key set could not be reached. Retry after Retry-After seconds."),
            Self::Misconfigured => ("misconfigured", 500, "Server misconfigured",
                "The worker's configuration is invalid. The operator has to fix it; retrying will not help."),
            Self::Internal => ("internal", 500, "Internal error",
                "Something unexpected went wrong. It has been logged."),
        }
    }

    #[must_use]
    pub fn slug(self) -> &'static str {
        self.describe().0
    }

    #[must_use]
    pub fn status(self) -> u16 {
        self.describe().1
    }

    #[must_use]
    pub fn title(self) -> &'static str {
        self.describe().2
    }

    /// The `type` member: a relative URI under `/problems/`.
    #[must_use]
    pub fn type_uri(self) -> String {
        format!("/problems/{}", self.slug())
    }

    #[must_use]
    pub fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.slug() == slug)
    }
}

/// Every way a request can fail. Domain errors convert into this; [`ApiError::kind`] is the
/// single place that decides what the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// Malformed syntax; `detail` is safe to show (it never quotes secrets).
    BadRequest(String),
    MissingToken,
    /// Any failed token check. `reason` is for the log only; the body stays generic.
    InvalidToken {
        reason: &'static str,
    },
    InsufficientScope {
        scope: &'static str,
    },
    /// The identity is valid but not of the kind this operation is for; `detail` is public.
    Forbidden(String),
    NotFound,
    MethodNotAllowed {
        allow: &'static str,
    },
    RequestInFlight {
        retry_after: u64,
    },
    CartChanged,
    /// Checkout's total is not the `expected_total_minor` the client sent: the total now.
    PriceChanged {
        total_minor: i64,
        currency: String,
    },
    OutOfStock {
        sku: String,
    },
    /// Cancel of a fulfilled order.
    OrderNotCancellable,
    /// Fulfilment of a cancelled order.
    OrderNotFulfillable,
    PreconditionFailed,
    PayloadTooLarge,
    InvalidValue(String),
    IdempotencyKeyReused,
    /// Workers KV refused a write as too frequent for its key (about one per second).
    RateLimited {
        retry_after: u64,
    },
    /// One of edgecart's own rate limits (`[[ratelimits]]`, see [`crate::limits`]) refused the
    /// request before it touched storage. `class` names the limit, for the log.
    Limited {
        class: &'static str,
        retry_after: u64,
    },
    Unavailable {
        retry_after: u64,
        what: String,
    },
    /// A configuration variable is missing or malformed: its name, never its value.
    Misconfigured {
        variable: &'static str,
        reason: String,
    },
    /// Anything unexpected; `detail` goes to the log (and to the body only in development).
    Internal(String),
}

/// The body of a problem response (RFC 9457).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// `/problems/price-changed`: the total the server computes now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_minor: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// A problem response without `worker` types: status, extra headers and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub problem: Problem,
}

/// The realm in every `WWW-Authenticate` challenge.
pub const REALM: &str = "edgecart";

impl ApiError {
    /// The single mapping from error to problem kind.
    #[must_use]
    pub fn kind(&self) -> ProblemKind {
        match self {
            Self::BadRequest(_) => ProblemKind::BadRequest,
            Self::MissingToken => ProblemKind::MissingToken,
            Self::InvalidToken { .. } => ProblemKind::InvalidToken,
            Self::InsufficientScope { .. } => ProblemKind::InsufficientScope,
            Self::Forbidden(_) => ProblemKind::Forbidden,
            Self::NotFound => ProblemKind::NotFound,
            Self::MethodNotAllowed { .. } => ProblemKind::MethodNotAllowed,
            Self::RequestInFlight { .. } => ProblemKind::RequestInFlight,
            Self::CartChanged => ProblemKind::CartChanged,
            Self::PriceChanged { .. } => ProblemKind::PriceChanged,
            Self::OutOfStock { .. } => ProblemKind::OutOfStock,
            Self::OrderNotCancellable => ProblemKind::OrderNotCancellable,
            Self::OrderNotFulfillable => ProblemKind::OrderNotFulfillable,
            Self::PreconditionFailed => ProblemKind::PreconditionFailed,
            Self::PayloadTooLarge => ProblemKind::PayloadTooLarge,
            Self::InvalidValue(_) => ProblemKind::InvalidValue,
            Self::IdempotencyKeyReused => ProblemKind::IdempotencyKeyReused,
            Self::RateLimited { .. } | Self::Limited { .. } => ProblemKind::RateLimited,
            Self::Unavailable { .. } => ProblemKind::Unavailable,
            Self::Misconfigured { .. } => ProblemKind::Misconfigured,
            Self::Internal(_) => ProblemKind::Internal,
        }
    }

    /// What the log records beyond the kind (never a token, key or personal data).
    #[must_use]
    pub fn log_detail(&self) -> Option<String> {
        match self {
            Self::InvalidToken { reason } => Some((*reason).to_owned()),
            Self::Misconfigured { variable, reason } => Some(format!("{variable}: {reason}")),
            Self::Internal(detail) => Some(detail.clone()),
            Self::Unavailable { what, .. } => Some(what.clone()),
            Self::Limited { class, .. } => Some(format!("rate limit {class}")),
            Self::BadRequest(_)
            | Self::MissingToken
            | Self::InsufficientScope { .. }
            | Self::Forbidden(_)
            | Self::NotFound
            | Self::MethodNotAllowed { .. }
            | Self::RequestInFlight { .. }
            | Self::CartChanged
            | Self::PriceChanged { .. }
            | Self::OutOfStock { .. }
            | Self::OrderNotCancellable
            | Self::OrderNotFulfillable
            | Self::PreconditionFailed
            | Self::PayloadTooLarge
            | Self::InvalidValue(_)
            | Self::IdempotencyKeyReused
            | Self::RateLimited { .. } => None,
        }
    }

    /// The response a client sees. `development` adds internal detail to 5xx bodies.
    #[must_use]
    pub fn to_response(&self, development: bool) -> ProblemResponse {
        let kind = self.kind();
        let (_, status, title, explanation) = kind.describe();
        let mut headers = Vec::new();
        let mut sku = None;
        let mut total = None;
        let detail = match self {
            Self::BadRequest(d) | Self::InvalidValue(d) | Self::Forbidden(d) => d.clone(),
            Self::MissingToken => {
                headers.push(("WWW-Authenticate", format!("Bearer realm=\"{REALM}\"")));
                explanation.to_owned()
            }
            Self::InvalidToken { .. } => {
                headers.push((
                    "WWW-Authenticate",
                    format!("Bearer realm=\"{REALM}\", error=\"invalid_token\""),
                ));
                explanation.to_owned()
            }
            Self::InsufficientScope { scope } => {
                headers.push((
                    "WWW-Authenticate",
                    format!(
                        "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{scope}\""
                    ),
                ));
                format!("This operation needs the scope `{scope}`.")
            }
            Self::MethodNotAllowed { allow } => {
                headers.push(("Allow", (*allow).to_owned()));
                format!("This route answers {allow}.")
            }
            Self::RequestInFlight { retry_after } | Self::Unavailable { retry_after, .. } => {
                headers.push(("Retry-After", retry_after.to_string()));
                explanation.to_owned()
            }
            Self::RateLimited { retry_after } => {
                headers.push(("Retry-After", retry_after.to_string()));
                "The storage behind this resource is busy. Nothing was changed. Retry after Retry-After seconds.".to_owned()
            }
            Self::Limited { retry_after, .. } => {
                headers.push(("Retry-After", retry_after.to_string()));
                "Too many requests of this kind from this user or client address. Nothing was changed. Retry after Retry-After seconds.".to_owned()
            }
            Self::OutOfStock { sku: s } => {
                sku = Some(s.clone());
                format!("Not enough stock for `{s}`.")
            }
            Self::PriceChanged {
                total_minor,
                currency,
            } => {
                total = Some((*total_minor, currency.clone()));
                format!("The cart's total is now {total_minor} ({currency} minor units).")
            }
            Self::Misconfigured { variable, reason } => {
                if development {
                    format!("Configuration variable {variable} is invalid: {reason}")
                } else {
                    explanation.to_owned()
                }
            }
            Self::Internal(d) => {
                if development {
                    d.clone()
                } else {
                    explanation.to_owned()
                }
            }
            Self::NotFound
            | Self::CartChanged
            | Self::OrderNotCancellable
            | Self::OrderNotFulfillable
            | Self::PreconditionFailed
            | Self::PayloadTooLarge
            | Self::IdempotencyKeyReused => explanation.to_owned(),
        };
        ProblemResponse {
            status,
            headers,
            problem: Problem {
                type_uri: kind.type_uri(),
                title,
                status,
                detail,
                sku,
                total_minor: total.as_ref().map(|(t, _)| *t),
                currency: total.map(|(_, c)| c),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_unique_slug_that_round_trips() {
        for kind in ProblemKind::ALL {
            assert_eq!(ProblemKind::from_slug(kind.slug()), Some(kind));
            let same = ProblemKind::ALL
                .iter()
                .filter(|k| k.slug() == kind.slug())
                .count();
            assert_eq!(same, 1, "{}", kind.slug());
        }
    }

    #[test]
    fn a_missing_token_gets_a_challenge_without_error() {
        let r = ApiError::MissingToken.to_response(false);
        assert_eq!(r.status, 401);
        assert_eq!(
            r.headers,
            vec![("WWW-Authenticate", "Bearer realm=\"edgecart\"".to_owned())]
        );
    }

    #[test]
    fn an_invalid_token_gets_invalid_token_and_a_generic_body() {
        let r = ApiError::InvalidToken {
            reason: "kid not in key set",
        }
        .to_response(true);
        assert_eq!(r.status, 401);
        assert!(r
            .headers
            .iter()
            .any(|(_, v)| v == "Bearer realm=\"edgecart\", error=\"invalid_token\""));
        assert!(!r.problem.detail.contains("kid not in key set"));
        assert_eq!(r.problem.type_uri, "/problems/invalid-token");
    }

    #[test]
    fn internal_detail_reaches_the_body_only_in_development() {
        let e = ApiError::Internal("db exploded".into());
        assert!(!e.to_response(false).problem.detail.contains("db exploded"));
        assert_eq!(e.to_response(true).problem.detail, "db exploded");
        let m = ApiError::Misconfigured {
            variable: "JWT_LEEWAY_SECONDS",
            reason: "not a number".into(),
        };
        assert!(!m
            .to_response(false)
            .problem
            .detail
            .contains("JWT_LEEWAY_SECONDS"));
        assert!(m
            .to_response(true)
            .problem
            .detail
            .contains("JWT_LEEWAY_SECONDS"));
        assert_eq!(m.to_response(false).status, 500);
    }

    #[test]
    fn retry_after_and_allow_are_set_where_they_belong() {
        let r = ApiError::RequestInFlight { retry_after: 3 }.to_response(false);
        assert_eq!(
            (r.status, r.headers[0].clone()),
            (409, ("Retry-After", "3".to_owned()))
        );
        let r = ApiError::MethodNotAllowed { allow: "GET, HEAD" }.to_response(false);
        assert_eq!(
            (r.status, r.headers[0].clone()),
            (405, ("Allow", "GET, HEAD".to_owned()))
        );
        assert!(ApiError::CartChanged.to_response(false).headers.is_empty());
    }

    #[test]
    fn edgecarts_own_limits_and_a_busy_kv_share_the_rate_limited_type() {
        let own = ApiError::Limited {
            class: "write",
            retry_after: 10,
        };
        let r = own.to_response(false);
        assert_eq!(r.status, 429);
        assert_eq!(r.problem.type_uri, "/problems/rate-limited");
        assert_eq!(r.headers, vec![("Retry-After", "10".to_owned())]);
        assert!(!r.problem.detail.contains("storage"));
        assert_eq!(own.log_detail().as_deref(), Some("rate limit write"));
        let kv = ApiError::RateLimited { retry_after: 1 }.to_response(false);
        assert_eq!(kv.problem.type_uri, "/problems/rate-limited");
        assert!(kv.problem.detail.contains("storage"));
    }
}
