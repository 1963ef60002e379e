//! HTTP caching decisions of the catalogue (pure): `Cache-Control` text, strong content
//! `ETag`s, conditional requests (RFC 9110 §13) and edge-cache keys.
//!
//! Nothing here touches `worker` types, a clock or storage: the handlers pass the request's
//! header values and `now`, and get back plain values and a [`Freshness`] decision. The
//! Cache API adapter (`edge_cache.rs`) stores and replays what [`Representation::headers`]
//! lists, nothing request-dependent: CORS and `Vary: Origin` are added later, in
//! `Cx::finish`, after the lookup.

use crate::config::Config;
use crate::hash::sha256_parts;
use crate::time::{format_http_date, parse_http_date};

/// The catalogue's caching lifetimes, from `CATALOGUE_MAX_AGE`, `CATALOGUE_S_MAXAGE` and
/// `CATALOGUE_SWR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    pub max_age: u32,
    pub s_maxage: u32,
    pub swr: u32,
}

/// Longest time a location keeps its mirrored copy of the listing generation, a product's
/// page or a product's mark. This bounds how long *another* location serves a catalogue that
/// changed elsewhere (see `edge_cache.rs`).
pub const GENERATION_TTL_MAX: u32 = 30;

impl CachePolicy {
    #[must_use]
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_age: config.catalogue_max_age,
            s_maxage: config.catalogue_s_maxage,
            swr: config.catalogue_swr,
        }
    }

    /// `public, max-age=…, s-maxage=…[, stale-while-revalidate=…]`. `s-maxage` is never 0
    /// (config refuses it), which the Cache API needs to store the entry at all.
    #[must_use]
    pub fn cache_control(self) -> String {
        let mut text = format!(
            "public, max-age={}, s-maxage={}",
            self.max_age, self.s_maxage
        );
        if self.swr > 0 {
            text.push_str(&format!(", stale-while-revalidate={}", self.swr));
        }
        text
    }

    /// How long a mirror (the generation's or a product mark) or a product page lives in a
    /// location's cache: never longer than the listing entries the generation guards, at
    /// most [`GENERATION_TTL_MAX`] seconds, at least 1.
    #[must_use]
    pub fn generation_ttl(self) -> u32 {
        self.s_maxage.clamp(1, GENERATION_TTL_MAX)
    }

    /// The `Cache-Control` a product page is *stored* with: it tells the Cache API to keep it
    /// for [`Self::generation_ttl`] seconds, the bound on how long another location may serve
    /// a product that changed. A hit is answered with [`Self::cache_control`] again.
    #[must_use]
    pub fn entry_control(self) -> String {
        let ttl = self.generation_ttl();
        format!("public, max-age={ttl}, s-maxage={ttl}")
    }
}

/// A strong `ETag` from the exact bytes of a body: equal bodies, equal tags.
#[must_use]
pub fn strong_etag(body: &[u8]) -> String {
    let digest = sha256_parts(&[body]);
    format!("\"{}\"", digest.get(..32).unwrap_or(&digest))
}

/// A cacheable response in plain data: what is stored in the edge cache and sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Representation {
    pub body: Vec<u8>,
    pub etag: String,
    /// `Last-Modified`, Unix seconds.
    pub last_modified: i64,
    /// `Date`: when this representation was generated, Unix seconds.
    pub date: i64,
    pub cache_control: String,
}

impl Representation {
    /// A JSON representation generated at `now_secs`.
    #[must_use]
    pub fn json(body: Vec<u8>, last_modified: i64, now_secs: i64, policy: CachePolicy) -> Self {
        Self {
            etag: strong_etag(&body),
            body,
            last_modified: last_modified.min(now_secs),
            date: now_secs,
            cache_control: policy.cache_control(),
        }
    }

