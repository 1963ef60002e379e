//! Bearer-token authentication: who is calling, proven by a signed token.
//!
//! (Being built: JWT via jwt-compact with WebCrypto signatures, PASETO v4.public.)

pub mod handlers;

use crate::http::{problem::ApiError, Cx};

/// The verified caller of this request: 401 problem when there is no valid bearer token.
///
/// # Errors
/// [`ApiError::MissingToken`] or [`ApiError::InvalidToken`].
pub async fn authenticate(cx: &mut Cx) -> Result<Identity, ApiError> {
    let _ = cx;
    Err(ApiError::MissingToken)
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
    /// Whether the token granted `scope`.
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// A stable, fixed-length key for this user: SHA-256 over the length-prefixed `iss` and
    /// `sub`, hex. Fits any storage key limit, cannot collide across issuers, cannot inject.
    #[must_use]
    pub fn user_key(&self) -> String {
        crate::hash::sha256_parts(&[self.iss.as_bytes(), self.sub.as_bytes()])
    }
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
