//! The audit trail under attack: failures are recorded one by one up to the limit per client
//! and per address and window, then counted in one summary event; a flood cannot fill the disk.

use serde_json::{Value, json};

use crate::helpers::{TestApp, merge, secret_grant, spawn_app, spawn_app_with};

async fn events(app: &TestApp) -> Vec<Value> {
    app.audit(&["--limit", "100000"]).await
}

fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

/// Waits for the server to record the summaries of the windows that ended (it does so every
/// second).
async fn summaries(app: &TestApp, at_least: usize) -> Vec<Value> {
    for _ in 0..100 {
        let all = events(app).await;
        if named(&all, "auth.failures_summarized").len() >= at_least {
            return all;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no summary event within 10 s");
}

#[tokio::test]
async fn four_hundred_bad_bearer_revocations_add_a_bounded_number_of_events() {
    let app = spawn_app().await;
    let before = events(&app).await.len();

    for i in 0..400 {
        let reply = app.revoke(Some(&format!("tsl_forged{i}")), "0196a6a0-0000-7000-8000-000000000000").await;
        reply.assert_invalid_token();
    }

    app.clock.advance_secs(61);
    let all = summaries(&app, 1).await;
    let failed = named(&all, "auth.failed").len();
    assert!(failed <= 100, "at most the address limit recorded one by one, got {failed}");
    let summary = named(&all, "auth.failures_summarized");
    assert_eq!(summary.len(), 1, "{summary:#?}");
    assert_eq!(summary[0]["source"], "127.0.0.1");
    let counted =
        summary[0]["detail"]["failures"].as_u64().unwrap() + summary[0]["detail"]["refused"].as_u64().unwrap();
    assert_eq!(failed as u64 + counted, 400, "every failure is recorded or counted: {summary:#?}");
    assert!(all.len() - before <= 100 + 1, "the trail grew by {}", all.len() - before);
}

#[tokio::test]
async fn guesses_at_one_client_from_many_addresses_are_summarised_per_client() {
    let app = spawn_app_with(|s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.failures_per_client = 5;
    })
    .await;
    let client = app.create_client("victim", "deploy").await;
    let wrong = merge(secret_grant(&client), json!({"client_secret": "tsc_wrong"}));

    for i in 0..50 {
        let request = app.post(crate::helpers::LONG).header("X-Forwarded-For", format!("198.51.100.{i}")).json(&wrong);
        let reply = app.send(request).await;
        assert!(matches!(reply.status.as_u16(), 401 | 429), "{}", reply.text);
    }

    app.clock.advance_secs(61);
    let all = summaries(&app, 1).await;
    let failed: Vec<_> = named(&all, "auth.failed");
    assert_eq!(failed.len(), 5, "the client's limit, recorded one by one");
    let summary = named(&all, "auth.failures_summarized");
    let for_client: Vec<_> = summary.iter().filter(|e| e["client_id"] == client.client_id.as_str()).collect();
    assert_eq!(for_client.len(), 1, "{summary:#?}");
    assert_eq!(
        for_client[0]["detail"]["refused"].as_u64().unwrap() + for_client[0]["detail"]["failures"].as_u64().unwrap(),
        45
    );
}

#[tokio::test]
async fn many_addresses_share_one_budget_so_the_trail_grows_at_a_bounded_rate() {
    let app = spawn_app_with(|s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.failures_per_address = 2;
        s.audit_failures_per_window = 50;
    })
    .await;
    let before = events(&app).await.len();

    for i in 0..120u32 {
        let from = format!("198.51.{}.{}", i / 3 / 250, i / 3 % 250);
        let request = app
            .post(&format!("/v1/auth/tokens/{}/revoke", uuid::Uuid::now_v7()))
            .header("X-Forwarded-For", from)
            .bearer_auth(format!("tsl_forged{i}"));
        app.send(request).await.assert_invalid_token();
    }

    app.clock.advance_secs(61);
    let all = summaries(&app, 1).await;
    let failed = named(&all, "auth.failed").len();
    let summary = named(&all, "auth.failures_summarized");
    assert!(failed <= 50, "the budget, recorded one by one: {failed}");
    assert!(summary.len() <= 5 + 1, "a tenth of the budget and one more: {}", summary.len());
    let counted: u64 = summary.iter().map(|e| e["detail"]["failures"].as_u64().unwrap()).sum();
    assert_eq!(failed as u64 + counted, 120, "every failure is recorded or counted");
    assert!(all.len() - before <= 50 + 6);
}
