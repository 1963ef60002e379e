//! Typed configuration, parsed from the worker's variables and secrets.
//!
//! Pure: [`Config::from_lookup`] takes a lookup function, so native tests feed it a map and
//! the edge feeds it `Env`. The edge reads it once per request. A malformed value is a
//! [`ConfigError`] naming the variable (never quoting its value). Secrets live in [`Secret`],
//! whose `Debug` is redacted.

use std::fmt;

/// Where the worker runs. Only `development` enables `/dev/token`, loopback `http` key-set
/// URLs, the test hooks and detailed error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Production,
    Development,
}

/// Which store holds idempotency records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdempotencyBackend {
    DurableObject,
    D1,
}

/// Which requests write a log line (`LOG_REQUESTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestLog {
    /// Only requests answered with a problem (status 400 and above). Workers Logs' invocation
    /// logs (`[observability]` in `wrangler.toml`; subject to sampling and plan limits) record
    /// each invocation's method, URL, status and timing; a line from the worker adds what they
    /// lack: the route template, the request id, the problem type and, for server errors and
    /// refused tokens, the detail.
    Problems,
    /// Every request.
    All,
}

/// A secret value: printable only on purpose, never by `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    #[must_use]
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself; call sites say so explicitly.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Every setting of edgecart, with its default. See the README's configuration table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub environment: Environment,
    /// The one accepted `iss`.
    pub jwt_issuer: Option<String>,
    /// Accepted `aud` values (any-of).
    pub jwt_audience: Vec<String>,
    /// Inline JWKS JSON (the only place `oct` keys are accepted).
    pub jwt_jwks: Option<String>,
    /// Remote JWKS URL (https; loopback http in development).
    pub jwt_jwks_url: Option<String>,
    /// How long past its 10-minute life the last good remote key set keeps verifying while
    /// refetches fail; past it, requests that need it get 503.
    pub jwt_jwks_max_stale_seconds: u64,
    /// `JWT_JWKS_DEV_FRESH_SECONDS`: the remote key set's life instead of 10 minutes (and the
    /// refetch cooldown at most that), for tests. Read only when `ENVIRONMENT=development`;
    /// always `None` otherwise.
    pub jwt_jwks_dev_fresh_seconds: Option<u64>,
    pub jwt_leeway_seconds: u64,
    pub jwt_max_token_bytes: usize,
    pub jwt_max_lifetime_seconds: Option<u64>,
    /// Refuse high-S ES256 signatures (off: both twins are valid ECDSA, semantics.md A19).
    pub jwt_es256_require_low_s: bool,
    /// PASERK `k4.public.…` keys.
    pub paseto_v4_public_keys: Vec<String>,
    /// Private JWK that signs `/dev/token` tokens (development only).
    pub dev_token_key: Option<Secret>,
    /// The HMAC secret (at least 32 bytes) edgecart signs guest tokens with; `None`: no guest
    /// sessions (`POST /session/guest` is 404 and no guest token verifies).
    pub guest_token_key: Option<Secret>,
    /// Lifetime of a guest token, and the longest `exp - iat` a guest token may have.
    pub guest_token_ttl_seconds: u64,
    pub cors_allow_origins: Vec<String>,
    pub catalogue_max_age: u32,
    pub catalogue_s_maxage: u32,
    pub catalogue_swr: u32,
    pub cart_ttl_seconds: u64,
    pub idempotency_backend: IdempotencyBackend,
    pub idempotency_lease_seconds: u64,
    pub idempotency_retention_seconds: u64,
    pub log_requests: RequestLog,
    /// Where order events are delivered; `None` → events are kept, not delivered.
    pub order_webhook_url: Option<String>,
    /// `whsec_…` (Standard Webhooks): the key signing each delivery, validated here.
    pub order_webhook_secret: Option<Secret>,
    /// How long a delivery waits for the webhook's answer.
    pub order_webhook_timeout_seconds: u64,
    /// The first retry's delay; each further retry doubles it (capped at an hour).
    pub order_webhook_retry_base_seconds: u64,
    /// The outbox sweep re-sends a pending event nobody touched for this long.
    pub order_events_sweep_after_seconds: u64,
}

/// A variable that is present but unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.reason)
    }
}

impl From<ConfigError> for crate::http::problem::ApiError {
    fn from(e: ConfigError) -> Self {
        Self::Misconfigured {
            variable: e.variable,
            reason: e.reason,
        }
    }
}

