//! `GET /problems/{kind}`: a short human explanation of each problem `type`.

use worker::{Headers, Response};

use crate::http::problem::{ApiError, ProblemKind};

/// Answers with the explanation of one problem kind, as plain text.
///
/// # Errors
/// 404 for an unknown kind.
pub fn explain(slug: &str) -> Result<Response, ApiError> {
    let kind = ProblemKind::from_slug(slug).ok_or(ApiError::NotFound)?;
    let (slug, status, title, explanation) = kind.describe();
    let text = format!("{title} ({status})\n\ntype: /problems/{slug}\n\n{explanation}\n");
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "text/plain; charset=utf-8");
    let _ = headers.set("Cache-Control", "public, max-age=86400");
    Ok(Response::builder()
        .with_headers(headers)
        .fixed(text.into_bytes()))
}
