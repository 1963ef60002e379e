//! The CORS decision, pure: which headers a response gets for a given `Origin`.
//!
//! No `worker` types, no I/O: the edge ([`super`]) passes the configured origins, the request's
//! `Origin` and the response's current `Vary`, and writes back what this returns. That keeps the
//! whole policy testable natively.
//!
//! The policy (Fetch standard, "CORS protocol"):
//! - An origin is allowed only when it is listed in `CORS_ALLOW_ORIGINS`, compared exactly after
//!   normalising the configured entries (ASCII lowercase, no trailing `/`), because browsers send
//!   the serialised origin in that form. `*` is not a wildcard, and the opaque origin `null` is
//!   never allowed: a sandboxed iframe or a `file:` page must not get access by sending `null`.
//! - Allowed: the origin is echoed in `Access-Control-Allow-Origin` (never `*`, never a list).
//!   No `Access-Control-Allow-Credentials`: the API uses bearer tokens, not cookies.
//! - Not allowed: no `Access-Control-*` header at all, so the browser refuses to hand the
//!   response to the page. A preflight from such an origin is still answered 204 (not 403): the
//!   missing headers are the refusal, and the answer does not depend on what is asked.
//! - Whenever any origin is configured, every response carries `Vary: Origin` (appended to an
//!   existing `Vary`), allowed origin or not, because the response then differs by `Origin`: a
//!   browser cache that stored a response without `Access-Control-Allow-Origin` must not reuse it
//!   for a cross-origin request. With an empty list nothing is added at all.

/// Methods a preflight allows. The API as a whole: a method a route does not answer still gets
/// its 405 + `Allow` on the actual request.
pub const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, DELETE";

/// Request headers a cross-origin page may send.
pub const ALLOW_HEADERS: &str =
    "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, Edgecart-Bookmark";

/// Response headers a cross-origin page may read (besides the CORS-safelisted ones).
pub const EXPOSE_HEADERS: &str =
    "ETag, Location, Idempotent-Replayed, Cache-Status, Retry-After, X-Request-Id, WWW-Authenticate, Allow, Edgecart-Bookmark";

/// How long (seconds) a browser may cache a preflight answer. Chromium caps this at 7200.
pub const MAX_AGE_SECONDS: u32 = 600;

/// What kind of response is being decorated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    /// The answer to an `OPTIONS` preflight.
    Preflight,
    /// Any other response (success or problem).
    Actual,
}

/// The decision for one request's `Origin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// CORS is off (no origins configured): add nothing.
    Off,
    /// Origins are configured but this request's is not one of them (or it sent none).
    NotAllowed,
    /// The request's origin is listed; echo it.
    Allowed(String),
}

/// Normalises one configured origin for comparison: trimmed, ASCII lowercase, without a
/// trailing `/`.
#[must_use]
pub fn normalise(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Decides whether `origin` is allowed by `allowed` (the configured list).
#[must_use]
pub fn decide(allowed: &[String], origin: Option<&str>) -> Decision {
    if allowed.is_empty() {
        return Decision::Off;
    }
    let Some(origin) = origin else {
        return Decision::NotAllowed;
    };
    if origin == "null" || origin.is_empty() {
        return Decision::NotAllowed;
    }
    if allowed
        .iter()
        .any(|entry| entry != "*" && entry != "null" && normalise(entry) == origin)
    {
        Decision::Allowed(origin.to_owned())
    } else {
        Decision::NotAllowed
    }
}

/// `Vary` with `Origin` appended unless it already names it (or is `*`).
#[must_use]
pub fn vary_with_origin(existing: Option<&str>) -> String {
    match existing.map(str::trim).filter(|v| !v.is_empty()) {
        None => "Origin".to_owned(),
        Some(v) => {
            let named = v
                .split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.eq_ignore_ascii_case("origin"));
            if named {
                v.to_owned()
            } else {
                format!("{v}, Origin")
            }
        }
    }
}

