//! Strict JSON for token headers, claims, key sets and request bodies (pure).
//!
//! `serde_json` keeps the last of two members with the same name. In a token that is an attack
//! (A18): one parser may read the first `alg`, another the second. Here a duplicate member, at
//! any depth and however it was spelt (`"alg"` or `"\u0061lg"`: the comparison is on the
//! decoded name), refuses the whole document. Nesting is bounded so a hostile payload costs
//! bounded stack.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Deepest nesting accepted (claims are flat; key sets are three levels deep).
const MAX_DEPTH: usize = 16;

/// Why a document was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    /// Not JSON, invalid UTF-8, trailing garbage, too deep, or a duplicate member.
    Malformed,
    /// Valid JSON but not an object at the top.
    NotAnObject,
}

/// Parses `bytes` as one JSON object with no duplicate member anywhere.
///
/// # Errors
/// [`JsonError`] as above.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, JsonError> {
    match parse_strict(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(JsonError::NotAnObject),
        Err(_) => Err(JsonError::Malformed),
    }
}

/// Why a request body was refused, with the position where the problem was seen (1-based
/// line and column, as `serde_json` counts them). Its `Display` is the explanation the client
/// is shown: it names the position, never echoes the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON: a syntax error, invalid UTF-8, truncation or trailing garbage.
    Syntax { line: usize, column: usize },
    /// A member name that appears twice in one object (however it was spelt).
    DuplicateMember { line: usize, column: usize },
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep { line: usize, column: usize },
    /// Valid JSON, but not an object at the top (an array, a string, a number...).
    NotAnObject,
    /// An object, but not of the shape [`read_body`] was asked for: serde's account of why
    /// (a missing, unknown or mistyped member).
    Shape(String),
}

impl BodyError {
    /// Whether the body is not even JSON one can read (a syntax error, a member named twice,
    /// too deep), as opposed to JSON that is not of the expected shape.
    #[must_use]
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            Self::Syntax { .. } | Self::DuplicateMember { .. } | Self::TooDeep { .. }
        )
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax { line, column } => write!(
                f,
                "The body is not valid JSON (line {line}, column {column})."
            ),
            Self::DuplicateMember { line, column } => write!(
                f,
                "The body names a member twice (line {line}, column {column})."
            ),
            Self::TooDeep { line, column } => write!(
                f,
                "The body is nested too deeply (line {line}, column {column})."
            ),
            Self::NotAnObject => f.write_str("The body must be a JSON object."),
            Self::Shape(why) => write!(f, "The body has the wrong shape: {why}."),
        }
    }
}

/// Parses a request body as [`parse_object`] does, telling the reasons apart for the
/// client: the same strict reading (no duplicate member at any depth, bounded nesting, one
/// object and nothing after it) that token headers and claims get.
///
/// # Errors
/// [`BodyError`] as above.
pub fn parse_body(bytes: &[u8]) -> Result<Map<String, Value>, BodyError> {
    match parse_strict(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(BodyError::NotAnObject),
        Err(e) => {
            let (line, column) = (e.line(), e.column());
            let text = e.to_string();
            Err(if !e.is_data() {
                BodyError::Syntax { line, column }
            } else if text.starts_with(DUPLICATE) {
                BodyError::DuplicateMember { line, column }
            } else if text.starts_with(TOO_DEEP) {
                BodyError::TooDeep { line, column }
            } else {
                BodyError::Syntax { line, column }
            })
        }
    }
}

/// Reads a request body as a `T`: [`parse_body`], then `T`'s `Deserialize` on the object.
///
/// Only an object reaches `T`, so a JSON array is never read as a struct's fields in order
/// (serde's default for sequences). Which members an object may have is `T`'s decision
/// (`#[serde(deny_unknown_fields)]` where the document says `additionalProperties: false`).
///
/// # Errors
/// [`BodyError`]: as [`parse_body`], or [`BodyError::Shape`] when `T` refuses the object.
pub fn read_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    let map = parse_body(bytes)?;
    serde_json::from_value(Value::Object(map)).map_err(|e| BodyError::Shape(e.to_string()))
}

