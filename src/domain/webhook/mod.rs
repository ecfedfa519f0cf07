//! Webhooks: receivers registered by the operator, the events they subscribe to, and the
//! outbox of signed deliveries (Standard Webhooks).
//!
//! Every change that has a webhook event writes its message to the outbox in the same
//! transaction as the change and its audit event (the store runs [`Message::of_audit`] where it
//! records an audit event), one delivery per subscribed receiver. The delivery worker
//! ([`deliver`]) claims due deliveries, signs and posts them, and retries failures on the
//! [`RetrySchedule`] before marking them failed.

pub mod admin;
pub mod deliver;
mod message;
mod retry;
mod signature;

use std::fmt;

pub use message::{Message, MessageId};
pub use retry::RetrySchedule;
pub use signature::{WebhookSecret, sign};

use crate::crypto;

/// A receiver's id: `wh_` followed by base62, as printed by `webhook add`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WebhookId(String);

impl WebhookId {
    pub fn generate() -> Self {
        WebhookId(format!("wh_{}", crypto::random_base62(16)))
    }

    /// Any id of the issued form; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let body = s.strip_prefix("wh_")?;
        (body.len() == 16 && crypto::is_base62(body)).then(|| WebhookId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id read back from the database, as written.
    pub fn from_stored(s: String) -> Self {
        WebhookId(s)
    }
}

impl fmt::Display for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a receiver can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A long-term token was issued (a rotation's new token included).
    TokenIssued,
    /// A token was revoked; `cascade` counts the long-term tokens revoked with it.
    TokenRevoked,
    /// A long-term token ends within a configured lead time.
    TokenExpiring,
    /// An external identity token was exchanged for a short-term token.
    TokenExchanged,
    /// A failure limit was reached: the client's credentials are refused for a while.
    ClientLocked,
    ClientDisabled,
    /// A new signing key was created and the old ones scheduled to retire.
    KeyRotated,
    IssuerAdded,
    IssuerRemoved,
    FederationAdded,
    FederationRemoved,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        EventType::TokenIssued,
        EventType::TokenRevoked,
        EventType::TokenExpiring,
        EventType::TokenExchanged,
        EventType::ClientLocked,
        EventType::ClientDisabled,
        EventType::KeyRotated,
        EventType::IssuerAdded,
        EventType::IssuerRemoved,
        EventType::FederationAdded,
        EventType::FederationRemoved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TokenIssued => "token.issued",
            EventType::TokenRevoked => "token.revoked",
            EventType::TokenExpiring => "token.expiring",
            EventType::TokenExchanged => "token.exchanged",
            EventType::ClientLocked => "client.locked",
            EventType::ClientDisabled => "client.disabled",
            EventType::KeyRotated => "key.rotated",
            EventType::IssuerAdded => "issuer.added",
            EventType::IssuerRemoved => "issuer.removed",
            EventType::FederationAdded => "client.federation_added",
            EventType::FederationRemoved => "client.federation_removed",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// A comma-separated list (`token.revoked,token.expiring`, or `all`), deduplicated.
    pub fn parse_list(s: &str) -> Result<Vec<EventType>, String> {
        if s.trim() == "all" {
            return Ok(EventType::ALL.to_vec());
        }
        let mut types = Vec::new();
        for part in s.split(',').map(str::trim) {
            let t = EventType::parse(part).ok_or_else(|| {
                let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                let shown: String = part.chars().take(40).filter(|c| !c.is_control()).collect();
                format!("unknown event {shown:?}; known: {} (or all)", known.join(", "))
            })?;
            if !types.contains(&t) {
                types.push(t);
            }
        }
        types.sort();
        Ok(types)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registered receiver. Its signing secret stays sealed except while a delivery is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: WebhookId,
    pub url: String,
    pub events: Vec<EventType>,
    pub secret_sealed: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt, or being attempted.
    Pending,
    Delivered,
    /// Every attempt of the retry schedule failed.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        [DeliveryStatus::Pending, DeliveryStatus::Delivered, DeliveryStatus::Failed]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// One message to one receiver, as the outbox holds it. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub message_id: MessageId,
    pub webhook_id: WebhookId,
    pub event_type: String,
    pub payload: String,
    pub created_at: i64,
    pub status: DeliveryStatus,
    /// Attempts started, the one in flight included.
    pub attempts: u32,
    pub next_attempt_at: i64,
    /// The last failed attempt's HTTP status or error class (never the receiver's body).
    pub last_error: Option<String>,
    pub finished_at: Option<i64>,
}

/// What an attempt changed: the delivery's new state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryUpdate {
    pub status: DeliveryStatus,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub finished_at: Option<i64>,
}

/// Which deliveries `webhook deliveries` lists: newest first.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub webhook: Option<WebhookId>,
    pub status: Option<DeliveryStatus>,
    pub limit: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lists_parse_and_refuse_unknown_names() {
        assert_eq!(
            EventType::parse_list("token.revoked, token.expiring,token.revoked"),
            Ok(vec![EventType::TokenRevoked, EventType::TokenExpiring])
        );
        assert_eq!(EventType::parse_list("all").map(|v| v.len()), Ok(EventType::ALL.len()));
        assert!(EventType::parse_list("token.revoked,token.stolen").unwrap_err().contains("token.stolen"));
        assert!(EventType::parse_list("").is_err());
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn webhook_ids_have_one_form() {
        let id = WebhookId::generate();
        assert_eq!(WebhookId::parse(id.as_str()), Some(id));
        assert_eq!(WebhookId::parse("wh_short"), None);
        assert_eq!(WebhookId::parse("cli_0123456789abcdef"), None);
    }
}
