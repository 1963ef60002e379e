//! Claim policy: what a verified token must say about itself (pure; `now` is injected).
//!
//! RFC 7519 / RFC 8725 / RFC 9068 as edgecart applies them: `exp` required, `nbf` and `iat`
//! checked when present, one leeway for clock skew, `iss` exact, `aud` any-of, `sub` required,
//! dates that must be dates, an optional ceiling on lifetime. JWT and PASETO differ only in how
//! dates are written, so both arrive here as [`Dates`].

use serde_json::{Map, Value};

use super::Identity;
use crate::time::UnixMillis;

/// Every reason a token is refused. All of them are the same 401 to the client; the reason
/// goes to the log (`ApiError::InvalidToken { reason }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Authorization` is not exactly `Bearer <token>`.
    NotBearer,
    /// Longer than `JWT_MAX_TOKEN_BYTES`, refused before parsing.
    TooLarge,
    /// Not a compact JWS / v4.public PASETO: segments, base64url, JSON, duplicates.
    Malformed,
    /// Header `alg` missing, `none`, or not one we accept.
    UnsupportedAlgorithm,
    /// Header `alg` differs from the key entry's.
    AlgorithmMismatch,
    /// No configured key has this `kid` (or, without `kid`, no single key fits).
    UnknownKey,
    /// `crit` present.
    CriticalHeader,
    /// `typ` of another kind of token.
    WrongType,
    /// `cty` present (nested JWT, CBOR, …).
    NestedContent,
    /// Wrong length, out-of-range values, or the signature does not verify.
    BadSignature,
    MissingExpiry,
    /// A date that is not a date (string/bool/null in a JWT, huge, negative, malformed).
    BadDate,
    Expired,
    NotYetValid,
    IssuedInFuture,
    /// `exp - iat` above `JWT_MAX_LIFETIME_SECONDS`.
    LivesTooLong,
    WrongIssuer,
    WrongAudience,
    BadSubject,
    BadScope,
}

impl Refusal {
    /// The log text (never the token).
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotBearer => "authorization is not a single bearer token",
            Self::TooLarge => "token larger than JWT_MAX_TOKEN_BYTES",
            Self::Malformed => "malformed token",
            Self::UnsupportedAlgorithm => "unsupported alg",
            Self::AlgorithmMismatch => "alg differs from the key's",
            Self::UnknownKey => "no matching key",
            Self::CriticalHeader => "crit header present",
            Self::WrongType => "typ of another token kind",
            Self::NestedContent => "cty present",
            Self::BadSignature => "bad signature",
            Self::MissingExpiry => "exp missing",
            Self::BadDate => "malformed date claim",
            Self::Expired => "expired",
            Self::NotYetValid => "nbf in the future",
            Self::IssuedInFuture => "iat in the future",
            Self::LivesTooLong => "lifetime above JWT_MAX_LIFETIME_SECONDS",
            Self::WrongIssuer => "wrong iss",
            Self::WrongAudience => "wrong aud",
            Self::BadSubject => "sub missing or malformed",
            Self::BadScope => "scope/scp malformed",
        }
    }
}

/// What the configuration asks of every token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub issuer: String,
    /// Non-empty; a token must name one of them.
    pub audiences: Vec<String>,
    pub leeway_seconds: u64,
    pub max_token_bytes: usize,
    pub max_lifetime_seconds: Option<u64>,
    /// Refuse high-S ES256 signatures (`JWT_ES256_REQUIRE_LOW_S`). Off by default: a high-S
    /// signature is valid ECDSA, see [`super::jwt::ecdsa_p256_in_range`].
    pub es256_require_low_s: bool,
}

/// Latest date accepted in a claim (9999-12-31T23:59:59Z); later is "huge" (A11).
pub const MAX_DATE_SECONDS: f64 = 253_402_300_799.0;

/// Longest `sub`, in characters.
pub const MAX_SUB_CHARS: usize = 255;

/// The registered dates of a token, in Unix seconds, already type-checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dates {
    pub exp: f64,
    pub nbf: Option<f64>,
    pub iat: Option<f64>,
}

