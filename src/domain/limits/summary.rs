//! The audit trail under attack: failures are recorded one by one only up to a cap per key
//! (client or address) and window, and up to a budget for the whole process and window; the
//! rest, and the attempts refused by a lock, are counted and recorded as one summary event per
//! key when its window ends — up to a tenth of the budget; past that, the keys left are merged
//! into one summary. However many keys an attacker uses (addresses are cheap), the trail grows
//! by at most the budget, a tenth of it and one event per window and process.

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

impl Tally {
    fn starting(since: i64) -> Self {
        Tally { since, ..Tally::default() }
    }

    fn count(&mut self, reason: &'static str, judged: bool) {
        if judged {
            self.failures += 1;
            *self.reasons.entry(reason).or_default() += 1;
        } else {
            self.refused += 1;
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.since = self.since.min(other.since);
        self.failures += other.failures;
        self.refused += other.refused;
        for (reason, n) in &other.reasons {
            *self.reasons.entry(reason).or_default() += n;
        }
    }

    fn is_empty(&self) -> bool {
        self.failures == 0 && self.refused == 0
    }
}

/// One summary event to record: for one key, or (`key: None`) for `keys` keys merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub key: Option<LimitKey>,
    pub keys: u64,
    pub tally: Tally,
}

/// Per key and window: how many failures were recorded, and what was only counted.
#[derive(Debug)]
pub struct Suppressed {
    window_ms: i64,
    /// Failures recorded one by one per window in the whole process, at most.
    budget: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    tallies: HashMap<LimitKey, Tally>,
    /// The process's current window: when it began and how many it recorded.
    since: i64,
    recorded: u64,
    /// What could not be tallied per key: past the budget, or past the keys kept.
    overflow: Option<Tally>,
    overflow_keys: u64,
}

impl State {
    fn overflow(&mut self, now: i64) -> &mut Tally {
        self.overflow.get_or_insert_with(|| Tally::starting(now))
    }
}

impl Suppressed {
    /// `budget`: failures recorded one by one per window in the whole process (0: none).
    pub fn new(window_ms: i64, budget: u64) -> Self {
        Suppressed { window_ms: window_ms.max(1), budget, state: Mutex::new(State::default()) }
    }

