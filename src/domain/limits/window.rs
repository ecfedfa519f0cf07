//! The sliding window of one key: at most `limit` failures in any `window_ms`.
//!
//! A key keeps the times of its most recent failures (at most `limit` of them). A failure is
//! *counted* while fewer than `limit` lie within the window; the one that reaches the limit
//! locks the key until its oldest failure leaves the window. A failure that finds the key
//! already at its limit is *refused*: not counted again, and answered as the lock says. The
//! store applies this inside one transaction per failure, so that every instance sharing the
//! database counts against the same window.

/// `limit` failures per `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: u32,
    pub window_ms: i64,
}

/// What one more failure does to a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// Counted: the key's recent failures now (oldest first), and until when it is locked if
    /// this failure reached the limit.
    Counted { recent: Vec<i64>, locked_until: Option<i64> },
    /// The key was already at its limit, until `until`.
    Refused { until: i64 },
}

impl Window {
    /// The failures of `recent` (oldest first) still inside the window at `now`.
    fn live<'a>(&self, recent: &'a [i64], now: i64) -> &'a [i64] {
        let first = recent.iter().position(|&t| t + self.window_ms > now).unwrap_or(recent.len());
        &recent[first..]
    }

    /// One more failure at `now` against `recent`.
    pub fn admit(&self, recent: &[i64], now: i64) -> Admit {
        let limit = self.limit.max(1) as usize;
        let live = self.live(recent, now);
        if live.len() >= limit {
            return Admit::Refused { until: live[live.len() - limit] + self.window_ms };
        }
        let mut recent = live.to_vec();
        recent.push(now);
        let locked_until = (recent.len() == limit).then(|| recent[0] + self.window_ms);
        Admit::Counted { recent, locked_until }
    }

    /// Until when `recent` keeps the key locked at `now`, if it does.
    pub fn locked_until(&self, recent: &[i64], now: i64) -> Option<i64> {
        match self.admit(recent, now) {
            Admit::Refused { until } => Some(until),
            Admit::Counted { .. } => None,
        }
    }
}

/// The stored form of a key's recent failures: the times, space-separated.
pub fn encode_times(times: &[i64]) -> String {
    times.iter().map(i64::to_string).collect::<Vec<_>>().join(" ")
}

/// Reads [`encode_times`]' form; what does not parse is dropped (and so forgotten).
pub fn decode_times(s: &str) -> Vec<i64> {
    let mut times: Vec<i64> = s.split(' ').filter_map(|t| t.parse().ok()).collect();
    times.sort_unstable();
    times
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const W: Window = Window { limit: 3, window_ms: 60_000 };

    fn counted(a: Admit) -> (Vec<i64>, Option<i64>) {
        match a {
            Admit::Counted { recent, locked_until } => (recent, locked_until),
            other => panic!("expected counted, got {other:?}"),
        }
    }

    #[test]
    fn the_failure_that_reaches_the_limit_locks_until_the_oldest_leaves_the_window() {
        let (r, lock) = counted(W.admit(&[], 1_000));
        assert_eq!((r.as_slice(), lock), (&[1_000][..], None));
        let (r, lock) = counted(W.admit(&r, 2_000));
        assert_eq!(lock, None);
        let (r, lock) = counted(W.admit(&r, 3_000));
        assert_eq!((r.as_slice(), lock), (&[1_000, 2_000, 3_000][..], Some(61_000)));
        assert_eq!(W.admit(&r, 30_000), Admit::Refused { until: 61_000 });
        assert_eq!(W.locked_until(&r, 60_999), Some(61_000));
        // The oldest has left: one more is counted, and locks again until the next leaves.
        let (r, lock) = counted(W.admit(&r, 61_000));
        assert_eq!((r.as_slice(), lock), (&[2_000, 3_000, 61_000][..], Some(62_000)));
    }

    #[test]
    fn times_round_trip_and_garbage_is_forgotten() {
        assert_eq!(decode_times(&encode_times(&[5, 1, 3])), [1, 3, 5]);
        assert_eq!(decode_times(""), Vec::<i64>::new());
        assert_eq!(decode_times("7 x 2"), [2, 7]);
    }

    proptest! {
        /// However failures arrive, no window of `window_ms` ever holds more than `limit`
        /// counted ones, and a refusal happens only when `limit` were counted in the window.
        #[test]
        fn never_more_than_the_limit_in_any_window(gaps in prop::collection::vec(0i64..40_000, 1..60), limit in 1u32..6) {
            let w = Window { limit, window_ms: 60_000 };
            let (mut recent, mut counted_at, mut now) = (Vec::new(), Vec::new(), 0i64);
            for gap in gaps {
                now += gap;
                match w.admit(&recent, now) {
                    Admit::Counted { recent: r, .. } => { recent = r; counted_at.push(now); }
                    Admit::Refused { until } => {
                        prop_assert!(until > now);
                        let in_window = counted_at.iter().filter(|&&t| t + 60_000 > now).count();
                        prop_assert!(in_window >= limit as usize);
                    }
                }
                let in_window = counted_at.iter().filter(|&&t| t + 60_000 > now).count();
                prop_assert!(in_window <= limit as usize);
            }
        }
    }
}
