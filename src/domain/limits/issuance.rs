//! The per-client issuance limit (GCRA via governor): off unless configured, and counted in
//! each process (it bounds a client's own rate, not an attacker's guesses).

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::RetryAfter;
use crate::domain::ClientId;

/// Issuances per client per minute.
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

#[cfg(test)]
mod tests {
    use super::*;

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
