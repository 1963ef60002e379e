//! Token verification, start to finish, over the signature seam (pure apart from the seam).
//!
//! `verify_bearer` drives parsing, the policy, key choice and the signature check; where keys
//! come from beyond configuration is a closure, so the worker passes the remote key set and
//! native tests pass a fake. Nothing here reads a clock or the network itself.

use std::future::Future;
use std::rc::Rc;

use super::bearer::{BearerToken, TokenKind};
use super::claims::{Policy, Refusal};
use super::guest::{self, GuestKey};
use super::jwt::{self, KeyChoice, PendingJwt};
use super::keys::{parse_jwks, parse_paserks, KeySource, VerificationKey};
use super::paseto::{self, PendingPaseto};
use super::remote::{KeysUnavailable, Trigger};
use super::{signature, Identity};
use crate::config::Config;
use crate::http::problem::ApiError;
use crate::time::UnixMillis;

/// The keys configuration provides, parsed once per isolate (see `auth::key_ring`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRing {
    /// `JWT_JWKS`.
    pub jwks: Vec<VerificationKey>,
    /// `PASETO_V4_PUBLIC_KEYS`, each with its PASERK id as `kid`.
    pub paseto: Vec<VerificationKey>,
    /// `GUEST_TOKEN_KEY`: the only key a guest token verifies with, and it verifies nothing
    /// else.
    pub guest: Option<GuestKey>,
}

impl KeyRing {
    /// Parses the configured key material.
    ///
    /// # Errors
    /// [`ApiError::Misconfigured`] naming `JWT_JWKS` (malformed or weak keys) or
    /// `PASETO_V4_PUBLIC_KEYS`.
    pub fn from_config(config: &Config) -> Result<Self, ApiError> {
        let jwks = match &config.jwt_jwks {
            Some(text) => {
                parse_jwks(text, KeySource::Inline).map_err(|reason| ApiError::Misconfigured {
                    variable: "JWT_JWKS",
                    reason,
                })?
            }
            None => Vec::new(),
        };
        let paseto = parse_paserks(&config.paseto_v4_public_keys).map_err(|reason| {
            ApiError::Misconfigured {
                variable: "PASETO_V4_PUBLIC_KEYS",
                reason,
            }
        })?;
        let guest = config
            .guest_token_key
            .as_ref()
            .map(|secret| GuestKey::new(secret.expose(), config.guest_token_ttl_seconds));
        Ok(Self {
            jwks,
            paseto,
            guest,
        })
    }
}

/// The claim policy the configuration asks for.
///
/// # Errors
/// [`ApiError::Misconfigured`] when the issuer, the audience or every key source is missing.
pub fn policy(config: &Config) -> Result<Policy, ApiError> {
    let missing = |variable: &'static str, reason: &str| ApiError::Misconfigured {
        variable,
        reason: reason.to_owned(),
    };
    let issuer = config
        .jwt_issuer
        .clone()
        .ok_or_else(|| missing("JWT_ISSUER", "required to verify bearer tokens"))?;
    if config.jwt_audience.is_empty() {
        return Err(missing("JWT_AUDIENCE", "required to verify bearer tokens"));
    }
    if config.jwt_jwks.is_none()
        && config.jwt_jwks_url.is_none()
        && config.paseto_v4_public_keys.is_empty()
    {
        return Err(missing(
            "JWT_JWKS",
            "no key source: set JWT_JWKS, JWT_JWKS_URL or PASETO_V4_PUBLIC_KEYS",
        ));
    }
    Ok(Policy {
        issuer,
        audiences: config.jwt_audience.clone(),
        leeway_seconds: config.jwt_leeway_seconds,
        max_token_bytes: config.jwt_max_token_bytes,
        max_lifetime_seconds: config.jwt_max_lifetime_seconds,
        es256_require_low_s: config.jwt_es256_require_low_s,
    })
}

/// Why a bearer token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The token failed a check: 401.
    Refused(Refusal),
    /// The token needs the remote key set, and it cannot be used (past the staleness bound,
    /// or never fetched): 503, the client did nothing wrong.
    KeysUnavailable(KeysUnavailable),
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Self {
        Self::Refused(r)
    }
}

impl From<KeysUnavailable> for Failure {
    fn from(u: KeysUnavailable) -> Self {
        Self::KeysUnavailable(u)
    }
}

