//! The audit trail under attack: failures are recorded one by one only up to a cap per key
//! (client or address) and window; the rest, and the attempts refused by a lock, are counted
//! and recorded as one summary event per key when its window ends. However hard it is hit,
//! the trail grows by at most the cap plus one event per key and window (per instance).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::LimitKey;

/// What was counted for one key in one window instead of being recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Start of the window (ms).
    pub since: i64,
    /// Failures recorded one by one in this window.
    pub recorded: u64,
    /// Failed authentications not recorded one by one.
    pub failures: u64,
    /// Attempts refused (429) because a limit was reached.
    pub refused: u64,
    /// The failures' reason classes, with their counts.
    pub reasons: BTreeMap<&'static str, u64>,
}

/// Per key and window: how many failures were recorded, and what was only counted.
#[derive(Debug)]
pub struct Suppressed {
    window_ms: i64,
    tallies: Mutex<HashMap<LimitKey, Tally>>,
}

impl Suppressed {
    pub fn new(window_ms: i64) -> Self {
        Suppressed { window_ms: window_ms.max(1), tallies: Mutex::new(HashMap::new()) }
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<LimitKey, Tally>) -> R) -> R {
        f(&mut self.tallies.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether a failure concerning `keys` may be recorded one by one: every key has recorded
    /// fewer than its cap in its window. If so, it counts as recorded for each; if not, it is
    /// counted in the summary of the first key that reached its cap.
    pub fn admit(&self, keys: &[(LimitKey, u64)], reason: &'static str, now: i64) -> bool {
        self.with(|tallies| {
            for (key, cap) in keys {
                let tally = tallies.entry(key.clone()).or_insert_with(|| Tally { since: now, ..Tally::default() });
                if tally.recorded >= *cap {
                    tally.failures += 1;
                    *tally.reasons.entry(reason).or_default() += 1;
                    return false;
                }
            }
            for (key, _) in keys {
                if let Some(tally) = tallies.get_mut(key) {
                    tally.recorded += 1;
                }
            }
            true
        })
    }

    /// Counts a failure (`judged`: its credential was checked) or a refused attempt against
    /// `key`, without recording it one by one.
    pub fn count(&self, key: &LimitKey, reason: &'static str, judged: bool, now: i64) {
        self.with(|tallies| {
            let tally = tallies.entry(key.clone()).or_insert_with(|| Tally { since: now, ..Tally::default() });
            if judged {
                tally.failures += 1;
                *tally.reasons.entry(reason).or_default() += 1;
            } else {
                tally.refused += 1;
            }
        })
    }

    /// Takes the tallies whose window has ended at `now`: those with something to summarise
    /// are returned, the rest forgotten.
    pub fn take_due(&self, now: i64) -> Vec<(LimitKey, Tally)> {
        self.with(|tallies| {
            let due: Vec<LimitKey> =
                tallies.iter().filter(|(_, t)| t.since + self.window_ms <= now).map(|(k, _)| k.clone()).collect();
            due.into_iter()
                .filter_map(|k| tallies.remove(&k).map(|t| (k, t)))
                .filter(|(_, t)| t.failures > 0 || t.refused > 0)
                .collect()
        })
    }

    /// Puts tallies back (recording their summary failed), to be tried again.
    pub fn restore(&self, taken: Vec<(LimitKey, Tally)>) {
        self.with(|tallies| {
            for (key, tally) in taken {
                tallies.entry(key).or_insert(tally);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ClientId;
    use crate::domain::limits::AddrKey;

    #[test]
    fn past_the_cap_failures_are_counted_and_summarised_once_per_window() {
        let s = Suppressed::new(60_000);
        let addr = LimitKey::Address(AddrKey::of("10.0.0.1".parse().unwrap()));
        let client = LimitKey::Client(ClientId::parse("cli_a").unwrap());
        let keys = [(addr.clone(), 3), (client.clone(), 2)];
        let recorded = (0..10).filter(|i| s.admit(&keys, "wrong_secret", 1_000 + i)).count();
        assert_eq!(recorded, 2, "the client's cap is reached first");
        s.count(&addr, "wrong_secret", false, 2_000);
        assert!(s.take_due(60_999).is_empty(), "the window has not ended");
        let mut due = s.take_due(61_000);
        due.sort_by_key(|(k, _)| k.encode());
        assert_eq!(due.len(), 2);
        let (k, t) = &due[1];
        assert_eq!((k, t.failures, t.refused, t.reasons.get("wrong_secret")), (&client, 8, 0, Some(&8)));
        assert_eq!((due[0].1.failures, due[0].1.refused), (0, 1));
        assert!(s.take_due(200_000).is_empty(), "taken once");
        assert!(s.admit(&keys, "wrong_secret", 200_000), "a new window records again");
    }
}
