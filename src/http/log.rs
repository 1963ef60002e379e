//! The one structured logger: every line edgecart writes is one JSON object built by serde,
//! so error text, ids and paths are escaped whatever they hold (quotes, newlines, control
//! characters), and a log pipeline can parse every line.
//!
//! Two shapes, both through one private `write`: the request line ([`request`], written by
//! `Cx::finish` for problems, or for every request with `LOG_REQUESTS=all`) and the event line
//! ([`event`]: `{"level", "event", "detail"}`) for whatever happens outside a request's own
//! outcome (a failed probe, a release that did not happen, a sweep's count). The console
//! method follows the level (`error` → `console.error`, `warn` → `console.warn`, else
//! `console.log`), which is how Workers Logs tells the levels apart. Never log a token, a key
//! or personal data.

use serde::Serialize;

/// The request line: one per logged request.
#[derive(Serialize)]
pub struct RequestLine<'a> {
    pub level: &'static str,
    pub request_id: &'a str,
    pub method: &'a str,
    pub route: &'static str,
    pub status: u16,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// An event line: `{"level", "event", "detail"}`.
#[derive(Serialize)]
struct EventLine<'a> {
    level: &'static str,
    event: &'a str,
    detail: &'a serde_json::Value,
}

/// Writes the request line.
pub fn request(line: &RequestLine<'_>) {
    write(line.level, line);
}

/// Writes one event line at `level` (`"info"`, `"warn"` or `"error"`).
pub fn event(level: &'static str, event: &str, detail: &serde_json::Value) {
    write(
        level,
        &EventLine {
            level,
            event,
            detail,
        },
    );
}

/// The text of one line: `fields` as compact JSON (`None` only if serde refuses them, which
/// the line types here never make it do).
#[must_use]
pub fn line<T: Serialize>(fields: &T) -> Option<String> {
    serde_json::to_string(fields).ok()
}

/// Writes `fields` as one line to the console method of `level`: the one place a line leaves.
fn write<T: Serialize>(level: &str, fields: &T) {
    let Some(text) = line(fields) else {
        return;
    };
    // Native builds (tests) have no console to write to; the line is what they check.
    crate::platform::console::write(level, text);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_line(level: &'static str, event: &str, detail: &serde_json::Value) -> String {
        line(&EventLine {
            level,
            event,
            detail,
        })
        .unwrap_or_default()
    }

    #[test]
    fn error_text_with_quotes_and_newlines_stays_inside_its_string() {
        let text = "D1_ERROR: near \"}\": syntax error\n\tat line 2\r\u{7}";
        let out = event_line(
            "error",
            "idempotency schema",
            &serde_json::json!({ "error": text }),
        );
        assert!(!out.contains('\n') && !out.contains('\r'), "{out}");
        assert!(
            out.contains(r#"near \"}\": syntax error\n\tat line 2\r\u0007"#),
            "{out}"
        );
        let back: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        assert_eq!(back["level"], "error");
        assert_eq!(back["event"], "idempotency schema");
        assert_eq!(back["detail"]["error"], text);
        assert!(
            out.starts_with(r#"{"level":"error","event":"idempotency schema","detail":{"#),
            "{out}"
        );
    }

    #[test]
    fn a_request_line_keeps_its_field_names_and_omits_what_it_lacks() {
        let mut fields = RequestLine {
            level: "info",
            request_id: "r-\"1\"",
            method: "GET",
            route: "/cart",
            status: 200,
            duration_ms: 3,
            problem: None,
            detail: None,
        };
        assert_eq!(
            line(&fields).as_deref(),
            Some(
                r#"{"level":"info","request_id":"r-\"1\"","method":"GET","route":"/cart","status":200,"duration_ms":3}"#
            )
        );
        fields.problem = Some("unavailable");
        fields.detail = Some("d1: \"busy\"\nretry".to_owned());
        let back: serde_json::Value =
            serde_json::from_str(&line(&fields).unwrap_or_default()).unwrap_or_default();
        assert_eq!(back["problem"], "unavailable");
        assert_eq!(back["detail"], "d1: \"busy\"\nretry");
    }
}
