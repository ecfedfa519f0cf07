//! Failed authentications: what each counts against, the limits' answer, the audit trail
//! (one by one up to a cap, then summarised), and the locks learnt from other processes.

use std::net::IpAddr;
use std::sync::atomic::Ordering;

use super::{AuthFail, TokenService};
use crate::clock;
use crate::domain::audit::{self, AuditEventExt, event};
use crate::domain::limits::{AddrKey, LimitKey, RetryAfter, Summary, Tally};
use crate::domain::{ClientId, DomainError, Mechanism};
use crate::store::{AuditEvent, FailureCounter, FailureRecorded, StoreError};

/// How many failures per key and window are recorded one by one when that key's limit is off.
const AUDIT_CAP_WITHOUT_LIMIT: u64 = 100;
/// How far back each refresh looks for locks set or lifted elsewhere: a generous overlap, so
/// that processes whose clocks differ by up to this much still see each other's changes.
const REFRESH_OVERLAP_MS: i64 = 10_000;

/// The answer to a failure once it was counted.
pub(super) enum Judged {
    /// Within the limits: the failure's own answer.
    Counted,
    /// A limit had been reached: 429 where the operation may answer it.
    Refused(LimitKey, RetryAfter),
}

/// The keys a failure of `mechanism` counts against: always its source address; for a
/// guessable credential also the client id it named, and for an OTP code the client's day.
pub(super) fn failure_keys(mechanism: Mechanism, client: Option<&ClientId>, addr: IpAddr) -> Vec<LimitKey> {
    let mut keys = vec![LimitKey::Address(AddrKey::of(addr))];
    if let Some(c) = client.filter(|_| mechanism.is_guessable()) {
        keys.push(LimitKey::Client(c.clone()));
        if mechanism == Mechanism::Otp {
            keys.push(LimitKey::OtpDay(c.clone()));
        }
    }
    keys
}

impl TokenService {
    /// The limits' answer before a credential is checked: 429 when one of `keys` is locked.
    pub(super) fn check_limits(&self, keys: &[LimitKey], now_ms: i64) -> Result<(), DomainError> {
        match self.failures.check(keys, now_ms) {
            Ok(()) => Ok(()),
            Err((key, retry)) => {
                self.suppressed.count(&summary_key(key), "refused", false, now_ms);
                Err(DomainError::RateLimited { retry_after_secs: retry.0 })
            }
        }
    }

    /// Counts, logs and records a failed authentication and chooses the answer: the failure
    /// itself, or 429 when a limit had been reached and the operation may say so (`may_refuse`;
    /// revocation and introspection never do).
    pub(super) async fn on_failure(
        &self,
        fail: AuthFail,
        mechanism: Mechanism,
        claimed: Option<ClientId>,
        addr: IpAddr,
        now_ms: i64,
        may_refuse: bool,
    ) -> DomainError {
        if !fail.err.is_auth_failure() {
            return fail.err;
        }
        let client = fail.client.clone().or(claimed);
        crate::telemetry::metrics::auth_failed(mechanism);
        tracing::info!(client_id = ?client.as_ref().map(ClientId::as_str), %addr, %mechanism, reason = fail.reason, "authentication failed");
        let keys = failure_keys(mechanism, client.as_ref(), addr);
        let judged = match self.count_failure(&keys, now_ms).await {
            Ok(judged) => judged,
            Err(e) => return e.into(),
        };
        match judged {
            Judged::Counted => {
                if let Err(e) = self.audit_failure(&fail, mechanism, client.as_ref(), addr, now_ms).await {
                    return e.into();
                }
                fail.err
            }
            Judged::Refused(key, retry) => {
                self.suppressed.count(&summary_key(&key), fail.reason, true, now_ms);
                if may_refuse { DomainError::RateLimited { retry_after_secs: retry.0 } } else { fail.err }
            }
        }
    }

    /// Counts a failure against `keys` in the database (the whole deployment's count), unless
    /// this process already knows one of them is locked: then a flood past the limit costs no
    /// write at all.
    async fn count_failure(&self, keys: &[LimitKey], now_ms: i64) -> Result<Judged, StoreError> {
        if !keys.iter().any(|k| self.failures.window(k).is_some()) {
            return Ok(Judged::Counted);
        }
        if let Err((key, retry)) = self.failures.check(keys, now_ms) {
            return Ok(Judged::Refused(key.clone(), retry));
        }
        // A lock is announced for registered clients only (the same read for every failure).
        let registered = match keys.iter().find_map(LimitKey::client) {
            Some(c) => self.store.get_client(c).await?.is_some(),
            None => false,
        };
        let counters: Vec<FailureCounter> = keys
            .iter()
            .filter_map(|k| {
                let window = self.failures.window(k)?;
                Some(FailureCounter { key: k.encode(), window, announce_lock: registered && k.client().is_some() })
            })
            .collect();
        match self.store.record_failure(&counters, now_ms).await? {
            FailureRecorded::Counted { locked } => {
                for (key, until) in locked {
                    if let Some(key) = LimitKey::decode(&key) {
                        self.failures.learn(key, until, now_ms);
                    }
                }
                Ok(Judged::Counted)
            }
            FailureRecorded::Refused { key, until } => {
                let key = LimitKey::decode(&key).unwrap_or_else(|| keys[0].clone());
                self.failures.learn(key.clone(), until, now_ms);
                Ok(Judged::Refused(key, RetryAfter::until(until, now_ms)))
            }
        }
    }

