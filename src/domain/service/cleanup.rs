//! Housekeeping, run by the server's cleanup task: expired rows deleted in paced batches,
//! old audit events dropped, caches pruned, short-term issuance counts and last uses recorded.

use super::TokenService;
use crate::clock;
use crate::domain::audit::{self, AuditEventExt, event};
use crate::domain::types::Mechanism;
use crate::store::{Purged, StoreError};

/// Rows deleted per statement.
const BATCH: u32 = 1000;

impl TokenService {
    /// Deletes what has expired, in bounded batches, and forgets stale cache and limiter
    /// entries.
    pub async fn purge_expired(&self) -> Result<Purged, StoreError> {
        let total = self.purge_expired_rows().await?;
        self.flush_short_counts().await?;
        // Neither stops the rest of the pass (what they could not do, the next pass does).
        if let Err(e) = self.flush_last_use().await {
            crate::telemetry::metrics::database_error(&e);
            tracing::warn!(error = %e, "writing the last uses of tokens failed; will retry");
        }
        if let Err(e) = self.warn_expiring().await {
            crate::telemetry::metrics::database_error(&e);
            tracing::warn!(error = %e, "giving expiry warnings failed; will retry");
        }
        let now = self.now();
        let audit_before = now.ms() - clock::millis(self.config.audit_retention_secs);
        while self.store.purge_audit(audit_before, BATCH).await? == u64::from(BATCH) {}
        self.token_ids.prune(now.ms());
        self.long_tokens.prune(now.ms());
        self.short_revoked.prune(now.ms());
        self.verified.prune(now.ms());
        if let Some(l) = &self.issuance {
            l.prune();
        }
        Ok(total)
    }

    async fn purge_expired_rows(&self) -> Result<Purged, StoreError> {
        let now = self.now().secs();
        let mut total = Purged::default();
        loop {
            let started = std::time::Instant::now();
            let p = self.store.purge_expired(now, now - self.config.expired_retention_secs, BATCH).await?;
            total.long_tokens += p.long_tokens;
            total.revoked_short_tokens += p.revoked_short_tokens;
            total.used_assertions += p.used_assertions;
            total.limits += p.limits;
            let full = [p.long_tokens, p.revoked_short_tokens, p.used_assertions, p.limits];
            if full.iter().all(|&n| n < u64::from(BATCH)) {
                return Ok(total);
            }
            // Paced: pause three times as long as the batch took, so a large backlog uses at
            // most a quarter of one core and requests keep their latency while it drains.
            tokio::time::sleep(started.elapsed() * 3).await;
        }
    }

    /// Writes the last uses queued since the last call (queued again if the write fails), and
    /// forgets the keys whose next use is due anyway.
    pub async fn flush_last_use(&self) -> Result<(), StoreError> {
        let now = self.now().secs();
        self.last_use.prune(now);
        let uses = self.last_use.take();
        if uses.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.store.record_last_use(uses.clone()).await {
            self.last_use.restore(uses);
            return Err(e);
        }
        Ok(())
    }

    /// Records the short-term issuances counted since the last call, one event per client.
    pub async fn flush_short_counts(&self) -> Result<(), StoreError> {
        let counts = self.short_issued.take();
        if counts.is_empty() {
            return Ok(());
        }
        let now_ms = self.now().ms();
        let events = counts
            .iter()
            .map(|(client, n)| {
                audit::new(now_ms, event::SHORT_TOKENS_ISSUED, audit::SUCCESS)
                    .client(client)
                    .mechanism(Mechanism::LongToken.as_str())
                    .detail(serde_json::json!({ "count": n }))
            })
            .collect();
        if let Err(e) = self.store.record_audit(events).await {
            self.short_issued.restore(counts);
            return Err(e);
        }
        Ok(())
    }
}
