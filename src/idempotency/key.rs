//! The client's `Idempotency-Key`, the request fingerprint, and the scoped record key (pure).
//!
//! Nothing here touches `worker` types, a clock or storage. The header grammar follows
//! draft-ietf-httpapi-idempotency-key-header: the value is a structured-field string
//! (`"8e03…"`); the bare form (`8e03…`) is accepted too because many clients send it. Either
//! way the key itself is 1–255 visible ASCII characters.

use std::fmt;

use crate::hash::sha256_parts;
use crate::http::problem::ApiError;
use crate::time::UnixMillis;

/// A client-chosen idempotency key: 1–255 visible ASCII characters (`!`..=`~`), no comma.
///
/// Private field: the only way to get one is [`IdempotencyKey::parse_header`].
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

/// Why an `Idempotency-Key` header is refused (each a 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// No header at all.
    Missing,
    /// A comma in the value: the header was sent more than once (the platform joins repeated
    /// headers with `, `), or the key contains a comma, which cannot be told apart from that.
    Repeated,
    /// A quoted string that is not a valid structured-field string (unclosed quote, a bare `"`
    /// inside, an escape other than `\"` or `\\`).
    Malformed,
    /// `""` or an empty value.
    Empty,
    /// More than [`IdempotencyKey::MAX_LEN`] characters.
    TooLong,
    /// A character outside visible ASCII (space, control, non-ASCII).
    NotVisibleAscii,
}

impl KeyError {
    /// The public explanation; never quotes the value.
    #[must_use]
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "POST /orders needs an Idempotency-Key header (a unique string per checkout, e.g. a UUID).",
            Self::Repeated => "Send exactly one Idempotency-Key header; its value cannot contain a comma.",
            Self::Malformed => "The Idempotency-Key is not a valid structured-field string (e.g. \"8e03978e-40d5-43e8-bc93-6894a57f9324\").",
            Self::Empty => "The Idempotency-Key is empty; it must have 1 to 255 characters.",
            Self::TooLong => "The Idempotency-Key is longer than 255 characters.",
            Self::NotVisibleAscii => "The Idempotency-Key may contain only visible ASCII characters (no spaces, control or non-ASCII characters).",
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        ApiError::BadRequest(e.message().to_owned())
    }
}

impl IdempotencyKey {
    /// Longest accepted key, in characters (all ASCII, so also bytes).
    pub const MAX_LEN: usize = 255;

    /// Parses the raw header value (`None` when the header is absent).
    ///
    /// # Errors
    /// A [`KeyError`] saying what is wrong; every one maps to 400.
    pub fn parse_header(value: Option<&str>) -> Result<Self, KeyError> {
        let raw = value.ok_or(KeyError::Missing)?.trim_matches([' ', '\t']);
        // The runtime joins a repeated header with ", ". A key itself has no space (visible
        // ASCII only), so ", " can only mean two keys; a bare `,` or `"` inside a key is fine.
        if raw.contains(", ") {
            return Err(KeyError::Repeated);
        }
        let key = match raw.strip_prefix('"') {
            Some(quoted) => unquote(quoted)?,
            None => raw.to_owned(),
        };
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(KeyError::NotVisibleAscii);
        }
        if key.len() > Self::MAX_LEN {
            return Err(KeyError::TooLong);
        }
        Ok(Self(key))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The key is chosen by the client and may be guessable; it never appears in logs.
impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdempotencyKey(…)")
    }
}

/// The inside of an sf-string after its opening quote: up to the closing quote, which must be
/// the last character; `\"` and `\\` are the only escapes (RFC 8941 §3.3.3).
fn unquote(rest: &str) -> Result<String, KeyError> {
    let mut out = String::with_capacity(rest.len());
    let mut chars = rest.chars();
    loop {
        match chars.next() {
            None => return Err(KeyError::Malformed),
            Some('"') => {
                return if chars.next().is_none() {
                    Ok(out)
                } else {
                    Err(KeyError::Malformed)
                };
            }
            Some('\\') => match chars.next() {
                Some(c @ ('"' | '\\')) => out.push(c),
                Some(_) | None => return Err(KeyError::Malformed),
            },
            Some(c) => out.push(c),
        }
    }
}

/// What identifies "the same request": a hash of method, path and the exact body bytes.
///
/// Raw bytes, not re-serialised JSON: a retry is the same bytes sent again, and hashing what
/// was received leaves no room for two parsers to disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    #[must_use]
    pub fn of(method: &str, path: &str, body: &[u8]) -> Self {
        Self(sha256_parts(&[
            b"edgecart/fingerprint/v1",
            method.as_bytes(),
            path.as_bytes(),
            body,
        ]))
    }

    /// A fingerprint read back from storage (64 hex characters written by [`Fingerprint::of`]).
    #[must_use]
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The storage key of a record: a hash of the verified user, method, route template and the
/// client's key. Scoping by user means another user's identical key is another record (and
/// another order); hashing means the client's text never reaches storage or a log, and every
/// record key has the same length whatever the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKey(String);

impl RecordKey {
    #[must_use]
    pub fn new(user_key: &str, method: &str, route: &str, key: &IdempotencyKey) -> Self {
        Self(sha256_parts(&[
            b"edgecart/idempotency/v1",
            user_key.as_bytes(),
            method.as_bytes(),
            route.as_bytes(),
            key.as_str().as_bytes(),
        ]))
    }

