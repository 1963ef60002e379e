//! The pure part of edgecart's rate limits: the classes, the client-address key, the
//! per-isolate list of addresses refused for bad tokens, and the once-a-minute log throttle.
//!
//! No `worker` types, no clock: every decision takes `now`.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::time::UnixMillis;

/// A limit class: one `[[ratelimits]]` binding in `wrangler.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Authenticated writes (cart writes, merges, checkout), keyed by the verified user.
    Write,
    /// Minting a token that needs no account (`POST /dev/token`, `POST /session/guest`),
    /// keyed by client address.
    Mint,
    /// Requests whose bearer token failed verification, keyed by client address.
    BadToken,
}

impl Class {
    pub const ALL: [Class; 3] = [Self::Write, Self::Mint, Self::BadToken];

    /// The binding's name in `wrangler.toml`.
    #[must_use]
    pub fn binding(self) -> &'static str {
        match self {
            Self::Write => "WRITE_LIMITER",
            Self::Mint => "MINT_LIMITER",
            Self::BadToken => "BAD_TOKEN_LIMITER",
        }
    }

    /// The class's name in the log and the OpenAPI document.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Write => "write",
            Self::Mint => "mint",
            Self::BadToken => "bad-token",
        }
    }

    /// The binding's `simple.period` in `wrangler.toml`, in seconds: the binding does not
    /// tell the worker its period, so it is repeated here for `Retry-After`
    /// (tests/worker/limits.test.mjs checks that the two agree).
    #[must_use]
    pub fn period_seconds(self) -> u64 {
        match self {
            Self::Write => 10,
            Self::Mint | Self::BadToken => 60,
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Write => 0,
            Self::Mint => 1,
            Self::BadToken => 2,
        }
    }
}

/// The one key every request without a usable client address shares (no header, as locally,
/// or one that is not an IP address): such requests are limited together, never unlimited.
pub const SHARED_ADDRESS_KEY: &str = "addr:unknown";

/// The rate-limit key of a client address (`CF-Connecting-IP`): an IPv4 address as is (an
/// IPv4-mapped IPv6 address as its IPv4 form), an IPv6 address by its /64 prefix (one host
/// usually holds a whole /64, and could otherwise step through it), anything else
/// [`SHARED_ADDRESS_KEY`].
#[must_use]
pub fn address_key(header: Option<&str>) -> String {
    let Some(text) = header
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 64)
    else {
        return SHARED_ADDRESS_KEY.to_owned();
    };
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => format!("addr:{v4}"),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("addr:{v4}"),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("addr:{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
        },
        Err(_) => SHARED_ADDRESS_KEY.to_owned(),
    }
}

/// How many addresses one isolate remembers as refused for bad tokens.
pub const MAX_BLOCKED_ADDRESSES: usize = 1024;

/// Addresses whose bad-token limit this isolate saw exceeded, each until the end of its
/// period: requests from them are refused before their token is parsed or its signature
/// checked. Abuse-guard state about addresses, not per-user state; bounded in size (an
/// expired entry goes first, then the one that expires soonest).
#[derive(Debug, Default)]
pub struct Blocklist {
    until: HashMap<String, UnixMillis>,
}

impl Blocklist {
    /// Whether no address is remembered (the fast path: no header read at all).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }

    /// The seconds left (at least 1) while `key` is refused at `now`; an expired entry is
    /// forgotten.
    pub fn blocked(&mut self, key: &str, now: UnixMillis) -> Option<u64> {
        let until = *self.until.get(key)?;
        if until.0 > now.0 {
            Some((until.0 - now.0).div_ceil(1000).max(1))
        } else {
            self.until.remove(key);
            None
        }
    }

    /// Refuses `key` until `until`, keeping at most [`MAX_BLOCKED_ADDRESSES`] entries.
    pub fn block(&mut self, key: String, until: UnixMillis, now: UnixMillis) {
        if !self.until.contains_key(&key) && self.until.len() >= MAX_BLOCKED_ADDRESSES {
            self.until.retain(|_, u| u.0 > now.0);
            if self.until.len() >= MAX_BLOCKED_ADDRESSES {
                let soonest = self
                    .until
                    .iter()
                    .min_by_key(|(_, u)| u.0)
                    .map(|(k, _)| k.clone());
                if let Some(k) = soonest {
                    self.until.remove(&k);
                }
            }
        }
        let entry = self.until.entry(key).or_insert(until);
        entry.0 = entry.0.max(until.0);
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.until.len()
    }
}

