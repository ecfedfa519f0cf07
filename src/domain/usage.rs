//! Last use: when each long-term token and each client last authenticated, kept in memory and
//! written in batches off the request path. A key is queued at most once a
//! [`LAST_USE_RESOLUTION_SECS`] (the time recorded is the first use of that interval), so the
//! hot path pays a shared-lock lookup and an atomic load, and the store one row update per
//! token and minute at most.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, RwLock};

use super::types::{ClientId, LongTokenId};

/// How precisely a last use is recorded, in seconds.
pub const LAST_USE_RESOLUTION_SECS: i64 = 60;

/// The last uses to write: each key once, with the latest time queued for it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LastUses {
    pub tokens: Vec<(LongTokenId, i64)>,
    pub clients: Vec<(ClientId, i64)>,
}

impl LastUses {
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.clients.is_empty()
    }
}

/// Records the uses of tokens and clients.
#[derive(Default)]
pub struct LastUse {
    tokens: Throttle<LongTokenId>,
    clients: Throttle<ClientId>,
}

impl LastUse {
    /// A long-term token (and so its client) was used at `now` (Unix seconds).
    pub fn token(&self, token: LongTokenId, client: &ClientId, now: i64) {
        self.tokens.touch(&token, now);
        self.clients.touch(client, now);
    }

    /// A client authenticated at `now` (with any credential).
    pub fn client(&self, client: &ClientId, now: i64) {
        self.clients.touch(client, now);
    }

    /// What was queued since the last call.
    pub fn take(&self) -> LastUses {
        LastUses { tokens: self.tokens.take(), clients: self.clients.take() }
    }

    /// Queues again what could not be written (unless something later was queued meanwhile).
    pub fn restore(&self, uses: LastUses) {
        self.tokens.restore(uses.tokens);
        self.clients.restore(uses.clients);
    }

    /// Forgets the keys not used within the resolution (they are queued again on their next use).
    pub fn prune(&self, now: i64) {
        self.tokens.prune(now);
        self.clients.prune(now);
    }
}

/// When each key was last queued, and what is queued.
struct Throttle<K> {
    queued_at: RwLock<HashMap<K, AtomicI64>>,
    pending: Mutex<HashMap<K, i64>>,
}

impl<K> Default for Throttle<K> {
    fn default() -> Self {
        Throttle { queued_at: RwLock::new(HashMap::new()), pending: Mutex::new(HashMap::new()) }
    }
}

impl<K: Eq + Hash + Clone> Throttle<K> {
    fn touch(&self, key: &K, now: i64) {
        {
            let queued_at = self.queued_at.read().unwrap_or_else(|e| e.into_inner());
            if let Some(at) = queued_at.get(key) {
                let last = at.load(Ordering::Relaxed);
                // Within the resolution, or another request won the race to queue it.
                if now - last < LAST_USE_RESOLUTION_SECS
                    || at.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
                {
                    return;
                }
                drop(queued_at);
                self.queue(key.clone(), now);
                return;
            }
        }
        let mut queued_at = self.queued_at.write().unwrap_or_else(|e| e.into_inner());
        if queued_at.contains_key(key) {
            return;
        }
        queued_at.insert(key.clone(), AtomicI64::new(now));
        drop(queued_at);
        self.queue(key.clone(), now);
    }

    fn queue(&self, key: K, at: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let slot = pending.entry(key).or_insert(at);
        *slot = (*slot).max(at);
    }

    fn take(&self) -> Vec<(K, i64)> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).drain().collect()
    }

    fn restore(&self, taken: Vec<(K, i64)>) {
        for (key, at) in taken {
            self.queue(key, at);
        }
    }

    fn prune(&self, now: i64) {
        let mut queued_at = self.queued_at.write().unwrap_or_else(|e| e.into_inner());
        queued_at.retain(|_, at| now - at.load(Ordering::Relaxed) < LAST_USE_RESOLUTION_SECS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(n: u128) -> LongTokenId {
        LongTokenId(uuid::Uuid::from_u128(n))
    }

    fn sorted(mut uses: LastUses) -> LastUses {
        uses.tokens.sort();
        uses.clients.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        uses
    }

    #[test]
    fn a_use_is_queued_at_most_once_a_minute_per_key() {
        let (last, a, b) = (LastUse::default(), ClientId::parse("cli_a").unwrap(), ClientId::parse("cli_b").unwrap());
        last.token(token(1), &a, 1000);
        last.token(token(1), &a, 1059);
        last.client(&b, 1010);
        let expected = LastUses { tokens: vec![(token(1), 1000)], clients: vec![(a.clone(), 1000), (b.clone(), 1010)] };
        assert_eq!(sorted(last.take()), expected);
        assert!(last.take().is_empty());
        // A minute later it is queued again; the client too, through its token.
        last.token(token(1), &a, 1060);
        last.client(&b, 1069);
        assert_eq!(sorted(last.take()), LastUses { tokens: vec![(token(1), 1060)], clients: vec![(a, 1060)] });
    }

    #[test]
    fn what_could_not_be_written_is_queued_again_and_pruning_forgets_only_old_keys() {
        let (last, a) = (LastUse::default(), ClientId::parse("cli_a").unwrap());
        last.token(token(1), &a, 1000);
        let taken = last.take();
        last.token(token(2), &a, 1030);
        last.restore(taken);
        let uses = sorted(last.take());
        assert_eq!(uses.tokens, vec![(token(1), 1000), (token(2), 1030)]);
        assert_eq!(uses.clients, vec![(a.clone(), 1000)]);
        last.prune(1070);
        // Token 1 (queued at 1000) was forgotten and is queued at once; token 2 is not yet due.
        last.token(token(1), &a, 1071);
        last.token(token(2), &a, 1071);
        assert_eq!(last.take().tokens, vec![(token(1), 1071)]);
    }

    #[test]
    fn racing_uses_queue_a_key_once() {
        let last = std::sync::Arc::new(LastUse::default());
        let a = ClientId::parse("cli_a").unwrap();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| (0..100).for_each(|i| last.token(token(1), &a, 1000 + i % 30)));
            }
        });
        assert_eq!(last.take().tokens.len(), 1);
    }
}
