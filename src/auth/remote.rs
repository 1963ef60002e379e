//! The remote key set (`JWT_JWKS_URL`): refresh policy (pure) and its edge adapter.
//!
//! Consistency: per isolate, keys are at most [`FRESH_FOR_MS`] old before a refresh is tried;
//! a persisted copy in the Cache API (per data centre) lets a cold isolate start without a
//! fetch. On an unknown `kid` the set is refetched at most once per [`COOLDOWN_MS`] (a stream
//! of random `kid`s must not become a stream of fetches); failed fetches observe the same
//! cooldown. When the key server is down, the last good set keeps verifying.
//!
//! The per-isolate memory holds public keys only, the same for every user, so it is not
//! per-user state: any request may land on any isolate and see the same answer.

use std::cell::RefCell;
use std::rc::Rc;

use super::keys::{parse_jwks, KeySource, VerificationKey};
use crate::time::UnixMillis;

/// How long a fetched set is used without trying to refresh it (10 minutes).
pub const FRESH_FOR_MS: u64 = 10 * 60 * 1000;
/// Least time between two fetches of the set (30 s).
pub const COOLDOWN_MS: u64 = 30 * 1000;
/// Fetch timeout (5 s).
pub const TIMEOUT_MS: u32 = 5_000;
/// Largest key set accepted (64 KiB: about 64 RSA-4096 public keys). The body is read in
/// chunks and dropped as soon as it passes this, so a hostile or broken key server cannot make
/// an isolate buffer an arbitrary amount.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// How long the Cache API keeps the persisted copy (its age is tracked separately).
pub const PERSIST_SECONDS: u64 = 24 * 60 * 60;

/// What a request should do about the remote set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Use the keys in memory.
    UseCached,
    /// Fetch the set now (and record the attempt first).
    Fetch,
}

/// The per-isolate view of one remote key set.
#[derive(Debug, Clone)]
pub struct RemoteKeys {
    pub url: String,
    pub keys: Rc<Vec<VerificationKey>>,
    /// When the keys in memory were fetched from the key server.
    pub fetched_at: Option<UnixMillis>,
    /// When the last fetch was started (successful or not).
    pub last_attempt: Option<UnixMillis>,
    /// Whether the Cache API copy was already consulted.
    pub consulted_persisted: bool,
}

impl RemoteKeys {
    #[must_use]
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            keys: Rc::new(Vec::new()),
            fetched_at: None,
            last_attempt: None,
            consulted_persisted: false,
        }
    }

    fn cooled_down(&self, now: UnixMillis) -> bool {
        self.last_attempt
            .is_none_or(|t| now.0.saturating_sub(t.0) >= COOLDOWN_MS)
    }

    /// Before choosing a key: refresh a missing or stale set, within the cooldown.
    #[must_use]
    pub fn on_request(&self, now: UnixMillis) -> Next {
        let fresh = self
            .fetched_at
            .is_some_and(|t| now.0.saturating_sub(t.0) < FRESH_FOR_MS);
        if fresh || !self.cooled_down(now) {
            Next::UseCached
        } else {
            Next::Fetch
        }
    }

    /// After a `kid` was not found: refetch, within the cooldown.
    #[must_use]
    pub fn on_unknown_kid(&self, now: UnixMillis) -> Next {
        if self.cooled_down(now) {
            Next::Fetch
        } else {
            Next::UseCached
        }
    }

    pub fn record_attempt(&mut self, now: UnixMillis) {
        self.last_attempt = Some(now);
    }

    /// Replaces the keys by a freshly parsed set. A set that parses to no key at all does not
    /// replace a working one.
    pub fn record_success(&mut self, keys: Vec<VerificationKey>, fetched_at: UnixMillis) {
        if keys.is_empty() && !self.keys.is_empty() {
            return;
        }
        self.keys = Rc::new(keys);
        self.fetched_at = Some(fetched_at);
    }
}

/// A response body collected up to [`MAX_JWKS_BYTES`] (pure; the edge feeds it chunks).
#[derive(Debug, Default)]
pub struct BoundedBody {
    bytes: Vec<u8>,
}

/// Why a key set response body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyRefusal {
    /// Declared (`Content-Length`) or read past [`MAX_JWKS_BYTES`].
    TooLarge,
    NotUtf8,
}

impl BoundedBody {
    /// Refuses a declared `Content-Length` over the limit before any byte is read. A missing
    /// or unparsable value proves nothing: the read itself is bounded.
    ///
    /// # Errors
    /// [`BodyRefusal::TooLarge`].
    pub fn check_declared(content_length: Option<&str>) -> Result<(), BodyRefusal> {
        let digits = content_length
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
        match digits {
            // Digits too many for a u64 are too large as well.
            Some(v) if v.parse::<u64>().map_or(true, |n| n > MAX_JWKS_BYTES as u64) => {
                Err(BodyRefusal::TooLarge)
            }
            Some(_) | None => Ok(()),
        }
    }