/// `deserialize_with` for an optional member that may be absent but not `null`: with
/// `#[serde(default)]` an absent member is `None`, and a present one must be a `T` (`null`
/// is refused as the wrong type, where `Option<T>` alone would read it as absent).
///
/// # Errors
/// When the member is not a `T` (including `null`).
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The whole number a JSON number stands for, as JSON Schema's `integer` reads it: `12`,
/// `12.0` and `1.2e1` are all 12 (one number, however it is written); `12.5`, and a float too
/// large to be exact (beyond ±2^64), are not whole numbers.
#[must_use]
#[allow(clippy::cast_possible_truncation)] // checked: integral and within ±2^64
pub fn whole_number(n: &serde_json::Number) -> Option<i128> {
    if let Some(v) = n.as_i64() {
        return Some(i128::from(v));
    }
    if let Some(v) = n.as_u64() {
        return Some(i128::from(v));
    }
    let f = n.as_f64()?;
    let bound = 18_446_744_073_709_551_616.0_f64; // 2^64
    (f.is_finite() && f.fract() == 0.0 && f.abs() <= bound).then_some(f as i128)
}

/// `deserialize_with` for a whole number ([`whole_number`]) of type `T`: a JSON number with
/// no fractional part and within `T`'s range; anything else is the wrong type.
///
/// # Errors
/// When the value is not such a number.
pub fn whole<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i128>,
{
    use serde::de::Error as _;
    let n = <serde_json::Number as serde::Deserialize>::deserialize(deserializer)?;
    let v = whole_number(&n).ok_or_else(|| D::Error::custom("expected a whole number"))?;
    T::try_from(v).map_err(|_| D::Error::custom("the number is out of range"))
}

/// [`whole`] for an optional member: absent is `None` (with `#[serde(default)]`), `null` is
/// refused as [`present`] does.
///
/// # Errors
/// When the value is present and not such a number.
pub fn present_whole<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i128>,
{
    whole(deserializer).map(Some)
}

const DUPLICATE: &str = "duplicate member";
const TOO_DEEP: &str = "nested too deeply";

fn parse_strict(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictSeed { depth: 0 }.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

struct StrictSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.depth > MAX_DEPTH {
            return Err(de::Error::custom(TOO_DEEP));
        }
        deserializer.deserialize_any(StrictVisitor { depth: self.depth })
    }
}

