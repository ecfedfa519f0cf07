//! The delivery worker: claims due deliveries from the outbox, signs each with its receiver's
//! secret, posts it, and writes the outcome — delivered, to be retried on the schedule, or
//! failed. Attempts run in their own tasks, at most [`DeliveryConfig::per_receiver`] at once
//! for each receiver, which are claimed for one by one: a receiver that hangs holds its own
//! slots until the timeout, never another receiver's, and never the request path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, Semaphore};

use super::{Delivery, DeliveryStatus, DeliveryUpdate, RetrySchedule, Webhook, WebhookId, WebhookSecret, sign};
use crate::clock::Clock;
use crate::crypto::Keyring;
use crate::store::{Store, StoreError};

/// Posts signed deliveries (the HTTP client lives outside the domain).
#[async_trait]
pub trait Sender: Send + Sync + 'static {
    /// POSTs `body` with `headers` to `url`: the receiver's status, or an error class (never
    /// the receiver's answer).
    async fn post(&self, url: &str, headers: Vec<(&'static str, String)>, body: String) -> Result<u16, String>;
}

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// How long one attempt may take, connection included.
    pub timeout: Duration,
    pub schedule: RetrySchedule,
    /// Attempts in flight at most per receiver, in this process.
    pub per_receiver: usize,
}
/// How long past an attempt's timeout a claim stays this process's: beyond it, the delivery
/// is due again (this process died, or its write of the outcome failed).
const LEASE_MARGIN: Duration = Duration::from_secs(10);

pub struct Dispatcher {
    store: Arc<dyn Store>,
    keyring: Keyring,
    sender: Arc<dyn Sender>,
    clock: Arc<dyn Clock>,
    config: DeliveryConfig,
    /// Each receiver's slots for attempts in flight.
    slots: Mutex<HashMap<WebhookId, Arc<Semaphore>>>,
    /// Told when an attempt ends: a slot is free, and more may be due.
    ended: Notify,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        keyring: Keyring,
        sender: Arc<dyn Sender>,
        clock: Arc<dyn Clock>,
        config: DeliveryConfig,
    ) -> Arc<Self> {
        let slots = Mutex::new(HashMap::new());
        Arc::new(Dispatcher { store, keyring, sender, clock, config, slots, ended: Notify::new() })
    }

    /// Waits until an attempt ends (or forever, when none is in flight).
    pub async fn attempt_ended(&self) {
        self.ended.notified().await;
    }

    /// One pass: for each receiver with deliveries due and free slots, claims as many as it
    /// has free slots and starts an attempt for each. Answers how many started.
    pub async fn run_once(self: &Arc<Self>) -> Result<usize, StoreError> {
        let now = self.clock.now_millis();
        if !self.store.any_delivery_due(now).await? {
            return Ok(0);
        }
        let lease_until = now + millis(self.config.timeout + LEASE_MARGIN);
        let webhooks = self.store.list_webhooks().await?;
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).retain(|id, _| webhooks.iter().any(|w| w.id == *id));
        let mut started = 0;
        for webhook in webhooks {
            let slots = self.slots_of(&webhook.id);
            let free = slots.available_permits();
            if free == 0 {
                continue;
            }
            let limit = u32::try_from(free).unwrap_or(1);
            for delivery in self.store.claim_deliveries(&webhook.id, now, lease_until, limit).await? {
                // Only this task takes a receiver's slots, so each claim has one.
                let Ok(slot) = slots.clone().try_acquire_owned() else { break };
                let (this, webhook) = (Arc::clone(self), webhook.clone());
                tokio::spawn(async move {
                    this.attempt(delivery, webhook).await;
                    drop(slot);
                    this.ended.notify_one();
                });
                started += 1;
            }
        }
        Ok(started)
    }

    /// The slots of a receiver (created on first use).
    fn slots_of(&self, id: &WebhookId) -> Arc<Semaphore> {
        let mut all = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        all.entry(id.clone()).or_insert_with(|| Arc::new(Semaphore::new(self.config.per_receiver.max(1)))).clone()
    }

    /// One attempt, and its outcome written (a failure to write it only delays a retry: the
    /// claim's lease runs out and the delivery is attempted again).
    async fn attempt(&self, delivery: Delivery, webhook: Webhook) {
        let sent = match open_secret(&self.keyring, &webhook) {
            Some(secret) => {
                let (headers, body) = signed(&secret, &delivery, self.clock.now());
                self.sender.post(&webhook.url, headers, body).await
            }
            None => Err("cannot unseal the receiver's secret (another master key?)".to_owned()),
        };
        let update = outcome(&self.config.schedule, &delivery, sent.clone(), self.clock.now_millis(), jitter());
        crate::telemetry::metrics::webhook_attempt(match update.status {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Pending => "retry",
            DeliveryStatus::Failed => "failed",
        });
        tracing::info!(
            webhook_id = %webhook.id,
            message_id = %delivery.message_id,
            event_type = %delivery.event_type,
            attempt = delivery.attempts,
            result = %sent.map_or_else(|e| e, |s| format!("status {s}")),
            status = update.status.as_str(),
            "webhook delivery attempted"
        );
        if let Err(e) = self.store.update_delivery(&delivery, &update).await {
            tracing::warn!(message_id = %delivery.message_id, error = %e, "cannot record a webhook attempt; it will be retried");
        }
    }
}

