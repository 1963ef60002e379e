//! The `Authorization` header → one bearer token (pure; RFC 6750 §2.1).
//!
//! Exactly `Bearer <b64token>`: scheme case-insensitive, one token, nothing after it. Two
//! headers reach us joined by `, ` and fail because `,` and spaces are not token characters.
//! The size limit is applied here, before any decoding.
//!
//! RFC 6750 §3.1: a request that presents no bearer credentials at all (another scheme such
//! as `Basic`, or an empty header) "lacks authentication information" and gets a challenge
//! without an error code; only a malformed bearer attempt is `invalid_token`. [`presented`]
//! tells the two apart before [`BearerToken::from_header`] parses strictly.

use super::claims::Refusal;

/// A syntactically acceptable bearer token; which kind it is decides the verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

/// The kinds of token edgecart verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A compact JWS (three base64url segments).
    Jwt,
    /// A PASETO `v4.public.` token.
    PasetoV4Public,
}

/// What an `Authorization` header offers, for choosing the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// No bearer credentials: an empty value or only other schemes (`Basic …`).
    NoBearer,
    /// At least one credential uses the `Bearer` scheme (well-formed or not).
    Bearer,
}

/// Whether `value` offers bearer credentials. Two headers reach us joined by `,`, so every
/// comma-separated credential's scheme (the text before its first space, or all of it) is
/// looked at: `Basic x, Bearer y` is a bearer attempt (and then refused as two credentials),
/// `Bearer` alone is a bearer attempt with an empty token.
#[must_use]
pub fn presented(value: &str) -> Presented {
    let bearer = value.split(',').any(|credential| {
        let credential = credential.trim_matches(|c| c == ' ' || c == '\t');
        let scheme = credential.split([' ', '\t']).next().unwrap_or_default();
        scheme.eq_ignore_ascii_case("bearer")
    });
    if bearer {
        Presented::Bearer
    } else {
        Presented::NoBearer
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a credential: never printed.
        write!(f, "BearerToken({} bytes)", self.0.len())
    }
}

impl BearerToken {
    /// Parses an `Authorization` header value. `None` means no header was sent.
    ///
    /// # Errors
    /// [`Refusal::NotBearer`] for any other scheme or shape, [`Refusal::TooLarge`] past
    /// `max_bytes`.
    pub fn from_header(value: &str, max_bytes: usize) -> Result<Self, Refusal> {
        let value = value.trim_matches(|c| c == ' ' || c == '\t');
        let (scheme, token) = value.split_once(' ').ok_or(Refusal::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Refusal::NotBearer);
        }
        let token = token.trim_start_matches(' ');
        if token.len() > max_bytes {
            return Err(Refusal::TooLarge);
        }
        let body = token.trim_end_matches('=');
        let valid = !body.is_empty()
            && body.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
            });
        if !valid {
            return Err(Refusal::NotBearer);
        }
        Ok(Self(token.to_owned()))
    }

    /// The token text (callers must not log it).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    #[must_use]
    pub fn kind(&self) -> TokenKind {
        if self.0.starts_with("v4.public.") {
            TokenKind::PasetoV4Public
        } else {
            TokenKind::Jwt
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_is_case_insensitive_and_the_token_kept_verbatim() {
        for header in [
            "Bearer abc.def.ghi",
            "bearer abc.def.ghi",
            "BEARER   abc.def.ghi ",
        ] {
            assert_eq!(
                BearerToken::from_header(header, 100).unwrap().as_str(),
                "abc.def.ghi"
            );
        }
    }

    #[test]
    fn anything_but_one_bearer_token_is_refused() {
        for header in [
            "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
            "Bearer",
            "Bearer ",
            "Bearer a.b.c extra",
            "Bearer a.b.c, Bearer d.e.f",
            "Bearer a.b.c,d.e.f",
            "Bearer a.b\u{e9}.c",
            "Bearer a.b.c\tx",
            "Bearera.b.c",
            "Token a.b.c",
            "Bearer ===",
        ] {
            assert_eq!(
                BearerToken::from_header(header, 100),
                Err(Refusal::NotBearer),
                "{header}"
            );
        }
    }

    #[test]
    fn other_schemes_and_empty_values_present_no_bearer_credentials() {
        for header in [
            "",
            "   ",
            "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
            "Basic",
            "Token a.b.c",
            "Bearera.b.c",
            "Digest username=\"a\", realm=\"b\"",
            "Basic a, Digest b",
        ] {
            assert_eq!(presented(header), Presented::NoBearer, "{header:?}");
        }
        for header in [
            "Bearer",
            "Bearer ",
            "bearer a.b.c",
            "BEARER\ta.b.c",
            "Bearer a.b.c extra",
            "Bearer a.b.c, Bearer d.e.f",
            "Basic YWxh, Bearer a.b.c",
            " Bearer a.b.c ",
        ] {
            assert_eq!(presented(header), Presented::Bearer, "{header:?}");
        }
    }

    #[test]
    fn oversized_tokens_are_refused_before_anything_else() {
        let big = format!("Bearer {}", "a".repeat(101));
        assert_eq!(BearerToken::from_header(&big, 100), Err(Refusal::TooLarge));
        let dots = format!("Bearer {}", ".".repeat(5000));
        assert_eq!(BearerToken::from_header(&dots, 100), Err(Refusal::TooLarge));
    }

    #[test]
    fn paseto_tokens_are_told_apart_from_jwts() {
        let t = BearerToken::from_header("Bearer v4.public.AAAA", 100).unwrap();
        assert_eq!(t.kind(), TokenKind::PasetoV4Public);
        let t = BearerToken::from_header("Bearer v4.local.AAAA", 100).unwrap();
        assert_eq!(t.kind(), TokenKind::Jwt);
    }
}
