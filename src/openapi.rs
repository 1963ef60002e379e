//! `GET /openapi.json`: the OpenAPI 3.1 description of every route.
//!
//! The document is a file, `src/openapi.json`, compiled into the worker with `include_str!`
//! and served as it is: no per-request work beyond copying bytes, and a reviewer reads the
//! contract in one place. It is kept true in two ways:
//! - the native tests below check it against the code it describes: every problem kind of
//!   [`ProblemKind::ALL`] (type, title, status) appears in `x-problem-types`, in the `Problem`
//!   schema's `type` enum and in the `{kind}` parameter, and every `$ref` resolves;
//! - `tests/worker/openapi.test.mjs` validates it with an OpenAPI 3.1 validator and checks real
//!   responses of the running worker against its schemas;
//! - `tests/api-fuzz` (part of `npm test`) drives the running worker with requests generated
//!   from it, valid and invalid, and checks that the answers are the documented ones: every
//!   constraint the server enforces on an input is in the document, and only those.
//!
//! Public and identical for everyone, so a shared cache may keep it for five minutes.

use worker::{Headers, Response};

use crate::http::problem::ApiError;

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// `Cache-Control` of the document.
pub const CACHE_CONTROL: &str = "public, max-age=300";

/// Serves the document.
///
/// # Errors
/// Never; the signature matches the other handlers.
pub fn document() -> Result<Response, ApiError> {
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "application/json");
    let _ = headers.set("Cache-Control", CACHE_CONTROL);
    Ok(Response::builder()
        .with_headers(headers)
        .fixed(DOCUMENT.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::problem::ProblemKind;
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::from_str(DOCUMENT).unwrap_or(Value::Null)
    }

    /// Follows a JSON pointer, `Value::Null` when absent.
    fn at(v: &Value, pointer: &str) -> Value {
        v.pointer(pointer).cloned().unwrap_or(Value::Null)
    }

    fn strings(v: &Value) -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn the_document_is_json_and_declares_openapi_3_1() {
        let d = doc();
        assert_eq!(at(&d, "/openapi"), "3.1.0");
        assert_eq!(at(&d, "/info/version"), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn every_problem_kind_is_listed_with_its_title_and_status() {
        let d = doc();
        let listed = at(&d, "/x-problem-types");
        let listed = listed.as_array().cloned().unwrap_or_default();
        assert_eq!(listed.len(), ProblemKind::ALL.len());
        for (kind, entry) in ProblemKind::ALL.iter().zip(&listed) {
            assert_eq!(at(entry, "/type"), Value::from(kind.type_uri()));
            assert_eq!(at(entry, "/title"), Value::from(kind.title()));
            assert_eq!(at(entry, "/status"), Value::from(kind.status()));
        }
    }

    #[test]
    fn the_problem_schema_and_the_kind_parameter_name_every_kind() {
        let d = doc();
        let types = strings(&at(&d, "/components/schemas/Problem/properties/type/enum"));
        let slugs = strings(&at(&d, "/components/parameters/kind/schema/enum"));
        let want_types: Vec<String> = ProblemKind::ALL.iter().map(|k| k.type_uri()).collect();
        let want_slugs: Vec<String> = ProblemKind::ALL
            .iter()
            .map(|k| k.slug().to_owned())
            .collect();
        assert_eq!(types, want_types);
        assert_eq!(slugs, want_slugs);
    }

    #[test]
    fn every_route_of_the_contract_is_described_with_its_methods() {
        let d = doc();
        let routes: [(&str, &[&str]); 13] = [
            ("/", &["get"]),
            ("/health", &["get"]),
            ("/health/ready", &["get"]),
            ("/me", &["get"]),
            ("/products", &["get", "head"]),
            ("/products/{sku}", &["get", "head", "put", "delete"]),
            ("/cart", &["get", "delete"]),
            ("/cart/items/{sku}", &["put", "delete"]),
            ("/orders", &["get", "post"]),
            ("/orders/{id}", &["get"]),
            ("/dev/token", &["post"]),
            ("/openapi.json", &["get"]),
            ("/problems/{kind}", &["get"]),
        ];
        let paths = at(&d, "/paths");
        for (path, methods) in routes {
            for method in methods {
                assert!(
                    paths.get(path).and_then(|p| p.get(*method)).is_some(),
                    "{method} {path} is not described"
                );
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        fn walk(v: &Value, root: &Value, bad: &mut Vec<String>) {
            match v {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        let resolved = r.strip_prefix('#').and_then(|p| root.pointer(p)).is_some();
                        if !resolved {
                            bad.push(r.clone());
                        }
                    }
                    for child in map.values() {
                        walk(child, root, bad);
                    }
                }
                Value::Array(items) => {
                    for child in items {
                        walk(child, root, bad);
                    }
                }
                Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
            }
        }
        let d = doc();
        let mut bad = Vec::new();
        walk(&d, &d, &mut bad);
        assert!(bad.is_empty(), "unresolved: {bad:?}");
    }

    #[test]
    fn the_documented_syntax_of_ids_and_cursors_is_the_parsers() {
        let d = doc();
        assert_eq!(
            at(&d, "/components/parameters/productCursor/schema/pattern"),
            crate::catalogue::listing::CURSOR_PATTERN
        );
        assert_eq!(
            at(
                &d,
                "/components/schemas/ProductList/properties/next_cursor/pattern"
            ),
            crate::catalogue::listing::CURSOR_PATTERN
        );
        let order_cursor = crate::orders::model::Cursor::PATTERN;
        assert_eq!(
            at(
                &d,
                "/components/schemas/OrderList/properties/next_cursor/pattern"
            ),
            order_cursor
        );
        let inner = order_cursor.trim_start_matches('^').trim_end_matches('$');
        assert_eq!(
            at(&d, "/components/parameters/orderCursor/schema/pattern"),
            Value::from(format!("^(?:{inner})?$"))
        );
        assert_eq!(
            at(&d, "/components/parameters/sku/schema/pattern"),
            "^[a-z0-9-]{1,64}$"
        );
        assert_eq!(
            at(
                &d,
                "/components/schemas/ProductInput/properties/name/maxLength"
            ),
            Value::from(crate::catalogue::write::NAME_MAX_CHARS)
        );
        assert_eq!(
            at(
                &d,
                "/components/schemas/ProductInput/properties/description/maxLength"
            ),
            Value::from(crate::catalogue::write::DESCRIPTION_MAX_CHARS)
        );
        assert_eq!(
            at(
                &d,
                "/components/schemas/ProductInput/properties/price_minor/maximum"
            ),
            Value::from(crate::catalogue::write::PRICE_MAX_MINOR)
        );
        assert_eq!(
            at(
                &d,
                "/components/schemas/ProductInput/properties/stock/maximum"
            ),
            Value::from(crate::catalogue::write::STOCK_MAX)
        );
        assert_eq!(
            at(
                &d,
                "/components/schemas/Product/properties/stock_left/maximum"
            ),
            Value::from(crate::catalogue::model::LOW_STOCK_MAX)
        );
        assert_eq!(
            at(
                &d,
                "/components/schemas/DevTokenInput/properties/ttl_seconds/maximum"
            ),
            Value::from(crate::auth::dev_token::MAX_TTL_SECONDS)
        );
        for schema in [
            "CartItemInput",
            "CheckoutInput",
            "DevTokenInput",
            "ProductInput",
        ] {
            assert_eq!(
                at(
                    &d,
                    &format!("/components/schemas/{schema}/additionalProperties")
                ),
                Value::Bool(false),
                "{schema}"
            );
        }
    }

    #[test]
    fn bearer_routes_declare_the_security_scheme() {
        let d = doc();
        for pointer in [
            "/paths/~1me/get/security",
            "/paths/~1cart/get/security",
            "/paths/~1orders/post/security",
            "/paths/~1orders~1{id}/get/security",
        ] {
            assert_eq!(
                at(&d, &format!("{pointer}/0/bearerAuth")),
                Value::Array(vec![])
            );
        }
        assert_eq!(
            at(&d, "/components/securitySchemes/bearerAuth/scheme"),
            "bearer"
        );
    }

    #[test]
    fn every_rate_limit_class_is_documented_with_its_binding_and_period() {
        let d = doc();
        for class in crate::limits::policy::Class::ALL {
            let entry = at(&d, &format!("/x-rate-limits/{}", class.name()));
            assert_eq!(entry["binding"], class.binding());
            assert_eq!(entry["period_seconds"], class.period_seconds());
        }
        for pointer in [
            "/paths/~1cart~1items~1{sku}/put",
            "/paths/~1cart/delete",
            "/paths/~1orders/post",
            "/paths/~1dev~1token/post",
            "/paths/~1me/get",
        ] {
            let op = at(&d, pointer);
            assert!(op["responses"]["429"].is_object(), "{pointer}");
            assert!(op["x-rate-limits"].is_array(), "{pointer}");
        }
        assert!(at(&d, "/paths/~1products/get")
            .get("x-rate-limits")
            .is_none());
    }
}
