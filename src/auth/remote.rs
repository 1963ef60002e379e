//! The remote key set (`JWT_JWKS_URL`): refresh policy (pure) and its edge adapter.
//!
//! Consistency: per isolate, keys are at most [`FRESH_FOR_MS`] old before a refresh is tried;
//! a persisted copy in the Cache API (per data centre) lets a cold isolate start without a
//! fetch. On an unknown `kid` the set is refetched at most once per [`COOLDOWN_MS`] (a stream
//! of random `kid`s must not become a stream of fetches); failed fetches observe the same
//! cooldown.
//!
//! Revocation and staleness: a fetched document that is a JWKS replaces the keys, also when it
//! holds no key we can use (`"keys": []`, or only unknown or `oct` entries): an identity
//! provider revokes by publishing that. A response that is no JWKS (not 200, not JSON, no
//! `keys` array, too large, a timeout) is a failed fetch: the last good set keeps verifying for
//! at most `JWT_JWKS_MAX_STALE_SECONDS` past its life, counted from when it was fetched from
//! the key server (also for the persisted copy, so a restart cannot bring back an older set).
//! Past that, and when no set was ever fetched (a cold isolate whose key server fails), a
//! token that needs the remote set gets 503 with `Retry-After` ([`KeysUnavailable`]): the
//! client did nothing wrong, and a 401 would only send it to fetch a new token in vain.
//!
//! The per-isolate memory holds public keys only, the same for every user, so it is not
//! per-user state: any request may land on any isolate and see the same answer.

use std::cell::RefCell;
use std::rc::Rc;

use super::keys::{parse_jwks, KeySource, VerificationKey};
use crate::config::Config;
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

/// The clock of the remote set: its life, the least time between fetches and how long past
/// its life a set may verify while refetches fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub fresh_for_ms: u64,
    pub cooldown_ms: u64,
    pub max_stale_ms: u64,
}

impl Default for Timing {
    /// The production values: 10 minutes, 30 s, and `JWT_JWKS_MAX_STALE_SECONDS`' default.
    fn default() -> Self {
        Self {
            fresh_for_ms: FRESH_FOR_MS,
            cooldown_ms: COOLDOWN_MS,
            max_stale_ms: 3_600_000,
        }
    }
}

impl Timing {
    /// From the configuration. `JWT_JWKS_DEV_FRESH_SECONDS` (development only) shortens the
    /// life, and the cooldown with it when it is shorter than 30 s.
    #[must_use]
    pub fn from_config(config: &Config) -> Self {
        let fresh_for_ms = config
            .jwt_jwks_dev_fresh_seconds
            .filter(|_| config.is_development())
            .map_or(FRESH_FOR_MS, |s| s.saturating_mul(1000));
        Self {
            fresh_for_ms,
            cooldown_ms: COOLDOWN_MS.min(fresh_for_ms),
            max_stale_ms: config.jwt_jwks_max_stale_seconds.saturating_mul(1000),
        }
    }

    /// How long a set may verify after it was fetched: its life plus the staleness bound.
    #[must_use]
    pub fn usable_for_ms(self) -> u64 {
        self.fresh_for_ms.saturating_add(self.max_stale_ms)
    }
}

/// How old a set is, for verifying with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    /// Within its life: used without trying to refresh it.
    Fresh,
    /// Past its life but within the staleness bound: a refresh is due, and while refreshes
    /// fail it still verifies.
    Stale,
    /// Past the staleness bound, or never fetched: it must not verify.
    Expired,
}

/// The age of a set fetched from the key server at `fetched_at` (`None`: never).
#[must_use]
pub fn age(now: UnixMillis, fetched_at: Option<UnixMillis>, timing: Timing) -> Age {
    let Some(fetched_at) = fetched_at else {
        return Age::Expired;
    };
    // A copy persisted by an isolate whose clock runs ahead reads as just fetched.
    let elapsed = now.0.saturating_sub(fetched_at.0);
    if elapsed < timing.fresh_for_ms {
        Age::Fresh
    } else if elapsed < timing.usable_for_ms() {
        Age::Stale
    } else {
        Age::Expired
    }
}