/// A JWT NumericDate member: absent → `None`; anything but a number in range → refused.
///
/// # Errors
/// [`Refusal::BadDate`].
pub fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, Refusal> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let v = n.as_f64().ok_or(Refusal::BadDate)?;
            if v.is_finite() && (0.0..=MAX_DATE_SECONDS).contains(&v) {
                Ok(Some(v))
            } else {
                Err(Refusal::BadDate)
            }
        }
        Some(
            Value::Null | Value::Bool(_) | Value::String(_) | Value::Array(_) | Value::Object(_),
        ) => Err(Refusal::BadDate),
    }
}

/// A PASETO date member: an RFC 3339 string, absent → `None`.
///
/// # Errors
/// [`Refusal::BadDate`].
pub fn rfc3339_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, Refusal> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => {
            let secs = crate::time::parse_rfc3339(s).ok_or(Refusal::BadDate)?;
            #[allow(clippy::cast_precision_loss)] // Dates are far below 2^53 seconds.
            let v = secs as f64;
            if (0.0..=MAX_DATE_SECONDS).contains(&v) {
                Ok(Some(v))
            } else {
                Err(Refusal::BadDate)
            }
        }
        Some(
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::Array(_) | Value::Object(_),
        ) => Err(Refusal::BadDate),
    }
}

/// Checks the dates against `now` with the policy's leeway and lifetime ceiling.
///
/// Boundaries: valid while `now < exp + leeway`; from `nbf - leeway` on; `iat` up to
/// `now + leeway`.
///
/// # Errors
/// The first [`Refusal`] that applies.
pub fn check_dates(dates: Dates, policy: &Policy, now: UnixMillis) -> Result<(), Refusal> {
    #[allow(clippy::cast_precision_loss)]
    let now = now.0 as f64 / 1000.0;
    #[allow(clippy::cast_precision_loss)]
    let leeway = policy.leeway_seconds as f64;
    if now >= dates.exp + leeway {
        return Err(Refusal::Expired);
    }
    if let Some(nbf) = dates.nbf {
        if now + leeway < nbf {
            return Err(Refusal::NotYetValid);
        }
    }
    if let Some(iat) = dates.iat {
        if iat > now + leeway {
            return Err(Refusal::IssuedInFuture);
        }
    }
    if let Some(max) = policy.max_lifetime_seconds {
        #[allow(clippy::cast_precision_loss)]
        let max = max as f64;
        // Without `iat`, what is left of the token's life must fit the ceiling.
        let lifetime = match dates.iat {
            Some(iat) => dates.exp - iat,
            None => dates.exp - now - leeway,
        };
        if lifetime > max {
            return Err(Refusal::LivesTooLong);
        }
    }
    Ok(())
}

/// Checks `iss`, `aud`, `sub` and the scopes, and builds the [`Identity`].
///
/// # Errors
/// The first [`Refusal`] that applies.
pub fn check_claims(
    claims: &Map<String, Value>,
    dates: Dates,
    policy: &Policy,
) -> Result<Identity, Refusal> {
    let iss = match claims.get("iss") {
        Some(Value::String(iss)) if *iss == policy.issuer => iss.clone(),
        _ => return Err(Refusal::WrongIssuer),
    };
    let ours = |aud: &Value| {
        aud.as_str()
            .is_some_and(|a| policy.audiences.iter().any(|ours| ours == a))
    };
    match claims.get("aud") {
        Some(aud @ Value::String(_)) if ours(aud) => {}
        Some(Value::Array(auds)) if auds.iter().all(Value::is_string) && auds.iter().any(ours) => {}
        _ => return Err(Refusal::WrongAudience),
    }
    let sub = match claims.get("sub") {
        Some(Value::String(sub))
            if !sub.is_empty()
                && sub.chars().count() <= MAX_SUB_CHARS
                && !sub.chars().any(char::is_control) =>
        {
            sub.clone()
        }
        _ => return Err(Refusal::BadSubject),
    };
    let scopes = scopes(claims)?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // In 0..=MAX_DATE_SECONDS.
    let exp = dates.exp.floor() as u64;
    Ok(Identity {
        iss,
        sub,
        scopes,
        exp,
    })
}

