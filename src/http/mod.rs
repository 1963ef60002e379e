//! The transport edge: the per-request context, responders and problem responses.
//!
//! This is where `worker` types live. Handlers get a [`Cx`] holding the request, the bindings,
//! the one `now` of the request and its id; they return `Result<Response, ApiError>`, and
//! [`Cx::finish`] turns errors into problem+json, adds the request id and writes the request's
//! one log line (for problem responses only, unless `LOG_REQUESTS=all`).

pub mod log;
pub mod precondition;
pub mod problem;
pub mod route;

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;
use worker::{Context, Env, Method, Response};

use crate::config::Config;
use crate::platform::body::BodyReader;
use crate::platform::request::Request;
use crate::time::UnixMillis;
use problem::{ApiError, ProblemResponse};

/// The largest request body any route accepts (16 KiB).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A refused body up to this size is read and discarded before the 413 goes out.
const DRAIN_LIMIT_BYTES: usize = 1024 * 1024;

/// `Cache-Control` for anything that depends on who asked.
pub const PRIVATE_NO_STORE: &str = "private, no-store";

/// The header a write's D1 bookmark is answered in (checkout, cancellation) and a client sends
/// back on its next reads, so they show that write whichever replica serves them
/// ([`crate::d1::Start::from_header`]: anything but a bookmark is read on the primary).
pub const BOOKMARK_HEADER: &str = "Edgecart-Bookmark";

/// Everything a handler needs about the request in flight.
pub struct Cx {
    /// The runtime's request ([`crate::platform::request`]).
    pub req: Request,
    /// The request URL split once: `origin`, path and query.
    url: SplitUrl,
    pub env: Env,
    pub ctx: Context,
    /// The request's method; `GET` (never routed as such) when [`Cx::unknown_method`] is set.
    pub method: Method,
    /// The method's name when the worker crate has no variant for it (`PURGE`, `PROPFIND`,
    /// `SEARCH`...; at most 32 characters, for the log): every route answers it 405. (workerd
    /// answers methods outside its own list with 501 before a worker runs.)
    pub unknown_method: Option<String>,
    pub path: String,
    /// Read once at the start of the request; pure code gets it passed down.
    pub now: UnixMillis,
    pub request_id: String,
    /// The matched route template, for the log line (`/products/{sku}`).
    pub route: &'static str,
    config: Option<Rc<Config>>,
    /// Workers Cache (`ctx.cache`), when the platform provides it (never locally).
    pub workers_cache: Option<crate::platform::workers_cache::WorkersCache>,
}

thread_local! {
    /// The configuration parsed once per isolate. An isolate's `Env` never changes (a new
    /// deployment or new variables start new isolates), so re-reading nineteen variables
    /// across the JS boundary on every request would only cost time. It holds the operator's
    /// settings and public key material, the same for every user, so it is not per-user state.
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
}

/// The method named `name` exactly (method names are case-sensitive, RFC 9110 §9.1; clients
/// send the standard ones upper-case, as `fetch` normalises them), or `None` for one the
/// worker crate has no variant for.
fn known_method(name: &str) -> Option<Method> {
    Some(match name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "OPTIONS" => Method::Options,
        "PATCH" => Method::Patch,
        "CONNECT" => Method::Connect,
        "TRACE" => Method::Trace,
        "REPORT" => Method::Report,
        _ => return None,
    })
}

impl Cx {
    #[must_use]
    pub fn new(req: Request, env: Env, ctx: Context) -> Self {
        let now = UnixMillis(now_millis());
        let name = req.method();
        let (method, unknown_method) = match known_method(&name) {
            Some(method) => (method, None),
            None => (Method::Get, Some(name.chars().take(32).collect())),
        };
        let url = SplitUrl::parse(&req.url());
        let path = url.path().to_owned();
        let request_id = req
            .header_value("cf-ray")
            .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            .unwrap_or_else(fresh_request_id);
        Self {
            req,
            url,
            env,
            ctx,
            method,
            unknown_method,
            path,
            now,
            request_id,
            route: "unmatched",
            config: None,
            workers_cache: None,
        }
    }

