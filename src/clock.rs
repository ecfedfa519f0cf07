//! Time, injected.
//!
//! Every rule that depends on time (expiry, TOTP steps, rate-limit windows, assertion `exp`)
//! reads it through [`Clock`], so tests can move time forward instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    fn now_millis(&self) -> i64;

    /// Whole seconds since the Unix epoch.
    fn now(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }

    /// The instant an operation runs at, read once so that all its rules see the same time.
    fn instant(&self) -> Now {
        Now { ms: self.now_millis() }
    }
}

/// An instant, read once per operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    ms: i64,
}

impl Now {
    /// Milliseconds since the Unix epoch.
    pub fn ms(self) -> i64 {
        self.ms
    }

    /// Whole seconds since the Unix epoch (rounded down).
    pub fn secs(self) -> i64 {
        self.ms.div_euclid(MS_PER_SEC)
    }
}

/// Milliseconds in a second: the stored times are seconds, the audit trail's and the limits'
/// milliseconds.
pub const MS_PER_SEC: i64 = 1000;

/// `secs` seconds (since the epoch, or a duration) in milliseconds.
pub fn millis(secs: i64) -> i64 {
    secs.saturating_mul(MS_PER_SEC)
}

/// The seconds in one of the units durations are written with: `s`, `m`, `h` or `d`.
pub fn unit_secs(unit: &str) -> Option<i64> {
    match unit {
        "s" => Some(1),
        "m" => Some(60),
        "h" => Some(3600),
        "d" => Some(86_400),
        _ => None,
    }
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        // A clock before 1970 is a broken host; treat it as the epoch rather than panic.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that follows the system clock plus an offset that tests can advance.
///
/// It keeps moving in real time so that code waiting on timers still behaves, and `advance`
/// jumps it forward to expire tokens or free rate-limit windows without sleeping.
#[derive(Debug, Default, Clone)]
pub struct OffsetClock {
    offset_millis: Arc<AtomicI64>,
}

impl OffsetClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn advance_secs(&self, secs: i64) {
        self.offset_millis.fetch_add(millis(secs), Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now_millis(&self) -> i64 {
        SystemClock.now_millis() + self.offset_millis.load(Ordering::SeqCst)
    }
}

/// A clock that stands still until it is set or advanced: for tests that need the same instant
/// across a whole scenario (a TOTP step, a rate-limit window).
#[derive(Debug, Clone)]
pub struct FixedClock {
    millis: Arc<AtomicI64>,
}

impl FixedClock {
    pub fn at(secs: i64) -> Self {
        FixedClock { millis: Arc::new(AtomicI64::new(millis(secs))) }
    }

    pub fn advance_secs(&self, secs: i64) {
        self.millis.fetch_add(millis(secs), Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_millis(&self) -> i64 {
        self.millis.load(Ordering::SeqCst)
    }
}

/// Unix milliseconds as RFC 3339 with milliseconds.
pub fn rfc3339_millis(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Formats seconds since the epoch as RFC 3339 UTC (`2026-11-29T12:00:00Z`).
pub fn rfc3339(secs: i64) -> String {
    // Each short-term issuance formats two instants (now and its expiry), the same ones for
    // every request within a second: each thread keeps the last two it formatted.
    thread_local! {
        static LAST: std::cell::RefCell<[(i64, String); 2]> = const { std::cell::RefCell::new([(i64::MIN, String::new()), (i64::MIN, String::new())]) };
    }
    LAST.with_borrow_mut(|last| {
        if let Some((_, s)) = last.iter().find(|(t, _)| *t == secs) {
            return s.clone();
        }
        let s = format_rfc3339(secs);
        last.rotate_right(1);
        last[0] = (secs, s.clone());
        s
    })
}

fn format_rfc3339(secs: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_clock_advances() {
        let c = OffsetClock::new();
        let before = c.now();
        c.advance_secs(3600);
        assert!(c.now() >= before + 3600);
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn rfc3339_cache_never_mixes_instants() {
        for i in 0..50i64 {
            // Three instants in turn: the cache holds two, so every third call misses.
            for t in [i, 1_700_000_000 + i, 4_000_000_000 - i] {
                assert_eq!(rfc3339(t), format_rfc3339(t));
            }
        }
        assert_eq!(rfc3339(i64::MIN), "1970-01-01T00:00:00Z");
    }
}
