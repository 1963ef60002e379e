//! Bearer-token authentication: who is calling, proven by a signed token.
//!
//! # Layout
//!
//! Pure (no `worker` types, no clock, no I/O; native tests drive them):
//! - [`bearer`]: the `Authorization` header → one [`bearer::BearerToken`].
//! - [`json`]: strict JSON (duplicate members refused).
//! - [`keys`]: JWKS / PASERK text → [`keys::VerificationKey`]s; weak keys refused.
//! - [`claims`]: the claim policy ([`claims::Policy`], [`claims::Refusal`]) with injected `now`.
//! - [`jwt`], [`paseto`]: token structure, header policy, key choice; [`decode_segment`]:
//!   their base64url segments.
//! - [`verify`]: the whole check over the signature seam; [`dev_token`]: `/dev/token` tokens.
//!
//! Seam and edge:
//! - [`signature`]: WebCrypto on wasm, jwt-compact natively.
//! - [`remote`]: the `JWT_JWKS_URL` key set (fetch, Cache API copy, cooldown, revocation,
//!   staleness bound; its decisions are pure functions of `now`).
//! - this file: [`authenticate`] for handlers; [`handlers`]: `GET /me`, `POST /dev/token`.

pub mod bearer;
pub mod claims;
pub mod dev_token;
pub mod guest;
pub mod handlers;
pub mod jwt;
pub mod keys;
pub mod paseto;
pub mod remote;
pub mod signature;
pub mod verify;

use std::cell::RefCell;
use std::rc::Rc;

use crate::config::Config;
use crate::http::{problem::ApiError, Cx};
use bearer::BearerToken;
use verify::KeyRing;

/// A parsed key ring and the configuration values it was parsed from.
struct CachedRing {
    /// The configuration object it was parsed from: while the isolate keeps serving that same
    /// object (the usual case: `Cx::config` parses once per isolate), the ring is valid
    /// without comparing the values. A `Weak` keeps the allocation, so the address is never
    /// reused by another configuration.
    from: std::rc::Weak<Config>,
    jwks: Option<String>,
    paseto: Vec<String>,
    guest: Option<crate::config::Secret>,
    guest_ttl: u64,
    ring: Rc<KeyRing>,
}

thread_local! {
    /// Keys parsed from configuration (`JWT_JWKS`, `PASETO_V4_PUBLIC_KEYS`), with the values
    /// they came from. Parsing once per isolate keeps the per-request path cheap; comparing
    /// the values notices another configuration. Public keys (and the operator's HMAC secret)
    /// are the same for every user, so this is not per-user state.
    static KEY_RING: RefCell<Option<CachedRing>> = const { RefCell::new(None) };
}

/// The configured keys, parsed on first use in this isolate.
///
/// # Errors
/// [`ApiError::Misconfigured`] for unusable key material.
pub fn key_ring(config: &Rc<Config>) -> Result<Rc<KeyRing>, ApiError> {
    // The same configuration object, or one with the same key values (compared field by
    // field; neither check allocates).
    let cached = KEY_RING.with(|r| {
        r.borrow()
            .as_ref()
            .filter(|c| {
                std::ptr::eq(c.from.as_ptr(), Rc::as_ptr(config))
                    || (c.jwks == config.jwt_jwks
                        && c.paseto == config.paseto_v4_public_keys
                        && c.guest == config.guest_token_key
                        && c.guest_ttl == config.guest_token_ttl_seconds)
            })
            .map(|c| Rc::clone(&c.ring))
    });
    if let Some(ring) = cached {
        return Ok(ring);
    }
    let ring = Rc::new(KeyRing::from_config(config)?);
    KEY_RING.with(|r| {
        *r.borrow_mut() = Some(CachedRing {
            from: Rc::downgrade(config),
            jwks: config.jwt_jwks.clone(),
            paseto: config.paseto_v4_public_keys.clone(),
            guest: config.guest_token_key.clone(),
            guest_ttl: config.guest_token_ttl_seconds,
            ring: Rc::clone(&ring),
        });
    });
    Ok(ring)
}

