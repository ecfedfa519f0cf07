//! The signing keys in force, re-selected from the stored schedule as keys activate, retire
//! and leave the JWKS, and the JWK Set to publish.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::TokenService;
use crate::domain::keys::KeySchedule;
use crate::signer::KeySet;
use crate::telemetry::metrics as telemetry;

impl TokenService {
    /// The keys in force at `now` (Unix seconds), re-selected from the schedule when a key's
    /// activation, retirement or removal from the JWKS has come (a single atomic load
    /// otherwise).
    pub(super) fn key_set(&self, now: i64) -> Arc<KeySet> {
        if now >= self.keys_valid_until.load(Ordering::Relaxed) {
            let schedule = self.schedule.read().unwrap_or_else(|e| e.into_inner()).clone();
            self.install(&schedule, now);
        }
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Selects the keys in force at `now` from `schedule` and installs them if they differ.
    fn install(&self, schedule: &KeySchedule, now: i64) {
        match schedule.select(now, self.config.signing_alg, i64::from(self.config.short_ttl_max_secs)) {
            Ok(fresh) => {
                let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
                if keys.jwks() != fresh.set.jwks() || keys.active_kid() != fresh.set.active_kid() {
                    tracing::info!(
                        active = fresh.set.active_kid(),
                        published = fresh.published,
                        "signing keys changed"
                    );
                    *keys = fresh.set;
                }
                telemetry::signing_keys(fresh.published);
                self.keys_valid_until.store(fresh.valid_until, Ordering::Relaxed);
            }
            Err(e) => {
                // Keep the current keys; try again at the next reload.
                tracing::error!(error = %e, "cannot select signing keys");
                self.keys_valid_until.store(now.saturating_add(60), Ordering::Relaxed);
            }
        }
    }

    /// Re-reads the signing keys (called periodically), so that keys added or rotated by
    /// another instance or by an operator reach this one.
    pub async fn reload_keys(&self) -> anyhow::Result<()> {
        let fresh = Arc::new(
            KeySchedule::load(self.store.as_ref(), &self.keyring, self.clock.as_ref(), self.config.signing_alg).await?,
        );
        *self.schedule.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&fresh);
        self.install(&fresh, self.now().secs());
        Ok(())
    }

    /// Sets the `tokensmith_signing_keys` gauge: the keys this instance publishes and verifies
    /// with. Every change of the keys in force sets it; the server calls this once its metrics
    /// recorder is installed, for the keys loaded at start.
    pub fn record_key_gauge(&self) {
        telemetry::signing_keys(self.key_set(self.now().secs()).key_count());
    }

    /// The JWK Set to publish.
    pub fn jwks(&self) -> serde_json::Value {
        self.key_set(self.now().secs()).jwks().clone()
    }
}
