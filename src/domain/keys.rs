//! The signing-key lifecycle: which keys are published, which one signs, and when that
//! changes.
//!
//! A key is **published** (in the JWKS, and accepted for verification) from its creation;
//! it **signs** from `activates_at` until `retired_at`; after retirement it stays published
//! until every token it may have signed has expired (`retired_at` + the longest short-term
//! lifetime + clock skew), then disappears. `keys rotate` inserts a key that activates after
//! a publication delay and retires the current one at that same moment, so verifiers that
//! cache the JWKS learn the new `kid` before they meet a token signed with it.

use std::sync::Arc;

use super::audit::{self, AuditEventExt, ByOperator, event};
use crate::clock;
use crate::clock::Clock;
use crate::crypto::Keyring;
use crate::signer::{self, KeyMaterial, KeySet, SigningAlg};
use crate::store::Store;

/// A signing key as stored: the PKCS#8 document sealed under the keyring.
#[derive(Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: String,
    pub key_sealed: Vec<u8>,
    /// Published in the JWKS from this time on.
    pub created_at: i64,
    /// Signs from this time on (0: from `created_at`), so verifiers that cache the JWKS
    /// learn the key before they meet a token it signed.
    pub activates_at: i64,
    /// Stops signing at this time (possibly in the future); published until the tokens it
    /// signed have expired.
    pub retired_at: Option<i64>,
}

/// Extra time a retired key stays published, for verifiers' clock skew.
const PUBLISH_SKEW_SECS: i64 = 60;

/// Where a key is in its life at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet.
    Pending,
    /// Signing (or eligible to: several instances pick the oldest eligible key).
    Active,
    /// No longer signing, still published for the tokens it signed.
    Retiring,
    /// Gone from the JWKS.
    Expired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Expired => "expired",
        }
    }
}

/// A key's schedule, without its secret.
#[derive(Debug, Clone)]
pub struct KeyTimes {
    pub created_at: i64,
    pub activates_at: i64,
    pub retired_at: Option<i64>,
}

impl KeyTimes {
    fn of(r: &SigningKeyRecord) -> Self {
        KeyTimes { created_at: r.created_at, activates_at: r.activates_at.max(r.created_at), retired_at: r.retired_at }
    }

    /// The state at `now`, given how long tokens may live (`max_token_secs`).
    pub fn state(&self, now: i64, max_token_secs: i64) -> KeyState {
        match self.retired_at {
            Some(r) if now >= r + max_token_secs + PUBLISH_SKEW_SECS => KeyState::Expired,
            Some(r) if now >= r => KeyState::Retiring,
            _ if now < self.activates_at => KeyState::Pending,
            _ => KeyState::Active,
        }
    }

    /// When the state changes next after `now`, if ever.
    fn next_change(&self, now: i64, max_token_secs: i64) -> Option<i64> {
        [Some(self.activates_at), self.retired_at, self.retired_at.map(|r| r + max_token_secs + PUBLISH_SKEW_SECS)]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .min()
    }
}

/// Every stored key, decrypted, with its schedule.
pub struct KeySchedule {
    keys: Vec<(KeyMaterial, KeyTimes)>,
}

impl std::fmt::Debug for KeySchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.keys.iter().map(|(m, _)| &m.kid)).finish()
    }
}

/// The key set in force and until when it stays right.
pub struct Selected {
    pub set: Arc<KeySet>,
    /// The first time (Unix seconds) at which another selection may differ; `i64::MAX` if none.
    pub valid_until: i64,
    /// How many keys are published.
    pub published: usize,
}

impl KeySchedule {
    /// Reads the keys, creating one of `alg` when none of that algorithm is signing or due to
    /// sign, and decrypts them. The master key must match the database.
    pub async fn load(
        store: &dyn Store,
        keyring: &Keyring,
        clock: &dyn Clock,
        alg: SigningAlg,
    ) -> anyhow::Result<Self> {
        let now = clock.now();
        let mut records = store.list_signing_keys().await?;
        let has_current =
            |rs: &[SigningKeyRecord]| rs.iter().any(|r| r.alg == alg.as_str() && r.retired_at.is_none_or(|t| t > now));
        if !has_current(&records) {
            let record = new_record(keyring, alg, now, 0)?;
            store.insert_signing_key(&record).await?;
            store
                .record_audit(vec![
                    audit::new(clock::millis(now), event::SIGNING_KEY_CREATED, audit::SUCCESS)
                        .token(&record.kid)
                        .source("server")
                        .detail(serde_json::json!({ "alg": alg.as_str() })),
                ])
                .await?;
            tracing::info!(kid = %record.kid, %alg, "created a signing key");
            records = store.list_signing_keys().await?;
        }
        let mut keys = Vec::with_capacity(records.len());
        for r in &records {
            let alg = SigningAlg::parse(&r.alg)
                .ok_or_else(|| anyhow::anyhow!("signing key {} has unknown alg {}", r.kid, r.alg))?;
            let pkcs8 = keyring.open(r.kid.as_bytes(), &r.key_sealed).ok_or_else(|| {
                anyhow::anyhow!(
                    "signing key {} cannot be decrypted: the master key does not match this database",
                    r.kid
                )
            })?;
            keys.push((KeyMaterial { kid: r.kid.clone(), alg, pkcs8 }, KeyTimes::of(r)));
        }
        Ok(KeySchedule { keys })
    }

