//! `If-Match` on writes (RFC 9110 §8.8.3, §13.1.1), pure.
//!
//! Writes may send `If-Match` with a list of tags or `*`; the comparison is strong (a weak
//! tag `W/"7"` never matches). `*` matches any current representation and fails when there
//! is none. A header that is not a valid list of entity tags is a 400, never silently
//! ignored: a client that meant to guard its write must learn it did not.
//!
//! A cart's entity tag is its version, strong and quoted (`"7"`); a product's is a hash of
//! its JSON (see `catalogue::caching::strong_etag`).

/// The strong entity tag of a version number, with its quotes: `"7"`.
#[must_use]
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// A parsed `If-Match` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any current representation.
    Any,
    /// One or more entity tags.
    Tags(Vec<EntityTag>),
}

/// One entity tag from a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityTag {
    pub weak: bool,
    /// The text between the quotes.
    pub opaque: String,
}

/// The header is not `*` or a comma-separated list of entity tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedIfMatch;

/// Whether a write may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// No `If-Match`, `*`, or a tag strongly equal to the current version's.
    Holds,
    /// The client's version is stale: 412, nothing written.
    Fails,
}

impl IfMatch {
    /// Parses a header value (several `If-Match` headers arrive joined with `, `).
    ///
    /// # Errors
    /// [`MalformedIfMatch`] for anything but `*` or a list of well-formed entity tags.
    pub fn parse(value: &str) -> Result<Self, MalformedIfMatch> {
        let trimmed = value.trim_matches(|c| c == ' ' || c == '\t');
        if trimmed == "*" {
            return Ok(Self::Any);
        }
        let mut tags = Vec::new();
        let mut rest = trimmed;
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                break;
            }
            let (weak, after_prefix) = match rest.strip_prefix("W/") {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let body = after_prefix.strip_prefix('"').ok_or(MalformedIfMatch)?;
            let end = body.find('"').ok_or(MalformedIfMatch)?;
            let opaque = body.get(..end).ok_or(MalformedIfMatch)?;
            // etagc = %x21 / %x23-7E / obs-text
            if !opaque
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
            {
                return Err(MalformedIfMatch);
            }
            tags.push(EntityTag {
                weak,
                opaque: opaque.to_owned(),
            });
            rest = body.get(end + 1..).ok_or(MalformedIfMatch)?;
            let next = rest.trim_start_matches([' ', '\t']);
            if !(next.is_empty() || next.starts_with(',')) {
                return Err(MalformedIfMatch);
            }
            rest = next;
        }
        if tags.is_empty() {
            return Err(MalformedIfMatch);
        }
        Ok(Self::Tags(tags))
    }
}

/// Evaluates `If-Match` (absent: `None`) against a version that always exists (a cart: an
/// unwritten cart is the empty cart at version 0), strongly.
#[must_use]
pub fn evaluate(if_match: Option<&IfMatch>, current_version: u64) -> Precondition {
    evaluate_tag(if_match, Some(&etag(current_version)))
}

/// Evaluates `If-Match` against the current representation's entity tag (quoted, as sent in
/// `ETag`), or `None` when there is no current representation.
#[must_use]
pub fn evaluate_tag(if_match: Option<&IfMatch>, current: Option<&str>) -> Precondition {
    let opaque = current.map(|c| c.trim_matches('"'));
    let holds = match (if_match, opaque) {
        (None, _) => true,
        (Some(IfMatch::Any), current) => current.is_some(),
        (Some(IfMatch::Tags(tags)), Some(current)) => {
            tags.iter().any(|t| !t.weak && t.opaque == current)
        }
        (Some(IfMatch::Tags(_)), None) => false,
    };
    if holds {
        Precondition::Holds
    } else {
        Precondition::Fails
    }
}

/// Reads an `If-Match` header value: `None` when absent.
///
/// # Errors
/// 400 when the header is not `*` or a list of entity tags.
pub fn parse_header(
    value: Option<&str>,
) -> Result<Option<IfMatch>, crate::http::problem::ApiError> {
    value
        .map(IfMatch::parse)
        .transpose()
        .map_err(|MalformedIfMatch| {
            crate::http::problem::ApiError::BadRequest(
                "If-Match must be `*` or a comma-separated list of entity tags.".into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(header: Option<&str>, version: u64) -> Result<Precondition, MalformedIfMatch> {
        let parsed = header.map(IfMatch::parse).transpose()?;
        Ok(evaluate(parsed.as_ref(), version))
    }

    #[test]
    fn the_etag_is_the_quoted_version() {
        assert_eq!(etag(0), "\"0\"");
        assert_eq!(etag(7), "\"7\"");
    }

    #[test]
    fn if_match_is_evaluated_with_strong_comparison_lists_and_star() {
        use Precondition::{Fails, Holds};
        let cases: [(Option<&str>, u64, Precondition); 12] = [
            (None, 3, Holds),
            (Some("*"), 0, Holds),
            (Some(" * "), 9, Holds),
            (Some("\"3\""), 3, Holds),
            (Some("\"2\""), 3, Fails),
            (Some("\"1\", \"3\""), 3, Holds),
            (Some("\"1\",\"2\""), 3, Fails),
            (Some("W/\"3\""), 3, Fails),
            (Some("W/\"3\", \"3\""), 3, Holds),
            (Some("\"03\""), 3, Fails),
            (Some("\"\""), 0, Fails),
            (Some("\"3\" ,, \"4\""), 4, Holds),
        ];
        for (header, version, expected) in cases {
            assert_eq!(
                check(header, version),
                Ok(expected),
                "{header:?} vs {version}"
            );
        }
    }

    #[test]
    fn a_malformed_if_match_is_refused_not_ignored() {
        for bad in [
            "",
            " ",
            "3",
            "\"3",
            "3\"",
            "w/\"3\"",
            "\"3\" \"4\"",
            "*, \"3\"",
            "\"a b\"",
            "\"3\"x",
            "W/",
            ",",
        ] {
            assert_eq!(IfMatch::parse(bad), Err(MalformedIfMatch), "{bad:?}");
        }
    }

    #[test]
    fn a_tag_is_compared_strongly_against_the_current_representation() {
        let tags = IfMatch::parse(r#""a", "b""#).unwrap();
        assert_eq!(
            evaluate_tag(Some(&tags), Some(r#""b""#)),
            Precondition::Holds
        );
        assert_eq!(
            evaluate_tag(Some(&tags), Some(r#""c""#)),
            Precondition::Fails
        );
        let weak = IfMatch::parse(r#"W/"b""#).unwrap();
        assert_eq!(
            evaluate_tag(Some(&weak), Some(r#""b""#)),
            Precondition::Fails
        );
    }

    #[test]
    fn star_holds_only_when_a_representation_exists() {
        assert_eq!(
            evaluate_tag(Some(&IfMatch::Any), Some(r#""x""#)),
            Precondition::Holds
        );
        assert_eq!(evaluate_tag(Some(&IfMatch::Any), None), Precondition::Fails);
        let tags = IfMatch::parse(r#""x""#).unwrap();
        assert_eq!(evaluate_tag(Some(&tags), None), Precondition::Fails);
        assert_eq!(evaluate_tag(None, None), Precondition::Holds);
    }

    #[test]
    fn a_malformed_header_is_a_bad_request() {
        assert!(parse_header(Some("nope")).is_err());
        assert_eq!(parse_header(None), Ok(None));
    }
}
