//! `GET /me` and `POST /dev/token` (the HTTP edge of authentication).

use serde::Serialize;
use worker::Response;

use super::dev_token::{self, DevTokenRequest};
use super::signature;
use crate::http::{self, problem::ApiError, Cx, PRIVATE_NO_STORE};

#[derive(Serialize)]
struct Me<'a> {
    sub: &'a str,
    iss: &'a str,
    scopes: &'a [String],
    exp: u64,
}

/// `GET /me`: the verified identity; per user, so `private, no-store`.
///
/// # Errors
/// 401 without a valid token.
pub async fn me(cx: &mut Cx) -> Result<Response, ApiError> {
    let id = super::authenticate(cx).await?;
    http::json(
        200,
        &Me {
            sub: &id.sub,
            iss: &id.iss,
            scopes: &id.scopes,
            exp: id.exp,
        },
        PRIVATE_NO_STORE,
    )
}

#[derive(Serialize)]
struct TokenBody {
    token: String,
}

/// `POST /dev/token`: a signed token for local development. 404 unless
/// `ENVIRONMENT=development` and `DEV_TOKEN_KEY` is set.
///
/// # Errors
/// 404 as above; 429 (mint limit), 503 (no limiter); 400/413/422 for the body; 500 when `DEV_TOKEN_KEY` is unusable.
pub async fn dev_token(cx: &mut Cx) -> Result<Response, ApiError> {
    let (key, issuer, audience) = {
        let config = match cx.config() {
            Ok(c) if c.is_development() => c,
            Ok(_) | Err(_) => return Err(ApiError::NotFound),
        };
        let Some(secret) = &config.dev_token_key else {
            return Err(ApiError::NotFound);
        };
        let key = dev_token::parse_dev_key(secret.expose()).map_err(|reason| {
            ApiError::Misconfigured {
                variable: "DEV_TOKEN_KEY",
                reason,
            }
        })?;
        let issuer = config.jwt_issuer.clone().ok_or(ApiError::Misconfigured {
            variable: "JWT_ISSUER",
            reason: "required to issue development tokens".to_owned(),
        })?;
        let audience = config
            .jwt_audience
            .first()
            .cloned()
            .ok_or(ApiError::Misconfigured {
                variable: "JWT_AUDIENCE",
                reason: "required to issue development tokens".to_owned(),
            })?;
        (key, issuer, audience)
    };
    // Minting needs no account: limited per client address, before the body is read.
    crate::limits::check_mint(cx).await?;
    let request: DevTokenRequest = cx.json_body().await?;
    let claims = request.validate().map_err(ApiError::InvalidValue)?;
    let input = dev_token::signing_input(&key, &issuer, &audience, &claims, cx.now);
    let sig = signature::sign_es256(&key, input.as_bytes())
        .await
        .map_err(|reason| ApiError::Misconfigured {
            variable: "DEV_TOKEN_KEY",
            reason,
        })?;
    http::json(
        200,
        &TokenBody {
            token: dev_token::assemble(&input, &sig),
        },
        "no-store",
    )
}

/// `POST /session/guest`: a guest identity for a shopper without an account, signed with
/// `GUEST_TOKEN_KEY`. Nothing is stored; 404 when the key is not set. A body is ignored.
/// Minting needs no account, so it shares the development tokens' limit per client address.
///
/// # Errors
/// 404 as above; 429 past the mint limit; 500 when `JWT_AUDIENCE` is missing.
pub async fn guest_session(cx: &mut Cx) -> Result<Response, ApiError> {
    let config = cx.shared_config()?;
    let ring = super::key_ring(&config)?;
    let Some(guest) = &ring.guest else {
        return Err(ApiError::NotFound);
    };
    let audience = config.jwt_audience.first().ok_or(ApiError::Misconfigured {
        variable: "JWT_AUDIENCE",
        reason: "required to issue guest tokens".to_owned(),
    })?;
    crate::limits::check_mint(cx).await?;
    let session = super::guest::issue(guest, audience, &http::random_id(), cx.now);
    http::json(201, &session, "no-store")
}
