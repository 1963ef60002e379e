//! PASETO v4.public tokens (pure): parsing, pre-authentication encoding and claims.
//!
//! `v4.public.` ‖ base64url(message ‖ Ed25519 signature) [‖ `.` ‖ base64url(footer)]. The
//! signature covers PAE(`v4.public.`, message, footer, implicit assertion), with an empty
//! implicit assertion. Dates are RFC 3339 strings. A JSON footer may name the key by its
//! PASERK id (`{"kid": "k4.pid.…"}`); then only that key is tried.

use serde_json::Value;

use super::claims::{check_claims, check_dates, rfc3339_date, Dates, Policy, Refusal};
use super::keys::{VerificationKey, PASERK_PID};
use super::Identity;
use crate::json::parse_object;
use crate::time::UnixMillis;

/// The header of every v4.public token.
pub const HEADER: &str = "v4.public.";

/// A token whose structure and claims passed; the signature is left.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingPaseto {
    /// PAE(header, message, footer, ""): the bytes that were signed.
    pub signed: Vec<u8>,
    pub signature: Vec<u8>,
    /// The PASERK id from the footer, when it names one.
    pub kid: Option<String>,
    pub identity: Identity,
}

/// Pre-authentication encoding (PASETO spec §PAE): the piece count, then each piece, all
/// prefixed by their length as a little-endian 64-bit integer with the top bit clear.
#[must_use]
pub fn pae(pieces: &[&[u8]]) -> Vec<u8> {
    let le64 = |n: usize| ((n as u64) & (u64::MAX >> 1)).to_le_bytes();
    let mut out = Vec::with_capacity(8 + pieces.iter().map(|p| 8 + p.len()).sum::<usize>());
    out.extend_from_slice(&le64(pieces.len()));
    for piece in pieces {
        out.extend_from_slice(&le64(piece.len()));
        out.extend_from_slice(piece);
    }
    out
}

/// Parses and checks everything but the signature.
///
/// # Errors
/// The first [`Refusal`] that applies.
pub fn parse(token: &str, policy: &Policy, now: UnixMillis) -> Result<PendingPaseto, Refusal> {
    if token.len() > policy.max_token_bytes {
        return Err(Refusal::TooLarge);
    }
    let rest = token.strip_prefix(HEADER).ok_or(Refusal::Malformed)?;
    let mut parts = rest.split('.');
    let (Some(body64), footer64, None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Refusal::Malformed);
    };
    let decode = |s: &str| super::decode_segment(s).ok_or(Refusal::Malformed);
    let body = decode(body64)?;
    let footer = match footer64 {
        None => Vec::new(),
        // A present-but-empty footer segment is not canonical.
        Some("") => return Err(Refusal::Malformed),
        Some(f) => decode(f)?,
    };
    let split = body.len().checked_sub(64).ok_or(Refusal::Malformed)?;
    let (message, signature) = body.split_at(split);
    let kid = footer_kid(&footer)?;
    let claims = parse_object(message).map_err(|_| Refusal::Malformed)?;
    let dates = Dates {
        exp: rfc3339_date(&claims, "exp")?.ok_or(Refusal::MissingExpiry)?,
        nbf: rfc3339_date(&claims, "nbf")?,
        iat: rfc3339_date(&claims, "iat")?,
    };
    check_dates(dates, policy, now)?;
    let identity = check_claims(&claims, dates, policy)?;
    Ok(PendingPaseto {
        signed: pae(&[HEADER.as_bytes(), message, &footer, b""]),
        signature: signature.to_vec(),
        kid,
        identity,
    })
}

/// The PASERK id a JSON footer names. A footer that is not JSON names no key; a JSON footer
/// with a `kid` that is not a `k4.pid.` string is refused.
fn footer_kid(footer: &[u8]) -> Result<Option<String>, Refusal> {
    if footer.first() != Some(&b'{') {
        return Ok(None);
    }
    let doc = parse_object(footer).map_err(|_| Refusal::Malformed)?;
    match doc.get("kid") {
        None => Ok(None),
        Some(Value::String(kid)) if kid.starts_with(PASERK_PID) => Ok(Some(kid.clone())),
        Some(_) => Err(Refusal::UnknownKey),
    }
}

impl PendingPaseto {
    /// The keys to try: the one the footer names, or every configured key.
    #[must_use]
    pub fn candidates<'k>(&self, keys: &'k [VerificationKey]) -> Vec<&'k VerificationKey> {
        match &self.kid {
            Some(kid) => keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect(),
            None => keys.iter().collect(),
        }
    }

    /// The identity, once a signature check succeeded.
    #[must_use]
    pub fn into_identity(self) -> Identity {
        self.identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_specification_examples() {
        assert_eq!(pae(&[]), vec![0; 8]);
        assert_eq!(
            pae(&[b""]),
            vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        let mut expected = vec![1, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0];
        expected.extend_from_slice(b"test");
        assert_eq!(pae(&[b"test"]), expected);
    }
}