/// The headers to set on a response, given the decision, the kind of exchange and the
/// response's current `Vary`. Each pair replaces the header of that name.
#[must_use]
pub fn headers(
    decision: &Decision,
    exchange: Exchange,
    existing_vary: Option<&str>,
) -> Vec<(&'static str, String)> {
    match decision {
        Decision::Off => Vec::new(),
        Decision::NotAllowed => vec![("Vary", vary_with_origin(existing_vary))],
        Decision::Allowed(origin) => {
            let mut out = vec![
                ("Access-Control-Allow-Origin", origin.clone()),
                ("Vary", vary_with_origin(existing_vary)),
            ];
            match exchange {
                Exchange::Preflight => {
                    out.push(("Access-Control-Allow-Methods", ALLOW_METHODS.to_owned()));
                    out.push(("Access-Control-Allow-Headers", ALLOW_HEADERS.to_owned()));
                    out.push(("Access-Control-Max-Age", MAX_AGE_SECONDS.to_string()));
                }
                Exchange::Actual => {
                    out.push(("Access-Control-Expose-Headers", EXPOSE_HEADERS.to_owned()));
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn origins_are_allowed_only_when_listed_exactly() {
        let allowed = list(&["https://shop.example", "HTTP://127.0.0.1:5000/"]);
        let cases: [(Option<&str>, Decision); 9] = [
            (
                Some("https://shop.example"),
                Decision::Allowed("https://shop.example".into()),
            ),
            (
                Some("http://127.0.0.1:5000"),
                Decision::Allowed("http://127.0.0.1:5000".into()),
            ),
            (Some("https://shop.example.evil"), Decision::NotAllowed),
            (Some("https://evil.shop.example"), Decision::NotAllowed),
            (Some("http://shop.example"), Decision::NotAllowed),
            (Some("https://shop.example:443x"), Decision::NotAllowed),
            (Some("null"), Decision::NotAllowed),
            (Some(""), Decision::NotAllowed),
            (None, Decision::NotAllowed),
        ];
        for (origin, expected) in cases {
            assert_eq!(decide(&allowed, origin), expected, "{origin:?}");
        }
    }

    #[test]
    fn an_empty_list_turns_cors_off_for_every_origin() {
        for origin in [Some("https://shop.example"), Some("null"), None] {
            assert_eq!(decide(&[], origin), Decision::Off);
            assert!(headers(&decide(&[], origin), Exchange::Actual, None).is_empty());
        }
    }

    #[test]
    fn star_and_null_in_the_list_are_not_wildcards() {
        let allowed = list(&["*", "null"]);
        assert_eq!(
            decide(&allowed, Some("https://any.example")),
            Decision::NotAllowed
        );
        assert_eq!(decide(&allowed, Some("null")), Decision::NotAllowed);
    }

    #[test]
    fn vary_gets_origin_appended_once() {
        let cases = [
            (None, "Origin"),
            (Some(""), "Origin"),
            (Some("Accept-Encoding"), "Accept-Encoding, Origin"),
            (Some("Accept-Encoding, origin"), "Accept-Encoding, origin"),
            (Some("Origin"), "Origin"),
            (Some("*"), "*"),
        ];
        for (existing, expected) in cases {
            assert_eq!(vary_with_origin(existing), expected, "{existing:?}");
        }
    }

    #[test]
    fn an_allowed_actual_response_exposes_the_api_headers() {
        let got = headers(
            &Decision::Allowed("https://shop.example".into()),
            Exchange::Actual,
            Some("Accept-Encoding"),
        );
        assert_eq!(
            got,
            vec![
                (
                    "Access-Control-Allow-Origin",
                    "https://shop.example".to_owned()
                ),
                ("Vary", "Accept-Encoding, Origin".to_owned()),
                ("Access-Control-Expose-Headers", EXPOSE_HEADERS.to_owned()),
            ]
        );
    }

    #[test]
    fn an_allowed_preflight_lists_methods_headers_and_max_age() {
        let got = headers(
            &Decision::Allowed("https://shop.example".into()),
            Exchange::Preflight,
            None,
        );
        let names: Vec<&str> = got.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            vec![
                "Access-Control-Allow-Origin",
                "Vary",
                "Access-Control-Allow-Methods",
                "Access-Control-Allow-Headers",
                "Access-Control-Max-Age",
            ]
        );
        assert!(got.iter().any(|(n, v)| *n == "Access-Control-Allow-Headers"
            && v.contains("Idempotency-Key")
            && v.contains("If-Match")));
    }

    #[test]
    fn a_refused_origin_gets_only_vary() {
        for exchange in [Exchange::Preflight, Exchange::Actual] {
            let got = headers(&Decision::NotAllowed, exchange, None);
            assert_eq!(got, vec![("Vary", "Origin".to_owned())]);
        }
    }
}