    /// The most keys tallied one by one: past it, new keys go to the overflow.
    fn max_keys(&self) -> usize {
        usize::try_from(self.budget).unwrap_or(usize::MAX).saturating_mul(10).max(100)
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether a failure concerning `keys` may be recorded one by one: the process has budget
    /// left in its window and every key has recorded fewer than its cap in its own. If so, it
    /// counts as recorded; if not, it is counted for the summary of the first key at its cap
    /// (or the overflow).
    pub fn admit(&self, keys: &[(LimitKey, u64)], reason: &'static str, now: i64) -> bool {
        let max_keys = self.max_keys();
        let window_ms = self.window_ms;
        let budget = self.budget;
        self.with(|st| {
            if st.since + window_ms <= now {
                (st.since, st.recorded) = (now, 0);
            }
            if st.recorded >= budget {
                st.overflow(now).count(reason, true);
                return false;
            }
            for (key, cap) in keys {
                if !st.tallies.contains_key(key) && st.tallies.len() >= max_keys {
                    st.overflow(now).count(reason, true);
                    return false;
                }
                let tally = st.tallies.entry(key.clone()).or_insert_with(|| Tally::starting(now));
                if tally.recorded >= *cap {
                    tally.count(reason, true);
                    return false;
                }
            }
            for (key, _) in keys {
                if let Some(tally) = st.tallies.get_mut(key) {
                    tally.recorded += 1;
                }
            }
            st.recorded += 1;
            true
        })
    }

    /// Counts a failure (`judged`: its credential was checked) or a refused attempt against
    /// `key`, without recording it one by one.
    pub fn count(&self, key: &LimitKey, reason: &'static str, judged: bool, now: i64) {
        let max_keys = self.max_keys();
        self.with(|st| {
            if !st.tallies.contains_key(key) && st.tallies.len() >= max_keys {
                return st.overflow(now).count(reason, judged);
            }
            st.tallies.entry(key.clone()).or_insert_with(|| Tally::starting(now)).count(reason, judged);
        })
    }

    /// Takes the summaries whose window has ended at `now`: one per key with something to
    /// summarise, up to a tenth of the budget; the rest, and the overflow, merged into one.
    pub fn take_due(&self, now: i64) -> Vec<Summary> {
        let per_key = usize::try_from(self.budget / 10).unwrap_or(usize::MAX).max(1);
        let window_ms = self.window_ms;
        self.with(|st| {
            let mut due: Vec<LimitKey> =
                st.tallies.iter().filter(|(_, t)| t.since + window_ms <= now).map(|(k, _)| k.clone()).collect();
            due.sort_by_key(LimitKey::encode);
            let mut summaries = Vec::new();
            for key in due {
                let Some(tally) = st.tallies.remove(&key).filter(|t| !t.is_empty()) else { continue };
                if summaries.len() < per_key {
                    summaries.push(Summary { key: Some(key), keys: 1, tally });
                } else {
                    st.overflow(now).merge(&tally);
                    st.overflow_keys += 1;
                }
            }
            if let Some(overflow) = st.overflow.take_if(|t| t.since + window_ms <= now) {
                summaries.push(Summary { key: None, keys: std::mem::take(&mut st.overflow_keys), tally: overflow });
            }
            summaries
        })
    }

    /// Puts summaries back (recording them failed), to be tried again.
    pub fn restore(&self, taken: Vec<Summary>) {
        self.with(|st| {
            for summary in taken {
                match summary.key {
                    Some(key) => {
                        st.tallies.entry(key).or_insert(summary.tally);
                    }
                    None => {
                        st.overflow_keys += summary.keys;
                        st.overflow(summary.tally.since).merge(&summary.tally);
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ClientId;
    use crate::domain::limits::AddrKey;

    fn addr(i: u32) -> LimitKey {
        LimitKey::Address(AddrKey::of(std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i))))
    }

    #[test]
    fn past_the_cap_failures_are_counted_and_summarised_once_per_window() {
        let s = Suppressed::new(60_000, 1000);
        let client = LimitKey::Client(ClientId::parse("cli_a").unwrap());
        let keys = [(addr(1), 3), (client.clone(), 2)];
        let recorded = (0..10).filter(|i| s.admit(&keys, "wrong_secret", 1_000 + i)).count();
        assert_eq!(recorded, 2, "the client's cap is reached first");
        s.count(&addr(1), "wrong_secret", false, 2_000);
        assert!(s.take_due(60_999).is_empty(), "the window has not ended");
        let due = s.take_due(61_000);
        assert_eq!(due.len(), 2, "{due:#?}");
        let for_client = due.iter().find(|d| d.key.as_ref() == Some(&client)).unwrap();
        assert_eq!((for_client.tally.failures, for_client.tally.reasons.get("wrong_secret")), (8, Some(&8)));
        let for_addr = due.iter().find(|d| d.key.as_ref() == Some(&addr(1))).unwrap();
        assert_eq!((for_addr.tally.failures, for_addr.tally.refused), (0, 1));
        assert!(s.take_due(200_000).is_empty(), "taken once");
        assert!(s.admit(&keys, "wrong_secret", 200_000), "a new window records again");
    }

    #[test]
    fn many_keys_share_one_budget_and_one_summary_past_a_tenth_of_it() {
        let s = Suppressed::new(60_000, 50);
        let recorded = (0..300u32).filter(|&i| s.admit(&[(addr(i), 2)], "token_unknown", 1_000)).count();
        for i in 0..300u32 {
            s.admit(&[(addr(i), 2)], "token_unknown", 1_000);
        }
        assert_eq!(recorded, 50, "the process's budget");

        let due = s.take_due(61_000);

        assert!(due.len() <= 5 + 1, "a tenth of the budget, and the overflow: {}", due.len());
        let overflow = due.iter().find(|d| d.key.is_none()).expect("an overflow summary");
        let counted: u64 = due.iter().map(|d| d.tally.failures).sum();
        assert_eq!(counted + 50, 600, "every failure is recorded or counted");
        assert!(overflow.keys > 0 || overflow.tally.failures > 0);
    }
}