    /// The typed configuration, parsed on first use in this isolate (a configuration that
    /// does not parse is parsed again, and refused again, on every request).
    ///
    /// # Errors
    /// [`ApiError::Misconfigured`] naming the variable that cannot be used.
    pub fn config(&mut self) -> Result<&Config, ApiError> {
        if self.config.is_none() {
            self.config = CONFIG.with(|c| c.borrow().clone());
        }
        if self.config.is_none() {
            let parsed = Rc::new(config_of(&self.env)?);
            CONFIG.with(|c| *c.borrow_mut() = Some(Rc::clone(&parsed)));
            self.config = Some(parsed);
        }
        self.config
            .as_deref()
            .ok_or_else(|| ApiError::Internal("configuration vanished".into()))
    }

    /// [`Cx::config`] as the shared `Rc` this isolate keeps, for caches that are valid as long
    /// as it is the same configuration object.
    ///
    /// # Errors
    /// As [`Cx::config`].
    pub fn shared_config(&mut self) -> Result<Rc<Config>, ApiError> {
        self.config()?;
        self.config
            .clone()
            .ok_or_else(|| ApiError::Internal("configuration vanished".into()))
    }

    /// Whether detailed errors and development routes are on. When the configuration does not
    /// parse, `ENVIRONMENT` alone decides, so a developer still sees which variable is wrong.
    pub fn is_development(&mut self) -> bool {
        match self.config() {
            Ok(config) => config.is_development(),
            Err(_) => self
                .env
                .var("ENVIRONMENT")
                .is_ok_and(|v| v.to_string().trim() == "development"),
        }
    }

