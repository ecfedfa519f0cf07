//! Limits on failed authentication, for the whole deployment, and on issuance.
//!
//! Every failed authentication (every 401) counts against its source address; a failure of a
//! client's guessable credentials (secret, OTP code, assertion) also counts against the client
//! id, and a failed OTP code against the client's OTP codes of the day. Failures are counted in
//! the database (one transaction per failure, [`window`]'s rule), so N instances allow the
//! same number as one; successes never touch it. Each process keeps the locks it knows in
//! memory ([`FailureLimits`]): the ones its own failures reached, and, re-read every second,
//! those decided elsewhere (another instance, an operator's `client unlock`). Checking them
//! costs one atomic load while none is held.
//!
//! A lock never reaches a client's bearer tokens: only guessable credentials count against a
//! client id, and bearer tokens are checked against the address alone.

mod issuance;
mod keys;
mod summary;
mod window;

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::clock;

pub use issuance::IssuanceLimiter;
pub use keys::{AddrKey, LimitKey};
pub use summary::{Summary, Suppressed, Tally};
pub use window::{Admit, Window, decode_times, encode_times};

/// How long to wait before retrying, in whole seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RetryAfter(pub u64);

impl RetryAfter {
    /// Whole seconds from `now` until `until` (both ms), rounded up, at least 1.
    pub fn until(until: i64, now: i64) -> Self {
        RetryAfter(u64::try_from((until - now + clock::MS_PER_SEC - 1) / clock::MS_PER_SEC).unwrap_or(1).max(1))
    }
}

const DAY_MS: i64 = 86_400_000;

/// The configured limits; 0 turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitConfig {
    pub per_client: u32,
    pub per_address: u32,
    pub window_secs: u32,
    pub otp_per_day: u32,
}

/// The locks this process knows, and the windows of each kind of key.
#[derive(Debug)]
pub struct FailureLimits {
    config: LimitConfig,
    /// Locked keys and until when (Unix ms).
    locks: RwLock<HashMap<LimitKey, i64>>,
    /// How many keys `locks` holds: while none, a check takes no lock at all.
    held: AtomicUsize,
}

impl FailureLimits {
    pub fn new(config: LimitConfig) -> Self {
        FailureLimits { config, locks: RwLock::new(HashMap::new()), held: AtomicUsize::new(0) }
    }

    /// The window of a key, `None` when its limit is off.
    pub fn window(&self, key: &LimitKey) -> Option<Window> {
        let minute = clock::millis(i64::from(self.config.window_secs.max(1)));
        let (limit, window_ms) = match key {
            LimitKey::Address(_) => (self.config.per_address, minute),
            LimitKey::Client(_) => (self.config.per_client, minute),
            LimitKey::OtpDay(_) => (self.config.otp_per_day, DAY_MS),
        };
        (limit > 0).then_some(Window { limit, window_ms })
    }

    /// The first of `keys` locked at `now_ms`, with how long it stays locked.
    pub fn check<'k>(&self, keys: &'k [LimitKey], now_ms: i64) -> Result<(), (&'k LimitKey, RetryAfter)> {
        if self.held.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let locks = self.locks.read().unwrap_or_else(|e| e.into_inner());
        let locked = keys
            .iter()
            .filter_map(|k| locks.get(k).filter(|&&until| until > now_ms).map(|&until| (k, until)))
            .max_by_key(|(_, until)| *until);
        match locked {
            Some((key, until)) => Err((key, RetryAfter::until(until, now_ms))),
            None => Ok(()),
        }
    }

    /// Records that `key` is locked until `until` (ms); an `until` in the past unlocks it.
    pub fn learn(&self, key: LimitKey, until: i64, now_ms: i64) {
        let mut locks = self.locks.write().unwrap_or_else(|e| e.into_inner());
        if until > now_ms {
            locks.insert(key, until);
        } else {
            locks.remove(&key);
        }
        self.held.store(locks.len(), Ordering::Relaxed);
    }

    /// Forgets the locks that have ended.
    pub fn prune(&self, now_ms: i64) {
        let mut locks = self.locks.write().unwrap_or_else(|e| e.into_inner());
        locks.retain(|_, until| *until > now_ms);
        self.held.store(locks.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ClientId;

    fn limits() -> FailureLimits {
        FailureLimits::new(LimitConfig { per_client: 10, per_address: 100, window_secs: 60, otp_per_day: 30 })
    }

    fn addr(s: &str) -> LimitKey {
        LimitKey::Address(AddrKey::of(s.parse().unwrap()))
    }

    #[test]
    fn each_kind_of_key_has_its_window_and_zero_turns_a_limit_off() {
        let l = limits();
        let c = ClientId::parse("cli_a").unwrap();
        assert_eq!(l.window(&addr("10.0.0.1")), Some(Window { limit: 100, window_ms: 60_000 }));
        assert_eq!(l.window(&LimitKey::Client(c.clone())), Some(Window { limit: 10, window_ms: 60_000 }));
        assert_eq!(l.window(&LimitKey::OtpDay(c.clone())), Some(Window { limit: 30, window_ms: DAY_MS }));
        let off = FailureLimits::new(LimitConfig { per_client: 0, per_address: 0, window_secs: 60, otp_per_day: 0 });
        assert_eq!(off.window(&LimitKey::Client(c)), None);
    }

    #[test]
    fn a_learnt_lock_holds_until_its_end_and_an_unlock_lifts_it() {
        let l = limits();
        let (a, b) = (addr("10.0.0.1"), addr("10.0.0.2"));
        assert!(l.check(std::slice::from_ref(&a), 0).is_ok());
        l.learn(a.clone(), 5_500, 1_000);
        assert_eq!(l.check(&[b.clone(), a.clone()], 1_000), Err((&a, RetryAfter(5))));
        assert!(l.check(std::slice::from_ref(&b), 1_000).is_ok());
        assert!(l.check(std::slice::from_ref(&a), 5_500).is_ok(), "ended");
        l.learn(a.clone(), 0, 2_000);
        assert!(l.check(std::slice::from_ref(&a), 2_000).is_ok(), "unlocked");
        l.learn(a.clone(), 9_000, 2_000);
        l.prune(9_000);
        assert_eq!(l.held.load(Ordering::Relaxed), 0);
    }
}