/// Scopes from `scope` (space-delimited, RFC 8693 / RFC 9068) or else `scp` (an array, or a
/// space-delimited string as some providers send it).
fn scopes(claims: &Map<String, Value>) -> Result<Vec<String>, Refusal> {
    let split = |s: &str| {
        s.split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) | (None, Some(Value::String(s))) => Ok(split(s)),
        (None, Some(Value::Array(items))) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or(Refusal::BadScope))
            .collect(),
        (None, None) => Ok(Vec::new()),
        (Some(_), _) | (None, Some(_)) => Err(Refusal::BadScope),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn policy() -> Policy {
        Policy {
            issuer: "https://issuer.example".into(),
            audiences: vec!["edgecart".into(), "shop".into()],
            leeway_seconds: 60,
            max_token_bytes: 8192,
            max_lifetime_seconds: None,
            es256_require_low_s: false,
        }
    }

    fn at(seconds: u64) -> UnixMillis {
        UnixMillis(seconds * 1000)
    }

    fn dates(exp: u64) -> Dates {
        Dates {
            exp: exp as f64,
            nbf: None,
            iat: None,
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn expiry_is_enforced_to_the_second_around_the_leeway() {
        let p = policy();
        let cases = [
            (NOW - 61, Err(Refusal::Expired)),
            (NOW - 60, Err(Refusal::Expired)),
            (NOW - 59, Ok(())),
            (NOW + 1, Ok(())),
        ];
        for (exp, expected) in cases {
            assert_eq!(check_dates(dates(exp), &p, at(NOW)), expected, "exp {exp}");
        }
    }

    #[test]
    fn not_before_and_issued_at_are_enforced_around_the_leeway() {
        let p = policy();
        let nbf = |nbf: u64| Dates {
            nbf: Some(nbf as f64),
            ..dates(NOW + 600)
        };
        assert_eq!(check_dates(nbf(NOW + 60), &p, at(NOW)), Ok(()));
        assert_eq!(
            check_dates(nbf(NOW + 61), &p, at(NOW)),
            Err(Refusal::NotYetValid)
        );
        assert_eq!(check_dates(nbf(NOW + 59), &p, at(NOW)), Ok(()));
        let iat = |iat: u64| Dates {
            iat: Some(iat as f64),
            ..dates(NOW + 600)
        };
        assert_eq!(check_dates(iat(NOW + 60), &p, at(NOW)), Ok(()));
        assert_eq!(
            check_dates(iat(NOW + 61), &p, at(NOW)),
            Err(Refusal::IssuedInFuture)
        );
    }

    #[test]
    fn a_lifetime_above_the_ceiling_is_refused() {
        let p = Policy {
            max_lifetime_seconds: Some(3600),
            es256_require_low_s: false,
            ..policy()
        };
        let with_iat = |exp: u64| Dates {
            iat: Some(NOW as f64),
            ..dates(exp)
        };
        assert_eq!(check_dates(with_iat(NOW + 3600), &p, at(NOW)), Ok(()));
        assert_eq!(
            check_dates(with_iat(NOW + 3601), &p, at(NOW)),
            Err(Refusal::LivesTooLong)
        );
        assert_eq!(check_dates(dates(NOW + 3600), &p, at(NOW)), Ok(()));
        assert_eq!(
            check_dates(dates(NOW + 4000), &p, at(NOW)),
            Err(Refusal::LivesTooLong)
        );
    }

    #[test]
    fn numeric_dates_must_be_numbers_in_range() {
        for bad in [
            json!({"exp": "1800000000"}),
            json!({"exp": true}),
            json!({"exp": null}),
            json!({"exp": -1}),
            json!({"exp": 1e300}),
            json!({"exp": [1]}),
            json!({"exp": 253_402_300_800_u64}),
        ] {
            assert_eq!(
                numeric_date(&obj(bad.clone()), "exp"),
                Err(Refusal::BadDate),
                "{bad}"
            );
        }
        assert_eq!(
            numeric_date(&obj(json!({"exp": 5.5})), "exp"),
            Ok(Some(5.5))
        );
        assert_eq!(numeric_date(&obj(json!({})), "exp"), Ok(None));
    }

    #[test]
    fn paseto_dates_must_be_rfc3339_strings() {
        let c = obj(
            json!({"exp": "2027-01-15T08:00:00+00:00", "nbf": 1_800_000_000, "iat": "yesterday"}),
        );
        assert_eq!(rfc3339_date(&c, "exp"), Ok(Some(1_800_000_000.0)));
        assert_eq!(rfc3339_date(&c, "nbf"), Err(Refusal::BadDate));
        assert_eq!(rfc3339_date(&c, "iat"), Err(Refusal::BadDate));
    }
}