    /// A request header, or `None` when absent.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<String> {
        self.req.header(name)
    }

    /// Where this request's D1 reads start, from its [`BOOKMARK_HEADER`].
    #[must_use]
    pub fn read_start(&self) -> crate::d1::Start {
        crate::d1::Start::from_header(self.header(BOOKMARK_HEADER).as_deref())
    }

    /// The raw query string, without `?` (empty when there is none).
    #[must_use]
    pub fn query(&self) -> String {
        self.url.query().to_owned()
    }

    /// The query's `name=value` pairs, percent- and `+`-decoded, in order.
    #[must_use]
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.url.query().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// The request's origin, e.g. `https://shop.example`.
    #[must_use]
    pub fn origin(&self) -> &str {
        self.url.origin()
    }

    /// Reads the body, refusing more than [`MAX_BODY_BYTES`] (413). The body is read as a
    /// stream and never buffered past the limit, with or without `Content-Length`. A refused
    /// body of moderate size is drained first, so the client sees the 413 rather than a
    /// connection reset in the middle of its upload.
    ///
    /// # Errors
    /// 413 when too large, 400 when the body cannot be read.
    pub async fn body_bytes(&mut self) -> Result<Vec<u8>, ApiError> {
        let declared = match self.header("content-length") {
            Some(len) => Some(
                len.trim()
                    .parse::<usize>()
                    .map_err(|_| ApiError::BadRequest("Content-Length is not a number.".into()))?,
            ),
            None => None,
        };
        // Declared too large: refused unread (`finish` drains what is small enough to drain).
        if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
            return Err(ApiError::PayloadTooLarge);
        }
        // No body at all (a GET, or an empty POST) is an empty body.
        let Some(reader) = self.req.body_reader() else {
            return Ok(Vec::new());
        };
        let unreadable = || ApiError::BadRequest("The request body could not be read.".into());
        let reader = reader.map_err(|()| unreadable())?;
        let mut body = Vec::with_capacity(declared.unwrap_or(0));
        while let Some(chunk) = reader.next().await.map_err(|()| unreadable())? {
            let len = chunk.len();
            if body.len().saturating_add(len) > MAX_BODY_BYTES {
                drain(&reader, body.len().saturating_add(len)).await;
                reader.release();
                return Err(ApiError::PayloadTooLarge);
            }
            let start = body.len();
            body.resize(start + len, 0);
            if let Some(room) = body.get_mut(start..) {
                chunk.copy_to(room);
            }
        }
        reader.release();
        Ok(body)
    }

    /// Reads and parses a JSON body ([`parse_json_body`]): 400 for malformed JSON or a member
    /// named twice, 422 for anything but an object or the wrong shape.
    ///
    /// # Errors
    /// 400, 413 or 422 as above.
    pub async fn json_body<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        let bytes = self.body_bytes().await?;
        parse_json_body(&bytes)
    }

    /// Turns a handler's result into the response sent, and writes the request's log line
    /// (status 400 and above except refusals by edgecart's own rate limits, or every request
    /// with `LOG_REQUESTS=all`).
    /// A request body the handler never read (a refusal before parsing) is drained first, up
    /// to [`DRAIN_LIMIT_BYTES`]: answering while the client is still uploading makes the
    /// runtime close the connection, and a client reusing it would see its next request fail.
    pub async fn finish(mut self, result: Result<Response, ApiError>) -> Response {
        self.drain_unread_body().await;
        let development = self.is_development();
        let (mut response, error) = match result {
            Ok(r) => (r, None),
            Err(e) => (problem_response(&e.to_response(development)), Some(e)),
        };
        let status = response.status_code();
        let headers = response.headers_mut();
        let _ = headers.set("X-Request-Id", &self.request_id);
        // No response is meant to be content-sniffed (a JSON body read as HTML, say).
        let _ = headers.set("X-Content-Type-Options", "nosniff");
        // Request-dependent headers go on last, after any edge-cache lookup or store.
        if self.config().is_ok() {
            if let Some(config) = self.config.clone() {
                crate::cors::decorate(&config, || self.header("origin"), response.headers_mut());
            }
        }
        if self.method == Method::Head {
            // HEAD carries the headers of GET and no body. A streamed body (a cached product
            // or listing) is cancelled rather than left for the runtime to free with the
            // request.
            discard_body(response.body());
            let headers = response.headers().clone();
            response = Response::builder()
                .with_status(status)
                .with_headers(headers)
                .empty();
        }
        // A refusal by edgecart's own rate limits is logged once a minute per class instead
        // (`crate::limits`): a flood must not become a flood of log lines.
        let own_limit = matches!(error, Some(ApiError::Limited { .. }));
        if (status >= 400 && !own_limit) || self.logs_every_request() {
            self.log(status, error.as_ref());
        }
        response
    }

    /// Whether `LOG_REQUESTS=all` asks for a line for every request. When the configuration
    /// does not parse, every route that reads it answers 500 (logged as a problem); the few
    /// that do not (`/health`, `/openapi.json`, `/problems/…`) are then not logged.
    fn logs_every_request(&self) -> bool {
        self.config
            .as_deref()
            .is_some_and(|c| c.log_requests == crate::config::RequestLog::All)
    }

    async fn drain_unread_body(&mut self) {
        // GET and HEAD carry no body: skip the three calls into JS below. (A method the worker
        // crate does not know, kept as GET, may: PROPFIND and SEARCH usually do.)
        let bodiless =
            self.unknown_method.is_none() && matches!(self.method, Method::Get | Method::Head);
        if bodiless || self.req.body_used() {
            return;
        }
        let declared = self
            .header("content-length")
            .and_then(|len| len.trim().parse::<usize>().ok());
        if declared.is_some_and(|len| len > DRAIN_LIMIT_BYTES) {
            return;
        }
        if let Some(Ok(reader)) = self.req.body_reader() {
            drain(&reader, 0).await;
            reader.release();
        }
    }

    fn log(&self, status: u16, error: Option<&ApiError>) {
        log::request(&log::RequestLine {
            level: if status >= 500 { "error" } else { "info" },
            request_id: &self.request_id,
            method: self
                .unknown_method
                .as_deref()
                .unwrap_or(self.method.as_ref()),
            route: self.route,
            status,
            duration_ms: now_millis().saturating_sub(self.now.0),
            problem: error.map(|e| e.kind().slug()),
            detail: error.and_then(ApiError::log_detail),
        });
    }
}

