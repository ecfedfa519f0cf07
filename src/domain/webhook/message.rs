//! The message an audit event becomes for webhook receivers, in the Standard Webhooks shape:
//! `{"type": …, "timestamp": …, "data": {…}}`, with an id that stays the same on every attempt
//! and for every receiver, so that receivers can deduplicate.

use std::fmt;

use super::EventType;
use crate::crypto;
use crate::domain::audit::{AuditEvent, event};

/// A message's id, sent as `webhook-id`: `msg_` followed by base62 — the event's time in
/// milliseconds (8 digits, so ids sort by time and the outbox grows at its end) and 14 random
/// digits (83 bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageId(String);

impl MessageId {
    pub fn generate(at_ms: i64) -> Self {
        let time = crypto::base62_fixed(u64::try_from(at_ms).unwrap_or(0), 8);
        MessageId(format!("msg_{time}{}", crypto::random_base62(14)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id read back from the database, as written.
    pub fn from_stored(s: String) -> Self {
        MessageId(s)
    }

    /// Any id of the issued form; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let body = s.strip_prefix("msg_")?;
        (body.len() == 22 && crypto::is_base62(body)).then(|| MessageId(s.to_owned()))
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One event, ready to be written to the outbox for each subscribed receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub event_type: EventType,
    /// The JSON body, exactly as it is signed and sent.
    pub payload: String,
}

impl Message {
    /// The webhook message of an audit event, if receivers can subscribe to its kind.
    pub fn of_audit(ev: &AuditEvent) -> Option<Message> {
        let event_type = event_type_of(ev)?;
        Some(Message::new(event_type, ev.at, data_of(ev, event_type)))
    }

    /// A message of `event_type` that happened at `at_ms`, with `data`.
    pub fn new(event_type: EventType, at_ms: i64, data: serde_json::Value) -> Message {
        Message { id: MessageId::generate(at_ms), event_type, payload: payload(event_type.as_str(), at_ms, data) }
    }
}

/// The JSON body of a message of type `kind` that happened at `at_ms`.
pub(super) fn payload(kind: &str, at_ms: i64, data: serde_json::Value) -> String {
    serde_json::json!({ "type": kind, "timestamp": rfc3339(at_ms), "data": data }).to_string()
}

/// Which webhook event an audit event is (successes only).
fn event_type_of(ev: &AuditEvent) -> Option<EventType> {
    if ev.outcome != crate::domain::audit::SUCCESS && ev.event != event::CLIENT_LOCKED {
        return None;
    }
    Some(match ev.event.as_str() {
        event::LONG_TOKEN_ISSUED | event::LONG_TOKEN_ROTATED => EventType::TokenIssued,
        event::TOKEN_REVOKED => EventType::TokenRevoked,
        event::TOKEN_EXPIRING => EventType::TokenExpiring,
        event::TOKEN_EXCHANGED => EventType::TokenExchanged,
        event::CLIENT_LOCKED => EventType::ClientLocked,
        event::CLIENT_DISABLED => EventType::ClientDisabled,
        event::SIGNING_KEY_ROTATED => EventType::KeyRotated,
        event::ISSUER_ADDED => EventType::IssuerAdded,
        event::ISSUER_REMOVED => EventType::IssuerRemoved,
        event::FEDERATION_ADDED => EventType::FederationAdded,
        event::FEDERATION_REMOVED => EventType::FederationRemoved,
        _ => return None,
    })
}

/// The message's `data`: the event's ids and its detail (ids, counts, times; never a secret).
fn data_of(ev: &AuditEvent, event_type: EventType) -> serde_json::Value {
    let mut data = serde_json::Map::new();
    if let Some(c) = &ev.client_id {
        data.insert("client_id".into(), c.clone().into());
    }
    if let Some(t) = &ev.token_id {
        let name = if event_type == EventType::KeyRotated { "kid" } else { "token_id" };
        data.insert(name.into(), t.clone().into());
    }
    if let Some(m) = &ev.mechanism {
        data.insert("mechanism".into(), m.clone().into());
    }
    let detail = ev.detail.as_deref().and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok());
    if let Some(serde_json::Value::Object(detail)) = detail {
        for (k, v) in detail {
            data.entry(k).or_insert(v);
        }
    }
    serde_json::Value::Object(data)
}

/// Unix milliseconds as RFC 3339 in UTC, to the millisecond.
fn rfc3339(at_ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{self, AuditEventExt};
    use crate::domain::types::ClientId;

    #[test]
    fn a_revocation_becomes_a_token_revoked_message() {
        let client = ClientId::parse("cli_abc").unwrap();
        let ev = audit::new(1_764_547_200_123, event::TOKEN_REVOKED, audit::SUCCESS)
            .client(&client)
            .token("0193-x")
            .source("10.0.0.1")
            .detail(serde_json::json!({ "kind": "long", "cascade": 2, "client_id": "spoof" }));
        let m = Message::of_audit(&ev).unwrap();
        assert_eq!(m.event_type, EventType::TokenRevoked);
        assert!(m.id.as_str().starts_with("msg_"));
        assert_eq!(MessageId::parse(m.id.as_str()), Some(m.id.clone()));
        let later = Message::of_audit(&audit::new(1_764_547_200_124, event::TOKEN_REVOKED, audit::SUCCESS)).unwrap();
        assert!(later.id.as_str() > m.id.as_str(), "ids sort by the event's time");
        let body: serde_json::Value = serde_json::from_str(&m.payload).unwrap();
        assert_eq!(body["type"], "token.revoked");
        assert_eq!(body["timestamp"], "2025-12-01T00:00:00.123Z");
        assert_eq!(body["data"]["client_id"], "cli_abc");
        assert_eq!(body["data"]["token_id"], "0193-x");
        assert_eq!(body["data"]["cascade"], 2);
        assert!(body["data"].get("source").is_none(), "addresses stay in the audit trail");
    }

    #[test]
    fn failures_and_unsubscribable_events_have_no_message() {
        assert!(Message::of_audit(&audit::new(0, event::AUTH_FAILED, audit::FAILURE)).is_none());
        assert!(Message::of_audit(&audit::new(0, event::CLIENT_CREATED, audit::SUCCESS)).is_none());
        assert!(Message::of_audit(&audit::new(0, event::SHORT_TOKENS_ISSUED, audit::SUCCESS)).is_none());
        let locked = audit::new(0, event::CLIENT_LOCKED, audit::FAILURE);
        assert_eq!(Message::of_audit(&locked).map(|m| m.event_type), Some(EventType::ClientLocked));
        let rotated = audit::new(0, event::SIGNING_KEY_ROTATED, audit::SUCCESS).token("kid-1");
        let body: serde_json::Value = serde_json::from_str(&Message::of_audit(&rotated).unwrap().payload).unwrap();
        assert_eq!((body["type"].as_str(), body["data"]["kid"].as_str()), (Some("key.rotated"), Some("kid-1")));
    }
}
