//! `/dev/token`: local development tokens (pure building; signing goes through the seam).
//!
//! Only reachable when `ENVIRONMENT=development` and `DEV_TOKEN_KEY` is set. The token is an
//! ordinary ES256 access token, verified like any other by the public half of the key in
//! `JWT_JWKS`; nothing about it is trusted specially.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::Deserialize;
use serde_json::{json, Value};

use super::claims::MAX_SUB_CHARS;
use super::signature::DevSigningKey;
use crate::json::parse_object;
use crate::time::UnixMillis;

/// Default and largest lifetime of a development token.
pub const DEFAULT_TTL_SECONDS: u64 = 3600;
pub const MAX_TTL_SECONDS: u64 = 86_400;

/// The body of `POST /dev/token`: exactly these members (another one is a 422), the
/// optional ones absent or of their type, never `null`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevTokenRequest {
    pub sub: String,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub scope: Option<String>,
    #[serde(default, deserialize_with = "crate::http::present_whole")]
    pub ttl_seconds: Option<i64>,
}

/// A request that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevTokenClaims {
    pub sub: String,
    pub scope: Option<String>,
    pub ttl_seconds: u64,
}

impl DevTokenRequest {
    /// Checks the values (`sub` 1–255 characters, `ttl_seconds` in 1..=86400).
    ///
    /// # Errors
    /// A message for a 422.
    pub fn validate(self) -> Result<DevTokenClaims, String> {
        let chars = self.sub.chars().count();
        if chars == 0 || chars > MAX_SUB_CHARS || self.sub.chars().any(char::is_control) {
            return Err(format!(
                "`sub` must be 1 to {MAX_SUB_CHARS} printable characters."
            ));
        }
        let ttl = self.ttl_seconds.map_or(Ok(DEFAULT_TTL_SECONDS), |t| {
            u64::try_from(t)
                .ok()
                .filter(|t| (1..=MAX_TTL_SECONDS).contains(t))
                .ok_or_else(|| format!("`ttl_seconds` must be between 1 and {MAX_TTL_SECONDS}."))
        })?;
        Ok(DevTokenClaims {
            sub: self.sub,
            scope: self.scope,
            ttl_seconds: ttl,
        })
    }
}

/// Reads `DEV_TOKEN_KEY`: a private P-256 JWK with `kid` and `alg: ES256`.
///
/// # Errors
/// A reason (never quoting the key).
pub fn parse_dev_key(secret: &str) -> Result<DevSigningKey, String> {
    let jwk = parse_object(secret.as_bytes()).map_err(|_| "not a JSON object".to_owned())?;
    let text = |name: &str| match jwk.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(format!("missing `{name}`")),
    };
    if text("kty")? != "EC" || text("crv")? != "P-256" {
        return Err("must be an EC P-256 key".to_owned());
    }
    if text("alg")? != "ES256" {
        return Err("`alg` must be ES256".to_owned());
    }
    Ok(DevSigningKey {
        kid: text("kid")?,
        x: text("x")?,
        y: text("y")?,
        d: text("d")?,
    })
}

/// The signing input (`header.payload`) of a development token.
#[must_use]
pub fn signing_input(
    key: &DevSigningKey,
    issuer: &str,
    audience: &str,
    claims: &DevTokenClaims,
    now: UnixMillis,
) -> String {
    let iat = now.seconds();
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": key.kid});
    let mut payload = json!({
        "iss": issuer,
        "aud": audience,
        "sub": claims.sub,
        "iat": iat,
        "exp": iat + claims.ttl_seconds,
    });
    if let (Some(scope), Some(map)) = (&claims.scope, payload.as_object_mut()) {
        map.insert("scope".to_owned(), Value::String(scope.clone()));
    }
    format!(
        "{}.{}",
        Base64UrlUnpadded::encode_string(header.to_string().as_bytes()),
        Base64UrlUnpadded::encode_string(payload.to_string().as_bytes())
    )
}

/// `signing_input` + `.` + base64url(signature).
#[must_use]
pub fn assemble(signing_input: &str, signature: &[u8]) -> String {
    format!(
        "{signing_input}.{}",
        Base64UrlUnpadded::encode_string(signature)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<DevTokenClaims, u16> {
        crate::http::parse_json_body::<DevTokenRequest>(body.as_bytes())
            .map_err(|e| e.to_response(false).status)?
            .validate()
            .map_err(|_| 422)
    }

    #[test]
    fn a_dev_token_body_has_exactly_its_members_and_no_nulls() {
        let claims = parse(r#"{"sub": "alice", "scope": "catalog:write", "ttl_seconds": 60}"#);
        assert_eq!(claims.map(|c| c.ttl_seconds), Ok(60));
        assert_eq!(parse(r#"{"sub": "a"}"#).map(|c| c.ttl_seconds), Ok(3600));
        assert_eq!(
            parse(r#"{"sub": "a", "ttl_seconds": 1400.0}"#).map(|c| c.ttl_seconds),
            Ok(1400)
        );
        for (body, status) in [
            (r#"{"sub": "a", "ttl_seconds": null}"#, 422),
            (r#"{"sub": "a", "scope": null}"#, 422),
            (r#"{"sub": "a", "admin": true}"#, 422),
            (r#"{"sub": "a", "sub": "b"}"#, 400),
            (r#"["a"]"#, 422),
            (r#"{"sub": "a", "ttl_seconds": 0}"#, 422),
            (r#"{"sub": "a", "ttl_seconds": 1.5}"#, 422),
            (r#"{"sub": "a", "ttl_seconds": "60"}"#, 422),
            (r#"{"sub": "a\u0000"}"#, 422),
        ] {
            assert_eq!(parse(body).err(), Some(status), "{body}");
        }
    }
}
