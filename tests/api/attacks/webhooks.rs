//! Webhooks as an attacker would use them: made-up client ids locked by the thousand to flood
//! the outbox and the audit trail, receivers added at once to pass the cap, revocations that a
//! rotation hides from receivers. (A receiver that hangs, forged and replayed deliveries, URLs
//! that reach where they should not: `webhooks::*`.)

use std::time::Duration;

use serde_json::json;

use crate::helpers::{issued, merge, secret_grant, spawn_app, spawn_app_with};
use crate::webhook_receiver::{Behaviour, Receiver};
use crate::webhooks::{add_webhook, deliveries, eventually};

/// Guessing secrets for client ids that do not exist locks those ids (so the answers stay
/// uniform) but records nothing and sends nothing: only a registered client's lock is an event.
#[tokio::test]
async fn locking_made_up_client_ids_adds_nothing_to_the_trail_or_the_outbox() {
    let app = spawn_app_with(|s| s.failures_per_client = 2).await;
    let receiver = Receiver::start(Behaviour::Accept).await;
    add_webhook(&app.db, &receiver, "client.locked").await;
    let real = app.create_client("real", "read").await;
    let wrong = |id: &str| merge(secret_grant(&real), json!({"client_id": id, "client_secret": "tsc_not-the-secret"}));
    for n in 0..20 {
        let ghost = format!("cli_Ghost{n:015}");
        for _ in 0..2 {
            app.post_long(&wrong(&ghost)).await.assert_status(401);
        }
        app.post_long(&wrong(&ghost)).await.assert_rate_limited();
    }
    for _ in 0..2 {
        app.post_long(&wrong(&real.client_id)).await.assert_status(401);
    }
    app.post_long(&secret_grant(&real)).await.assert_rate_limited();

    eventually("the real client's lock arrives", || async { !receiver.received().is_empty() }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let locked: Vec<String> =
        receiver.received().iter().map(|r| r.data()["client_id"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(locked, std::slice::from_ref(&real.client_id), "only the registered client's lock is announced");
    let trail = app.audit(&["--limit", "1000"]).await;
    let locks = trail.iter().filter(|e| e["event"] == "client.locked").count();
    assert_eq!(locks, 1, "and recorded");
    assert_eq!(deliveries(&app.db, &[]).await.len(), 1);
}

/// Receivers added at the same moment are counted one after the other: the cap holds.
#[tokio::test]
async fn receivers_added_at_once_never_pass_the_cap() {
    let app = spawn_app().await;
    let receiver = Receiver::start(Behaviour::Accept).await;
    for _ in 0..17 {
        add_webhook(&app.db, &receiver, "token.revoked").await;
    }
    let args = ["webhook", "add", "--url", receiver.url.as_str(), "--events", "token.revoked"];
    let outs = crate::helpers::join_all((0..6).map(|_| app.cli(&args))).await;
    assert_eq!(outs.iter().filter(|o| o.status.success()).count(), 3, "20 in all");
    for refused in outs.iter().filter(|o| !o.status.success()) {
        assert!(String::from_utf8_lossy(&refused.stderr).contains("at most 20"), "{refused:?}");
    }
    let listed = app.cli_ok(&["webhook", "list", "--json"]).await;
    assert_eq!(serde_json::from_str::<serde_json::Value>(&listed).unwrap().as_array().unwrap().len(), 20);
}

/// A rotation ends the rotated token's descendants with it: the new token's `token.issued`
/// says which token it replaces, until when, and how many descendants end with it.
#[tokio::test]
async fn a_rotation_tells_receivers_what_it_ends() {
    let app = spawn_app().await;
    let receiver = Receiver::start(Behaviour::Accept).await;
    add_webhook(&app.db, &receiver, "token.issued").await;
    let client = app.create_client("ci", "read tokens:write").await;
    let old = app.issue_long(&client).await;
    let short = app.issue_short(&old.access_token).await;
    let child = issued(&app.post_long_with_short(&short.access_token, &json!({"grant_type": "short_token"})).await);
    let new = app.issue_long_with(&client, json!({"rotate_token_id": old.token_id})).await;
    app.post_short(Some(&child.access_token), None).await.assert_invalid_token();

    eventually("the rotation's message arrives", || async {
        receiver.received().iter().any(|r| r.data()["token_id"] == new.token_id.as_str())
    })
    .await;
    let rotation = receiver.received().into_iter().find(|r| r.data()["token_id"] == new.token_id.as_str()).unwrap();
    assert_eq!(rotation.data()["rotated_token_id"], old.token_id.as_str());
    assert_eq!(rotation.data()["cascade"], 1, "the child minted from the rotated token ends with it");
    assert!(rotation.data()["old_valid_until"].is_i64());
}