/// Names of the secrets (read with `Env::secret`, never listed in `wrangler.toml`).
pub const SECRET_NAMES: [&str; 3] = ["DEV_TOKEN_KEY", "GUEST_TOKEN_KEY", "ORDER_WEBHOOK_SECRET"];

/// Names of the plain variables.
pub const VAR_NAMES: [&str; 26] = [
    "ENVIRONMENT",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWT_JWKS",
    "JWT_JWKS_URL",
    "JWT_JWKS_MAX_STALE_SECONDS",
    "JWT_JWKS_DEV_FRESH_SECONDS",
    "JWT_LEEWAY_SECONDS",
    "JWT_MAX_TOKEN_BYTES",
    "JWT_MAX_LIFETIME_SECONDS",
    "JWT_ES256_REQUIRE_LOW_S",
    "PASETO_V4_PUBLIC_KEYS",
    "GUEST_TOKEN_TTL_SECONDS",
    "CORS_ALLOW_ORIGINS",
    "CATALOGUE_MAX_AGE",
    "CATALOGUE_S_MAXAGE",
    "CATALOGUE_SWR",
    "CART_TTL_SECONDS",
    "IDEMPOTENCY_BACKEND",
    "IDEMPOTENCY_LEASE_SECONDS",
    "IDEMPOTENCY_RETENTION_SECONDS",
    "LOG_REQUESTS",
    "ORDER_WEBHOOK_URL",
    "ORDER_WEBHOOK_TIMEOUT_SECONDS",
    "ORDER_WEBHOOK_RETRY_BASE_SECONDS",
    "ORDER_EVENTS_SWEEP_AFTER_SECONDS",
];

