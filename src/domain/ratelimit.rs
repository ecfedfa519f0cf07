//! Limits on failed authentication and on issuance.
//!
//! Failed authentications are counted per client id and per source address in a sliding
//! window. The decision is made *after* the credential has been checked, under one lock, so
//! that parallel requests are decided one at a time: once the limit is reached, every
//! attempt (a correct one included) is refused until the window frees, exactly as if the
//! requests had arrived one by one. A brute-force burst therefore learns at most `limit`
//! outcomes per window.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::RwLock;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::domain::ClientId;

/// How long to wait before retrying, in whole seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

#[derive(Debug)]
struct Window<K> {
    limit: usize,
    /// Times (ms) of the most recent failures per key, oldest first, at most `limit` of them.
    failures: HashMap<K, VecDeque<i64>>,
}

impl<K: Hash + Eq + Clone> Window<K> {
    fn new(limit: u32) -> Self {
        Window { limit: limit as usize, failures: HashMap::new() }
    }

    /// Like [`Window::blocked`] without pruning, for the read-only check on the hot path.
    fn blocked_ro(&self, key: &K, now: i64, window_ms: i64) -> Option<i64> {
        let q = self.failures.get(key)?;
        let live = q.iter().skip_while(|&&t| t + window_ms <= now);
        let first = live.clone().next().copied()?;
        (live.count() >= self.limit).then_some(first + window_ms)
    }

    fn blocked(&mut self, key: &K, now: i64, window_ms: i64) -> Option<i64> {
        let q = self.failures.get_mut(key)?;
        while q.front().is_some_and(|&t| t + window_ms <= now) {
            q.pop_front();
        }
        if q.is_empty() {
            self.failures.remove(key);
            return None;
        }
        (q.len() >= self.limit).then(|| q.front().map_or(now, |&t| t + window_ms))
    }

    fn record(&mut self, key: &K, now: i64) {
        let q = self.failures.entry(key.clone()).or_default();
        q.push_back(now);
        while q.len() > self.limit {
            q.pop_front();
        }
    }

    fn prune(&mut self, now: i64, window_ms: i64) {
        self.failures.retain(|_, q| q.back().is_some_and(|&t| t + window_ms > now));
    }
}

#[derive(Debug)]
struct State {
    clients: Window<ClientId>,
    addresses: Window<IpAddr>,
}

/// Sliding-window limits on failed authentication.
#[derive(Debug)]
pub struct FailureLimiter {
    window_ms: i64,
    /// Read-locked by every check (the common case, concurrent), write-locked by failures.
    state: RwLock<State>,
}

impl FailureLimiter {
    /// A limit of 0 for either key turns that limit off.
    pub fn new(per_client: u32, per_address: u32, window_secs: u32) -> Self {
        let limit = |n: u32| if n == 0 { u32::MAX } else { n };
        FailureLimiter {
            window_ms: i64::from(window_secs.max(1)) * 1000,
            state: RwLock::new(State {
                clients: Window::new(limit(per_client)),
                addresses: Window::new(limit(per_address)),
            }),
        }
    }

