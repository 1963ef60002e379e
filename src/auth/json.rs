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
/// line and column, as `serde_json` counts them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON: a syntax error, invalid UTF-8, truncation or trailing garbage.
    Syntax { line: usize, column: usize },
    /// A member name that appears twice in one object (however it was spelt).
    DuplicateMember { line: usize, column: usize },
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep { line: usize, column: usize },
    /// Valid JSON, but not an object at the top (an array, a string, a number...).
    NotAnObject,
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

    #[test]
    fn deep_nesting_is_refused_without_exhausting_the_stack() {
        let doc = format!("{{\"a\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(parse_object(doc.as_bytes()), Err(JsonError::Malformed));
    }
}