/// The verified caller of this request: 401 problem when there is no valid bearer token.
///
/// # Errors
/// [`ApiError::MissingToken`] when no bearer credentials were presented (no header, an empty
/// one, another scheme), [`ApiError::InvalidToken`]; [`ApiError::Misconfigured`] when
/// the verifier's configuration is unusable; [`ApiError::Unavailable`] when the token needs
/// the remote key set and it is past `JWT_JWKS_MAX_STALE_SECONDS` (or was never fetched);
/// [`ApiError::Limited`] (429) when the client address is over its bad-token limit, checked
/// before the token is parsed (see [`crate::limits`]), and 503 when that limiter is missing.
pub async fn authenticate(cx: &mut Cx) -> Result<Identity, ApiError> {
    // No header, an empty one or another scheme: no bearer token was sent (RFC 6750 §3.1).
    let Some(header) = cx
        .header("authorization")
        .filter(|h| bearer::presented(h) == bearer::Presented::Bearer)
    else {
        return Err(ApiError::MissingToken);
    };
    // An address over its bad-token limit is refused before its token costs anything.
    crate::limits::refuse_remembered_address(cx)?;
    let config = cx.shared_config()?;
    let policy = verify::policy(&config)?;
    let ring = key_ring(&config)?;
    let url = config.jwt_jwks_url.clone();
    let timing = remote::Timing::from_config(&config);
    let invalid = |r: claims::Refusal| ApiError::InvalidToken { reason: r.reason() };
    let token = match BearerToken::from_header(&header, policy.max_token_bytes) {
        Ok(token) => token,
        Err(refusal) => return Err(crate::limits::note_refused_token(cx, invalid(refusal)).await),
    };
    let now = cx.now;
    let ctx = &cx.ctx;
    let verified = verify::verify_bearer(&token, &policy, &ring, now, |trigger| {
        let url = url.clone();
        async move {
            match url {
                Some(url) => remote::keys(ctx, &url, now, trigger, timing)
                    .await
                    .map(Some),
                None => Ok(None),
            }
        }
    })
    .await;
    match verified {
        Ok(identity) => Ok(identity),
        // A refused token counts against the client address (see `crate::limits`).
        Err(verify::Failure::Refused(r)) => {
            Err(crate::limits::note_refused_token(cx, invalid(r)).await)
        }
        Err(verify::Failure::KeysUnavailable(u)) => Err(ApiError::Unavailable {
            retry_after: u.retry_after_seconds,
            what: u.reason,
        }),
    }
}

/// Verifies `text` as a guest token (the `guest_token` of `POST /cart/merge`): with the guest
/// key and the guest policy only, so an account's token, a forged or expired guest token, or
/// any token while guest sessions are off, is refused.
///
/// # Errors
/// 422 [`ApiError::InvalidValue`] for any token that is not a valid guest token (the reason
/// goes to the log line through the problem's kind only, never the token);
/// [`ApiError::Misconfigured`] when the verifier's configuration is unusable.
pub async fn verify_guest_token(cx: &mut Cx, text: &str) -> Result<Identity, ApiError> {
    let refuse = || ApiError::InvalidValue("`guest_token` is not a valid guest token.".into());
    let config = cx.shared_config()?;
    let policy = verify::policy(&config)?;
    let ring = key_ring(&config)?;
    let Some(guest) = &ring.guest else {
        return Err(refuse());
    };
    let token = BearerToken::from_header(&format!("Bearer {text}"), policy.max_token_bytes)
        .map_err(|_| refuse())?;
    if token.kind() != bearer::TokenKind::Jwt {
        return Err(refuse());
    }
    verify::verify_guest(&token, &policy, guest, cx.now)
        .await
        .map_err(|_| refuse())
}

/// As [`authenticate`], and the token must carry `scope` (403 otherwise).
///
/// # Errors
/// 401 as above, or [`ApiError::InsufficientScope`].
pub async fn require_scope(cx: &mut Cx, scope: &'static str) -> Result<Identity, ApiError> {
    let identity = authenticate(cx).await?;
    if identity.has_scope(scope) {
        Ok(identity)
    } else {
        Err(ApiError::InsufficientScope { scope })
    }
}

/// A verified caller. A user is the pair (`iss`, `sub`) everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub iss: String,
    pub sub: String,
    pub scopes: Vec<String>,
    /// `exp` as Unix seconds.
    pub exp: u64,
}

impl Identity {
    /// Whether the token granted `scope`. A guest holds none, whatever its token says.
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        !self.is_guest() && self.scopes.iter().any(|s| s == scope)
    }

    /// Whether this is a guest identity (a token edgecart signed for a shopper without an
    /// account).
    #[must_use]
    pub fn is_guest(&self) -> bool {
        self.iss == guest::ISSUER
    }

    /// A stable, fixed-length key for this user: SHA-256 over the length-prefixed `iss` and
    /// `sub`, hex. Fits any storage key limit, cannot collide across issuers, cannot inject.
    #[must_use]
    pub fn user_key(&self) -> String {
        crate::hash::sha256_parts(&[self.iss.as_bytes(), self.sub.as_bytes()])
    }
}

/// The bytes a token segment encodes, or `None` when it is not strict unpadded base64url
/// (RFC 4648 §5).
///
/// Strict means one canonical text per byte string: only `A–Z a–z 0–9 - _`, no padding, no
/// length of the form 4k + 1, and zero bits after the last byte (the `base64` crate's
/// `URL_SAFE_NO_PAD` engine refuses padding and, by default, non-zero trailing bits). Pure,
/// and not constant-time: a token is presented by its holder, so the time taken to decode it
/// tells nobody anything they do not have; key material from the configuration goes through
/// `base64ct` instead.
#[must_use]
pub fn decode_segment(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(iss: &str, sub: &str) -> Identity {
        Identity {
            iss: iss.into(),
            sub: sub.into(),
            scopes: vec![],
            exp: 0,
        }
    }

    #[test]
    fn the_same_sub_from_two_issuers_is_two_users() {
        assert_ne!(
            id("https://a.example", "alice").user_key(),
            id("https://b.example", "alice").user_key()
        );
        assert_ne!(id("ab", "c").user_key(), id("a", "bc").user_key());
        assert_eq!(id("a", "b").user_key().len(), 64);
    }
}