    /// The response headers of the 200, in a fixed order; exactly these are stored and
    /// replayed, so a hit and a miss carry the same headers.
    #[must_use]
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Content-Type", "application/json".to_owned()),
            ("Cache-Control", self.cache_control.clone()),
            ("ETag", self.etag.clone()),
            ("Last-Modified", format_http_date(self.last_modified)),
            ("Date", format_http_date(self.date)),
        ]
    }

    /// The headers a 304 keeps (RFC 9110 §15.4.5): `Cache-Control`, `ETag`, `Date` and the
    /// like, without `Content-Type`, and without `Last-Modified` (representation metadata a
    /// 304 SHOULD NOT repeat when it has an `ETag`).
    #[must_use]
    pub fn not_modified_headers(&self) -> Vec<(&'static str, String)> {
        self.headers()
            .into_iter()
            .filter(|(name, _)| *name != "Content-Type" && *name != "Last-Modified")
            .collect()
    }

    /// The `Age` a cache sends with this representation at `now_secs` (RFC 9111 §4, §5.1): the
    /// whole seconds since its `Date`, never negative (a clock behind the stored `Date` gives 0).
    #[must_use]
    pub fn age(&self, now_secs: i64) -> u64 {
        u64::try_from(now_secs.saturating_sub(self.date)).unwrap_or(0)
    }

    /// Rebuilds a representation from stored headers; `None` when any is missing or
    /// malformed (the entry is then treated as a miss).
    #[must_use]
    pub fn from_stored(
        body: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
        date: Option<String>,
        cache_control: Option<String>,
    ) -> Option<Self> {
        let etag = etag?;
        parse_entity_tag(&etag)?;
        Some(Self {
            body,
            etag,
            last_modified: parse_http_date(&last_modified?)?,
            date: parse_http_date(&date?)?,
            cache_control: cache_control?,
        })
    }
}

/// A parsed `If-None-Match`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfNoneMatch {
    /// `*`: matches any current representation.
    Any,
    /// The opaque tags of the list, `W/` dropped (weak comparison ignores it).
    Tags(Vec<String>),
}

/// A conditional header that does not follow its grammar (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedPrecondition;

impl From<MalformedPrecondition> for crate::http::problem::ApiError {
    fn from(_: MalformedPrecondition) -> Self {
        Self::BadRequest("If-None-Match is not `*` or a list of entity-tags.".into())
    }
}

/// Parses one `entity-tag` (`"xyz"` or `W/"xyz"`) and returns its opaque tag with quotes.
fn parse_entity_tag(text: &str) -> Option<&str> {
    let opaque = text.strip_prefix("W/").unwrap_or(text);
    let inner = opaque.strip_prefix('"')?.strip_suffix('"')?;
    // etagc = %x21 / %x23-7E / obs-text
    if inner
        .bytes()
        .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
    {
        Some(opaque)
    } else {
        None
    }
}

impl IfNoneMatch {
    /// Parses `*` or `#entity-tag` (RFC 9110 §13.1.2). Empty list elements are allowed (as
    /// the list rule requires); a comma inside quotes belongs to the tag.
    ///
    /// # Errors
    /// [`MalformedPrecondition`] for anything else, including an empty header.
    pub fn parse(text: &str) -> Result<Self, MalformedPrecondition> {
        let text = text.trim_matches(|c| c == ' ' || c == '\t');
        if text == "*" {
            return Ok(Self::Any);
        }
        let mut tags = Vec::new();
        let mut rest = text;
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                break;
            }
            let start = usize::from(rest.starts_with("W/")) * 2;
            let after_quote = rest
                .get(start..)
                .and_then(|r| r.strip_prefix('"'))
                .ok_or(MalformedPrecondition)?;
            let close = after_quote.find('"').ok_or(MalformedPrecondition)?;
            let end = start + 1 + close + 1;
            let tag = rest.get(..end).ok_or(MalformedPrecondition)?;
            let opaque = parse_entity_tag(tag).ok_or(MalformedPrecondition)?;
            tags.push(opaque.to_owned());
            rest = rest.get(end..).ok_or(MalformedPrecondition)?;
            let next = rest.trim_start_matches([' ', '\t']);
            if !(next.is_empty() || next.starts_with(',')) {
                return Err(MalformedPrecondition);
            }
            rest = next;
        }
        if tags.is_empty() {
            return Err(MalformedPrecondition);
        }
        Ok(Self::Tags(tags))
    }

    /// Weak comparison against the current strong tag.
    #[must_use]
    pub fn matches(&self, current: &str) -> bool {
        let current = current.strip_prefix("W/").unwrap_or(current);
        match self {
            Self::Any => true,
            Self::Tags(tags) => tags.iter().any(|t| t == current),
        }
    }
}

