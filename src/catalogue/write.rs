//! Validation of `PUT /products/{sku}` bodies (pure).
//!
//! The body is the shape `GET /products/{sku}` returns, with the exact `stock`. The server
//! fields `version`, `updated_at`, `availability` and `stock_left` are ignored (the server
//! owns them, the last two follow from `stock`); `sku`, when present, must equal the
//! path's. Every other member is checked by hand on a `serde_json::Value`, so each refusal
//! names the member and why, and numbers that are negative, fractional, strings or too large
//! are told apart from missing ones. Any refusal is a 422 (the JSON itself was well-formed).

use serde_json::{Map, Value};

use super::model::{Currency, Sku};

/// A validated product write: everything the client may set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductInput {
    pub sku: Sku,
    pub name: String,
    pub description: String,
    pub price_minor: i64,
    pub currency: Currency,
    pub stock: i64,
}

/// Why a write body was refused; `Display` is the public detail text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    NotAnObject,
    Missing(&'static str),
    WrongType {
        member: &'static str,
        expected: &'static str,
    },
    OutOfRange {
        member: &'static str,
        min: i64,
        max: i64,
    },
    Length {
        member: &'static str,
        min: usize,
        max: usize,
    },
    ControlCharacters(&'static str),
    UnknownCurrency,
    SkuMismatch,
    UnknownMember(String),
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAnObject => f.write_str("The body must be a JSON object."),
            Self::Missing(m) => write!(f, "`{m}` is required."),
            Self::WrongType { member, expected } => write!(f, "`{member}` must be {expected}."),
            Self::OutOfRange { member, min, max } => {
                write!(f, "`{member}` must be between {min} and {max}.")
            }
            Self::Length { member, min, max } => {
                write!(f, "`{member}` must have {min} to {max} characters.")
            }
            Self::ControlCharacters(m) => write!(f, "`{m}` must not contain control characters."),
            Self::UnknownCurrency => {
                f.write_str("`currency` must be a supported ISO 4217 code, e.g. \"EUR\".")
            }
            Self::SkuMismatch => f.write_str("`sku` in the body differs from the sku in the path."),
            Self::UnknownMember(m) => {
                // Member names are echoed only when short and printable.
                if m.chars().count() <= 40 && m.chars().all(|c| !c.is_control()) {
                    write!(f, "Unknown member `{m}`.")
                } else {
                    f.write_str("The body has an unknown member.")
                }
            }
        }
    }
}

impl From<InputError> for crate::http::problem::ApiError {
    fn from(e: InputError) -> Self {
        Self::InvalidValue(e.to_string())
    }
}

/// Limits, public for the OpenAPI document and tests.
pub const NAME_MAX_CHARS: usize = 200;
pub const DESCRIPTION_MAX_CHARS: usize = 2000;
pub const PRICE_MAX_MINOR: i64 = 100_000_000;
pub const STOCK_MAX: i64 = 1_000_000;

/// Members a client may send: the GET shape.
const KNOWN: [&str; 10] = [
    "sku",
    "name",
    "description",
    "price_minor",
    "currency",
    "stock",
    "version",
    "updated_at",
    "availability",
    "stock_left",
];