/// Parses the configuration from the worker's bindings (variables and secrets), outside a
/// request too (the queue consumer, the cron).
///
/// # Errors
/// [`ApiError::Misconfigured`] naming the variable that cannot be used.
pub fn config_of(env: &Env) -> Result<Config, ApiError> {
    Ok(Config::from_lookup(|name| {
        if crate::config::SECRET_NAMES.contains(&name) {
            env.secret(name).ok().map(|s| s.to_string())
        } else {
            env.var(name).ok().map(|v| v.to_string())
        }
    })?)
}

pub use log::event as log_event;

/// Reads and discards a body stream until it ends or [`DRAIN_LIMIT_BYTES`] have gone by.
async fn drain(reader: &BodyReader, mut total: usize) {
    while total <= DRAIN_LIMIT_BYTES {
        match reader.next().await {
            Ok(Some(chunk)) => total = total.saturating_add(chunk.len()),
            _ => break,
        }
    }
}

pub use crate::platform::body::{discard, discard_body};

/// A request URL split into origin, path and query, without a full URL parse (the runtime
/// hands the worker absolute, normalised URLs). Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitUrl {
    text: String,
    origin_end: usize,
    path_end: usize,
}

impl SplitUrl {
    #[must_use]
    pub fn parse(url: &str) -> Self {
        let text = url.split('#').next().unwrap_or_default().to_owned();
        // A byte search: `str::find` with a three-character pattern sets up a two-way
        // searcher, measurable on a path every request takes.
        let authority_start = text
            .as_bytes()
            .windows(3)
            .position(|w| w == b"://")
            .map_or(0, |i| i + 3);
        let origin_end = text
            .get(authority_start..)
            .and_then(|rest| rest.find(['/', '?']))
            .map_or(text.len(), |i| authority_start + i);
        let path_end = text
            .get(origin_end..)
            .and_then(|rest| rest.find('?'))
            .map_or(text.len(), |i| origin_end + i);
        Self {
            text,
            origin_end,
            path_end,
        }
    }

    #[must_use]
    pub fn origin(&self) -> &str {
        self.text.get(..self.origin_end).unwrap_or_default()
    }

    /// The path, `/` when empty.
    #[must_use]
    pub fn path(&self) -> &str {
        match self.text.get(self.origin_end..self.path_end) {
            None | Some("") => "/",
            Some(path) => path,
        }
    }

    /// The query without `?`.
    #[must_use]
    pub fn query(&self) -> &str {
        self.text
            .get(self.path_end..)
            .and_then(|q| q.strip_prefix('?'))
            .unwrap_or_default()
    }
}

/// Parses a JSON body, which must be one JSON object: malformed JSON and duplicate members
/// are 400, anything but an object and an object of the wrong shape are 422.
///
/// The body is read strictly, by the parser token headers and claims go through
/// ([`crate::json::read_body`]): a member named twice at any depth (`"quantity"` and
/// `"\u0071uantity"` are one name) is refused rather than one of them silently winning, and
/// nesting is bounded.
///
/// # Errors
/// As above; the detail names the position, never echoes the body.
pub fn parse_json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    Ok(crate::json::read_body(bytes)?)
}

/// The `deserialize_with` helpers of request bodies ([`crate::json`]), beside
/// [`parse_json_body`] that reads the bodies they shape.
pub use crate::json::{present, present_whole, whole, whole_number};

impl From<crate::json::BodyError> for ApiError {
    /// Malformed JSON is 400, JSON of the wrong kind or shape 422; the detail is the body
    /// error's explanation.
    fn from(e: crate::json::BodyError) -> Self {
        if e.is_malformed() {
            ApiError::BadRequest(e.to_string())
        } else {
            ApiError::InvalidValue(e.to_string())
        }
    }
}

pub use crate::platform::clock::now_millis;

/// A request id when the request brings no `cf-ray` (locally; Cloudflare always sets it):
/// 32 lowercase hex characters from `crypto.randomUUID()` (122 random bits), one call into
/// the runtime instead of the four that filling a byte buffer through `getrandom` takes.
fn fresh_request_id() -> String {
    #[cfg(target_arch = "wasm32")]
    {
        if let Some(mut id) = crate::platform::request::random_uuid() {
            id.retain(|c| c != '-');
            if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return id.to_ascii_lowercase();
            }
        }
    }
    random_id()
}