/// What to answer a GET or HEAD with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// 304 with the caching headers.
    NotModified,
    /// 200 with the body.
    Modified,
}

/// RFC 9110 §13.2.2 for GET/HEAD on an existing representation: `If-None-Match` decides when
/// present; otherwise `If-Modified-Since`, which is ignored when it is not a valid HTTP date
/// or lies in the future.
#[must_use]
pub fn evaluate(
    if_none_match: Option<&IfNoneMatch>,
    if_modified_since: Option<&str>,
    current: &Representation,
    now_secs: i64,
) -> Freshness {
    if let Some(inm) = if_none_match {
        return if inm.matches(&current.etag) {
            Freshness::NotModified
        } else {
            Freshness::Modified
        };
    }
    match if_modified_since.and_then(parse_http_date) {
        Some(since) if since <= now_secs && current.last_modified <= since => {
            Freshness::NotModified
        }
        Some(_) | None => Freshness::Modified,
    }
}

/// The path prefix under which edgecart keeps its edge-cache entries; it is never a route,
/// so an entry can only be reached through [`cache_key`].
const CACHE_PREFIX: &str = "/.edgecart-cache";

/// The edge-cache key of a catalogue response: an absolute URL from the request's origin,
/// the listing generation, the path and the canonical query parameters sorted by name.
/// Nothing else of the request (credentials, cookies, other headers, unknown parameters)
/// enters, so every caller of the same resource shares one entry.
#[must_use]
pub fn cache_key(origin: &str, generation: u64, path: &str, params: &[(&str, String)]) -> String {
    let mut sorted: Vec<&(&str, String)> = params.iter().collect();
    sorted.sort();
    let mut key = format!("{origin}{CACHE_PREFIX}/g{generation}{path}");
    for (i, (name, value)) in sorted.iter().enumerate() {
        key.push(if i == 0 { '?' } else { '&' });
        key.push_str(&percent_encode(name));
        key.push('=');
        key.push_str(&percent_encode(value));
    }
    key
}

/// The fixed key under which a location mirrors the listing generation (the catalogue
/// generation: bumped by every change a listing page could show).
#[must_use]
pub fn generation_key(origin: &str) -> String {
    format!("{origin}{CACHE_PREFIX}/generation")
}

/// The fixed edge-cache key of a product page. It holds either the page itself, kept for at
/// most [`CachePolicy::generation_ttl`] seconds (see [`CachePolicy::entry_control`]), or a
/// mark: the [`Mirror`] of a revision this location knows the page has moved past, which a
/// miss reads D1 at least from. One key per product, so a hit is one lookup and a miss one
/// store, and a change to another product leaves it alone.
#[must_use]
pub fn product_key(origin: &str, sku: &str) -> String {
    format!("{origin}{CACHE_PREFIX}/products/{sku}")
}

/// A D1 session bookmark as edgecart accepts one: 8 to 128 characters of lower-case hex and
/// `-`, starting with a hex digit (D1's bookmarks are dash-separated hex fields). Anything
/// else, a constraint name such as `first-primary` included, is not a bookmark: a mirror
/// carrying it is read as carrying none, so a corrupted value cannot reach D1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bookmark(String);

