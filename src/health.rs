//! `GET /health` (liveness, touches nothing) and `GET /health/ready` (reaches each binding).

use serde::Serialize;
use worker::Response;

use crate::http::{self, problem::ApiError, Cx};

#[derive(Serialize)]
struct Live {
    status: &'static str,
    version: &'static str,
}

/// Liveness: no storage touched, never cached.
///
/// # Errors
/// Only if the response cannot be built.
pub fn live() -> Result<Response, ApiError> {
    http::json(
        200,
        &Live {
            status: "ok",
            version: env!("CARGO_PKG_VERSION"),
        },
        "no-store",
    )
}

/// The outcome of one binding's probe.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize)]
struct Checks {
    kv: Check,
    durable_object: Check,
    d1: Check,
    /// The `[[ratelimits]]` bindings (`crate::limits`): present, and answering `limit()`.
    rate_limits: Check,
}

#[derive(Serialize)]
struct Ready {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    type_uri: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'static str>,
    status: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'static str>,
    checks: Checks,
}

/// What a failed probe shows in a production body: the route is public, and the runtime's
/// error text (binding names, D1 or Durable Object messages) is for the operator's log.
const GENERIC_FAILURE: &str = "unreachable";

fn check(result: &Result<(), String>, development: bool) -> Check {
    match result {
        Ok(()) => Check {
            ok: true,
            error: None,
        },
        Err(error) => Check {
            ok: false,
            error: Some(if development {
                error.clone()
            } else {
                GENERIC_FAILURE.to_owned()
            }),
        },
    }
}

/// Readiness: a read-only probe through each binding (a KV read, a SQL statement inside the
/// Durable Object, a D1 `SELECT 1`, a `limit()` under a probe key on each rate limiter). 200 with the report, or 503 problem+json with the same
/// `checks` member.
///
/// # Errors
/// [`ApiError::Misconfigured`] when the configuration does not parse.
pub async fn ready(cx: &mut Cx) -> Result<Response, ApiError> {
    // A worker whose configuration does not parse cannot serve: say so (500 misconfigured).
    cx.config()?;
    let (kv, durable_object, d1, rate_limits) = futures_util::join!(
        probe_kv(cx),
        crate::idempotency::durable::probe(&cx.env),
        probe_d1(cx),
        crate::limits::probe(&cx.env)
    );
    let development = cx.is_development();
    let checks = Checks {
        kv: check(&kv, development),
        durable_object: check(&durable_object, development),
        d1: check(&d1, development),
        rate_limits: check(&rate_limits, development),
    };
    let all_ok = checks.kv.ok && checks.durable_object.ok && checks.d1.ok && checks.rate_limits.ok;
    if all_ok {
        return http::json(
            200,
            &Ready {
                type_uri: None,
                title: None,
                status: "ok".into(),
                detail: None,
                checks,
            },
            "no-store",
        );
    }
    let failures: serde_json::Map<String, serde_json::Value> = [
        ("kv", kv),
        ("durable_object", durable_object),
        ("d1", d1),
        ("rate_limits", rate_limits),
    ]
    .into_iter()
    .filter_map(|(name, result)| result.err().map(|e| (name.to_owned(), e.into())))
    .collect();
    http::log_event(
        "warn",
        "readiness probe failed",
        &serde_json::Value::Object(failures),
    );
    let body = Ready {
        type_uri: Some("/problems/unavailable"),
        title: Some("Service unavailable"),
        status: 503.into(),
        detail: Some("At least one binding could not be reached; see `checks`."),
        checks,
    };
    let mut response = http::json(503, &body, "no-store")?;
    let headers = response.headers_mut();
    let _ = headers.set("Content-Type", "application/problem+json");
    let _ = headers.set("Retry-After", "5");
    Ok(response)
}

async fn probe_kv(cx: &Cx) -> Result<(), String> {
    crate::cart::store::probe(&cx.env).await
}

async fn probe_d1(cx: &Cx) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct One {
        one: i64,
    }
    let db = cx.env.d1("DB").map_err(|e| e.to_string())?;
    let statement = db.prepare("SELECT 1 AS one");
    let row: Option<One> = crate::d1::first(&statement)
        .await
        .map_err(|e| e.to_string())?;
    match row {
        Some(One { one: 1 }) => Ok(()),
        _ => Err("unexpected answer to SELECT 1".into()),
    }
}