/// Verifies a bearer token. `remote` yields the remote key set (`Ok(None)` when there is
/// none, an error when it cannot be used); it is asked first on [`Trigger::Request`], then
/// once more on [`Trigger::UnknownKid`]. Keys from configuration are tried first, so a token
/// they verify never waits for, or depends on, the key server.
///
/// # Errors
/// The [`Refusal`] that decided, or [`KeysUnavailable`] from `remote`.
pub async fn verify_bearer<F, Fut>(
    token: &BearerToken,
    policy: &Policy,
    ring: &KeyRing,
    now: UnixMillis,
    mut remote: F,
) -> Result<Identity, Failure>
where
    F: FnMut(Trigger) -> Fut,
    Fut: Future<Output = Result<Option<Rc<Vec<VerificationKey>>>, KeysUnavailable>>,
{
    match token.kind() {
        TokenKind::PasetoV4Public => {
            let pending = paseto::parse(token.as_str(), policy, now)?;
            Ok(verify_paseto(pending, &ring.paseto).await?)
        }
        TokenKind::Jwt => {
            let pending = match (jwt::parse(token.as_str(), policy, now), &ring.guest) {
                (Err(Refusal::WrongIssuer), Some(guest)) => {
                    return Ok(verify_guest(token, policy, guest, now).await?)
                }
                (pending, _) => pending?,
            };
            if let KeyChoice::Found(key) = pending.choose_key(&ring.jwks) {
                return Ok(verify_jwt(&pending, key).await?);
            }
            let Some(keys) = remote(Trigger::Request).await? else {
                return Err(Refusal::UnknownKey.into());
            };
            match pending.choose_key(&keys) {
                KeyChoice::Found(key) => Ok(verify_jwt(&pending, key).await?),
                KeyChoice::NoSingleFit => Err(Refusal::UnknownKey.into()),
                KeyChoice::UnknownKid => {
                    let keys = remote(Trigger::UnknownKid)
                        .await?
                        .ok_or(Refusal::UnknownKey)?;
                    match pending.choose_key(&keys) {
                        KeyChoice::Found(key) => Ok(verify_jwt(&pending, key).await?),
                        KeyChoice::UnknownKid | KeyChoice::NoSingleFit => {
                            Err(Refusal::UnknownKey.into())
                        }
                    }
                }
            }
        }
    }
}

/// A token of the guest issuer: the guest policy (its issuer, its lifetime bound) and the guest
/// key, nothing else.
pub(crate) async fn verify_guest(
    token: &BearerToken,
    policy: &Policy,
    guest: &GuestKey,
    now: UnixMillis,
) -> Result<Identity, Refusal> {
    let guest_policy = Policy {
        issuer: guest::ISSUER.to_owned(),
        max_lifetime_seconds: Some(guest.ttl_seconds),
        ..policy.clone()
    };
    let pending = jwt::parse(token.as_str(), &guest_policy, now)?;
    // Tokens edgecart signs always name the guest key.
    if pending.kid != guest.key.kid {
        return Err(Refusal::UnknownKey);
    }
    match pending.choose_key(std::slice::from_ref(&guest.key)) {
        KeyChoice::Found(key) => verify_jwt(&pending, key).await,
        KeyChoice::UnknownKid | KeyChoice::NoSingleFit => Err(Refusal::UnknownKey),
    }
}

async fn verify_jwt(pending: &PendingJwt, key: &VerificationKey) -> Result<Identity, Refusal> {
    pending.precheck(key)?;
    if signature::verify(key, pending.signing_input.as_bytes(), &pending.signature).await {
        Ok(pending.identity.clone())
    } else {
        Err(Refusal::BadSignature)
    }
}

async fn verify_paseto(
    pending: PendingPaseto,
    keys: &[VerificationKey],
) -> Result<Identity, Refusal> {
    let candidates = pending.candidates(keys);
    if candidates.is_empty() {
        return Err(Refusal::UnknownKey);
    }
    if pending.signature.len() != 64 {
        return Err(Refusal::BadSignature);
    }
    for key in candidates {
        if signature::verify(key, &pending.signed, &pending.signature).await {
            return Ok(pending.into_identity());
        }
    }
    Err(Refusal::BadSignature)
}
