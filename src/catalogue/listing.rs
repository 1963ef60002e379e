//! The listing's query (`limit`, `cursor`) and its cursor codec (pure).
//!
//! A cursor is the lower-case hex of the last sku of the previous page: 2 to 128 characters
//! matching `^(?:2d|3[0-9]|6[1-9a-f]|7[0-9a]){1,64}$` (the hex of `-`, `0-9` and `a-z`), a
//! syntax the OpenAPI document states exactly, so a client or a fuzzer can tell a well-formed
//! cursor from a malformed one without asking. Listings are ordered by sku and paged by keyset
//! (`sku > cursor`), so a walk sees every product that exists throughout the walk exactly once,
//! even when others are added or removed meanwhile, and any well-formed cursor names a
//! position (also one whose product was deleted). Clients should still treat it as opaque.

use super::model::Sku;
use crate::http::problem::ApiError;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// The cursor's syntax as the OpenAPI document states it (`productCursor`).
pub const CURSOR_PATTERN: &str = "^(?:2d|3[0-9]|6[1-9a-f]|7[0-9a]){1,64}$";

/// Longest cursor text: the encoding of a longest sku.
const MAX_CURSOR_LEN: usize = Sku::MAX_LEN * 2;

/// A parsed `GET /products` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub limit: u32,
    /// The last sku of the previous page.
    pub after: Option<Sku>,
}

/// Why a listing query was refused (400); `Display` is the public detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError {
    Limit,
    Cursor,
    Repeated(&'static str),
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Limit => write!(f, "`limit` must be a whole number from 1 to {MAX_LIMIT}."),
            Self::Cursor => f.write_str("`cursor` is not a cursor this API returned."),
            Self::Repeated(name) => write!(f, "`{name}` is given more than once."),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        Self::BadRequest(e.to_string())
    }
}

/// Encodes the cursor that continues after `last`.
#[must_use]
pub fn encode_cursor(last: &Sku) -> String {
    crate::hash::hex(last.as_str().as_bytes())
}

/// Decodes a cursor back to the sku it continues after.
///
/// # Errors
/// [`QueryError::Cursor`] for anything [`encode_cursor`] cannot have produced (the empty
/// text, upper-case or odd-length hex, the hex of text that is no sku).
pub fn decode_cursor(text: &str) -> Result<Sku, QueryError> {
    if text.is_empty() || text.len() > MAX_CURSOR_LEN {
        return Err(QueryError::Cursor);
    }
    let bytes = crate::hash::from_hex(text).ok_or(QueryError::Cursor)?;
    let sku = std::str::from_utf8(&bytes).map_err(|_| QueryError::Cursor)?;
    Sku::parse(sku).map_err(|_| QueryError::Cursor)
}

impl ListQuery {
    /// Parses decoded query pairs. Unknown parameters are ignored (and do not enter the
    /// cache key); `limit` and `cursor` may appear at most once each.
    ///
    /// # Errors
    /// A [`QueryError`] for a malformed or out-of-range value.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, QueryError> {
        let mut limit = None;
        let mut cursor = None;
        for (name, value) in pairs {
            // The guards store the value; they fire only when one was already there.
            match name.as_str() {
                "limit" if limit.replace(value).is_some() => {
                    return Err(QueryError::Repeated("limit"));
                }
                "cursor" if cursor.replace(value).is_some() => {
                    return Err(QueryError::Repeated("cursor"));
                }
                _ => {}
            }
        }
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(text) => parse_limit(text)?,
        };
        let after = cursor.map(|c| decode_cursor(c)).transpose()?;
        Ok(Self { limit, after })
    }

    /// The canonical parameters for the cache key: the default limit is spelled out, so
    /// `/products` and `/products?limit=20` share an entry.
    #[must_use]
    pub fn canonical_params(&self) -> Vec<(&'static str, String)> {
        let mut params = vec![("limit", self.limit.to_string())];
        if let Some(after) = &self.after {
            params.push(("cursor", encode_cursor(after)));
        }
        params
    }
}

fn parse_limit(text: &str) -> Result<u32, QueryError> {
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QueryError::Limit);
    }
    let n: u32 = text.parse().map_err(|_| QueryError::Limit)?;
    if (1..=MAX_LIMIT).contains(&n) {
        Ok(n)
    } else {
        Err(QueryError::Limit)
    }
}