/// The context a receiver's secret is sealed under.
pub const SECRET_CONTEXT: &[u8] = b"tokensmith webhook secret v1";

pub fn open_secret(keyring: &Keyring, webhook: &Webhook) -> Option<WebhookSecret> {
    keyring.open(SECRET_CONTEXT, &webhook.secret_sealed).map(WebhookSecret::from_bytes)
}

/// The Standard Webhooks headers of `delivery` sent at `now` (Unix seconds), and its body.
pub fn signed(secret: &WebhookSecret, delivery: &Delivery, now: i64) -> (Vec<(&'static str, String)>, String) {
    signed_message(secret, delivery.message_id.as_str(), &delivery.payload, now)
}

pub fn signed_message(
    secret: &WebhookSecret,
    id: &str,
    payload: &str,
    now: i64,
) -> (Vec<(&'static str, String)>, String) {
    let headers = vec![
        ("content-type", "application/json".to_owned()),
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", now.to_string()),
        ("webhook-signature", sign(secret, id, now, payload)),
    ];
    (headers, payload.to_owned())
}

/// The delivery's state after an attempt that ended with `sent` at `now` (ms).
pub fn outcome(
    schedule: &RetrySchedule,
    delivery: &Delivery,
    sent: Result<u16, String>,
    now: i64,
    jitter: f64,
) -> DeliveryUpdate {
    let error = match sent {
        Ok(status) if (200..300).contains(&status) => {
            return DeliveryUpdate {
                status: DeliveryStatus::Delivered,
                next_attempt_at: now,
                last_error: None,
                finished_at: Some(now),
            };
        }
        Ok(status) => format!("status {status}"),
        Err(e) => e,
    };
    match schedule.next_attempt_at(delivery.attempts, now, jitter) {
        Some(next) => DeliveryUpdate {
            status: DeliveryStatus::Pending,
            next_attempt_at: next,
            last_error: Some(error),
            finished_at: None,
        },
        None => DeliveryUpdate {
            status: DeliveryStatus::Failed,
            next_attempt_at: now,
            last_error: Some(error),
            finished_at: Some(now),
        },
    }
}

fn jitter() -> f64 {
    rand::random::<f64>() * 2.0 - 1.0
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::webhook::MessageId;

    fn delivery(attempts: u32) -> Delivery {
        Delivery {
            message_id: MessageId::from_stored("msg_1".into()),
            webhook_id: WebhookId::generate(),
            event_type: "token.revoked".into(),
            payload: "{}".into(),
            created_at: 0,
            status: DeliveryStatus::Pending,
            attempts,
            next_attempt_at: 0,
            last_error: None,
            finished_at: None,
        }
    }

    #[test]
    fn a_2xx_delivers_anything_else_retries_until_the_schedule_is_spent() {
        let s = RetrySchedule::new(vec![5, 60]).unwrap();
        let ok = outcome(&s, &delivery(1), Ok(204), 1_000, 0.0);
        assert_eq!((ok.status, ok.finished_at), (DeliveryStatus::Delivered, Some(1_000)));
        let redirect = outcome(&s, &delivery(1), Ok(302), 1_000, 0.0);
        assert_eq!(redirect.status, DeliveryStatus::Pending);
        assert_eq!((redirect.next_attempt_at, redirect.last_error.as_deref()), (6_000, Some("status 302")));
        let down = outcome(&s, &delivery(2), Err("cannot connect".into()), 1_000, 0.0);
        assert_eq!((down.status, down.next_attempt_at), (DeliveryStatus::Pending, 61_000));
        let spent = outcome(&s, &delivery(3), Ok(500), 1_000, 0.0);
        assert_eq!((spent.status, spent.finished_at), (DeliveryStatus::Failed, Some(1_000)));
    }

    #[test]
    fn deliveries_carry_the_standard_webhooks_headers() {
        let secret = WebhookSecret::generate();
        let d = delivery(1);
        let (headers, body) = signed(&secret, &d, 1_700_000_000);
        let get = |n: &str| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
        assert_eq!(get("webhook-id").as_deref(), Some("msg_1"));
        assert_eq!(get("webhook-timestamp").as_deref(), Some("1700000000"));
        assert_eq!(get("webhook-signature"), Some(sign(&secret, "msg_1", 1_700_000_000, &body)));
    }
}