    /// Appends a chunk, refusing as soon as the total passes the limit.
    ///
    /// # Errors
    /// [`BodyRefusal::TooLarge`].
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), BodyRefusal> {
        if self.bytes.len().saturating_add(chunk.len()) > MAX_JWKS_BYTES {
            return Err(BodyRefusal::TooLarge);
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// The body as text.
    ///
    /// # Errors
    /// [`BodyRefusal::NotUtf8`].
    pub fn into_text(self) -> Result<String, BodyRefusal> {
        String::from_utf8(self.bytes).map_err(|_| BodyRefusal::NotUtf8)
    }
}

impl BodyRefusal {
    fn reason(&self) -> String {
        match self {
            Self::TooLarge => format!("key set larger than {MAX_JWKS_BYTES} bytes"),
            Self::NotUtf8 => "key set is not UTF-8".to_owned(),
        }
    }
}

thread_local! {
    /// Public keys of the remote set (see the module docs for why this is not per-user state).
    static REMOTE: RefCell<Option<RemoteKeys>> = const { RefCell::new(None) };
}

fn snapshot(url: &str) -> RemoteKeys {
    REMOTE.with(|r| {
        let mut r = r.borrow_mut();
        match r.as_ref() {
            Some(state) if state.url == url => state.clone(),
            Some(_) | None => {
                let fresh = RemoteKeys::new(url);
                *r = Some(fresh.clone());
                fresh
            }
        }
    })
}

fn update(url: &str, f: impl FnOnce(&mut RemoteKeys)) {
    REMOTE.with(|r| {
        if let Some(state) = r.borrow_mut().as_mut().filter(|s| s.url == url) {
            f(state);
        }
    });
}

/// Why a trigger asks for keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Request,
    UnknownKid,
}

/// The remote keys to verify with, refreshed as the policy allows.
pub async fn keys(
    ctx: &worker::Context,
    url: &str,
    now: UnixMillis,
    trigger: Trigger,
) -> Rc<Vec<VerificationKey>> {
    let mut state = snapshot(url);
    if !state.consulted_persisted {
        let persisted = load_persisted(url).await;
        update(url, |s| {
            s.consulted_persisted = true;
            if let Some((keys, fetched_at)) = persisted {
                if s.fetched_at.is_none_or(|t| t.0 < fetched_at.0) {
                    s.record_success(keys, fetched_at);
                }
            }
        });
        state = snapshot(url);
    }
    let next = match trigger {
        Trigger::Request => state.on_request(now),
        Trigger::UnknownKid => state.on_unknown_kid(now),
    };
    match next {
        Next::UseCached => state.keys,
        Next::Fetch => {
            // Recorded before the await, so concurrent requests in this isolate see it.
            update(url, |s| s.record_attempt(now));
            match fetch(url).await {
                Ok(text) => {
                    let parsed = parse_jwks(&text, KeySource::Remote);
                    match parsed {
                        Ok(keys) => {
                            update(url, |s| s.record_success(keys, now));
                            persist(ctx, url, text, now);
                        }
                        Err(reason) => log_failure(&reason),
                    }
                }
                Err(reason) => log_failure(&reason),
            }
            snapshot(url).keys
        }
    }
}

fn log_failure(reason: &str) {
    worker::console_warn!(
        "{{\"level\":\"warn\",\"event\":\"jwks_fetch_failed\",\"reason\":{reason:?}}}"
    );
}

/// GET the key set: 200 only, no redirects (a 3xx is a failure), 5 s timeout, bounded size.
async fn fetch(url: &str) -> Result<String, String> {
    use worker::{AbortSignal, Fetch, Headers, Method, Request, RequestInit, RequestRedirect};
    let headers = Headers::new();
    let _ = headers.set("Accept", "application/jwk-set+json, application/json");
    let mut init = RequestInit::new();
    init.with_method(Method::Get)
        .with_redirect(RequestRedirect::Manual)
        .with_headers(headers);
    let request = Request::new_with_init(url, &init).map_err(|e| format!("request: {e}"))?;
    let signal = AbortSignal::from(worker::web_sys::AbortSignal::timeout_with_u32(TIMEOUT_MS));
    let mut response = Fetch::Request(request)
        .send_with_signal(&signal)
        .await
        .map_err(|e| format!("fetch: {e}"))?;
    let status = response.status_code();
    if status != 200 {
        return Err(format!("status {status}"));
    }
    let declared = response.headers().get("content-length").ok().flatten();
    BoundedBody::check_declared(declared.as_deref()).map_err(|r| r.reason())?;
    read_bounded(&mut response).await
}

