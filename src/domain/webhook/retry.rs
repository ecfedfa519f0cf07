//! When a failed delivery is tried again: a schedule of delays after each failed attempt,
//! spread by jitter so that receivers coming back up are not hit by every retry at once.

/// The delays, in seconds, after the first, second, … failed attempt; after the last, the
/// delivery is marked failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<i64>);

/// The Standard Webhooks schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — eight attempts
/// over about 27 hours and a half.
pub const DEFAULT_SCHEDULE_SECS: [i64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
/// At most this many retries, each at most a day after the previous attempt.
pub const MAX_RETRIES: usize = 20;
pub const MAX_DELAY_SECS: i64 = 86_400;
/// Each delay is spread over ±20 %.
const JITTER: f64 = 0.2;

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule(DEFAULT_SCHEDULE_SECS.to_vec())
    }
}

impl RetrySchedule {
    /// A schedule of 1 to [`MAX_RETRIES`] delays, each 1 s to a day.
    pub fn new(delays_secs: Vec<i64>) -> Result<Self, String> {
        if delays_secs.is_empty() || delays_secs.len() > MAX_RETRIES {
            return Err(format!("a retry schedule has 1 to {MAX_RETRIES} delays"));
        }
        if delays_secs.iter().any(|d| !(1..=MAX_DELAY_SECS).contains(d)) {
            return Err("each retry delay is 1 second to 1 day".into());
        }
        Ok(RetrySchedule(delays_secs))
    }

    /// A comma-separated list of delays, each with its unit: `5s,5m,30m,2h,10h`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let delays = s
            .split(',')
            .map(str::trim)
            .map(|d| {
                let bad = || format!("webhook_retry_schedule: {d:?} is not a delay like 30s, 5m, 2h or 1d");
                let (n, unit) = d.split_at(d.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
                let mult = crate::clock::unit_secs(unit).ok_or_else(bad)?;
                n.parse::<i64>().ok().and_then(|n| n.checked_mul(mult)).ok_or_else(bad)
            })
            .collect::<Result<Vec<_>, _>>()?;
        RetrySchedule::new(delays).map_err(|e| format!("webhook_retry_schedule: {e}"))
    }

    pub fn delays_secs(&self) -> &[i64] {
        &self.0
    }

    /// The seconds between the first attempt and the last, without jitter.
    pub fn span_secs(&self) -> i64 {
        self.0.iter().sum()
    }

    /// When to try again (Unix ms) after failed attempt number `attempts` (1 for the first),
    /// with `jitter` drawn from [-1, 1]; `None` when the schedule is spent.
    pub fn next_attempt_at(&self, attempts: u32, now_ms: i64, jitter: f64) -> Option<i64> {
        let delay = *self.0.get(usize::try_from(attempts).ok()?.checked_sub(1)?)?;
        let spread = (delay as f64 * 1000.0 * JITTER * jitter.clamp(-1.0, 1.0)) as i64;
        Some(now_ms + delay * 1000 + spread)
    }
}

impl std::fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<String> = self
            .0
            .iter()
            .map(|&d| match d {
                d if d % 86_400 == 0 => format!("{}d", d / 86_400),
                d if d % 3600 == 0 => format!("{}h", d / 3600),
                d if d % 60 == 0 => format!("{}m", d / 60),
                d => format!("{d}s"),
            })
            .collect();
        f.write_str(&shown.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_with_units_and_print_back() {
        let s = RetrySchedule::parse("5s, 5m,30m,2h,5h,10h,10h").unwrap();
        assert_eq!(s, RetrySchedule::default());
        assert_eq!(s.to_string(), "5s,5m,30m,2h,5h,10h,10h");
        assert_eq!(RetrySchedule::parse("1d,90s").map(|s| s.to_string()), Ok("1d,90s".into()));
        for bad in ["", "5", "5x", "s", "2d", "0s", "5s,,5s", "99999999999999999999s"] {
            assert!(RetrySchedule::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_default_retries_for_more_than_a_day() {
        let s = RetrySchedule::default();
        assert!(s.span_secs() > 86_400, "{}", s.span_secs());
        assert_eq!(s.next_attempt_at(1, 0, 0.0), Some(5_000));
        assert_eq!(s.next_attempt_at(2, 1_000, 1.0), Some(1_000 + 360_000));
        assert_eq!(s.next_attempt_at(7, 0, -1.0), Some(28_800_000));
        assert_eq!(s.next_attempt_at(8, 0, 0.0), None);
        assert_eq!(s.next_attempt_at(0, 0, 0.0), None);
    }

    #[test]
    fn schedules_are_bounded() {
        assert!(RetrySchedule::new(vec![]).is_err());
        assert!(RetrySchedule::new(vec![0]).is_err());
        assert!(RetrySchedule::new(vec![86_401]).is_err());
        assert!(RetrySchedule::new(vec![1; 21]).is_err());
        assert_eq!(RetrySchedule::new(vec![1, 2]).map(|s| s.span_secs()), Ok(3));
    }
}