    /// A record key read back from storage.
    #[must_use]
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A deterministic identifier for the operation this record guards: the same record key
    /// and creation time always give the same value, so a retry that takes over a crashed
    /// attempt finds that attempt's work instead of doing it twice, while a key reused after
    /// retention (a new creation time) gets a new one.
    #[must_use]
    pub fn operation_id(&self, created_at: UnixMillis) -> String {
        sha256_parts(&[
            b"edgecart/operation/v1",
            self.0.as_bytes(),
            created_at.0.to_string().as_bytes(),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Result<String, KeyError> {
        IdempotencyKey::parse_header(Some(v)).map(|k| k.as_str().to_owned())
    }

    #[test]
    fn keys_are_parsed_from_both_the_sf_string_and_the_bare_form() {
        let table: &[(&str, Result<&str, KeyError>)] = &[
            ("\"8e03978e-40d5\"", Ok("8e03978e-40d5")),
            ("8e03978e-40d5", Ok("8e03978e-40d5")),
            ("  \"abc\"  ", Ok("abc")),
            ("\"a\\\"b\"", Ok("a\"b")),
            ("\"a\\\\b\"", Ok("a\\b")),
            ("x", Ok("x")),
            ("!~", Ok("!~")),
            ("", Err(KeyError::Empty)),
            ("\"\"", Err(KeyError::Empty)),
            ("\"abc", Err(KeyError::Malformed)),
            ("\"ab\"c\"", Err(KeyError::Malformed)),
            ("\"ab\"x", Err(KeyError::Malformed)),
            ("\"a\\nb\"", Err(KeyError::Malformed)),
            ("\"a\\\"", Err(KeyError::Malformed)),
            ("ab\"c", Ok("ab\"c")),
            ("a,b", Ok("a,b")),
            ("\"a,b\"", Ok("a,b")),
            ("abc, def", Err(KeyError::Repeated)),
            ("\"abc\", \"abc\"", Err(KeyError::Repeated)),
            ("a b", Err(KeyError::NotVisibleAscii)),
            ("\"a b\"", Err(KeyError::NotVisibleAscii)),
            ("caf\u{e9}", Err(KeyError::NotVisibleAscii)),
            ("a\u{7f}", Err(KeyError::NotVisibleAscii)),
            ("a\tb", Err(KeyError::NotVisibleAscii)),
        ];
        for (input, expected) in table {
            let expected = expected.map(str::to_owned);
            assert_eq!(parse(input), expected, "{input:?}");
        }
    }

    #[test]
    fn a_missing_header_is_refused() {
        assert_eq!(
            IdempotencyKey::parse_header(None).map(|_| ()),
            Err(KeyError::Missing)
        );
    }

    #[test]
    fn keys_of_255_characters_pass_and_256_are_refused() {
        assert!(parse(&"k".repeat(255)).is_ok());
        assert_eq!(parse(&"k".repeat(256)), Err(KeyError::TooLong));
        assert_eq!(
            parse(&format!("\"{}\"", "k".repeat(256))),
            Err(KeyError::TooLong)
        );
    }

    #[test]
    fn every_key_error_is_a_400_that_does_not_quote_the_value() {
        for e in [
            KeyError::Missing,
            KeyError::Repeated,
            KeyError::Malformed,
            KeyError::Empty,
            KeyError::TooLong,
            KeyError::NotVisibleAscii,
        ] {
            let api: ApiError = e.into();
            assert_eq!(api.to_response(false).status, 400);
        }
    }

    #[test]
    fn the_key_never_prints_in_debug_output() {
        let key = IdempotencyKey::parse_header(Some("secret-ish")).unwrap();
        assert!(!format!("{key:?}").contains("secret-ish"));
    }

    #[test]
    fn fingerprints_differ_by_method_path_and_body() {
        let base = Fingerprint::of("POST", "/orders", b"{\"cart_version\":1}");
        assert_eq!(
            base,
            Fingerprint::of("POST", "/orders", b"{\"cart_version\":1}")
        );
        assert_ne!(
            base,
            Fingerprint::of("POST", "/orders", b"{\"cart_version\":2}")
        );
        assert_ne!(
            base,
            Fingerprint::of("PUT", "/orders", b"{\"cart_version\":1}")
        );
        assert_ne!(
            base,
            Fingerprint::of("POST", "/orderz", b"{\"cart_version\":1}")
        );
    }

    #[test]
    fn record_keys_are_scoped_to_the_user() {
        let k = IdempotencyKey::parse_header(Some("same")).unwrap();
        let alice = RecordKey::new("alice", "POST", "/orders", &k);
        let bob = RecordKey::new("bob", "POST", "/orders", &k);
        assert_ne!(alice, bob);
        assert_eq!(alice, RecordKey::new("alice", "POST", "/orders", &k));
        assert_eq!(alice.as_str().len(), 64);
    }

    #[test]
    fn operation_ids_depend_on_the_record_and_its_creation_time() {
        let k = IdempotencyKey::parse_header(Some("same")).unwrap();
        let r = RecordKey::new("alice", "POST", "/orders", &k);
        assert_eq!(r.operation_id(UnixMillis(1)), r.operation_id(UnixMillis(1)));
        assert_ne!(r.operation_id(UnixMillis(1)), r.operation_id(UnixMillis(2)));
        let other = RecordKey::new("bob", "POST", "/orders", &k);
        assert_ne!(
            r.operation_id(UnixMillis(1)),
            other.operation_id(UnixMillis(1))
        );
    }
}