    /// The key set at `now`: the published keys, and the one of `alg` that signs — the
    /// oldest active one, so that instances which raced to create the first key agree; if
    /// none is active yet, the pending one due first.
    pub fn select(&self, now: i64, alg: SigningAlg, max_token_secs: i64) -> anyhow::Result<Selected> {
        let published: Vec<&(KeyMaterial, KeyTimes)> =
            self.keys.iter().filter(|(_, t)| t.state(now, max_token_secs) != KeyState::Expired).collect();
        let of_alg = || published.iter().filter(|(m, _)| m.alg == alg);
        let active = of_alg()
            .filter(|(_, t)| t.state(now, max_token_secs) == KeyState::Active)
            .min_by_key(|(m, t)| (t.created_at, m.kid.clone()))
            .or_else(|| {
                of_alg()
                    .filter(|(_, t)| t.state(now, max_token_secs) == KeyState::Pending)
                    .min_by_key(|(m, t)| (t.activates_at, m.kid.clone()))
            })
            .map(|(m, _)| m.kid.clone())
            .ok_or_else(|| anyhow::anyhow!("no {alg} signing key is active or due"))?;
        let set = KeySet::new(published.iter().map(|(m, _)| m), &active)?;
        let valid_until =
            self.keys.iter().filter_map(|(_, t)| t.next_change(now, max_token_secs)).min().unwrap_or(i64::MAX);
        Ok(Selected { set: Arc::new(set), valid_until, published: published.len() })
    }
}

/// A freshly generated key, sealed, created at `now` and signing from `activates_at`.
fn new_record(keyring: &Keyring, alg: SigningAlg, now: i64, activates_at: i64) -> anyhow::Result<SigningKeyRecord> {
    let k = signer::generate(alg)?;
    Ok(SigningKeyRecord {
        kid: k.kid.clone(),
        alg: alg.as_str().to_owned(),
        key_sealed: keyring.seal(k.kid.as_bytes(), &k.pkcs8),
        created_at: now,
        activates_at,
        retired_at: None,
    })
}

/// A key as `keys list` shows it.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: String,
    pub times: KeyTimes,
}

/// Every stored key, oldest first, without secrets.
pub async fn list(store: &dyn Store) -> anyhow::Result<Vec<KeyInfo>> {
    Ok(store
        .list_signing_keys()
        .await?
        .iter()
        .map(|r| KeyInfo { kid: r.kid.clone(), alg: r.alg.clone(), times: KeyTimes::of(r) })
        .collect())
}

/// Creates a key of `alg` that is published at once and signs from `now + delay_secs`; every
/// other key of `alg` still signing then retires at that moment. Recorded in the audit trail
/// (and announced to webhook receivers) in the same transaction.
pub async fn rotate(
    store: &dyn Store,
    keyring: &Keyring,
    now: i64,
    alg: SigningAlg,
    delay_secs: i64,
) -> anyhow::Result<KeyInfo> {
    let record = new_record(keyring, alg, now, now + delay_secs.max(0))?;
    let ev = audit::new(crate::clock::millis(now), event::SIGNING_KEY_ROTATED, audit::SUCCESS)
        .token(&record.kid)
        .by_operator()
        .detail(serde_json::json!({ "alg": record.alg, "activates_at": record.activates_at }));
    store.rotate_signing_key(&record, ev).await?;
    tracing::info!(kid = %record.kid, %alg, activates_at = record.activates_at, "signing key rotated");
    Ok(KeyInfo { kid: record.kid.clone(), alg: record.alg.clone(), times: KeyTimes::of(&record) })
}

/// An operator's rotation (`tokensmith keys rotate`).
pub struct OperatorRotation {
    pub key: KeyInfo,
    /// Whether a key of the algorithm was signing: only then does the new one wait
    /// `publish_delay` before signing (otherwise servers would be left without a key).
    pub delayed: bool,
}