impl Bookmark {
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let ok = (8..=128).contains(&text.len())
            && text.bytes().next().is_some_and(|b| b.is_ascii_hexdigit())
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-');
        ok.then(|| Self(text.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A mirrored counter (the listing generation or a product revision) and, when known, the
/// bookmark of the D1 write that set it: a miss reads D1 at least as new as that write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub value: u64,
    pub bookmark: Option<Bookmark>,
}

impl Mirror {
    /// The stored text: the value, then a space and the bookmark when there is one.
    #[must_use]
    pub fn to_text(&self) -> String {
        match &self.bookmark {
            Some(b) => format!("{} {}", self.value, b.as_str()),
            None => self.value.to_string(),
        }
    }

    /// Reads a stored text; `None` when the value does not parse (the mirror is then a miss).
    /// A malformed bookmark is dropped, the value kept.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().splitn(2, ' ');
        let value = parts.next()?.parse::<u64>().ok()?;
        let bookmark = parts.next().and_then(|b| Bookmark::parse(b.trim()));
        Some(Self { value, bookmark })
    }
}

/// The Workers Cache tag of everything that shows a product: its page and every listing page
/// it is on.
#[must_use]
pub fn product_tag(sku: &str) -> String {
    format!("product:{sku}")
}

/// The tag every listing page carries: purged when a product is created, since the page that
/// will show it does not carry its tag yet.
pub const LISTING_TAG: &str = "listing";

/// A listing page's `Cache-Tag`: `listing` and the tag of each product it shows. A change to
/// a product purges exactly the pages that show it.
#[must_use]
pub fn listing_tags<'a>(skus: impl IntoIterator<Item = &'a str>) -> String {
    let mut tags = LISTING_TAG.to_owned();
    for sku in skus {
        tags.push(',');
        tags.push_str(&product_tag(sku));
    }
    tags
}

/// What a merchant's write purges: the product's pages and listings (its tag) and, for a new
/// product, every listing page (one of them will show it).
#[must_use]
pub fn write_purge(sku: &str, created: bool) -> Vec<String> {
    let mut tags = vec![product_tag(sku)];
    if created {
        tags.push(LISTING_TAG.to_owned());
    }
    tags
}

