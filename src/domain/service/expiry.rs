//! Expiry warnings: a long-term token about to end is announced once per configured lead time
//! (a `token.expiring` event in the audit trail, given by one instance, in the same
//! transaction as the record that it was given) and counted per client and lead time (the
//! gauge `tokensmith_long_tokens_expiring`). Run by each cleanup pass.
//!
//! A token is *expiring* at a lead time when it is valid, was issued for longer than that lead
//! time (a token issued for a day is no surprise a day later, and an exchange's 15-minute
//! grant never is), and ends within it. A token in a rotation's grace period is being replaced,
//! and is not.

use std::collections::BTreeMap;

use super::TokenService;
use crate::domain::audit::{self, AuditEventExt, event};
use crate::domain::token::{LongToken, TokenStatus};
use crate::domain::types::ClientId;
use crate::store::StoreError;
use crate::telemetry::metrics as telemetry;

const SECS_PER_DAY: i64 = 86_400;

impl TokenService {
    /// Gives the expiry warnings due at the service's now and sets the gauges; returns how
    /// many warnings this call gave.
    pub async fn warn_expiring(&self) -> Result<u64, StoreError> {
        let leads = &self.config.expiry_warnings_secs;
        let (Some(&shortest), Some(&longest)) = (leads.first(), leads.last()) else { return Ok(0) };
        let now = self.now();
        // Counted: every token expiring at a lead time.
        let tokens = self.store.list_expiring_long_tokens(now.secs(), now.secs() + longest, shortest).await?;
        let mut counts: BTreeMap<(ClientId, i64), usize> = BTreeMap::new();
        for t in &tokens {
            for &lead in leads.iter().filter(|&&lead| is_expiring(t, lead, now.secs())) {
                *counts.entry((t.client_id.clone(), lead)).or_default() += 1;
            }
        }
        self.set_expiring_gauges(counts);
        // Warned of: those not yet warned of at that lead time (a write each, given once).
        let mut given = 0;
        for &lead in leads {
            for t in self.store.list_unwarned_expiring(now.secs(), lead).await? {
                if !is_expiring(&t, lead, now.secs()) {
                    continue;
                }
                let ev = audit::new(now.ms(), event::TOKEN_EXPIRING, audit::SUCCESS)
                    .client(&t.client_id)
                    .token(t.id)
                    .detail(serde_json::json!({ "within_days": lead / SECS_PER_DAY, "expires_at": t.expires_at }));
                if self.store.warn_expiring(&t.id, lead, ev).await? {
                    given += 1;
                }
            }
        }
        Ok(given)
    }

    /// Sets this pass's counts, and zero for the series of the last pass that have none now.
    fn set_expiring_gauges(&self, counts: BTreeMap<(ClientId, i64), usize>) {
        let mut last = self.expiring_series.lock().unwrap_or_else(|e| e.into_inner());
        for key in last.iter().filter(|k| !counts.contains_key(*k)) {
            telemetry::long_tokens_expiring(key.0.as_str(), key.1 / SECS_PER_DAY, 0);
        }
        for ((client, lead), n) in &counts {
            telemetry::long_tokens_expiring(client.as_str(), lead / SECS_PER_DAY, *n);
        }
        *last = counts.into_keys().collect();
    }
}

/// Whether `t` is expiring at `lead` (see the module documentation).
fn is_expiring(t: &LongToken, lead: i64, now: i64) -> bool {
    t.status(now) == TokenStatus::Live && t.expires_at - t.issued_at > lead && t.expires_at <= now + lead
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::types::{LongTokenId, Scopes};

    fn token(issued_at: i64, expires_at: i64) -> LongToken {
        LongToken {
            id: LongTokenId(uuid::Uuid::from_u128(1)),
            client_id: ClientId::parse("cli_a").unwrap(),
            scopes: Scopes::default(),
            name: None,
            issued_at,
            expires_at,
            revoked_at: None,
            parent: None,
            origin: crate::domain::token::TokenOrigin::Client,
            last_used_at: None,
            client_disabled: false,
        }
    }

    #[test]
    fn a_token_is_expiring_when_issued_for_longer_than_the_lead_and_ending_within_it() {
        let day = SECS_PER_DAY;
        let now = 100 * day;
        assert!(is_expiring(&token(now - 30 * day, now + 6 * day), 7 * day, now));
        assert!(!is_expiring(&token(now - 30 * day, now + 8 * day), 7 * day, now), "not yet");
        assert!(!is_expiring(&token(now - day, now + 6 * day), 7 * day, now), "issued for 7 days: known");
        assert!(!is_expiring(&token(now - 900, now + 60), day, now), "an exchange's grant");
        let mut rotating = token(now - 30 * day, now + 6 * day);
        rotating.revoked_at = Some(now + 60);
        assert!(!is_expiring(&rotating, 7 * day, now), "being replaced");
        let mut disabled = token(now - 30 * day, now + 6 * day);
        disabled.client_disabled = true;
        assert!(!is_expiring(&disabled, 7 * day, now));
    }
}