/// Rotates the signing key of `alg` (by default, the algorithm of the newest signing key, or
/// EdDSA), recorded in the audit trail. The new key signs after `publish_delay` seconds, so
/// that verifiers fetch the JWKS holding it first, unless no key of `alg` is signing now.
pub async fn rotate_by_operator(
    store: &dyn Store,
    keyring: &Keyring,
    now: i64,
    alg: Option<SigningAlg>,
    publish_delay: i64,
) -> anyhow::Result<OperatorRotation> {
    // Which keys sign does not depend on the short-term lifetime; any bound will do.
    const ANY_TTL: i64 = 900;
    let existing = list(store).await?;
    let signing = |k: &&KeyInfo| k.times.state(now, ANY_TTL) == KeyState::Active;
    let alg = alg.unwrap_or_else(|| {
        existing
            .iter()
            .filter(signing)
            .max_by_key(|k| k.times.created_at)
            .and_then(|k| SigningAlg::parse(&k.alg))
            .unwrap_or(SigningAlg::EdDSA)
    });
    let delayed = existing.iter().filter(signing).any(|k| k.alg == alg.as_str());
    let key = rotate(store, keyring, now, alg, if delayed { publish_delay } else { 0 }).await?;
    Ok(OperatorRotation { key, delayed })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: i64 = 900;

    fn times(created: i64, activates: i64, retired: Option<i64>) -> KeyTimes {
        KeyTimes { created_at: created, activates_at: activates.max(created), retired_at: retired }
    }

    #[test]
    fn a_key_goes_pending_active_retiring_expired() {
        let t = times(100, 200, Some(1000));
        assert_eq!(t.state(150, MAX), KeyState::Pending);
        assert_eq!(t.state(200, MAX), KeyState::Active);
        assert_eq!(t.state(999, MAX), KeyState::Active);
        assert_eq!(t.state(1000, MAX), KeyState::Retiring);
        assert_eq!(t.state(1000 + MAX + PUBLISH_SKEW_SECS - 1, MAX), KeyState::Retiring);
        assert_eq!(t.state(1000 + MAX + PUBLISH_SKEW_SECS, MAX), KeyState::Expired);
        assert_eq!(t.next_change(150, MAX), Some(200));
        assert_eq!(t.next_change(200, MAX), Some(1000));
        assert_eq!(t.next_change(1000, MAX), Some(1000 + MAX + PUBLISH_SKEW_SECS));
        assert_eq!(t.next_change(5000, MAX), None);
    }

    #[test]
    fn an_unretired_key_is_active_forever() {
        let t = times(100, 0, None);
        assert_eq!(t.state(100, MAX), KeyState::Active);
        assert_eq!(t.state(i64::MAX / 2, MAX), KeyState::Active);
        assert_eq!(t.next_change(100, MAX), None);
    }

    fn schedule(keys: &[(&str, KeyTimes)]) -> KeySchedule {
        KeySchedule {
            keys: keys
                .iter()
                .map(|(kid, t)| {
                    let mut m = signer::generate(SigningAlg::EdDSA).unwrap();
                    m.kid = (*kid).into();
                    (m, t.clone())
                })
                .collect(),
        }
    }

    fn kids(s: &Selected) -> Vec<String> {
        let mut v: Vec<String> =
            s.set.jwks()["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().into()).collect();
        v.sort();
        v
    }

    #[test]
    fn rotation_publishes_first_switches_at_activation_and_drops_the_old_key_later() {
        // "old" retires when "new" activates, at 1600.
        let s = schedule(&[("old", times(0, 0, Some(1600))), ("new", times(1000, 1600, None))]);
        let before = s.select(1200, SigningAlg::EdDSA, MAX).unwrap();
        assert_eq!(before.set.active_kid(), "old");
        assert_eq!(kids(&before), ["new", "old"], "the new key is published before it signs");
        assert_eq!(before.valid_until, 1600);
        let after = s.select(1600, SigningAlg::EdDSA, MAX).unwrap();
        assert_eq!(after.set.active_kid(), "new");
        assert_eq!(kids(&after), ["new", "old"], "the old key stays while its tokens live");
        let later = s.select(1600 + MAX + PUBLISH_SKEW_SECS, SigningAlg::EdDSA, MAX).unwrap();
        assert_eq!(kids(&later), ["new"]);
        assert_eq!(later.valid_until, i64::MAX);
    }

    #[test]
    fn racing_first_keys_settle_on_the_oldest_and_a_lone_pending_key_signs() {
        let s = schedule(&[("b", times(10, 0, None)), ("a", times(10, 0, None)), ("c", times(5, 0, None))]);
        assert_eq!(s.select(20, SigningAlg::EdDSA, MAX).unwrap().set.active_kid(), "c");
        let s = schedule(&[("p", times(10, 500, None))]);
        assert_eq!(s.select(20, SigningAlg::EdDSA, MAX).unwrap().set.active_kid(), "p");
        assert!(s.select(20, SigningAlg::ES256, MAX).is_err());
    }
}