/// 16 random bytes as hex, for order attempts (and request ids should `randomUUID` fail).
#[must_use]
pub fn random_id() -> String {
    let mut bytes = [0_u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        return "0".repeat(32);
    }
    crate::hash::hex(&bytes)
}

/// Builds the worker response of a problem.
#[must_use]
pub fn problem_response(p: &ProblemResponse) -> Response {
    let body = serde_json::to_vec(&p.problem).unwrap_or_default();
    let mut response = Response::builder().with_status(p.status).fixed(body);
    let headers = response.headers_mut();
    let _ = headers.set("Content-Type", "application/problem+json");
    let _ = headers.set("Cache-Control", "no-store");
    for (name, value) in &p.headers {
        let _ = headers.set(name, value);
    }
    response
}

/// A JSON response with the given status and `Cache-Control`.
///
/// # Errors
/// 500 when the value cannot be serialised (a bug).
pub fn json<T: Serialize>(
    status: u16,
    value: &T,
    cache_control: &str,
) -> Result<Response, ApiError> {
    // Sized for a typical body (a cart, a product) so it is not regrown a byte-doubling at a
    // time; a larger one still grows as needed.
    let mut body = Vec::with_capacity(1024);
    serde_json::to_writer(&mut body, value)
        .map_err(|e| ApiError::Internal(format!("serialise response: {e}")))?;
    // The builder's own (empty) headers object, filled in place: a second `Headers` per
    // response would be one more JS object and call for nothing.
    let mut response = Response::builder().with_status(status).fixed(body);
    let headers = response.headers_mut();
    let _ = headers.set("Content-Type", "application/json");
    let _ = headers.set("Cache-Control", cache_control);
    Ok(response)
}

/// Maps a storage failure to 503 with `Retry-After`; the message goes to the log only.
#[must_use]
pub fn unavailable(what: &str, e: &worker::Error) -> ApiError {
    ApiError::Unavailable {
        retry_after: 1,
        what: format!("{what}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::SplitUrl;
    use crate::http::problem::ApiError;
    use crate::json::BodyError;

    #[test]
    fn malformed_json_is_a_400_and_the_wrong_kind_of_json_a_422() {
        for (error, status, detail) in [
            (
                BodyError::Syntax { line: 1, column: 6 },
                400,
                "The body is not valid JSON (line 1, column 6).",
            ),
            (
                BodyError::DuplicateMember {
                    line: 2,
                    column: 18,
                },
                400,
                "The body names a member twice (line 2, column 18).",
            ),
            (
                BodyError::TooDeep {
                    line: 1,
                    column: 90,
                },
                400,
                "The body is nested too deeply (line 1, column 90).",
            ),
            (
                BodyError::NotAnObject,
                422,
                "The body must be a JSON object.",
            ),
            (
                BodyError::Shape("missing field `cart_version`".into()),
                422,
                "The body has the wrong shape: missing field `cart_version`.",
            ),
        ] {
            let response = ApiError::from(error).to_response(false);
            assert_eq!(response.status, status, "{detail}");
            assert_eq!(response.problem.detail, detail);
        }
    }

    #[test]
    fn a_url_splits_into_origin_path_and_query() {
        for (url, origin, path, query) in [
            ("https://shop.example/", "https://shop.example", "/", ""),
            ("https://shop.example", "https://shop.example", "/", ""),
            (
                "http://127.0.0.1:8787/products?limit=2&cursor=x",
                "http://127.0.0.1:8787",
                "/products",
                "limit=2&cursor=x",
            ),
            ("https://shop.example?q", "https://shop.example", "/", "q"),
            (
                "https://shop.example/a%3F%23b?c=/d?e",
                "https://shop.example",
                "/a%3F%23b",
                "c=/d?e",
            ),
            (
                "https://shop.example/x#frag?y",
                "https://shop.example",
                "/x",
                "",
            ),
        ] {
            let u = SplitUrl::parse(url);
            assert_eq!(
                (u.origin(), u.path(), u.query()),
                (origin, path, query),
                "{url}"
            );
        }
    }
}