impl ProductInput {
    /// Validates a parsed body against the sku of the path.
    ///
    /// # Errors
    /// The first [`InputError`] found, members checked in a fixed order.
    pub fn from_json(path_sku: &Sku, body: &Value) -> Result<Self, InputError> {
        let Value::Object(map) = body else {
            return Err(InputError::NotAnObject);
        };
        if let Some(unknown) = map.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(InputError::UnknownMember(unknown.clone()));
        }
        match map.get("sku") {
            None => {}
            Some(Value::String(s)) if s == path_sku.as_str() => {}
            Some(Value::String(_)) => return Err(InputError::SkuMismatch),
            Some(_) => {
                return Err(InputError::WrongType {
                    member: "sku",
                    expected: "a string",
                })
            }
        }
        let name = text(map, "name", true, 1, NAME_MAX_CHARS, false)?;
        let description = text(map, "description", false, 0, DESCRIPTION_MAX_CHARS, true)?;
        let price_minor = integer(map, "price_minor", PRICE_MAX_MINOR)?;
        let currency = match map.get("currency") {
            None => return Err(InputError::Missing("currency")),
            Some(Value::String(c)) => {
                Currency::parse(c).map_err(|_| InputError::UnknownCurrency)?
            }
            Some(_) => {
                return Err(InputError::WrongType {
                    member: "currency",
                    expected: "a string",
                })
            }
        };
        let stock = integer(map, "stock", STOCK_MAX)?;
        Ok(Self {
            sku: path_sku.clone(),
            name,
            description,
            price_minor,
            currency,
            stock,
        })
    }
}

fn text(
    map: &Map<String, Value>,
    member: &'static str,
    required: bool,
    min: usize,
    max: usize,
    newlines: bool,
) -> Result<String, InputError> {
    let s = match map.get(member) {
        None if required => return Err(InputError::Missing(member)),
        None => return Ok(String::new()),
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err(InputError::WrongType {
                member,
                expected: "a string",
            })
        }
    };
    let chars = s.chars().count();
    if chars < min || chars > max || (min > 0 && s.trim().is_empty()) {
        return Err(InputError::Length { member, min, max });
    }
    let allowed = |c: char| !c.is_control() || (newlines && matches!(c, '\n' | '\t' | '\r'));
    if !s.chars().all(allowed) {
        return Err(InputError::ControlCharacters(member));
    }
    Ok(s.clone())
}