    fn lock(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every mutation is a
        // single push or pop.
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn blocked_in(&self, st: &mut State, client: Option<&ClientId>, addr: IpAddr, now: i64) -> Option<RetryAfter> {
        let a = st.addresses.blocked(&addr, now, self.window_ms);
        let c = client.and_then(|c| st.clients.blocked(c, now, self.window_ms));
        let until = a.into_iter().chain(c).max()?;
        Some(retry_after(until, now))
    }

    /// Whether attempts for `client` from `addr` are currently refused.
    pub fn check(&self, client: Option<&ClientId>, addr: IpAddr, now_ms: i64) -> Result<(), RetryAfter> {
        let st = self.state.read().unwrap_or_else(|e| e.into_inner());
        let a = st.addresses.blocked_ro(&addr, now_ms, self.window_ms);
        let c = client.and_then(|c| st.clients.blocked_ro(c, now_ms, self.window_ms));
        match a.into_iter().chain(c).max() {
            Some(until) => Err(retry_after(until, now_ms)),
            None => Ok(()),
        }
    }

    /// Records a failed attempt. `Err` when the limit was already reached: the caller then
    /// answers 429 instead of 401, and the attempt is not counted again.
    pub fn fail(&self, client: Option<&ClientId>, addr: IpAddr, now_ms: i64) -> Result<(), RetryAfter> {
        let mut st = self.lock();
        if let Some(r) = self.blocked_in(&mut st, client, addr, now_ms) {
            return Err(r);
        }
        st.addresses.record(&addr, now_ms);
        if let Some(c) = client {
            st.clients.record(c, now_ms);
        }
        Ok(())
    }

    /// Drops keys whose failures have all left the window (bounded memory).
    pub fn prune(&self, now_ms: i64) {
        let mut st = self.lock();
        let w = self.window_ms;
        st.addresses.prune(now_ms, w);
        st.clients.prune(now_ms, w);
    }
}

/// Whole seconds from `now` until `until` (both ms), rounded up, at least 1.
fn retry_after(until: i64, now: i64) -> RetryAfter {
    RetryAfter(u64::try_from((until - now + 999) / 1000).unwrap_or(1).max(1))
}

/// Per-client issuance limit (GCRA via governor); off unless configured.
pub struct IssuanceLimiter {
    inner: DefaultKeyedRateLimiter<ClientId>,
}

impl std::fmt::Debug for IssuanceLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IssuanceLimiter")
    }
}

impl IssuanceLimiter {
    pub fn per_minute(n: NonZeroU32) -> Self {
        IssuanceLimiter { inner: RateLimiter::keyed(Quota::per_minute(n)) }
    }

    pub fn check(&self, client: &ClientId) -> Result<(), RetryAfter> {
        use governor::clock::{Clock as _, DefaultClock};
        self.inner.check_key(client).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            RetryAfter(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(RetryAfter(1))
        })
    }

    pub fn prune(&self) {
        self.inner.retain_recent();
    }
}

impl PartialOrd for RetryAfter {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RetryAfter {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn client_limit_blocks_until_the_window_frees() {
        let l = FailureLimiter::new(3, 100, 60);
        let c = ClientId::parse("cli_a").unwrap();
        for i in 0..3 {
            assert!(l.fail(Some(&c), ip("10.0.0.1"), 1_000 + i).is_ok());
        }
        // Blocked for this client from any address, with the time until the oldest expires.
        assert_eq!(l.check(Some(&c), ip("10.0.0.2"), 2_000), Err(RetryAfter(59)));
        assert_eq!(l.fail(Some(&c), ip("10.0.0.2"), 2_000), Err(RetryAfter(59)));
        // Another client is unaffected.
        assert!(l.check(ClientId::parse("cli_b").as_ref(), ip("10.0.0.2"), 2_000).is_ok());
        // Once the first failure leaves the window, one more attempt is allowed.
        assert!(l.check(Some(&c), ip("10.0.0.2"), 61_000).is_ok());
    }

    #[test]
    fn address_limit_applies_without_a_client() {
        let l = FailureLimiter::new(10, 2, 60);
        assert!(l.fail(None, ip("::1"), 0).is_ok());
        assert!(l.fail(None, ip("::1"), 0).is_ok());
        assert!(l.check(None, ip("::1"), 1).is_err());
        assert!(l.check(None, ip("::2"), 1).is_ok());
        l.prune(60_001);
        assert!(l.check(None, ip("::1"), 60_001).is_ok());
    }

    #[test]
    fn parallel_failures_cannot_exceed_the_limit() {
        let l = std::sync::Arc::new(FailureLimiter::new(10, 1000, 60));
        let c = ClientId::parse("cli_p").unwrap();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (l, c, accepted) = (l.clone(), c.clone(), accepted.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        if l.fail(Some(&c), ip("10.1.1.1"), 5).is_ok() {
                            accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 10);
    }

    #[test]
    fn issuance_limiter_refuses_past_the_quota() {
        let l = IssuanceLimiter::per_minute(NonZeroU32::new(2).unwrap());
        let c = ClientId::parse("cli_i").unwrap();
        assert!(l.check(&c).is_ok());
        assert!(l.check(&c).is_ok());
        let r = l.check(&c).unwrap_err();
        assert!(r.0 >= 1 && r.0 <= 30);
    }
}
