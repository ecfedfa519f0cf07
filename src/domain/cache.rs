//! Small in-memory caches that keep the hot paths off the database.
//!
//! Every entry carries a deadline. Two kinds of facts are cached:
//! - *immutable* facts, kept until the token expires: which token id a long-term token's
//!   hash belongs to; the verified claims of a short-term JWT (its signature cannot change);
//! - *mutable* state, kept for at most the configured TTL (one second by default): a
//!   long-term token's record (revocation, rotation grace) and whether a short-term token id
//!   is revoked. A change made through *this* process updates or drops the entry at once, so
//!   it takes effect immediately here; a change made by another process (another instance, the
//!   admin CLI) is seen within the TTL. That TTL is the staleness bound stated in the README.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;

/// A map whose entries expire at their own deadline (milliseconds since the epoch).
pub struct TtlCache<K, V> {
    max_entries: usize,
    inner: RwLock<HashMap<K, (V, i64)>>,
}

impl<K, V> std::fmt::Debug for TtlCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtlCache").field("max_entries", &self.max_entries).finish_non_exhaustive()
    }
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    /// `max_entries == 0` disables the cache.
    pub fn new(max_entries: usize) -> Self {
        TtlCache { max_entries, inner: RwLock::new(HashMap::new()) }
    }

    /// The value, if present and `now_ms` is before its deadline.
    pub fn get<Q>(&self, key: &Q, now_ms: i64) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.get(key).filter(|(_, deadline)| now_ms < *deadline).map(|(v, _)| v.clone())
    }

    pub fn insert(&self, key: K, value: V, deadline_ms: i64, now_ms: i64) {
        if self.max_entries == 0 || deadline_ms <= now_ms {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if inner.len() >= self.max_entries && !inner.contains_key(&key) {
            // Bounded memory: drop what has expired; if everything is live, start over.
            inner.retain(|_, (_, d)| now_ms < *d);
            if inner.len() >= self.max_entries {
                inner.clear();
            }
        }
        inner.insert(key, (value, deadline_ms));
    }

    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.write().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    /// Drops expired entries (called by the cleanup task).
    pub fn prune(&self, now_ms: i64) {
        self.inner.write().unwrap_or_else(|e| e.into_inner()).retain(|_, (_, d)| now_ms < *d);
    }

    pub fn clear(&self) {
        self.inner.write().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_at_their_deadline_and_can_be_removed() {
        let c: TtlCache<String, u32> = TtlCache::new(10);
        c.insert("a".into(), 1, 6_000, 5_000);
        assert_eq!(c.get("a", 5_999), Some(1));
        assert_eq!(c.get("a", 6_000), None);
        c.insert("a".into(), 2, 9_000, 7_000);
        c.remove("a");
        assert_eq!(c.get("a", 7_001), None);
        // Already expired: not stored at all.
        c.insert("b".into(), 3, 100, 200);
        assert!(c.is_empty());
    }

    #[test]
    fn a_disabled_cache_stores_nothing_and_size_is_bounded() {
        let off: TtlCache<u8, u8> = TtlCache::new(0);
        off.insert(1, 1, 10, 0);
        assert_eq!(off.get(&1, 0), None);
        let c: TtlCache<u8, u8> = TtlCache::new(3);
        for i in 0..10u8 {
            c.insert(i, i, 1_000, 0);
        }
        assert!(c.len() <= 3);
        c.prune(1_000);
        assert!(c.is_empty());
    }
}