impl Config {
    /// Parses every setting through `lookup` (variable name → value, `None` when unset).
    /// Empty values count as unset.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first variable whose value cannot be used.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let environment = match get("ENVIRONMENT").as_deref() {
            None | Some("production") => Environment::Production,
            Some("development") => Environment::Development,
            Some(_) => return Err(err("ENVIRONMENT", "expected `production` or `development`")),
        };
        let idempotency_backend = match get("IDEMPOTENCY_BACKEND").as_deref() {
            None | Some("durable_object") => IdempotencyBackend::DurableObject,
            Some("d1") => IdempotencyBackend::D1,
            Some(_) => {
                return Err(err(
                    "IDEMPOTENCY_BACKEND",
                    "expected `durable_object` or `d1`",
                ))
            }
        };
        let log_requests = match get("LOG_REQUESTS").as_deref() {
            None | Some("problems") => RequestLog::Problems,
            Some("all") => RequestLog::All,
            Some(_) => return Err(err("LOG_REQUESTS", "expected `problems` or `all`")),
        };
        let jwt_jwks_url = get("JWT_JWKS_URL");
        if let Some(url) = &jwt_jwks_url {
            check_url("JWT_JWKS_URL", url, environment)?;
        }
        let order_webhook_url = get("ORDER_WEBHOOK_URL");
        if let Some(url) = &order_webhook_url {
            check_url("ORDER_WEBHOOK_URL", url, environment)?;
        }
        let order_webhook_secret = get("ORDER_WEBHOOK_SECRET");
        if order_webhook_url.is_some() && order_webhook_secret.is_none() {
            // Unsigned deliveries would be forgeable by anyone who learns the URL.
            return Err(err(
                "ORDER_WEBHOOK_SECRET",
                "required when ORDER_WEBHOOK_URL is set",
            ));
        }
        if let Some(secret) = &order_webhook_secret {
            if crate::orders::webhook::SigningKey::parse(secret).is_none() {
                return Err(err(
                    "ORDER_WEBHOOK_SECRET",
                    "expected `whsec_` and a base64 key of 24 to 64 bytes",
                ));
            }
        }
        let cart_ttl_seconds = number(&get, "CART_TTL_SECONDS", 2_592_000, 60, 31_536_000)?;
        Ok(Self {
            environment,
            jwt_issuer: get("JWT_ISSUER"),
            jwt_audience: list(get("JWT_AUDIENCE")),
            jwt_jwks: get("JWT_JWKS"),
            jwt_jwks_url,
            jwt_jwks_max_stale_seconds: number(
                &get,
                "JWT_JWKS_MAX_STALE_SECONDS",
                3600,
                0,
                31_536_000,
            )?,
            // A test knob: ignored outside development, like the test delay hook.
            jwt_jwks_dev_fresh_seconds: match environment {
                Environment::Development if get("JWT_JWKS_DEV_FRESH_SECONDS").is_some() => {
                    Some(number(&get, "JWT_JWKS_DEV_FRESH_SECONDS", 600, 1, 600)?)
                }
                Environment::Development | Environment::Production => None,
            },
            jwt_leeway_seconds: number(&get, "JWT_LEEWAY_SECONDS", 60, 0, 3600)?,
            jwt_max_token_bytes: usize::try_from(number(
                &get,
                "JWT_MAX_TOKEN_BYTES",
                8192,
                64,
                1 << 20,
            )?)
            .map_err(|_| err("JWT_MAX_TOKEN_BYTES", "out of range"))?,
            jwt_max_lifetime_seconds: match get("JWT_MAX_LIFETIME_SECONDS") {
                None => None,
                Some(_) => Some(number(&get, "JWT_MAX_LIFETIME_SECONDS", 0, 1, 31_536_000)?),
            },
            jwt_es256_require_low_s: match get("JWT_ES256_REQUIRE_LOW_S").as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(_) => {
                    return Err(err("JWT_ES256_REQUIRE_LOW_S", "expected `true` or `false`"))
                }
            },
            paseto_v4_public_keys: list(get("PASETO_V4_PUBLIC_KEYS")),
            dev_token_key: get("DEV_TOKEN_KEY").map(Secret::new),
            guest_token_key: match get("GUEST_TOKEN_KEY") {
                Some(secret) if secret.len() < crate::auth::guest::MIN_KEY_BYTES => {
                    return Err(err("GUEST_TOKEN_KEY", "must be at least 32 bytes"))
                }
                secret => secret.map(Secret::new),
            },
            guest_token_ttl_seconds: number(
                &get,
                "GUEST_TOKEN_TTL_SECONDS",
                604_800,
                60,
                31_536_000,
            )?,
            cors_allow_origins: list(get("CORS_ALLOW_ORIGINS")),
            catalogue_max_age: small(number(&get, "CATALOGUE_MAX_AGE", 60, 0, 31_536_000)?),
            catalogue_s_maxage: small(number(&get, "CATALOGUE_S_MAXAGE", 300, 1, 31_536_000)?),
            catalogue_swr: small(number(&get, "CATALOGUE_SWR", 60, 0, 31_536_000)?),
            cart_ttl_seconds,
            idempotency_backend,
            idempotency_lease_seconds: number(&get, "IDEMPOTENCY_LEASE_SECONDS", 30, 1, 3600)?,
            idempotency_retention_seconds: number(
                &get,
                "IDEMPOTENCY_RETENTION_SECONDS",
                86_400,
                60,
                2_592_000,
            )?,
            log_requests,
            order_webhook_url,
            order_webhook_secret: order_webhook_secret.map(Secret::new),
            order_webhook_timeout_seconds: number(
                &get,
                "ORDER_WEBHOOK_TIMEOUT_SECONDS",
                10,
                1,
                30,
            )?,
            order_webhook_retry_base_seconds: number(
                &get,
                "ORDER_WEBHOOK_RETRY_BASE_SECONDS",
                30,
                0,
                3600,
            )?,
            order_events_sweep_after_seconds: number(
                &get,
                "ORDER_EVENTS_SWEEP_AFTER_SECONDS",
                600,
                0,
                86_400,
            )?,
        })
    }

    #[must_use]
    pub fn is_development(&self) -> bool {
        self.environment == Environment::Development
    }
}

fn err(variable: &'static str, reason: &str) -> ConfigError {
    ConfigError {
        variable,
        reason: reason.to_owned(),
    }
}