/// What a fetch of the set brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A JWKS document: these are the keys now, however few (none revokes them all).
    Fetched(Vec<VerificationKey>),
    /// No JWKS (network error, timeout, status, size, not JSON, no `keys` array): why.
    Failed(String),
}

/// The result of a fetch: a key set document parses to [`Outcome::Fetched`], even with no
/// usable key in it; anything else is [`Outcome::Failed`].
#[must_use]
pub fn outcome(response: &Result<String, String>) -> Outcome {
    match response {
        Ok(text) => match parse_jwks(text, KeySource::Remote) {
            Ok(keys) => Outcome::Fetched(keys),
            Err(reason) => Outcome::Failed(format!("not a key set: {reason}")),
        },
        Err(reason) => Outcome::Failed(reason.clone()),
    }
}

/// The remote set cannot be used: answered 503 with `Retry-After`, `reason` to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysUnavailable {
    pub retry_after_seconds: u64,
    pub reason: String,
}

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
    /// When the keys in memory were fetched from the key server (for keys from the persisted
    /// copy: when the isolate that persisted them fetched them).
    pub fetched_at: Option<UnixMillis>,
    /// When the last fetch was started (successful or not).
    pub last_attempt: Option<UnixMillis>,
    /// Why the last fetch failed; `None` once one succeeds.
    pub last_failure: Option<String>,
    /// A fetch was started and has not brought its outcome yet (another request of this
    /// isolate is waiting for it).
    pub fetching: bool,
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
            last_failure: None,
            fetching: false,
            consulted_persisted: false,
        }
    }

    fn cooled_down(&self, now: UnixMillis, timing: Timing) -> bool {
        self.last_attempt
            .is_none_or(|t| now.0.saturating_sub(t.0) >= timing.cooldown_ms)
    }

    /// Before choosing a key: refresh a missing or stale set, within the cooldown.
    #[must_use]
    pub fn on_request(&self, now: UnixMillis, timing: Timing) -> Next {
        let fresh = age(now, self.fetched_at, timing) == Age::Fresh;
        if fresh || !self.cooled_down(now, timing) {
            Next::UseCached
        } else {
            Next::Fetch
        }
    }

    /// After a `kid` was not found: refetch, within the cooldown.
    #[must_use]
    pub fn on_unknown_kid(&self, now: UnixMillis, timing: Timing) -> Next {
        if self.cooled_down(now, timing) {
            Next::Fetch
        } else {
            Next::UseCached
        }
    }

    pub fn record_attempt(&mut self, now: UnixMillis) {
        self.last_attempt = Some(now);
        self.fetching = true;
    }

    /// Records what the fetch started at `now` brought: a key set document replaces the keys
    /// (an empty one too: that is how an identity provider revokes); a failure keeps them. A
    /// fetch that finishes after a later one (two requests of one isolate) changes nothing.
    pub fn record(&mut self, outcome: Outcome, now: UnixMillis) {
        self.fetching = false;
        if self.fetched_at.is_some_and(|t| t.0 > now.0) {
            return;
        }
        match outcome {
            Outcome::Fetched(keys) => {
                self.keys = Rc::new(keys);
                self.fetched_at = Some(now);
                self.last_failure = None;
            }
            Outcome::Failed(reason) => self.last_failure = Some(reason),
        }
    }

    /// Takes the persisted copy (fetched from the key server at `fetched_at`) when it is newer
    /// than the keys in memory. Its own age decides whether it may verify, like any set's.
    pub fn record_persisted(&mut self, keys: Vec<VerificationKey>, fetched_at: UnixMillis) {
        if self.fetched_at.is_none_or(|t| t.0 < fetched_at.0) {
            self.keys = Rc::new(keys);
            self.fetched_at = Some(fetched_at);
        }
    }

    /// The keys to verify with, unless the set is past the staleness bound (or there never
    /// was one): then why, and when a retry may find it refetched (the rest of the cooldown,
    /// or 1 s while another request's fetch is under way).
    ///
    /// # Errors
    /// [`KeysUnavailable`].
    pub fn usable(
        &self,
        now: UnixMillis,
        timing: Timing,
    ) -> Result<Rc<Vec<VerificationKey>>, KeysUnavailable> {
        if age(now, self.fetched_at, timing) != Age::Expired {
            return Ok(Rc::clone(&self.keys));
        }
        let waited = self
            .last_attempt
            .map_or(timing.cooldown_ms, |t| now.0.saturating_sub(t.0));
        let retry_after_seconds = if self.fetching {
            1
        } else {
            timing
                .cooldown_ms
                .saturating_sub(waited)
                .div_ceil(1000)
                .max(1)
        };
        let held = match self.fetched_at {
            None => "no key set fetched yet".to_owned(),
            Some(t) => format!(
                "the key set was fetched {} s ago, past its life ({} s) plus JWT_JWKS_MAX_STALE_SECONDS ({} s)",
                now.0.saturating_sub(t.0) / 1000,
                timing.fresh_for_ms / 1000,
                timing.max_stale_ms / 1000,
            ),
        };
        let failure = match (&self.last_failure, self.fetching) {
            (_, true) => "a fetch is under way".to_owned(),
            (Some(reason), false) => format!("the last fetch failed: {reason}"),
            (None, false) => "no fetch is due yet".to_owned(),
        };
        Err(KeysUnavailable {
            retry_after_seconds,
            reason: format!("remote key set (JWT_JWKS_URL) unavailable: {held}; {failure}"),
        })
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
///
/// # Errors
/// [`KeysUnavailable`] when the set is past the staleness bound (or was never fetched) and a
/// refetch failed or is not yet allowed.
pub async fn keys(
    ctx: &worker::Context,
    url: &str,
    now: UnixMillis,
    trigger: Trigger,
    timing: Timing,
) -> Result<Rc<Vec<VerificationKey>>, KeysUnavailable> {
    let mut state = snapshot(url);
    if !state.consulted_persisted {
        let persisted = load_persisted(url).await;
        update(url, |s| {
            s.consulted_persisted = true;
            if let Some((keys, fetched_at)) = persisted {
                s.record_persisted(keys, fetched_at);
            }
        });
        state = snapshot(url);
    }
    let next = match trigger {
        Trigger::Request => state.on_request(now, timing),
        Trigger::UnknownKid => state.on_unknown_kid(now, timing),
    };
    if next == Next::Fetch {
        // Recorded before the await, so concurrent requests in this isolate see it.
        update(url, |s| s.record_attempt(now));
        let response = fetch(url).await;
        let result = outcome(&response);
        match (&result, response) {
            (Outcome::Fetched(_), Ok(text)) => persist(ctx, url, text, now, timing),
            (Outcome::Failed(reason), _) => log_failure(reason),
            (Outcome::Fetched(_), Err(_)) => {}
        }
        update(url, |s| s.record(result, now));
    }
    snapshot(url).usable(now, timing)
}

fn log_failure(reason: &str) {
    crate::http::log_event(
        "warn",
        "jwks_fetch_failed",
        &serde_json::json!({ "reason": reason }),
    );
}

/// GET the key set: 200 only, no redirects (a 3xx is a failure), 5 s timeout, bounded size.
async fn fetch(url: &str) -> Result<String, String> {
    use worker::{Fetch, Headers, Method, Request, RequestInit, RequestRedirect};
    let headers = Headers::new();
    let _ = headers.set("Accept", "application/jwk-set+json, application/json");
    let mut init = RequestInit::new();
    init.with_method(Method::Get)
        .with_redirect(RequestRedirect::Manual)
        .with_headers(headers);
    let request = Request::new_with_init(url, &init).map_err(|e| format!("request: {e}"))?;
    let signal = crate::platform::fetch::timeout(TIMEOUT_MS);
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

/// Stores the fetched document with the time it was fetched, for as long as it may verify (a
/// copy past that is useless: [`age`] refuses it by its `X-Edgecart-Fetched-At` anyway).
fn persist(ctx: &worker::Context, url: &str, text: String, now: UnixMillis, timing: Timing) {
    let key = persisted_key(url);
    let seconds = (timing.usable_for_ms() / 1000).max(1);
    ctx.wait_until(async move {
        let headers = worker::Headers::new();
        let _ = headers.set("Content-Type", "application/json");
        let _ = headers.set("Cache-Control", &format!("max-age={seconds}"));
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
    use crate::auth::keys::parse_jwks;

    fn at(ms: u64) -> UnixMillis {
        UnixMillis(ms)
    }

    const T: Timing = Timing {
        fresh_for_ms: FRESH_FOR_MS,
        cooldown_ms: COOLDOWN_MS,
        max_stale_ms: 3_600_000,
    };

    fn one_key(kid: &str) -> Vec<VerificationKey> {
        let x = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE";
        parse_jwks(
            &format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"{kid}","x":"{x}"}}]}}"#),
            KeySource::Remote,
        )
        .unwrap()
    }

    /// A set that fetched `kid` at `t`.
    fn fetched(kid: &str, t: u64) -> RemoteKeys {
        let mut s = RemoteKeys::new("https://idp.example/jwks");
        s.record_attempt(at(t));
        s.record(Outcome::Fetched(one_key(kid)), at(t));
        s
    }

    #[test]
    fn an_empty_set_is_fetched_and_a_fresh_one_is_not() {
        let mut s = RemoteKeys::new("https://idp.example/jwks");
        assert_eq!(s.on_request(at(1_000_000), T), Next::Fetch);
        s.record_attempt(at(1_000_000));
        s.record(Outcome::Fetched(vec![]), at(1_000_000));
        assert_eq!(
            s.on_request(at(1_000_000 + FRESH_FOR_MS - 1), T),
            Next::UseCached
        );
        assert_eq!(s.on_request(at(1_000_000 + FRESH_FOR_MS), T), Next::Fetch);
    }

    #[test]
    fn unknown_kids_refetch_at_most_once_per_cooldown() {
        let mut s = RemoteKeys::new("https://idp.example/jwks");
        s.record_attempt(at(0));
        s.record(Outcome::Fetched(vec![]), at(0));
        let fetches = (0..1000_u64)
            .filter(|i| {
                let now = at(i * 100);
                let next = s.on_unknown_kid(now, T);
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
    fn age_is_fresh_for_the_life_then_stale_for_the_bound_then_expired() {
        let t = at(5_000_000);
        let life = FRESH_FOR_MS;
        let bound = life + 3_600_000;
        assert_eq!(age(t, None, T), Age::Expired);
        assert_eq!(age(t, Some(t), T), Age::Fresh);
        assert_eq!(age(at(t.0 + life - 1), Some(t), T), Age::Fresh);
        assert_eq!(age(at(t.0 + life), Some(t), T), Age::Stale);
        assert_eq!(age(at(t.0 + bound - 1), Some(t), T), Age::Stale);
        assert_eq!(age(at(t.0 + bound), Some(t), T), Age::Expired);
        // A copy dated ahead of our clock (another isolate's) is just fetched.
        assert_eq!(age(t, Some(at(t.0 + 10_000)), T), Age::Fresh);
        // A bound of 0: expired as soon as the life is over.
        let strict = Timing {
            max_stale_ms: 0,
            ..T
        };
        assert_eq!(age(at(t.0 + life - 1), Some(t), strict), Age::Fresh);
        assert_eq!(age(at(t.0 + life), Some(t), strict), Age::Expired);
    }

    #[test]
    fn a_key_set_document_replaces_the_keys_even_with_no_usable_key() {
        for revoking in [
            r#"{"keys":[]}"#,
            r#"{"keys":[{"kty":"oct","kid":"h","alg":"HS256","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}"#,
            r#"{"keys":[{"kty":"XYZ","kid":"x","alg":"ES999"},{"kid":"y"},7,null]}"#,
        ] {
            let mut s = fetched("old", 0);
            let result = outcome(&Ok(revoking.to_owned()));
            assert_eq!(result, Outcome::Fetched(vec![]), "{revoking}");
            s.record_attempt(at(FRESH_FOR_MS));
            s.record(result, at(FRESH_FOR_MS));
            let keys = s.usable(at(FRESH_FOR_MS), T).unwrap();
            assert!(keys.is_empty(), "{revoking}");
            assert_eq!(s.fetched_at, Some(at(FRESH_FOR_MS)));
        }
    }

    #[test]
    fn a_response_that_is_no_key_set_is_a_failure_and_keeps_the_keys() {
        for failed in [
            Err("status 500".to_owned()),
            Err("fetch: timed out".to_owned()),
            Ok(String::new()),
            Ok("<html>maintenance</html>".to_owned()),
            Ok(r#"{"keys":{}}"#.to_owned()),
            Ok(r#"{"no_keys":[]}"#.to_owned()),
            Ok(r#"[{"keys":[]}]"#.to_owned()),
            Ok(r#"{"keys":[],"keys":[]}"#.to_owned()),
        ] {
            let result = outcome(&failed);
            assert!(matches!(result, Outcome::Failed(_)), "{failed:?}");
            let mut s = fetched("old", 0);
            s.record_attempt(at(FRESH_FOR_MS));
            s.record(result, at(FRESH_FOR_MS));
            assert_eq!(s.fetched_at, Some(at(0)));
            let keys = s.usable(at(FRESH_FOR_MS), T).unwrap();
            assert_eq!(keys[0].kid.as_deref(), Some("old"), "{failed:?}");
        }
    }

    #[test]
    fn a_set_verifies_through_failed_refetches_until_the_bound_then_is_unavailable() {
        let bound = FRESH_FOR_MS + 3_600_000;
        let mut s = fetched("k1", 0);
        // Every refetch fails, as often as the cooldown allows.
        let mut now = FRESH_FOR_MS;
        while now < bound + 120_000 {
            if s.on_request(at(now), T) == Next::Fetch {
                s.record_attempt(at(now));
                s.record(Outcome::Failed("status 503".to_owned()), at(now));
            }
            let usable = s.usable(at(now), T);
            assert_eq!(usable.is_ok(), now < bound, "at {now} ms");
            now += 7_000;
        }
        let e = s.usable(at(bound), T).unwrap_err();
        assert!(e.reason.contains("status 503"), "{}", e.reason);
        assert!(
            e.reason.contains("JWT_JWKS_MAX_STALE_SECONDS"),
            "{}",
            e.reason
        );
        assert!((1..=30).contains(&e.retry_after_seconds));
        // The key server is back: the next allowed fetch restores it.
        let back = bound + 200_000;
        assert_eq!(s.on_request(at(back), T), Next::Fetch);
        s.record_attempt(at(back));
        s.record(Outcome::Fetched(one_key("k2")), at(back));
        assert_eq!(s.usable(at(back), T).unwrap()[0].kid.as_deref(), Some("k2"));
        assert_eq!(s.last_failure, None);
    }

    #[test]
    fn retry_after_is_the_rest_of_the_cooldown_and_at_least_one_second() {
        let mut s = RemoteKeys::new("https://idp.example/jwks");
        s.record_attempt(at(1_000_000));
        s.record(Outcome::Failed("status 500".to_owned()), at(1_000_000));
        let e = s.usable(at(1_000_000), T).unwrap_err();
        assert_eq!(e.retry_after_seconds, 30);
        assert!(e.reason.contains("no key set fetched yet"), "{}", e.reason);
        assert_eq!(
            s.usable(at(1_010_500), T).unwrap_err().retry_after_seconds,
            20
        );
        assert_eq!(
            s.usable(at(1_029_999), T).unwrap_err().retry_after_seconds,
            1
        );
        assert_eq!(
            s.usable(at(1_090_000), T).unwrap_err().retry_after_seconds,
            1
        );
    }

    #[test]
    fn while_another_request_fetches_a_missing_set_the_answer_is_retry_in_a_second() {
        let mut s = RemoteKeys::new("https://idp.example/jwks");
        // The first request of a cold isolate started the fetch; a second one arrives.
        s.record_attempt(at(1_000_000));
        assert_eq!(s.on_request(at(1_000_050), T), Next::UseCached);
        let e = s.usable(at(1_000_050), T).unwrap_err();
        assert_eq!(e.retry_after_seconds, 1);
        assert!(e.reason.contains("under way"), "{}", e.reason);
        // Its outcome arrives: a failure is waited out for the rest of the cooldown.
        s.record(Outcome::Failed("status 502".to_owned()), at(1_000_000));
        assert!(!s.fetching);
        assert_eq!(
            s.usable(at(1_000_100), T).unwrap_err().retry_after_seconds,
            30
        );
    }

    #[test]
    fn a_persisted_copy_counts_from_its_own_fetch_and_cannot_outlive_the_bound() {
        let bound = FRESH_FOR_MS + 3_600_000;
        // A restarted isolate finds a copy fetched at 0 by another one.
        let mut cold = RemoteKeys::new("https://idp.example/jwks");
        cold.record_persisted(one_key("k1"), at(0));
        assert_eq!(cold.fetched_at, Some(at(0)));
        assert!(cold.usable(at(bound - 1), T).is_ok());
        let mut late = RemoteKeys::new("https://idp.example/jwks");
        late.record_persisted(one_key("k1"), at(0));
        assert_eq!(late.on_request(at(bound), T), Next::Fetch);
        late.record_attempt(at(bound));
        late.record(Outcome::Failed("status 503".to_owned()), at(bound));
        assert!(late.usable(at(bound), T).is_err());
        // An older copy never replaces newer keys in memory, a newer one does.
        let mut warm = fetched("k2", 1_000);
        warm.record_persisted(one_key("k1"), at(0));
        assert_eq!(warm.keys[0].kid.as_deref(), Some("k2"));
        warm.record_persisted(vec![], at(2_000));
        assert!(warm.keys.is_empty());
        assert_eq!(warm.fetched_at, Some(at(2_000)));
    }

    #[test]
    fn timing_comes_from_the_configuration_and_the_life_knob_only_in_development() {
        let config = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            Config::from_lookup(|name| {
                pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            })
            .unwrap()
        };
        assert_eq!(Timing::from_config(&config(&[])), Timing::default());
        assert_eq!(Timing::default(), T);
        assert_eq!(
            Timing::from_config(&config(&[("JWT_JWKS_MAX_STALE_SECONDS", "0")])).max_stale_ms,
            0
        );
        let dev = Timing::from_config(&config(&[
            ("ENVIRONMENT", "development"),
            ("JWT_JWKS_DEV_FRESH_SECONDS", "2"),
            ("JWT_JWKS_MAX_STALE_SECONDS", "3"),
        ]));
        assert_eq!(
            dev,
            Timing {
                fresh_for_ms: 2_000,
                cooldown_ms: 2_000,
                max_stale_ms: 3_000
            }
        );
        let prod = Timing::from_config(&config(&[("JWT_JWKS_DEV_FRESH_SECONDS", "2")]));
        assert_eq!(prod.fresh_for_ms, FRESH_FOR_MS);
        assert_eq!(prod.cooldown_ms, COOLDOWN_MS);
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
        assert_eq!(s.on_request(at(COOLDOWN_MS - 1), T), Next::UseCached);
        assert_eq!(s.on_request(at(COOLDOWN_MS), T), Next::Fetch);
    }
}