/// How often a class's refusals are logged (per isolate).
pub const LOG_INTERVAL_MILLIS: u64 = 60_000;

/// Counts refusals per class and says when to write a line: the first refusal, then at most
/// one line per [`LOG_INTERVAL_MILLIS`], each carrying how many refusals it stands for.
#[derive(Debug, Default)]
pub struct LogThrottle {
    last: [Option<UnixMillis>; 3],
    refused: [u64; 3],
}

impl LogThrottle {
    /// Notes one refusal of `class` at `now`; `Some(n)` when a line is due, `n` the refusals
    /// since the previous line (this one included).
    pub fn note(&mut self, class: Class, now: UnixMillis) -> Option<u64> {
        let i = class.index();
        let refused = self.refused.get_mut(i)?;
        *refused = refused.saturating_add(1);
        let last = self.last.get_mut(i)?;
        let due = last.is_none_or(|l| now.0.saturating_sub(l.0) >= LOG_INTERVAL_MILLIS);
        if !due {
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(refused))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_keys_and_anything_else_the_shared_key() {
        assert_eq!(address_key(Some("203.0.113.7")), "addr:203.0.113.7");
        assert_eq!(address_key(Some(" 203.0.113.7 ")), "addr:203.0.113.7");
        assert_eq!(address_key(Some("::ffff:203.0.113.7")), "addr:203.0.113.7");
        assert_eq!(
            address_key(Some("2001:db8:1:2:3:4:5:6")),
            "addr:2001:db8:1:2::/64"
        );
        assert_eq!(
            address_key(Some("2001:db8:1:2::9")),
            address_key(Some("2001:db8:1:2:ffff::1"))
        );
        for bad in [
            None,
            Some(""),
            Some("unknown"),
            Some("1.2.3.4, 5.6.7.8"),
            Some("1.2.3"),
        ] {
            assert_eq!(address_key(bad), SHARED_ADDRESS_KEY, "{bad:?}");
        }
        assert_eq!(address_key(Some(&"1".repeat(100))), SHARED_ADDRESS_KEY);
    }

    #[test]
    fn a_blocked_address_is_refused_until_its_period_ends() {
        let mut b = Blocklist::default();
        assert!(b.is_empty());
        b.block("a".into(), UnixMillis(60_000), UnixMillis(0));
        assert_eq!(b.blocked("a", UnixMillis(0)), Some(60));
        assert_eq!(b.blocked("a", UnixMillis(59_500)), Some(1));
        assert_eq!(b.blocked("b", UnixMillis(1)), None);
        assert_eq!(b.blocked("a", UnixMillis(60_000)), None);
        assert!(b.is_empty(), "an expired entry is forgotten");
    }

    #[test]
    fn the_blocklist_stays_bounded() {
        let mut b = Blocklist::default();
        for i in 0..(MAX_BLOCKED_ADDRESSES as u64 + 10) {
            b.block(format!("k{i}"), UnixMillis(1_000 + i), UnixMillis(0));
            assert!(b.len() <= MAX_BLOCKED_ADDRESSES);
        }
        // The ones expiring soonest made room; the newest are kept.
        assert_eq!(b.blocked("k0", UnixMillis(0)), None);
        let last = format!("k{}", MAX_BLOCKED_ADDRESSES + 9);
        assert!(b.blocked(&last, UnixMillis(0)).is_some());
        // Expired entries go first.
        b.block("late".into(), UnixMillis(100_000), UnixMillis(50_000));
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn refusals_are_logged_once_a_minute_per_class() {
        let mut t = LogThrottle::default();
        assert_eq!(t.note(Class::Write, UnixMillis(0)), Some(1));
        assert_eq!(t.note(Class::Write, UnixMillis(10)), None);
        assert_eq!(t.note(Class::Mint, UnixMillis(20)), Some(1), "per class");
        assert_eq!(t.note(Class::Write, UnixMillis(59_999)), None);
        assert_eq!(t.note(Class::Write, UnixMillis(60_000)), Some(3));
        assert_eq!(t.note(Class::Write, UnixMillis(60_001)), None);
    }

    #[test]
    fn class_names_are_distinct() {
        for c in Class::ALL {
            assert_eq!(
                Class::ALL
                    .iter()
                    .filter(|d| d.binding() == c.binding())
                    .count(),
                1
            );
            assert!([10, 60].contains(&c.period_seconds()));
        }
    }
}
