//! Expiry warnings, black-box: a long-term token about to end is announced once per lead time
//! (7 and 1 days by default) with a `token.expiring` audit event, by one of several instances,
//! and counted per client and lead time in `/metrics`. On both backends.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const DAY: i64 = 86_400;

async fn warnings(app: &TestApp) -> Vec<(String, i64)> {
    let events = app.audit(&["--limit", "1000"]).await;
    let mut w: Vec<(String, i64)> = events
        .iter()
        .filter(|e| e["event"] == "token.expiring")
        .map(|e| (e["token_id"].as_str().unwrap().to_owned(), e["detail"]["within_days"].as_i64().unwrap()))
        .collect();
    w.sort();
    w
}

fn gauge(metrics: &str, client: &str, days: i64) -> Option<f64> {
    let series = format!("tokensmith_long_tokens_expiring{{client_id=\"{client}\",within_days=\"{days}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(&series)).map(|v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn a_token_about_to_end_is_announced_once_per_lead_time_by_one_instance() {
    let app = spawn_app().await;
    let sibling = app.spawn_sibling().await;
    let client = app.create_client("nightly", "deploy").await;
    let ten = app.issue_long_with(&client, json!({"ttl_days": 10})).await.token_id;
    let eight = app.issue_long_with(&client, json!({"ttl_days": 8})).await.token_id;
    // Issued for a day: its end is no surprise, at either lead time.
    app.issue_long_with(&client, json!({"ttl_days": 1})).await;
    app.purge().await;
    assert!(warnings(&app).await.is_empty());

    app.clock.advance_secs(3 * DAY + DAY / 2);
    app.purge().await;
    sibling.purge().await;
    app.purge().await;
    let mut expected = vec![(ten.clone(), 7), (eight.clone(), 7)];
    expected.sort();
    assert_eq!(warnings(&app).await, expected, "once each, whichever instance ran first");
    let metrics = app.get("/metrics").await.text;
    assert_eq!(gauge(&metrics, &client.client_id, 7), Some(2.0), "{metrics}");

    app.clock.advance_secs(5 * DAY + DAY / 2);
    sibling.purge().await;
    app.purge().await;
    expected.push((ten.clone(), 1));
    expected.sort();
    assert_eq!(warnings(&app).await, expected);
    let metrics = app.get("/metrics").await.text;
    assert_eq!(gauge(&metrics, &client.client_id, 7), Some(1.0), "the 8-day token ended: {metrics}");
    assert_eq!(gauge(&metrics, &client.client_id, 1), Some(1.0), "{metrics}");
    let event: Value =
        app.audit(&["--limit", "1000"]).await.into_iter().find(|e| e["event"] == "token.expiring").unwrap();
    assert_eq!(event["client_id"], client.client_id.as_str());
    assert!(event["detail"]["expires_at"].is_i64());
}

#[tokio::test]
async fn lead_times_are_configured_and_none_means_no_warnings() {
    let app = spawn_app_with(|s| s.expiry_warning_days = vec![]).await;
    let client = app.create_client("nightly", "deploy").await;
    app.issue_long_with(&client, json!({"ttl_days": 10})).await;
    app.clock.advance_secs(9 * DAY + DAY / 2);
    app.purge().await;
    assert!(warnings(&app).await.is_empty());

    app.cli_ok(&["config", "check", "--expiry-warning-days", ""]).await;
    let out = app.cli(&["config", "check", "--expiry-warning-days", "7,0"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expiry_warning_days"), "{out:?}");
}