    /// Records a failure in the audit trail, unless its address or client has had its cap of
    /// events in this window: then it is only counted, for the window's summary.
    async fn audit_failure(
        &self,
        fail: &AuthFail,
        mechanism: Mechanism,
        client: Option<&ClientId>,
        addr: IpAddr,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut caps = vec![self.audit_cap(LimitKey::Address(AddrKey::of(addr)))];
        if let Some(c) = client {
            caps.push(self.audit_cap(LimitKey::Client(c.clone())));
        }
        if !self.suppressed.admit(&caps, fail.reason, now_ms) {
            return Ok(());
        }
        let mut ev = audit::new(now_ms, event::AUTH_FAILED, audit::FAILURE)
            .addr(addr)
            .mechanism(mechanism.as_str())
            .reason(fail.reason);
        if let Some(c) = client {
            ev = ev.client(c);
        }
        self.store.record_audit(vec![ev]).await
    }

    /// A key with the number of events recorded one by one per window: its limit, or a fixed
    /// cap when the limit is off.
    fn audit_cap(&self, key: LimitKey) -> (LimitKey, u64) {
        let cap = self.failures.window(&key).map_or(AUDIT_CAP_WITHOUT_LIMIT, |w| u64::from(w.limit));
        (key, cap)
    }

    /// Learns the locks set or lifted by other processes (other instances, an operator's
    /// `client unlock`), forgets the ones that ended, and records the summaries of the windows
    /// that ended. Called every second: the staleness bound of a lock decided elsewhere.
    pub async fn refresh_limits(&self) -> Result<(), StoreError> {
        let now_ms = self.clock.now_millis();
        let since = self.limits_seen_at.load(Ordering::Relaxed) - REFRESH_OVERLAP_MS;
        for (key, until) in self.store.changed_locks(since).await? {
            if let Some(key) = LimitKey::decode(&key) {
                self.failures.learn(key, until, now_ms);
            }
        }
        self.limits_seen_at.store(now_ms, Ordering::Relaxed);
        self.failures.prune(now_ms);
        self.flush_suppressed(now_ms).await
    }

    /// Records one summary event per key whose window ended with failures not recorded one by
    /// one (or attempts refused).
    pub(super) async fn flush_suppressed(&self, now_ms: i64) -> Result<(), StoreError> {
        let due = self.suppressed.take_due(now_ms);
        if due.is_empty() {
            return Ok(());
        }
        let events = due.iter().map(|summary| summary_event(summary, self.suppressed_window_ms(), now_ms));
        if let Err(e) = self.store.record_audit(events.collect()).await {
            self.suppressed.restore(due);
            return Err(e);
        }
        Ok(())
    }

    fn suppressed_window_ms(&self) -> i64 {
        clock::millis(i64::from(self.config.failure_window_secs.max(1)))
    }
}

/// The key a failure is summarised under: its address, or its client (a day's OTP lock too).
fn summary_key(key: &LimitKey) -> LimitKey {
    match key {
        LimitKey::OtpDay(c) => LimitKey::Client(c.clone()),
        other => other.clone(),
    }
}

/// The one event that stands for a window's failures of one key, or of many keys merged.
fn summary_event(summary: &Summary, window_ms: i64, now_ms: i64) -> AuditEvent {
    let mut ev = audit::new(now_ms, event::AUTH_FAILURES_SUMMARIZED, audit::FAILURE).reason("summary");
    ev = match &summary.key {
        Some(LimitKey::Address(a)) => ev.source(a),
        Some(LimitKey::Client(c) | LimitKey::OtpDay(c)) => ev.client(c),
        None => ev,
    };
    let tally: &Tally = &summary.tally;
    ev.detail(serde_json::json!({
        "failures": tally.failures,
        "refused": tally.refused,
        "recorded": tally.recorded,
        "reasons": tally.reasons,
        "keys": summary.keys,
        "since": tally.since,
        "until": tally.since + window_ms,
    }))
}