/// A required whole number in `0..=max`, as JSON Schema's `integer` reads it: `12`, `12.0`
/// and `1.2e1` are one number, 12. `12.5`, `"12"`, `-1` and `true` are refused: money and
/// stock are exact whole numbers, never coerced from text or rounded.
fn integer(map: &Map<String, Value>, member: &'static str, max: i64) -> Result<i64, InputError> {
    let wrong = InputError::WrongType {
        member,
        expected: "a whole number",
    };
    let range = InputError::OutOfRange {
        member,
        min: 0,
        max,
    };
    match map.get(member) {
        None => Err(InputError::Missing(member)),
        Some(Value::Number(n)) => match crate::http::whole_number(n) {
            Some(v) if (0..=i128::from(max)).contains(&v) => i64::try_from(v).map_err(|_| range),
            Some(_) => Err(range),
            // Fractional, or a float too large to be exact.
            None => Err(wrong),
        },
        Some(_) => Err(wrong),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sku() -> Sku {
        Sku::parse("tea-sencha-100g").unwrap()
    }

    fn valid() -> Value {
        json!({"name": "Sencha, 100 g", "description": "Steamed green tea.",
               "price_minor": 1250, "currency": "EUR", "stock": 42})
    }

    fn with(member: &str, value: Value) -> Value {
        let mut v = valid();
        v.as_object_mut().unwrap().insert(member.into(), value);
        v
    }

    fn without(member: &str) -> Value {
        let mut v = valid();
        v.as_object_mut().unwrap().remove(member);
        v
    }

    #[test]
    fn a_complete_body_becomes_an_input_with_the_path_sku() {
        let input = ProductInput::from_json(&sku(), &valid()).unwrap();
        assert_eq!(input.sku, sku());
        assert_eq!(input.price_minor, 1250);
        assert_eq!(input.currency.as_str(), "EUR");
        assert_eq!(input.stock, 42);
    }

    #[test]
    fn server_fields_and_a_matching_sku_are_accepted_and_ignored() {
        let mut body = valid();
        let map = body.as_object_mut().unwrap();
        map.insert("version".into(), json!(99));
        map.insert("updated_at".into(), json!("whatever"));
        map.insert("availability".into(), json!("in_stock"));
        map.insert("stock_left".into(), json!(null));
        map.insert("sku".into(), json!("tea-sencha-100g"));
        assert!(ProductInput::from_json(&sku(), &body).is_ok());
    }

    #[test]
    fn a_missing_description_is_empty() {
        let input = ProductInput::from_json(&sku(), &without("description")).unwrap();
        assert_eq!(input.description, "");
    }

    #[test]
    fn each_invalid_body_is_refused_with_its_reason() {
        let wrong_int = |m| InputError::WrongType {
            member: m,
            expected: "a whole number",
        };
        let cases: Vec<(Value, InputError)> = vec![
            (json!([1, 2]), InputError::NotAnObject),
            (json!("x"), InputError::NotAnObject),
            (without("name"), InputError::Missing("name")),
            (without("price_minor"), InputError::Missing("price_minor")),
            (without("currency"), InputError::Missing("currency")),
            (without("stock"), InputError::Missing("stock")),
            (
                with("name", json!("")),
                InputError::Length {
                    member: "name",
                    min: 1,
                    max: 200,
                },
            ),
            (
                with("name", json!("   ")),
                InputError::Length {
                    member: "name",
                    min: 1,
                    max: 200,
                },
            ),
            (
                with("name", json!("x".repeat(201))),
                InputError::Length {
                    member: "name",
                    min: 1,
                    max: 200,
                },
            ),
            (
                with("name", json!(12)),
                InputError::WrongType {
                    member: "name",
                    expected: "a string",
                },
            ),
            (
                with("name", json!("a\u{0}b")),
                InputError::ControlCharacters("name"),
            ),
            (
                with("description", json!("d".repeat(2001))),
                InputError::Length {
                    member: "description",
                    min: 0,
                    max: 2000,
                },
            ),
            (
                with("price_minor", json!(-1)),
                InputError::OutOfRange {
                    member: "price_minor",
                    min: 0,
                    max: 100_000_000,
                },
            ),
            (
                with("price_minor", json!(100_000_001)),
                InputError::OutOfRange {
                    member: "price_minor",
                    min: 0,
                    max: 100_000_000,
                },
            ),
            (
                with("price_minor", json!(u64::MAX)),
                InputError::OutOfRange {
                    member: "price_minor",
                    min: 0,
                    max: 100_000_000,
                },
            ),
            (with("price_minor", json!(12.5)), wrong_int("price_minor")),
            (with("price_minor", json!(1e30)), wrong_int("price_minor")),
            (with("price_minor", json!("1250")), wrong_int("price_minor")),
            (with("price_minor", json!(null)), wrong_int("price_minor")),
            (with("stock", json!(true)), wrong_int("stock")),
            (
                with("stock", json!(1_000_001)),
                InputError::OutOfRange {
                    member: "stock",
                    min: 0,
                    max: 1_000_000,
                },
            ),
            (with("currency", json!("XXX")), InputError::UnknownCurrency),
            (with("currency", json!("eur")), InputError::UnknownCurrency),
            (
                with("currency", json!(978)),
                InputError::WrongType {
                    member: "currency",
                    expected: "a string",
                },
            ),
            (with("sku", json!("other-sku")), InputError::SkuMismatch),
            (
                with("colour", json!("red")),
                InputError::UnknownMember("colour".into()),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                ProductInput::from_json(&sku(), &body),
                Err(expected.clone()),
                "{body}"
            );
            assert!(!expected.to_string().is_empty());
        }
    }

    #[test]
    fn limits_are_inclusive() {
        let max = with("price_minor", json!(100_000_000));
        assert!(ProductInput::from_json(&sku(), &max).is_ok());
        let zero = with("stock", json!(0));
        assert!(ProductInput::from_json(&sku(), &zero).is_ok());
        let whole = with("price_minor", json!(1250.0));
        assert_eq!(
            ProductInput::from_json(&sku(), &whole).map(|i| i.price_minor),
            Ok(1250)
        );
        let long = with("name", json!("é".repeat(200)));
        assert!(ProductInput::from_json(&sku(), &long).is_ok());
    }
}
