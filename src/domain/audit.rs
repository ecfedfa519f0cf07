//! The audit trail: what happened to credentials, who did it, from where, with what outcome.
//!
//! Recorded: every long-term issuance and rotation, every revocation, every failed
//! authentication (mechanism and reason class), client administration and signing-key
//! rotation. Short-term issuance is counted per client and recorded as one
//! `short_tokens.issued` event per client per cleanup tick, or one by one when configured.
//! Events carry ids, never a secret or a token.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::types::ClientId;

/// One entry of the audit trail: ids, never a secret or a token.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AuditEvent {
    /// Unix milliseconds.
    pub at: i64,
    /// What happened, e.g. `long_token.issued`, `auth.failed`, `signing_key.rotated`.
    pub event: String,
    /// `success` or `failure`.
    pub outcome: String,
    pub client_id: Option<String>,
    pub token_id: Option<String>,
    /// The peer address of a request, or `cli`.
    pub source: Option<String>,
    /// How the caller authenticated (or tried to).
    pub mechanism: Option<String>,
    /// The reason class of a failure, e.g. `wrong_secret`, `replay`.
    pub reason: Option<String>,
    /// A JSON object with further non-secret facts (a rotated token's id, a count).
    pub detail: Option<String>,
}

impl AuditEvent {
    /// The event of a long-term token's revocation (or rotation), with the number of its
    /// descendants whose end it brought forward with it (`detail.cascade`), as the store found
    /// them.
    pub fn with_cascade(mut self, cascade: usize) -> Self {
        let mut detail = match self.detail.as_deref().map(serde_json::from_str::<serde_json::Value>) {
            Some(Ok(serde_json::Value::Object(map))) => map,
            _ => serde_json::Map::new(),
        };
        detail.insert("cascade".into(), cascade.into());
        self.detail = Some(serde_json::Value::Object(detail).to_string());
        self
    }
}

/// A recorded audit event and its position in the trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: i64,
    pub event: AuditEvent,
}

/// The event names, in one place.
pub mod event {
    pub const LONG_TOKEN_ISSUED: &str = "long_token.issued";
    pub const LONG_TOKEN_ROTATED: &str = "long_token.rotated";
    pub const SHORT_TOKEN_ISSUED: &str = "short_token.issued";
    pub const SHORT_TOKENS_ISSUED: &str = "short_tokens.issued";
    /// A long-term token ends within a configured lead time (once per token and lead time).
    pub const TOKEN_EXPIRING: &str = "token.expiring";
    /// An external identity token exchanged for a short-term token (RFC 8693).
    pub const TOKEN_EXCHANGED: &str = "token.exchanged";
    pub const TOKEN_REVOKED: &str = "token.revoked";
    pub const AUTH_FAILED: &str = "auth.failed";
    /// One per client or address and window: the failures and refused attempts past the cap
    /// of events recorded one by one, counted.
    pub const AUTH_FAILURES_SUMMARIZED: &str = "auth.failures_summarized";
    pub const CLIENT_CREATED: &str = "client.created";
    pub const CLIENT_DISABLED: &str = "client.disabled";
    pub const CLIENT_ENABLED: &str = "client.enabled";
    /// A failure limit was reached: the client's credentials (or its OTP codes) are refused
    /// until the lock ends. Recorded in the transaction that counted the failure.
    pub const CLIENT_LOCKED: &str = "client.locked";
    pub const CLIENT_UNLOCKED: &str = "client.unlocked";
    pub const CLIENT_OTP_RESET: &str = "client.otp_reset";
    pub const CLIENT_SECRET_ROTATED: &str = "client.secret_rotated";
    pub const CLIENT_KEY_SET: &str = "client.key_set";
    pub const ISSUER_ADDED: &str = "issuer.added";
    pub const ISSUER_REMOVED: &str = "issuer.removed";
    pub const FEDERATION_ADDED: &str = "client.federation_added";
    pub const FEDERATION_REMOVED: &str = "client.federation_removed";
    pub const SIGNING_KEY_CREATED: &str = "signing_key.created";
    pub const SIGNING_KEY_ROTATED: &str = "signing_key.rotated";
    /// A request to the admin API, by an authenticated caller (its client and admin token).
    pub const ADMIN_REQUEST: &str = "admin.request";
    pub const WEBHOOK_ADDED: &str = "webhook.added";
    pub const WEBHOOK_REMOVED: &str = "webhook.removed";
    /// An operator scheduled a message's failed deliveries again.
    pub const WEBHOOK_REDELIVERED: &str = "webhook.redelivered";
}

pub const SUCCESS: &str = "success";
pub const FAILURE: &str = "failure";
/// The `source` of events caused by the command line.
pub const CLI: &str = "cli";

/// Builds an event; the optional parts are set with the chained methods.
pub fn new(at_ms: i64, event: &str, outcome: &str) -> AuditEvent {
    AuditEvent { at: at_ms, event: event.into(), outcome: outcome.into(), ..AuditEvent::default() }
}

