//! The operator's webhook receivers: registering one (its secret shown once), listing,
//! removing, sending a test message, and reading the deliveries. Each change is audited.

use std::sync::Arc;

use super::deliver::{SECRET_CONTEXT, Sender, open_secret, signed_message};
use super::{Delivery, DeliveryQuery, EventType, MessageId, Webhook, WebhookId, WebhookSecret};
use crate::clock;
use crate::crypto::Keyring;
use crate::domain::admin::AdminError;
use crate::domain::audit::{self, AuditEventExt, ByOperator, event};
use crate::domain::federation::check_remote_url;
use crate::store::Store;

/// At most this many receivers: each change of every subscribed kind writes one row per
/// receiver in its transaction.
pub const MAX_WEBHOOKS: u32 = 20;

/// A receiver just registered, with its signing secret: shown once, stored only sealed.
#[derive(Debug)]
pub struct AddedWebhook {
    pub webhook: Webhook,
    pub secret: WebhookSecret,
}

/// Registers a receiver of `events` (a comma-separated list, or `all`) at `url` (HTTPS; HTTP
/// only on a loopback address).
pub async fn add(
    store: &dyn Store,
    keyring: &Keyring,
    now: i64,
    url: &str,
    events: &str,
) -> Result<AddedWebhook, AdminError> {
    let parsed = check_remote_url("--url", url).map_err(AdminError::Invalid)?;
    if parsed.port_or_known_default() == Some(0) {
        return Err(AdminError::Invalid(format!("--url {url:?}: port 0 names no receiver")));
    }
    let events = EventType::parse_list(events).map_err(|e| AdminError::Invalid(format!("--events: {e}")))?;
    let secret = WebhookSecret::generate();
    let webhook = Webhook {
        id: WebhookId::generate(),
        url: parsed.to_string(),
        events,
        secret_sealed: keyring.seal(SECRET_CONTEXT, secret.bytes()),
        created_at: now,
    };
    let names: Vec<&str> = webhook.events.iter().map(|t| t.as_str()).collect();
    // The host only: a receiver's path or query may hold a credential of its own.
    let detail = serde_json::json!({ "webhook_id": webhook.id.as_str(), "host": parsed.host_str(), "events": names });
    let ev = audit::new(clock::millis(now), event::WEBHOOK_ADDED, audit::SUCCESS).by_operator().detail(detail);
    if !store.insert_webhook(&webhook, MAX_WEBHOOKS, ev).await? {
        return Err(AdminError::Invalid(format!(
            "at most {MAX_WEBHOOKS} webhook receivers (see tokensmith webhook list; remove one first)"
        )));
    }
    tracing::info!(webhook_id = %webhook.id, "webhook receiver added");
    Ok(AddedWebhook { webhook, secret })
}

/// Removes a receiver; its pending deliveries go with it.
pub async fn remove(store: &dyn Store, now: i64, id: &str) -> Result<WebhookId, AdminError> {
    let id = WebhookId::parse(id).ok_or_else(|| AdminError::UnknownWebhook(id.to_owned()))?;
    let detail = serde_json::json!({ "webhook_id": id.as_str() });
    let ev = audit::new(clock::millis(now), event::WEBHOOK_REMOVED, audit::SUCCESS).by_operator().detail(detail);
    if !store.remove_webhook(&id, ev).await? {
        return Err(AdminError::UnknownWebhook(id.to_string()));
    }
    tracing::info!(webhook_id = %id, "webhook receiver removed");
    Ok(id)
}

pub async fn find(store: &dyn Store, id: &str) -> Result<Webhook, AdminError> {
    let parsed = WebhookId::parse(id).ok_or_else(|| AdminError::UnknownWebhook(id.to_owned()))?;
    store
        .list_webhooks()
        .await?
        .into_iter()
        .find(|w| w.id == parsed)
        .ok_or_else(|| AdminError::UnknownWebhook(id.to_owned()))
}

/// What a test message got: the message id, and the receiver's status or the error class.
#[derive(Debug)]
pub struct TestResult {
    pub message_id: MessageId,
    pub answer: Result<u16, String>,
}

/// Sends a signed `webhook.test` message to a receiver now, outside the outbox (nothing is
/// retried or recorded).
pub async fn test(
    store: &dyn Store,
    keyring: &Keyring,
    sender: Arc<dyn Sender>,
    now: i64,
    id: &str,
) -> Result<TestResult, AdminError> {
    let webhook = find(store, id).await?;
    let secret = open_secret(keyring, &webhook).ok_or_else(|| {
        AdminError::Invalid("cannot unseal the receiver's secret: is this the right master key?".into())
    })?;
    let message_id = MessageId::generate(clock::millis(now));
    let data = serde_json::json!({ "webhook_id": webhook.id.as_str() });
    let payload = super::message::payload("webhook.test", clock::millis(now), data);
    let (headers, body) = signed_message(&secret, message_id.as_str(), &payload, now);
    let answer = sender.post(&webhook.url, headers, body).await;
    Ok(TestResult { message_id, answer })
}

/// Schedules a message's failed deliveries (to one receiver, or to every receiver it failed
/// for) again, from the start of the retry schedule. Answers how many.
pub async fn redeliver(store: &dyn Store, now: i64, message: &str, webhook: Option<&str>) -> Result<u64, AdminError> {
    let unknown = || {
        AdminError::Invalid(format!(
            "no failed delivery of {message:?} (see tokensmith webhook deliveries --status failed)"
        ))
    };
    let id = MessageId::parse(message).ok_or_else(unknown)?;
    let webhook =
        webhook.map(|w| WebhookId::parse(w).ok_or_else(|| AdminError::UnknownWebhook(w.to_owned()))).transpose()?;
    let n = store.redeliver(&id, webhook.as_ref(), clock::millis(now)).await?;
    if n == 0 {
        return Err(unknown());
    }
    let detail = serde_json::json!({ "message_id": id.as_str(), "webhook_id": webhook.as_ref().map(WebhookId::as_str), "deliveries": n });
    let ev = audit::new(clock::millis(now), event::WEBHOOK_REDELIVERED, audit::SUCCESS).by_operator().detail(detail);
    store.record_audit(vec![ev]).await?;
    Ok(n)
}

/// Deliveries, newest first.
pub async fn deliveries(store: &dyn Store, query: &DeliveryQuery) -> Result<Vec<Delivery>, AdminError> {
    Ok(store.list_deliveries(query).await?)
}
