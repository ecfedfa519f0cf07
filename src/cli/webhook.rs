//! `tokensmith webhook …`: the receivers of signed webhook messages, and their deliveries.

use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use serde_json::json;

use super::output::{self, Table, fields, view_time};
use super::{Backend, DatabaseArgs};
use crate::clock::{Clock, SystemClock};
use crate::domain::webhook::admin as webhooks;
use crate::domain::webhook::{DeliveryQuery, DeliveryStatus, WebhookId};
use crate::http::admin::model::{AddedWebhookView, DeliveryView, RedeliveredView, RemovedWebhookView, WebhookView};
use reqwest::Method;

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Register a receiver; prints its signing secret (whsec_…) once.
    ///
    /// Deliveries follow Standard Webhooks: headers webhook-id, webhook-timestamp and
    /// webhook-signature (v1, HMAC-SHA256 over id.timestamp.body), so its libraries verify them.
    Add {
        /// Where to POST the messages (https://; http:// only on a loopback address).
        #[arg(long, value_name = "URL")]
        url: String,
        /// The events to send, comma-separated, or `all`: token.issued, token.revoked,
        /// token.expiring, token.exchanged, client.locked, client.disabled, key.rotated,
        /// issuer.added, issuer.removed, client.federation_added, client.federation_removed.
        #[arg(long, value_name = "EVENTS")]
        events: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List the receivers.
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Remove a receiver; its pending deliveries are dropped.
    Remove {
        webhook_id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Send a signed `webhook.test` message to a receiver now and print its answer's status.
    Test {
        webhook_id: String,
        /// Seconds to wait for the answer, 1-60.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=60))]
        timeout_secs: u64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Deliver a message again whose delivery failed (every attempt of the retry schedule),
    /// from the start of the schedule; running servers send it within a second.
    Redeliver {
        /// The message's id (webhook-id), msg_… (see webhook deliveries --status failed).
        message_id: String,
        /// Only to this receiver [default: every receiver it failed for].
        #[arg(long, value_name = "WEBHOOK_ID")]
        webhook: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List deliveries, newest first: pending (with the next attempt), delivered, failed.
    Deliveries {
        /// Only this receiver's.
        #[arg(long, value_name = "WEBHOOK_ID")]
        webhook: Option<String>,
        /// Only deliveries in this state: pending, delivered or failed.
        #[arg(long, value_parser = parse_status)]
        status: Option<DeliveryStatus>,
        /// At most this many, 1-1000.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

fn parse_status(s: &str) -> Result<DeliveryStatus, String> {
    DeliveryStatus::parse(s).ok_or_else(|| format!("{s:?} is not a delivery state: pending, delivered or failed"))
}

pub async fn run(cmd: WebhookCommand) -> anyhow::Result<()> {
    match cmd {
        WebhookCommand::Add { url, events, json, db } => add(&url, &events, json, &db).await,
        WebhookCommand::List { json, db } => list(json, &db).await,
        WebhookCommand::Remove { webhook_id, json, db } => remove(&webhook_id, json, &db).await,
        WebhookCommand::Test { webhook_id, timeout_secs, json, db } => test(&webhook_id, timeout_secs, json, &db).await,
        WebhookCommand::Redeliver { message_id, webhook, json, db } => {
            redeliver(&message_id, webhook.as_deref(), json, &db).await
        }
        WebhookCommand::Deliveries { webhook, status, limit, json, db } => {
            let webhook = webhook.map(|w| parse_webhook_id(&w)).transpose()?;
            deliveries(DeliveryQuery { webhook, status, limit }, json, &db).await
        }
    }
}

fn parse_webhook_id(text: &str) -> anyhow::Result<WebhookId> {
    WebhookId::parse(text).ok_or_else(|| {
        anyhow::anyhow!(
            "{:?} is not a webhook id: ids look like wh_3vQk0ZcO0mB1m4v8 (see tokensmith webhook list)",
            output::clean(text)
        )
    })
}

async fn add(url: &str, events: &str, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let added: AddedWebhookView = match db.backend().await? {
        Backend::Remote(r) => {
            let events: Vec<&str> = events.split(',').map(str::trim).collect();
            r.send(Method::POST, &["webhooks"], Some(json!({"url": url, "events": events}))).await?
        }
        Backend::Local(store, keyring) => {
            let added = webhooks::add(store.as_ref(), &keyring, SystemClock.now(), url, events).await?;
            AddedWebhookView { webhook: WebhookView::from(&added.webhook), secret: added.secret.reveal().to_string() }
        }
    };
    if json {
        return output::json_of(&added);
    }
    let w = &added.webhook;
    let pairs = [("url", w.url.clone()), ("events", w.events.join(",")), ("secret", added.secret.clone())];
    output::print(&format!(
        "webhook {}\n{}\nThe secret is shown only now: give it to the receiver, which verifies each \
         message's webhook-signature with it.\n",
        w.webhook_id,
        fields(&pairs)
    ))
}

async fn list(json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let all: Vec<WebhookView> = match db.backend().await? {
        Backend::Remote(r) => r.get(&["webhooks"], &[]).await?,
        Backend::Local(store, _) => store.list_webhooks().await?.iter().map(WebhookView::from).collect(),
    };
    if json {
        return output::json_of(&all);
    }
    if all.is_empty() {
        return output::print("no webhook receivers (add one with tokensmith webhook add)\n");
    }
    let mut t = Table::new(&["WEBHOOK_ID", "URL", "EVENTS", "CREATED"]);
    for w in &all {
        t.row([w.webhook_id.clone(), w.url.clone(), w.events.join(","), view_time(&w.created_at)]);
    }
    output::print(&t.render())
}

async fn remove(id: &str, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let removed: RemovedWebhookView = match db.backend().await? {
        Backend::Remote(r) => r.send(Method::DELETE, &["webhooks", id], None).await?,
        Backend::Local(store, _) => {
            let id = webhooks::remove(store.as_ref(), SystemClock.now(), id).await?;
            RemovedWebhookView { webhook_id: id.as_str().to_owned(), removed: true }
        }
    };
    if json {
        return output::json_of(&removed);
    }
    output::print(&format!("webhook {} removed\n", removed.webhook_id))
}

async fn test(id: &str, timeout_secs: u64, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    db.local_only("webhook test")?;
    let (store, keyring) = db.open_existing().await?;
    let sender = Arc::new(crate::webhook_http::HttpSender::new(Duration::from_secs(timeout_secs))?);
    let result = webhooks::test(store.as_ref(), &keyring, sender, SystemClock.now(), id).await?;
    let accepted = matches!(result.answer, Ok(s) if (200..300).contains(&s));
    if json {
        let (status, error) = match &result.answer {
            Ok(s) => (Some(*s), None),
            Err(e) => (None, Some(e.clone())),
        };
        output::json(&json!({"message_id": result.message_id.as_str(), "accepted": accepted,
                             "status": status, "error": error}))?;
    } else {
        let answer = result.answer.as_ref().map_or_else(Clone::clone, |s| format!("status {s}"));
        output::print(&format!("webhook.test {} to {id}: {answer}\n", result.message_id))?;
    }
    if !accepted {
        anyhow::bail!("the receiver did not accept the test message (a 2xx answer)");
    }
    Ok(())
}

async fn redeliver(message: &str, webhook: Option<&str>, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let done: RedeliveredView = match db.backend().await? {
        Backend::Remote(r) => {
            let body = json!({ "webhook_id": webhook });
            r.send(Method::POST, &["webhooks", "deliveries", message, "redeliver"], Some(body)).await?
        }
        Backend::Local(store, _) => {
            let n = webhooks::redeliver(store.as_ref(), SystemClock.now(), message, webhook).await?;
            RedeliveredView { message_id: message.to_owned(), deliveries: n }
        }
    };
    if json {
        return output::json_of(&done);
    }
    output::print(&format!("{} failed deliveries of {} scheduled again\n", done.deliveries, done.message_id))
}

async fn deliveries(query: DeliveryQuery, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let all: Vec<DeliveryView> = match db.backend().await? {
        Backend::Remote(r) => {
            let mut params = vec![("limit", query.limit.to_string())];
            if let Some(w) = &query.webhook {
                params.push(("webhook_id", w.to_string()));
            }
            if let Some(s) = query.status {
                params.push(("status", s.as_str().to_owned()));
            }
            r.get(&["webhooks", "deliveries"], &params).await?
        }
        Backend::Local(store, _) => {
            webhooks::deliveries(store.as_ref(), &query).await?.iter().map(DeliveryView::from).collect()
        }
    };
    if json {
        return output::json_of(&all);
    }
    if all.is_empty() {
        return output::print("no deliveries\n");
    }
    let mut t =
        Table::new(&["MESSAGE_ID", "WEBHOOK_ID", "EVENT", "STATUS", "ATTEMPTS", "CREATED", "NEXT/DONE", "LAST_ERROR"]);
    for d in &all {
        let when = d.next_attempt_at.as_ref().or(d.finished_at.as_ref()).map_or_else(String::new, |t| view_time(t));
        t.row([
            d.message_id.clone(),
            d.webhook_id.clone(),
            d.event_type.clone(),
            d.status.clone(),
            d.attempts.to_string(),
            view_time(&d.created_at),
            when,
            d.last_error.clone().unwrap_or_default(),
        ]);
    }
    output::print(&t.render())
}