/// Chained setters for [`AuditEvent`].
pub trait AuditEventExt: Sized {
    fn client(self, id: &ClientId) -> Self;
    fn token(self, id: impl ToString) -> Self;
    fn source(self, source: impl ToString) -> Self;
    fn addr(self, addr: IpAddr) -> Self {
        self.source(addr)
    }
    fn mechanism(self, m: &str) -> Self;
    fn reason(self, r: &str) -> Self;
    fn detail(self, d: serde_json::Value) -> Self;
}

impl AuditEventExt for AuditEvent {
    fn client(mut self, id: &ClientId) -> Self {
        self.client_id = Some(id.to_string());
        self
    }
    fn token(mut self, id: impl ToString) -> Self {
        self.token_id = Some(id.to_string());
        self
    }
    fn source(mut self, source: impl ToString) -> Self {
        self.source = Some(source.to_string());
        self
    }
    fn mechanism(mut self, m: &str) -> Self {
        self.mechanism = Some(m.into());
        self
    }
    fn reason(mut self, r: &str) -> Self {
        self.reason = Some(r.into());
        self
    }
    /// Sets the event's detail; an object is merged into the object already there.
    fn detail(mut self, d: serde_json::Value) -> Self {
        let merged = match (self.detail.as_deref().map(serde_json::from_str::<serde_json::Value>), d) {
            (Some(Ok(serde_json::Value::Object(mut old))), serde_json::Value::Object(new)) => {
                old.extend(new);
                serde_json::Value::Object(old)
            }
            (_, d) => d,
        };
        self.detail = Some(merged.to_string());
        self
    }
}

/// Who makes an operator's change: the command line on a machine with the database, or a
/// caller of the admin API (its client, its admin token, its address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    Cli,
    Admin { client_id: ClientId, token_id: String, addr: IpAddr },
}

tokio::task_local! {
    /// The operator of the admin change running in this task (none: the command line).
    static OPERATOR: Operator;
}

/// Runs `work` (an admin API request) as `operator`: the audit events of the operator's
/// changes it makes name it.
pub async fn as_operator<F: std::future::Future>(operator: Operator, work: F) -> F::Output {
    OPERATOR.scope(operator, work).await
}

/// The operator of the change running now.
pub fn operator() -> Operator {
    OPERATOR.try_with(Operator::clone).unwrap_or(Operator::Cli)
}

/// Names the operator making a change: `source` is `cli` or the admin API caller's address;
/// an admin API caller's client and token ids go in `detail.operator`.
pub trait ByOperator {
    fn by_operator(self) -> Self;
}

impl ByOperator for AuditEvent {
    fn by_operator(self) -> Self {
        match operator() {
            Operator::Cli => self.source(CLI),
            Operator::Admin { client_id, token_id, addr } => self.addr(addr).detail(serde_json::json!({
                "operator": { "client_id": client_id.as_str(), "token_id": token_id },
            })),
        }
    }
}

/// Short-term issuances per client since the last flush.
///
/// `add` runs on every short-term issuance, on every worker thread at once: it takes the map's
/// read lock and increments an atomic, so the workers never wait for each other; the write
/// lock is taken only for a client's first issuance since the last flush, and by the flush.
#[derive(Debug, Default)]
pub struct ShortIssuanceCounter {
    counts: RwLock<HashMap<ClientId, AtomicU64>>,
}

impl ShortIssuanceCounter {
    pub fn add(&self, client: &ClientId) {
        {
            let counts = self.counts.read().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = counts.get(client) {
                n.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut counts = self.counts.write().unwrap_or_else(|e| e.into_inner());
        counts.entry(client.clone()).or_default().fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far, reset to zero.
    pub fn take(&self) -> Vec<(ClientId, u64)> {
        let mut counts = self.counts.write().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = counts.drain().map(|(c, n)| (c, n.into_inner())).collect();
        v.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        v
    }

    /// Puts counts back (their flush failed), so they are recorded with the next one.
    pub fn restore(&self, taken: Vec<(ClientId, u64)>) {
        let mut counts = self.counts.write().unwrap_or_else(|e| e.into_inner());
        for (c, n) in taken {
            counts.entry(c).or_default().fetch_add(n, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_per_client_and_reset_when_taken() {
        let c = ShortIssuanceCounter::default();
        let (a, b) = (ClientId::generate(), ClientId::generate());
        c.add(&a);
        c.add(&b);
        c.add(&a);
        let mut taken = c.take();
        taken.sort_by_key(|(_, n)| *n);
        assert_eq!(taken, vec![(b.clone(), 1), (a.clone(), 2)]);
        assert!(c.take().is_empty());
        c.restore(taken);
        c.add(&a);
        let mut again = c.take();
        again.sort_by_key(|(_, n)| *n);
        assert_eq!(again, vec![(b, 1), (a, 3)]);
    }

    #[test]
    fn events_are_built_with_ids_only() {
        let id = ClientId::generate();
        let e = new(5, event::AUTH_FAILED, FAILURE)
            .client(&id)
            .addr("127.0.0.1".parse().unwrap())
            .mechanism("client_secret")
            .reason("wrong_secret");
        assert_eq!(e.client_id.as_deref(), Some(id.as_str()));
        assert_eq!(e.source.as_deref(), Some("127.0.0.1"));
        assert_eq!((e.event.as_str(), e.outcome.as_str(), e.at), ("auth.failed", "failure", 5));
    }
}