/// Whether a row read from D1 may be stored under a key that names `wanted` (a revision or
/// generation): only when it is at least that new. An older read (a replica behind the write
/// the key stands for) would otherwise refill the cache with the old data for `s-maxage`.
#[must_use]
pub fn fresh_enough(read: u64, wanted: u64) -> bool {
    read >= wanted
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_counts_whole_seconds_since_date_and_is_never_negative() {
        let rep = Representation::json(b"{}".to_vec(), 1_000, 2_000, POLICY);
        assert_eq!(rep.age(2_000), 0);
        assert_eq!(rep.age(2_042), 42);
        assert_eq!(rep.age(1_990), 0);
        assert_eq!(rep.age(i64::MIN), 0);
    }

    const POLICY: CachePolicy = CachePolicy {
        max_age: 60,
        s_maxage: 300,
        swr: 60,
    };

    fn rep(body: &str, last_modified: i64) -> Representation {
        Representation::json(
            body.as_bytes().to_vec(),
            last_modified,
            2_000_000_000,
            POLICY,
        )
    }

    #[test]
    fn cache_control_lists_the_configured_lifetimes() {
        assert_eq!(
            POLICY.cache_control(),
            "public, max-age=60, s-maxage=300, stale-while-revalidate=60"
        );
        let no_swr = CachePolicy { swr: 0, ..POLICY };
        assert_eq!(no_swr.cache_control(), "public, max-age=60, s-maxage=300");
    }

    #[test]
    fn the_generation_mirror_never_outlives_the_entries_or_thirty_seconds() {
        assert_eq!(POLICY.generation_ttl(), 30);
        assert_eq!(
            CachePolicy {
                s_maxage: 5,
                ..POLICY
            }
            .generation_ttl(),
            5
        );
    }

    #[test]
    fn etags_are_strong_and_follow_the_content() {
        let a = strong_etag(b"{\"a\":1}");
        assert!(a.starts_with('"') && a.ends_with('"') && !a.starts_with("W/"));
        assert_eq!(a.len(), 34);
        assert_eq!(a, strong_etag(b"{\"a\":1}"));
        assert_ne!(a, strong_etag(b"{\"a\":2}"));
    }

    #[test]
    fn if_none_match_parses_star_lists_and_weak_tags() {
        let ok: &[(&str, IfNoneMatch)] = &[
            ("*", IfNoneMatch::Any),
            (" * ", IfNoneMatch::Any),
            ("\"a\"", IfNoneMatch::Tags(vec!["\"a\"".into()])),
            ("W/\"a\"", IfNoneMatch::Tags(vec!["\"a\"".into()])),
            (
                "\"a\", W/\"b\",\"c\"",
                IfNoneMatch::Tags(vec!["\"a\"".into(), "\"b\"".into(), "\"c\"".into()]),
            ),
            (", \"a\" ,, ", IfNoneMatch::Tags(vec!["\"a\"".into()])),
            ("\"a,b\"", IfNoneMatch::Tags(vec!["\"a,b\"".into()])),
            ("\"\"", IfNoneMatch::Tags(vec!["\"\"".into()])),
        ];
        for (text, expected) in ok {
            assert_eq!(IfNoneMatch::parse(text).as_ref(), Ok(expected), "{text}");
        }
        for bad in [
            "",
            " ",
            "a",
            "\"a",
            "a\"",
            "w/\"a\"",
            "\"a\" \"b\"",
            "\"a\"x",
            "*, \"a\"",
            "\"a b\"",
            "W/",
            ",",
        ] {
            assert_eq!(IfNoneMatch::parse(bad), Err(MalformedPrecondition), "{bad}");
        }
    }

    #[test]
    fn conditional_requests_follow_rfc_9110() {
        let current = rep("{}", 1_000);
        let tag = current.etag.clone();
        let weak = format!("W/{tag}");
        let list = format!("\"zzz\", {weak}");
        let now = 2_000_000_000;
        let inm = |t: &str| IfNoneMatch::parse(t).unwrap();
        let date = |s: i64| format_http_date(s);
        let cases: Vec<(Option<IfNoneMatch>, Option<String>, Freshness)> = vec![
            (None, None, Freshness::Modified),
            (Some(inm(&tag)), None, Freshness::NotModified),
            (Some(inm(&weak)), None, Freshness::NotModified),
            (Some(inm(&list)), None, Freshness::NotModified),
            (Some(inm("*")), None, Freshness::NotModified),
            (Some(inm("\"stale\"")), None, Freshness::Modified),
            // If-None-Match wins over If-Modified-Since.
            (
                Some(inm("\"stale\"")),
                Some(date(5_000)),
                Freshness::Modified,
            ),
            (None, Some(date(1_000)), Freshness::NotModified),
            (None, Some(date(5_000)), Freshness::NotModified),
            (None, Some(date(999)), Freshness::Modified),
            (None, Some("yesterday".into()), Freshness::Modified),
            (None, Some(date(now + 10)), Freshness::Modified),
        ];
        for (inm, ims, expected) in cases {
            assert_eq!(
                evaluate(inm.as_ref(), ims.as_deref(), &current, now),
                expected,
                "{inm:?} {ims:?}"
            );
        }
    }

    #[test]
    fn a_representation_round_trips_through_its_stored_headers() {
        let r = rep("{\"x\":1}", 1_796_000_000);
        let h = r.headers();
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
        let back = Representation::from_stored(
            r.body.clone(),
            get("ETag"),
            get("Last-Modified"),
            get("Date"),
            get("Cache-Control"),
        );
        assert_eq!(back, Some(r.clone()));
        assert_eq!(
            Representation::from_stored(
                r.body.clone(),
                None,
                get("Last-Modified"),
                get("Date"),
                get("Cache-Control")
            ),
            None
        );
        let kept: Vec<&str> = r.not_modified_headers().iter().map(|(k, _)| *k).collect();
        assert_eq!(kept, ["Cache-Control", "ETag", "Date"]);
    }

    #[test]
    fn last_modified_is_never_in_the_future() {
        assert_eq!(rep("{}", 3_000_000_000).last_modified, 2_000_000_000);
    }

    #[test]
    fn product_keys_are_fixed_per_product() {
        assert_eq!(
            product_key("https://shop.example", "tea"),
            "https://shop.example/.edgecart-cache/products/tea"
        );
        assert_ne!(
            product_key("https://shop.example", "tea"),
            product_key("https://shop.example", "tea-2")
        );
    }

    #[test]
    fn product_pages_are_stored_for_the_generation_ttl_only() {
        assert_eq!(POLICY.entry_control(), "public, max-age=30, s-maxage=30");
        let short = CachePolicy {
            s_maxage: 5,
            ..POLICY
        };
        assert_eq!(short.entry_control(), "public, max-age=5, s-maxage=5");
    }

    #[test]
    fn bookmarks_are_dashed_hex_and_nothing_else() {
        let good = "00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683";
        assert_eq!(
            Bookmark::parse(good).map(|b| b.as_str().to_owned()),
            Some(good.to_owned())
        );
        for bad in [
            "",
            "0000",
            "first-primary",
            "first-unconstrained",
            "-0000000000",
            "00000085-0000024C",
            "00000085 0000024c",
            "0000008\u{e9}-0000",
            &"0".repeat(129),
        ] {
            assert_eq!(Bookmark::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn mirrors_round_trip_and_drop_a_malformed_bookmark() {
        let bookmark = Bookmark::parse("0000000a-00000001");
        let m = Mirror {
            value: 42,
            bookmark: bookmark.clone(),
        };
        assert_eq!(m.to_text(), "42 0000000a-00000001");
        assert_eq!(Mirror::parse(&m.to_text()), Some(m));
        let bare = Mirror {
            value: 3,
            bookmark: None,
        };
        assert_eq!(Mirror::parse(&bare.to_text()), Some(bare.clone()));
        assert_eq!(Mirror::parse(" 3\n"), Some(bare.clone()));
        assert_eq!(Mirror::parse("3 not-a-bookmark!"), Some(bare.clone()));
        assert_eq!(Mirror::parse("3 first-primary"), Some(bare));
        for bad in ["", "x", "-1", "3.5", " 0000000a-00000001"] {
            assert_eq!(Mirror::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn tags_name_every_product_a_page_shows() {
        assert_eq!(product_tag("tea"), "product:tea");
        assert_eq!(listing_tags(["a", "b-2"]), "listing,product:a,product:b-2");
        assert_eq!(listing_tags([]), "listing");
        assert_eq!(write_purge("tea", false), ["product:tea"]);
        assert_eq!(write_purge("tea", true), ["product:tea", "listing"]);
    }

    #[test]
    fn a_read_older_than_its_key_is_never_stored() {
        assert!(fresh_enough(5, 5));
        assert!(fresh_enough(6, 5));
        assert!(!fresh_enough(4, 5));
    }

    #[test]
    fn cache_keys_sort_parameters_and_carry_the_generation() {
        let a = cache_key(
            "https://shop.example",
            7,
            "/products",
            &[("limit", "20".into()), ("cursor", "dGVh".into())],
        );
        let b = cache_key(
            "https://shop.example",
            7,
            "/products",
            &[("cursor", "dGVh".into()), ("limit", "20".into())],
        );
        assert_eq!(a, b);
        assert_eq!(
            a,
            "https://shop.example/.edgecart-cache/g7/products?cursor=dGVh&limit=20"
        );
        assert_ne!(
            a,
            cache_key(
                "https://shop.example",
                8,
                "/products",
                &[("limit", "20".into()), ("cursor", "dGVh".into())]
            )
        );
        assert_eq!(
            cache_key("https://shop.example", 1, "/products/tea", &[]),
            "https://shop.example/.edgecart-cache/g1/products/tea"
        );
        assert_eq!(
            cache_key("https://s.example", 1, "/p", &[("q", "a b&c".into())]),
            "https://s.example/.edgecart-cache/g1/p?q=a%20b%26c"
        );
        assert_eq!(
            generation_key("https://shop.example"),
            "https://shop.example/.edgecart-cache/generation"
        );
    }
}
