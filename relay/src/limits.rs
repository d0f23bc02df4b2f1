//! Abuse limits: what one party may ask of the relay.
//!
//! - `RateLimiter`: token buckets, one per authenticated device and one per
//!   peer address for unauthenticated requests; an empty bucket answers `429`
//!   with `Retry-After`. The bucket map is bounded: when full, idle buckets
//!   are dropped, and new keys past the bound share one overflow bucket (so a
//!   flood of fresh addresses can neither grow memory nor escape the limit).
//! - `ExpiringMap`: bearer tokens and spent challenges, each with an expiry, at
//!   most `per_owner` live entries per device (the oldest is evicted) and at
//!   most `capacity` in all (full after dropping expired ones: refused with
//!   `503` + `Retry-After`, nothing evicted that someone else relies on).
//! - `PrekeyHandout`: how many one-time prekeys one requester may take from
//!   one target, and in all, per window; past it the bundle carries none (a
//!   session still starts, with the signed prekey only).
//! - Inbox quotas and page sizes are numbers in [`Limits`], enforced by the
//!   database layer and the routes.
//!
//! Every limit is per process and in memory except the quotas (which count
//! what is stored): a restart resets the windows, never the stored data.

use std::collections::{HashMap, VecDeque};

/// A token-bucket rate: a sustained rate and a burst.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    /// Requests per second, sustained.
    pub per_sec: f64,
    /// Requests allowed at once after a quiet period.
    pub burst: f64,
}

/// Every limit the relay enforces.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Requests per authenticated device.
    pub per_device: Rate,
    /// Unauthenticated requests (session start, registration, challenge,
    /// token, and any request with a bad token) per peer IP address.
    pub per_address: Rate,
    /// Most live envelopes queued for one device.
    pub inbox_max_messages: u64,
    /// Most live envelope bytes queued for one device.
    pub inbox_max_bytes: u64,
    /// Most live envelopes one sender may hold in one device's inbox.
    pub sender_share_messages: u64,
    /// Most live envelope bytes one sender may hold in one device's inbox.
    pub sender_share_bytes: u64,
    /// Most envelope bytes in one inbox page (at least one envelope is
    /// always returned).
    pub page_max_bytes: u64,
    /// Most live bearer tokens, and per device.
    pub max_tokens: usize,
    /// Most live bearer tokens per device.
    pub tokens_per_device: usize,
    /// Most spent challenges remembered (until they expire), in all.
    pub max_challenges: usize,
    /// Most spent challenges remembered per device (authentications per
    /// challenge lifetime).
    pub challenges_per_device: usize,
    /// One-time prekeys one requester may take from one target per window.
    pub prekeys_per_target: u32,
    /// One-time prekeys one requester may take in all per window.
    pub prekeys_per_requester: u32,
    /// The prekey hand-out window, ms.
    pub prekey_window_ms: i64,
    /// Hosts a push endpoint may name (`https://` only, no redirects).
    pub push_gateways: Vec<String>,
    /// Largest attachment blob, bytes.
    pub attachment_max: u64,
    /// Most live attachment bytes one device may have on the relay.
    pub attachment_quota: u64,
}

impl Default for Limits {
    /// Production defaults: generous for a real team (many phones behind
    /// one carrier NAT share an address), tight for one abusive party.
    fn default() -> Self {
        Self {
            per_device: Rate {
                per_sec: 50.0,
                burst: 500.0,
            },
            per_address: Rate {
                per_sec: 100.0,
                burst: 2000.0,
            },
            inbox_max_messages: 10_000,
            inbox_max_bytes: 256 << 20,
            sender_share_messages: 2_500,
            sender_share_bytes: 64 << 20,
            page_max_bytes: 4 << 20,
            max_tokens: 200_000,
            tokens_per_device: 4,
            max_challenges: 200_000,
            challenges_per_device: 64,
            prekeys_per_target: 3,
            prekeys_per_requester: 500,
            prekey_window_ms: 3600 * 1000,
            push_gateways: Vec::new(),
            attachment_max: occ_protocol::api::MAX_ATTACHMENT_BYTES,
            attachment_quota: 2 << 30,
        }
    }
}

