//! Standard Webhooks signing and the delivery decisions (pure).
//!
//! No `worker` types and no clock: the signing key from `ORDER_WEBHOOK_SECRET`, the
//! `webhook-signature` of a delivery, what an answer means, and the retry backoff. The edge
//! ([`super::delivery`]) does the I/O.

use base64ct::{Base64, Encoding};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The secret's prefix in Standard Webhooks.
const SECRET_PREFIX: &str = "whsec_";
/// The longest delay between two attempts.
pub const MAX_RETRY_DELAY_SECONDS: u64 = 3600;

/// The key after `whsec_`, base64-decoded (24 to 64 bytes, as the specification recommends).
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(…)")
    }
}

impl SigningKey {
    /// Parses `whsec_<base64>`; `None` when it is not one.
    #[must_use]
    pub fn parse(secret: &str) -> Option<Self> {
        let encoded = secret.trim().strip_prefix(SECRET_PREFIX)?;
        let bytes = Base64::decode_vec(encoded).ok()?;
        (24..=64).contains(&bytes.len()).then_some(Self(bytes))
    }

    /// `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`.
    #[must_use]
    pub fn sign(&self, id: &str, timestamp: u64, body: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            // HMAC takes keys of any length; unreachable.
            return String::new();
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        format!("v1,{}", Base64::encode_string(&mac.finalize().into_bytes()))
    }
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The webhook answered 2xx.
    Delivered,
    /// Any other answer (3xx included: redirects are not followed), a timeout, or no
    /// connection: retried with backoff.
    Failed,
}

impl Attempt {
    #[must_use]
    pub fn from_status(status: u16) -> Self {
        if (200..300).contains(&status) {
            Self::Delivered
        } else {
            Self::Failed
        }
    }
}

/// The delay before the next attempt after `attempts` failed ones: `base`, then doubling,
/// at most [`MAX_RETRY_DELAY_SECONDS`].
#[must_use]
pub fn retry_delay_seconds(base: u64, attempts: u32) -> u32 {
    let doublings = attempts.saturating_sub(1).min(20);
    let delay = base
        .saturating_mul(1u64 << doublings)
        .min(MAX_RETRY_DELAY_SECONDS);
    u32::try_from(delay).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks specification (and of its libraries' tests).
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: u64 = 1_614_265_330;
    const SPEC_BODY: &str = r#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_signature_matches_the_specification_example() {
        let key = SigningKey::parse(SPEC_SECRET);
        assert!(key.is_some());
        let sig = key.map(|k| k.sign(SPEC_ID, SPEC_TS, SPEC_BODY));
        assert_eq!(sig.as_deref(), Some(SPEC_SIGNATURE));
    }

    #[test]
    fn any_change_changes_the_signature() {
        let Some(key) = SigningKey::parse(SPEC_SECRET) else {
            unreachable!()
        };
        let base = key.sign(SPEC_ID, SPEC_TS, SPEC_BODY);
        assert_ne!(key.sign("msg_other", SPEC_TS, SPEC_BODY), base);
        assert_ne!(key.sign(SPEC_ID, SPEC_TS + 1, SPEC_BODY), base);
        assert_ne!(key.sign(SPEC_ID, SPEC_TS, "{}"), base);
    }

    #[test]
    fn secrets_must_be_whsec_and_base64_of_a_sensible_length() {
        assert!(SigningKey::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_none());
        assert!(SigningKey::parse("whsec_").is_none());
        assert!(SigningKey::parse("whsec_!!!!").is_none());
        assert!(SigningKey::parse("whsec_c2hvcnQ=").is_none());
        assert_eq!(
            format!("{:?}", SigningKey::parse(SPEC_SECRET)),
            "Some(SigningKey(…))"
        );
    }

    #[test]
    fn only_2xx_delivers() {
        assert_eq!(Attempt::from_status(200), Attempt::Delivered);
        assert_eq!(Attempt::from_status(204), Attempt::Delivered);
        for status in [0, 199, 301, 302, 308, 400, 404, 500, 503] {
            assert_eq!(Attempt::from_status(status), Attempt::Failed, "{status}");
        }
    }

    #[test]
    fn backoff_doubles_from_the_base_and_is_capped() {
        assert_eq!(retry_delay_seconds(30, 1), 30);
        assert_eq!(retry_delay_seconds(30, 2), 60);
        assert_eq!(retry_delay_seconds(30, 4), 240);
        assert_eq!(retry_delay_seconds(30, 100), 3600);
        assert_eq!(retry_delay_seconds(0, 5), 0);
        assert_eq!(retry_delay_seconds(30, 0), 30);
    }
}