struct StrictVisitor {
    depth: usize,
}

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON without duplicate members")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictSeed {
            depth: self.depth + 1,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(StrictSeed {
                depth: self.depth + 1,
            })?;
            if out.insert(key, value).is_some() {
                return Err(de::Error::custom(DUPLICATE));
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_members_are_refused_however_they_are_spelt() {
        for doc in [
            r#"{"alg":"HS256","alg":"none"}"#,
            r#"{"alg":"HS256","\u0061lg":"none"}"#,
            r#"{"a":{"k":1,"k":2}}"#,
            r#"{"a":[{"k":1,"\u006b":2}]}"#,
        ] {
            assert_eq!(
                parse_object(doc.as_bytes()),
                Err(JsonError::Malformed),
                "{doc}"
            );
        }
    }

    #[test]
    fn only_one_object_is_accepted() {
        assert_eq!(parse_object(b"[1]"), Err(JsonError::NotAnObject));
        assert_eq!(parse_object(b"\"x\""), Err(JsonError::NotAnObject));
        assert_eq!(parse_object(b"{} x"), Err(JsonError::Malformed));
        assert_eq!(parse_object(b"{}{}"), Err(JsonError::Malformed));
        assert_eq!(parse_object(b"{\"a\":\"\xff\"}"), Err(JsonError::Malformed));
        assert!(parse_object(b" {\"a\":1} ").is_ok());
    }

    #[test]
    fn a_body_refusal_says_why_and_where() {
        assert_eq!(
            parse_body(b"{\"quantity\":1,\n\"\\u0071uantity\":2}"),
            Err(BodyError::DuplicateMember {
                line: 2,
                column: 18
            })
        );
        assert!(matches!(
            parse_body(b"{\"a\":[{\"k\":1,\"k\":2}]}"),
            Err(BodyError::DuplicateMember { line: 1, .. })
        ));
        assert_eq!(parse_body(b"[1]"), Err(BodyError::NotAnObject));
        assert_eq!(parse_body(b"null"), Err(BodyError::NotAnObject));
        assert_eq!(
            parse_body(b"{\"a\":1"),
            Err(BodyError::Syntax { line: 1, column: 6 })
        );
        assert!(matches!(
            parse_body(b"{} x"),
            Err(BodyError::Syntax { line: 1, .. })
        ));
        assert!(matches!(parse_body(b""), Err(BodyError::Syntax { .. })));
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(40), "]".repeat(40));
        assert!(matches!(
            parse_body(deep.as_bytes()),
            Err(BodyError::TooDeep { .. })
        ));
        assert_eq!(parse_body(b" {\"quantity\": 2} ").map(|m| m.len()), Ok(1));
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(deserialize_with = "whole")]
        count: u8,
        #[serde(default, deserialize_with = "present")]
        note: Option<String>,
    }

    #[test]
    fn a_body_is_read_as_its_type_only_from_an_object() {
        assert_eq!(
            read_body::<Body>(br#"{"count": 2.0}"#),
            Ok(Body {
                count: 2,
                note: None
            })
        );
        assert_eq!(read_body::<Body>(b"[2]"), Err(BodyError::NotAnObject));
        assert!(matches!(
            read_body::<Body>(br#"{"count": 2, "count": 3}"#),
            Err(BodyError::DuplicateMember { line: 1, .. })
        ));
        for wrong in [
            r#"{}"#,
            r#"{"count": 2.5}"#,
            r#"{"count": 256}"#,
            r#"{"count": 2, "note": null}"#,
            r#"{"count": 2, "other": 1}"#,
        ] {
            assert!(
                matches!(
                    read_body::<Body>(wrong.as_bytes()),
                    Err(BodyError::Shape(_))
                ),
                "{wrong}"
            );
        }
    }

    #[test]
    fn a_body_error_explains_itself() {
        let Err(error) = read_body::<Body>(br#"{"count": "two"}"#) else {
            panic!("a string is no count");
        };
        let text = error.to_string();
        assert!(text.starts_with("The body has the wrong shape: "), "{text}");
        assert!(!error.is_malformed());
        assert_eq!(
            BodyError::Syntax { line: 1, column: 6 }.to_string(),
            "The body is not valid JSON (line 1, column 6)."
        );
        assert_eq!(
            BodyError::DuplicateMember {
                line: 2,
                column: 18
            }
            .to_string(),
            "The body names a member twice (line 2, column 18)."
        );
        assert_eq!(
            BodyError::TooDeep {
                line: 1,
                column: 90
            }
            .to_string(),
            "The body is nested too deeply (line 1, column 90)."
        );
        assert_eq!(
            BodyError::NotAnObject.to_string(),
            "The body must be a JSON object."
        );
    }

    #[test]
    fn a_whole_number_is_one_however_it_is_written() {
        let number = |text: &str| serde_json::from_str::<serde_json::Number>(text).unwrap();
        for (text, expected) in [
            ("12", Some(12)),
            ("12.0", Some(12)),
            ("1.2e1", Some(12)),
            ("-3", Some(-3)),
            ("18446744073709551615", Some(i128::from(u64::MAX))),
            ("12.5", None),
            ("1e30", None),
        ] {
            assert_eq!(whole_number(&number(text)), expected, "{text}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_exhausting_the_stack() {
        let doc = format!("{{\"a\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(parse_object(doc.as_bytes()), Err(JsonError::Malformed));
    }
}