impl Limits {
    /// No abuse limits at all (benchmarks comparing before and after; a
    /// trusted test rig). Push gateways still apply.
    pub fn unlimited() -> Self {
        let free = Rate {
            per_sec: 1e12,
            burst: 1e12,
        };
        Self {
            per_device: free,
            per_address: free,
            inbox_max_messages: u64::MAX,
            inbox_max_bytes: u64::MAX,
            sender_share_messages: u64::MAX,
            sender_share_bytes: u64::MAX,
            page_max_bytes: u64::MAX,
            max_tokens: usize::MAX,
            tokens_per_device: usize::MAX,
            max_challenges: usize::MAX,
            challenges_per_device: usize::MAX,
            prekeys_per_target: u32::MAX,
            prekeys_per_requester: u32::MAX,
            prekey_window_ms: i64::MAX,
            push_gateways: Self::default().push_gateways,
            attachment_max: occ_protocol::api::MAX_ATTACHMENT_BYTES,
            attachment_quota: u64::MAX,
        }
    }
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// Token buckets by key, bounded in number.
pub(crate) struct RateLimiter {
    buckets: HashMap<String, Bucket>,
    capacity: usize,
}

/// The key all new keys share once the bucket map is full.
const OVERFLOW_KEY: &str = "\u{0}overflow";

impl RateLimiter {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            buckets: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Takes one request from `key`'s bucket; `Err(retry_after_ms)` when it
    /// is empty.
    pub(crate) fn check(&mut self, key: &str, rate: Rate, now_ms: i64) -> Result<(), u64> {
        let refill = |b: &mut Bucket| {
            let elapsed = now_ms.saturating_sub(b.at_ms).max(0) as f64 / 1000.0;
            b.tokens = (b.tokens + elapsed * rate.per_sec).min(rate.burst);
            b.at_ms = now_ms;
        };
        let key = if self.buckets.contains_key(key) || self.buckets.len() < self.capacity {
            key
        } else {
            // Full: forget buckets that have refilled (they hold no state).
            self.buckets.retain(|_, b| {
                let mut b2 = *b;
                refill(&mut b2);
                b2.tokens < rate.burst
            });
            if self.buckets.len() < self.capacity {
                key
            } else {
                OVERFLOW_KEY
            }
        };
        let b = self.buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: rate.burst,
            at_ms: now_ms,
        });
        refill(b);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) / rate.per_sec.max(f64::MIN_POSITIVE);
            Err((wait * 1000.0).ceil().clamp(1.0, 3_600_000.0) as u64)
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }
}

/// Why an [`ExpiringMap`] refused an entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Full;

/// Entries with an owner and an expiry, bounded in all and per owner.
pub(crate) struct ExpiringMap<V> {
    entries: HashMap<String, (String, V, i64)>,
    by_owner: HashMap<String, VecDeque<String>>,
    capacity: usize,
    per_owner: usize,
}

impl<V: Clone> ExpiringMap<V> {
    pub(crate) fn new(capacity: usize, per_owner: usize) -> Self {
        Self {
            entries: HashMap::new(),
            by_owner: HashMap::new(),
            capacity: capacity.max(1),
            per_owner: per_owner.max(1),
        }
    }