/// Splits a fetched run of up to `limit + 1` rows into the page and its `next_cursor`: a
/// next page exists exactly when the extra row came back.
#[must_use]
pub fn paginate<T>(
    mut rows: Vec<T>,
    limit: u32,
    sku_of: impl Fn(&T) -> &Sku,
) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(|r| encode_cursor(sku_of(r)));
        (rows, next)
    } else {
        (rows, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn sku(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }

    #[test]
    fn cursors_round_trip_every_sku() {
        for s in ["a", "tea-sencha-100g", &"z".repeat(64), "0-9"] {
            let c = encode_cursor(&sku(s));
            assert!(crate::hash::is_lower_hex(&c, c.len()));
            assert_eq!(decode_cursor(&c), Ok(sku(s)));
        }
    }

    #[test]
    fn malformed_cursors_are_refused() {
        let too_long = "61".repeat(65);
        for bad in [
            "",
            "!!!",
            "6",
            "6G",
            "61A",
            "5f",     // `_`
            "41",     // `A`
            "612061", // "a a"
            "c3a9",   // "é"
            too_long.as_str(),
            "dGVh", // the base64url form of earlier cursors
        ] {
            assert_eq!(decode_cursor(bad), Err(QueryError::Cursor), "{bad}");
        }
        assert_eq!(decode_cursor("2d"), Ok(sku("-")));
        assert_eq!(decode_cursor(&"7a".repeat(64)), Ok(sku(&"z".repeat(64))));
    }

    #[test]
    fn the_documented_pattern_is_the_cursor_syntax() {
        // `^(?:2d|3[0-9]|6[1-9a-f]|7[0-9a]){1,64}$`, by hand: each byte pair is the hex of
        // one sku character, and every such pair decodes.
        for b in 0_u8..=255 {
            let pair = crate::hash::hex(&[b]);
            let documented = pair == "2d"
                || (pair.starts_with('3') && pair.as_bytes()[1].is_ascii_digit())
                || (pair.starts_with('6') && pair != "60")
                || (pair.starts_with('7') && (pair.as_bytes()[1].is_ascii_digit() || pair == "7a"));
            assert_eq!(decode_cursor(&pair).is_ok(), documented, "{pair}");
        }
    }

    #[test]
    fn limits_default_to_twenty_and_stay_within_one_to_a_hundred() {
        assert_eq!(ListQuery::parse(&[]).unwrap().limit, 20);
        for (text, expected) in [
            ("1", Ok(1)),
            ("100", Ok(100)),
            ("007", Ok(7)),
            ("0", Err(QueryError::Limit)),
            ("101", Err(QueryError::Limit)),
            ("1000", Err(QueryError::Limit)),
            ("abc", Err(QueryError::Limit)),
            ("", Err(QueryError::Limit)),
            ("+5", Err(QueryError::Limit)),
            ("-1", Err(QueryError::Limit)),
            ("5.0", Err(QueryError::Limit)),
            (" 5", Err(QueryError::Limit)),
            ("99999999999999999999", Err(QueryError::Limit)),
        ] {
            let got = ListQuery::parse(&pairs(&[("limit", text)])).map(|q| q.limit);
            assert_eq!(got, expected, "{text}");
        }
    }

    #[test]
    fn repeated_parameters_are_refused_and_unknown_ones_ignored() {
        assert_eq!(
            ListQuery::parse(&pairs(&[("limit", "5"), ("limit", "6")])),
            Err(QueryError::Repeated("limit"))
        );
        assert_eq!(
            ListQuery::parse(&pairs(&[("cursor", "61"), ("cursor", "61")])),
            Err(QueryError::Repeated("cursor"))
        );
        let q = ListQuery::parse(&pairs(&[("utm_source", "x"), ("limit", "5")])).unwrap();
        assert_eq!(
            q,
            ListQuery {
                limit: 5,
                after: None
            }
        );
    }

    #[test]
    fn equivalent_queries_have_the_same_canonical_parameters() {
        let a = ListQuery::parse(&[]).unwrap();
        let b = ListQuery::parse(&pairs(&[("limit", "20"), ("x", "1")])).unwrap();
        assert_eq!(a.canonical_params(), b.canonical_params());
        let c = ListQuery::parse(&pairs(&[("cursor", "61"), ("limit", "020")])).unwrap();
        assert_eq!(
            c.canonical_params(),
            vec![("limit", "20".to_owned()), ("cursor", "61".to_owned())]
        );
    }

    #[test]
    fn a_page_has_a_next_cursor_only_when_more_rows_came_back() {
        let rows: Vec<Sku> = ["a", "b", "c"].iter().map(|s| sku(s)).collect();
        let (page, next) = paginate(rows.clone(), 2, |s| s);
        assert_eq!(page, rows[..2].to_vec());
        assert_eq!(next, Some(encode_cursor(&sku("b"))));
        let (page, next) = paginate(rows.clone(), 3, |s| s);
        assert_eq!((page.len(), next), (3, None));
        let (page, next) = paginate(Vec::<Sku>::new(), 3, |s| s);
        assert_eq!((page.len(), next), (0, None));
    }
}