/// Reads the body chunk by chunk, giving up as soon as it passes [`MAX_JWKS_BYTES`] (a
/// missing or lying `Content-Length` does not make us buffer more).
async fn read_bounded(response: &mut worker::Response) -> Result<String, String> {
    use futures_util::StreamExt;
    let mut stream = response.stream().map_err(|e| format!("body: {e}"))?;
    let mut body = BoundedBody::default();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("body: {e}"))?;
        body.push(&chunk).map_err(|r| r.reason())?;
    }
    body.into_text().map_err(|r| r.reason())
}

/// The Cache API key of the persisted copy (a URL of our own, derived from the set's URL).
fn persisted_key(url: &str) -> String {
    format!(
        "https://edgecart.internal/jwks/{}",
        crate::hash::sha256_parts(&[url.as_bytes()])
    )
}

const FETCHED_AT: &str = "X-Edgecart-Fetched-At";

fn persist(ctx: &worker::Context, url: &str, text: String, now: UnixMillis) {
    let key = persisted_key(url);
    ctx.wait_until(async move {
        let headers = worker::Headers::new();
        let _ = headers.set("Content-Type", "application/json");
        let _ = headers.set("Cache-Control", &format!("max-age={PERSIST_SECONDS}"));
        let _ = headers.set(FETCHED_AT, &now.0.to_string());
        let response = worker::Response::builder()
            .with_status(200)
            .with_headers(headers)
            .fixed(text.into_bytes());
        let _ = worker::Cache::default().put(key, response).await;
    });
}

async fn load_persisted(url: &str) -> Option<(Vec<VerificationKey>, UnixMillis)> {
    let mut response = worker::Cache::default()
        .get(persisted_key(url), false)
        .await
        .ok()??;
    let fetched_at = response
        .headers()
        .get(FETCHED_AT)
        .ok()
        .flatten()?
        .parse::<u64>()
        .ok()?;
    let text = response.text().await.ok()?;
    let keys = parse_jwks(&text, KeySource::Remote).ok()?;
    Some((keys, UnixMillis(fetched_at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> UnixMillis {
        UnixMillis(ms)
    }

    #[test]
    fn an_empty_set_is_fetched_and_a_fresh_one_is_not() {
        let mut s = RemoteKeys::new("https://idp.example/jwks");
        assert_eq!(s.on_request(at(1_000_000)), Next::Fetch);
        s.record_attempt(at(1_000_000));
        s.record_success(vec![], at(1_000_000));
        assert_eq!(
            s.on_request(at(1_000_000 + FRESH_FOR_MS - 1)),
            Next::UseCached
        );
        assert_eq!(s.on_request(at(1_000_000 + FRESH_FOR_MS)), Next::Fetch);
    }

    #[test]
    fn unknown_kids_refetch_at_most_once_per_cooldown() {
        let mut s = RemoteKeys::new("https://idp.example/jwks");
        s.record_attempt(at(0));
        s.record_success(vec![], at(0));
        let fetches = (0..1000_u64)
            .filter(|i| {
                let now = at(i * 100);
                let next = s.on_unknown_kid(now);
                if next == Next::Fetch {
                    s.record_attempt(now);
                }
                next == Next::Fetch
            })
            .count();
        // 100 s of requests every 100 ms → one fetch per 30 s window after the first.
        assert_eq!(fetches, 3);
    }

    #[test]
    fn a_body_over_the_limit_is_refused_whether_declared_or_read() {
        assert_eq!(BoundedBody::check_declared(None), Ok(()));
        assert_eq!(BoundedBody::check_declared(Some("garbage")), Ok(()));
        assert_eq!(
            BoundedBody::check_declared(Some(&MAX_JWKS_BYTES.to_string())),
            Ok(())
        );
        assert_eq!(
            BoundedBody::check_declared(Some(&(MAX_JWKS_BYTES + 1).to_string())),
            Err(BodyRefusal::TooLarge)
        );
        assert_eq!(
            BoundedBody::check_declared(Some("99999999999999999999")),
            Err(BodyRefusal::TooLarge)
        );
        let mut body = BoundedBody::default();
        let chunk = vec![b' '; 16 * 1024];
        for _ in 0..4 {
            assert_eq!(body.push(&chunk), Ok(()));
        }
        assert_eq!(body.push(b"x"), Err(BodyRefusal::TooLarge));
        let mut body = BoundedBody::default();
        assert_eq!(body.push(b"{\"keys\":[]}"), Ok(()));
        assert_eq!(body.into_text(), Ok("{\"keys\":[]}".to_owned()));
        let mut body = BoundedBody::default();
        assert_eq!(body.push(&[0xff]), Ok(()));
        assert_eq!(body.into_text(), Err(BodyRefusal::NotUtf8));
    }

    #[test]
    fn a_failed_fetch_also_waits_for_the_cooldown() {
        let mut s = RemoteKeys::new("https://idp.example/jwks");
        s.record_attempt(at(0));
        assert_eq!(s.on_request(at(COOLDOWN_MS - 1)), Next::UseCached);
        assert_eq!(s.on_request(at(COOLDOWN_MS)), Next::Fetch);
    }
}