    /// Inserts `key` for `owner` until `expires_ms`. The owner's oldest entry
    /// makes room if it has `per_owner` already; a full map is swept of
    /// expired entries first and refuses if still full.
    pub(crate) fn insert(
        &mut self,
        key: String,
        owner: &str,
        value: V,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<(), Full> {
        let queue_len = self.by_owner.get(owner).map_or(0, VecDeque::len);
        if queue_len >= self.per_owner
            && let Some(oldest) = self.by_owner.get_mut(owner).and_then(VecDeque::pop_front)
        {
            self.entries.remove(&oldest);
        }
        if self.entries.len() >= self.capacity {
            self.sweep(now_ms);
            if self.entries.len() >= self.capacity {
                return Err(Full);
            }
        }
        self.by_owner
            .entry(owner.to_string())
            .or_default()
            .push_back(key.clone());
        self.entries
            .insert(key, (owner.to_string(), value, expires_ms));
        Ok(())
    }

    /// The owner and value of a live entry.
    pub(crate) fn get(&self, key: &str, now_ms: i64) -> Option<(&str, &V)> {
        match self.entries.get(key) {
            Some((owner, v, exp)) if *exp > now_ms => Some((owner.as_str(), v)),
            _ => None,
        }
    }

    /// Removes an entry.
    #[cfg(test)]
    pub(crate) fn remove(&mut self, key: &str) {
        if let Some((owner, _, _)) = self.entries.remove(key)
            && let Some(q) = self.by_owner.get_mut(&owner)
        {
            q.retain(|k| k != key);
            if q.is_empty() {
                self.by_owner.remove(&owner);
            }
        }
    }

    fn sweep(&mut self, now_ms: i64) {
        self.entries.retain(|_, (_, _, exp)| *exp > now_ms);
        let entries = &self.entries;
        self.by_owner.retain(|_, q| {
            q.retain(|k| entries.contains_key(k));
            !q.is_empty()
        });
    }

    /// Keeps only the entries whose owner passes `keep`.
    pub(crate) fn retain_owners(&mut self, keep: impl Fn(&str) -> bool) {
        self.entries.retain(|_, (owner, _, _)| keep(owner));
        self.by_owner.retain(|owner, _| keep(owner));
    }

    /// Live and expired entries held.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// One-time prekey hand-outs per requester, per window.
pub(crate) struct PrekeyHandout {
    window_start_ms: i64,
    per_pair: HashMap<(String, String), u32>,
    per_requester: HashMap<String, u32>,
}

impl PrekeyHandout {
    pub(crate) fn new() -> Self {
        Self {
            window_start_ms: 0,
            per_pair: HashMap::new(),
            per_requester: HashMap::new(),
        }
    }

    /// Whether `requester` may take one more of `target`'s one-time prekeys
    /// now; counts it if so.
    pub(crate) fn allow(
        &mut self,
        requester: &str,
        target: &str,
        limits: &Limits,
        now_ms: i64,
    ) -> bool {
        if now_ms.saturating_sub(self.window_start_ms) >= limits.prekey_window_ms {
            self.window_start_ms = now_ms;
            self.per_pair.clear();
            self.per_requester.clear();
        }
        let total = self.per_requester.get(requester).copied().unwrap_or(0);
        let pair_key = (requester.to_string(), target.to_string());
        let pair = self.per_pair.get(&pair_key).copied().unwrap_or(0);
        if total >= limits.prekeys_per_requester || pair >= limits.prekeys_per_target {
            return false;
        }
        self.per_requester.insert(requester.to_string(), total + 1);
        self.per_pair.insert(pair_key, pair + 1);
        true
    }
}

/// Checks a push endpoint: `https://`, a host among `gateways` (exactly,
/// case-insensitively), no user info, at most 2048 characters.
pub(crate) fn check_push_endpoint(url: &str, gateways: &[String]) -> Result<(), String> {
    if url.len() > 2048 {
        return Err("the push endpoint is longer than 2048 characters".into());
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("the push endpoint: {e}"))?;
    if parsed.scheme() != "https" {
        return Err("the push endpoint must be an https:// URL".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("the push endpoint must not carry credentials".into());
    }
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    if !gateways.iter().any(|g| g.eq_ignore_ascii_case(&host)) {
        return Err(format!(
            "the push endpoint's host {host} is not one of this relay's push gateways"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const R: Rate = Rate {
        per_sec: 10.0,
        burst: 3.0,
    };

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let mut rl = RateLimiter::new(10);
        for _ in 0..3 {
            assert!(rl.check("a", R, 0).is_ok());
        }
        assert_eq!(rl.check("a", R, 0), Err(100));
        // Another key is untouched.
        assert!(rl.check("b", R, 0).is_ok());
        // 100 ms refills one request, not two.
        assert!(rl.check("a", R, 100).is_ok());
        assert!(rl.check("a", R, 100).is_err());
        // A long pause refills to the burst, no further.
        for _ in 0..3 {
            assert!(rl.check("a", R, 60_000).is_ok());
        }
        assert!(rl.check("a", R, 60_000).is_err());
    }

    #[test]
    fn a_full_limiter_drops_idle_buckets_and_shares_an_overflow_bucket() {
        let mut rl = RateLimiter::new(2);
        assert!(rl.check("a", R, 0).is_ok());
        assert!(rl.check("b", R, 0).is_ok());
        // Full of busy buckets: new keys share one overflow bucket.
        let refused = (0..10)
            .filter(|i| rl.check(&format!("new{i}"), R, 0).is_err())
            .count();
        assert_eq!(refused, 7);
        assert_eq!(rl.len(), 3);
        // Later, refilled buckets are forgotten and new keys get their own.
        assert!(rl.check("later", R, 60_000).is_ok());
        assert_eq!(rl.len(), 1);
    }

    #[test]
    fn an_expiring_map_is_bounded_per_owner_and_in_all() {
        let mut m = ExpiringMap::new(3, 2);
        m.insert("t1".into(), "dev", 1, 100, 0).unwrap();
        m.insert("t2".into(), "dev", 2, 100, 0).unwrap();
        m.insert("t3".into(), "dev", 3, 100, 0).unwrap();
        // The owner's oldest made room.
        assert!(m.get("t1", 0).is_none());
        assert_eq!(m.get("t3", 0), Some(("dev", &3)));
        assert_eq!(m.len(), 2);
        m.insert("o1".into(), "other", 9, 50, 0).unwrap();
        // Full of live entries: refused, nothing of anyone else evicted.
        assert_eq!(m.insert("x".into(), "third", 0, 100, 10), Err(Full));
        assert_eq!(m.len(), 3);
        // Expired entries do not count once swept, and are never returned.
        assert!(m.get("o1", 50).is_none());
        m.insert("x".into(), "third", 0, 100, 60).unwrap();
        assert_eq!(m.len(), 3);
        m.remove("x");
        assert!(m.get("x", 60).is_none());
        m.remove("t2");
        m.remove("t3");
        assert!(m.get("t3", 60).is_none());
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn prekey_handout_is_limited_per_target_and_per_requester() {
        let limits = Limits {
            prekeys_per_target: 2,
            prekeys_per_requester: 3,
            prekey_window_ms: 1000,
            ..Limits::default()
        };
        let mut h = PrekeyHandout::new();
        assert!(h.allow("m", "bob", &limits, 0));
        assert!(h.allow("m", "bob", &limits, 0));
        assert!(!h.allow("m", "bob", &limits, 0));
        assert!(h.allow("m", "carol", &limits, 0));
        assert!(!h.allow("m", "dave", &limits, 0));
        assert!(h.allow("alice", "bob", &limits, 0));
        // A new window starts over.
        assert!(h.allow("m", "bob", &limits, 1000));
    }

    #[test]
    fn push_endpoints_are_https_on_a_configured_gateway() {
        let gw = vec!["push.example.org".to_string()];
        assert!(check_push_endpoint("https://push.example.org/up/abc", &gw).is_ok());
        assert!(check_push_endpoint("https://PUSH.example.org:8443/x", &gw).is_ok());
        for bad in [
            "http://push.example.org/up",
            "https://evil.example.org/up",
            "https://push.example.org.evil.net/",
            "https://user:pw@push.example.org/",
            "https://169.254.169.254/latest/meta-data",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(check_push_endpoint(bad, &gw).is_err(), "{bad}");
        }
        let long = format!("https://push.example.org/{}", "a".repeat(2048));
        assert!(check_push_endpoint(&long, &gw).is_err());
        assert!(check_push_endpoint("https://push.example.org/", &[]).is_err());
    }

    #[test]
    fn a_known_key_keeps_its_own_bucket_when_the_map_is_full() {
        let mut rl = RateLimiter::new(2);
        assert!(rl.check("a", R, 0).is_ok());
        assert!(rl.check("b", R, 0).is_ok());
        // "a" has two left of its own, not a fresh overflow burst of three.
        assert!(rl.check("a", R, 0).is_ok());
        assert!(rl.check("a", R, 0).is_ok());
        assert!(rl.check("a", R, 0).is_err());
    }

    #[test]
    fn retry_after_is_the_time_to_the_next_whole_request() {
        let mut rl = RateLimiter::new(4);
        for _ in 0..3 {
            rl.check("a", R, 0).unwrap();
        }
        // 50 ms later half a request has refilled: 50 ms more to wait.
        assert_eq!(rl.check("a", R, 50), Err(50));
    }

    #[test]
    fn unlimited_never_limits() {
        let u = Limits::unlimited();
        let mut rl = RateLimiter::new(4);
        for _ in 0..10_000 {
            assert!(rl.check("a", u.per_device, 0).is_ok());
        }
        assert_eq!(u.inbox_max_bytes, u64::MAX);
        assert_eq!(u.prekeys_per_target, u32::MAX);
        assert!(Limits::default().per_device.burst < u.per_device.burst);
    }

    #[test]
    fn an_entry_expiring_now_is_swept() {
        let mut m = ExpiringMap::new(1, 1);
        m.insert("a".into(), "A", (), 100, 0).unwrap();
        m.insert("b".into(), "B", (), 200, 100).unwrap();
        assert!(m.get("b", 100).is_some());
    }

    #[test]
    fn the_per_owner_bound_survives_a_sweep() {
        let mut m = ExpiringMap::new(3, 2);
        m.insert("a1".into(), "A", (), 100, 0).unwrap();
        m.insert("x1".into(), "X", (), 10, 0).unwrap();
        m.insert("y1".into(), "Y", (), 10, 0).unwrap();
        // Full: the sweep drops X's and Y's expired entries, keeps A's.
        m.insert("a2".into(), "A", (), 100, 50).unwrap();
        m.insert("a3".into(), "A", (), 100, 50).unwrap();
        assert!(m.get("a1", 50).is_none(), "A's oldest made room");
        assert!(m.get("a2", 50).is_some() && m.get("a3", 50).is_some());
    }

    #[test]
    fn push_endpoint_edges() {
        let gw = vec!["push.example.org".to_string()];
        let base = "https://push.example.org/";
        let exact = format!("{base}{}", "a".repeat(2048 - base.len()));
        assert_eq!(exact.len(), 2048);
        assert!(check_push_endpoint(&exact, &gw).is_ok());
        assert!(check_push_endpoint("https://user@push.example.org/", &gw).is_err());
    }
}