fn list(value: Option<String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn small(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(text) = get(name) else {
        return Ok(default);
    };
    let value: u64 = text
        .parse()
        .map_err(|_| err(name, "expected a whole number of the documented unit"))?;
    if value < min || value > max {
        return Err(ConfigError {
            variable: name,
            reason: format!("must be between {min} and {max}"),
        });
    }
    Ok(value)
}

fn check_url(
    variable: &'static str,
    url: &str,
    environment: Environment,
) -> Result<(), ConfigError> {
    // Userinfo (`user@host`) is refused everywhere: `http://localhost:80@evil.example/` would
    // pass a prefix check for loopback while naming evil.example, and a key server needs no
    // credentials in its URL.
    let authority = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    if authority.contains('@') {
        return Err(err(
            variable,
            "must not contain user information (`@`) in the host part",
        ));
    }
    if url.starts_with("https://") && url.len() > "https://".len() {
        return Ok(());
    }
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| {
            url.strip_prefix(p).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with(':') || rest.starts_with('/')
            })
        });
    if loopback && environment == Environment::Development {
        return Ok(());
    }
    Err(err(
        variable,
        "must be an https URL (loopback http only when ENVIRONMENT=development)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_production_values() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.environment, Environment::Production);
        assert_eq!(c.jwt_leeway_seconds, 60);
        assert_eq!(c.jwt_max_token_bytes, 8192);
        assert_eq!(c.jwt_max_lifetime_seconds, None);
        assert!(!c.jwt_es256_require_low_s);
        assert_eq!(c.jwt_jwks_max_stale_seconds, 3600);
        assert_eq!(c.jwt_jwks_dev_fresh_seconds, None);
        assert_eq!(
            (c.catalogue_max_age, c.catalogue_s_maxage, c.catalogue_swr),
            (60, 300, 60)
        );
        assert_eq!(c.cart_ttl_seconds, 2_592_000);
        assert_eq!(c.idempotency_backend, IdempotencyBackend::DurableObject);
        assert_eq!(
            (c.idempotency_lease_seconds, c.idempotency_retention_seconds),
            (30, 86_400)
        );
        assert!(c.cors_allow_origins.is_empty());
        assert_eq!(c.log_requests, RequestLog::Problems);
    }

    #[test]
    fn lists_are_comma_separated_and_trimmed() {
        let c = parse(&[
            ("JWT_AUDIENCE", " a, b ,,c "),
            ("CORS_ALLOW_ORIGINS", "https://x.example"),
        ])
        .unwrap();
        assert_eq!(c.jwt_audience, vec!["a", "b", "c"]);
        assert_eq!(c.cors_allow_origins, vec!["https://x.example"]);
    }

    #[test]
    fn a_malformed_number_names_the_variable_not_the_value() {
        let e = parse(&[("JWT_LEEWAY_SECONDS", "sixty")]).unwrap_err();
        assert_eq!(e.variable, "JWT_LEEWAY_SECONDS");
        assert!(!e.reason.contains("sixty"));
        assert_eq!(
            parse(&[("CART_TTL_SECONDS", "10")]).unwrap_err().variable,
            "CART_TTL_SECONDS"
        );
    }

    #[test]
    fn unknown_enumerations_are_refused() {
        assert_eq!(
            parse(&[("ENVIRONMENT", "dev")]).unwrap_err().variable,
            "ENVIRONMENT"
        );
        assert_eq!(
            parse(&[("JWT_ES256_REQUIRE_LOW_S", "yes")])
                .unwrap_err()
                .variable,
            "JWT_ES256_REQUIRE_LOW_S"
        );
        assert!(
            parse(&[("JWT_ES256_REQUIRE_LOW_S", "true")])
                .unwrap()
                .jwt_es256_require_low_s
        );
        assert!(
            !parse(&[("JWT_ES256_REQUIRE_LOW_S", "false")])
                .unwrap()
                .jwt_es256_require_low_s
        );
        assert_eq!(
            parse(&[("IDEMPOTENCY_BACKEND", "kv")])
                .unwrap_err()
                .variable,
            "IDEMPOTENCY_BACKEND"
        );
        assert_eq!(
            parse(&[("IDEMPOTENCY_BACKEND", "d1")])
                .unwrap()
                .idempotency_backend,
            IdempotencyBackend::D1
        );
        assert_eq!(
            parse(&[("LOG_REQUESTS", "everything")])
                .unwrap_err()
                .variable,
            "LOG_REQUESTS"
        );
        assert_eq!(
            parse(&[("LOG_REQUESTS", "all")]).unwrap().log_requests,
            RequestLog::All
        );
    }

    #[test]
    fn the_webhook_url_is_https_except_loopback_in_development_and_the_secret_is_whsec() {
        let dev = ("ENVIRONMENT", "development");
        let good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let secret = ("ORDER_WEBHOOK_SECRET", good);
        assert!(parse(&[
            ("ORDER_WEBHOOK_URL", "https://hooks.example/edgecart"),
            secret
        ])
        .is_ok());
        let e = parse(&[("ORDER_WEBHOOK_URL", "https://hooks.example/edgecart")]).err();
        assert_eq!(e.map(|e| e.variable), Some("ORDER_WEBHOOK_SECRET"));
        let e = parse(&[("ORDER_WEBHOOK_URL", "http://127.0.0.1:9000/"), secret]).err();
        assert_eq!(e.map(|e| e.variable), Some("ORDER_WEBHOOK_URL"));
        assert!(parse(&[("ORDER_WEBHOOK_URL", "http://127.0.0.1:9000/"), secret, dev]).is_ok());
        assert!(parse(&[("ORDER_WEBHOOK_URL", "http://hooks.example/"), secret, dev]).is_err());
        let evil = ("ORDER_WEBHOOK_URL", "http://127.0.0.1@evil.example/");
        assert!(parse(&[evil, secret, dev]).is_err());
        let c = parse(&[("ORDER_WEBHOOK_SECRET", good)]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.order_webhook_secret.map(|s| s.expose().to_owned()),
            Some(good.to_owned())
        );
        for bad in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_",
            "whsec_!!!!",
            "whsec_c2hvcnQ=",
        ] {
            let e = parse(&[("ORDER_WEBHOOK_SECRET", bad)]).err();
            assert_eq!(
                e.as_ref().map(|e| e.variable),
                Some("ORDER_WEBHOOK_SECRET"),
                "{bad}"
            );
            assert!(bad.len() < 8 || !e.map(|e| e.reason).unwrap_or_default().contains(bad));
        }
        let c = parse(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.order_webhook_url, None);
        assert_eq!(c.order_webhook_timeout_seconds, 10);
        assert_eq!(c.order_webhook_retry_base_seconds, 30);
        assert_eq!(c.order_events_sweep_after_seconds, 600);
        assert!(parse(&[("ORDER_WEBHOOK_TIMEOUT_SECONDS", "0")]).is_err());
    }

    #[test]
    fn jwks_urls_must_be_https_except_loopback_in_development() {
        assert!(parse(&[("JWT_JWKS_URL", "https://idp.example/jwks")]).is_ok());
        assert!(parse(&[("JWT_JWKS_URL", "http://idp.example/jwks")]).is_err());
        assert!(parse(&[("JWT_JWKS_URL", "http://127.0.0.1:9000/jwks")]).is_err());
        assert!(parse(&[
            ("JWT_JWKS_URL", "http://127.0.0.1:9000/jwks"),
            ("ENVIRONMENT", "development")
        ])
        .is_ok());
        assert!(parse(&[
            ("JWT_JWKS_URL", "http://127.0.0.1.evil.example/"),
            ("ENVIRONMENT", "development")
        ])
        .is_err());
        for url in [
            "http://localhost:80@evil.example/",
            "http://127.0.0.1@evil.example/jwks",
            "http://[::1]:1@evil.example",
            "https://user:pass@idp.example/jwks",
        ] {
            assert!(
                parse(&[("JWT_JWKS_URL", url), ("ENVIRONMENT", "development")]).is_err(),
                "{url}"
            );
        }
        assert!(parse(&[
            ("JWT_JWKS_URL", "https://idp.example/jwks?at=@x"),
            ("ENVIRONMENT", "development")
        ])
        .is_ok());
    }

    #[test]
    fn the_key_set_staleness_bound_is_a_non_negative_whole_number_of_seconds() {
        let stale = |v: &str| parse(&[("JWT_JWKS_MAX_STALE_SECONDS", v)]);
        assert_eq!(stale("0").unwrap().jwt_jwks_max_stale_seconds, 0);
        assert_eq!(stale("7200").unwrap().jwt_jwks_max_stale_seconds, 7200);
        for bad in ["-1", "1.5", "an hour", "1e3", "99999999999999999999999"] {
            let e = stale(bad).unwrap_err();
            assert_eq!(e.variable, "JWT_JWKS_MAX_STALE_SECONDS", "{bad}");
            assert!(!e.reason.contains(bad), "{bad}");
        }
    }

    #[test]
    fn the_key_set_life_knob_is_honoured_only_in_development() {
        let dev = |v: &str| {
            parse(&[
                ("ENVIRONMENT", "development"),
                ("JWT_JWKS_DEV_FRESH_SECONDS", v),
            ])
        };
        assert_eq!(dev("2").unwrap().jwt_jwks_dev_fresh_seconds, Some(2));
        assert_eq!(dev("0").unwrap_err().variable, "JWT_JWKS_DEV_FRESH_SECONDS");
        assert_eq!(
            dev("601").unwrap_err().variable,
            "JWT_JWKS_DEV_FRESH_SECONDS"
        );
        // Ignored (not even parsed) in production.
        for v in ["2", "garbage"] {
            assert_eq!(
                parse(&[("JWT_JWKS_DEV_FRESH_SECONDS", v)])
                    .unwrap()
                    .jwt_jwks_dev_fresh_seconds,
                None
            );
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let c = parse(&[("DEV_TOKEN_KEY", "super-secret")]).unwrap();
        assert!(!format!("{c:?}").contains("super-secret"));
    }
}
