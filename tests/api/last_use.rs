//! Last use, black-box: a long-term token records when it was last exchanged or presented as a
//! bearer, a client when it last authenticated; `token list` and `client show` show it, and
//! `token list --unused-for` and `--expiring-within` find the tokens to clean up or renew.

use serde_json::{Value, json};

use crate::helpers::{INTROSPECT, TestApp, rfc3339, spawn_app, spawn_app_in_the_past};

async fn tokens(app: &TestApp, extra: &[&str]) -> Vec<Value> {
    let out = app.cli_ok(&[&["token", "list", "--json"][..], extra].concat()).await;
    serde_json::from_str::<Value>(&out).unwrap().as_array().unwrap().clone()
}

fn ids(list: &[Value]) -> Vec<&str> {
    list.iter().map(|t| t["token_id"].as_str().unwrap()).collect()
}

async fn client_last_used(app: &TestApp, client_id: &str) -> Value {
    let out = app.cli_ok(&["client", "show", client_id, "--json"]).await;
    serde_json::from_str::<Value>(&out).unwrap()["last_used_at"].clone()
}

#[tokio::test]
async fn a_token_records_its_last_use_and_the_command_line_finds_old_and_ending_ones() {
    // Issued 40 days ago on the application's clock; the command line reads the real one.
    let app = spawn_app_in_the_past(40).await;
    let client = app.create_client("nightly", "deploy").await;
    let used = app.issue_long_with(&client, json!({"ttl_days": 90, "name": "used"})).await;
    let idle = app.issue_long_with(&client, json!({"ttl_days": 45, "name": "idle"})).await;
    app.purge().await;
    let listed = tokens(&app, &[]).await;
    assert!(listed.iter().all(|t| t["last_used_at"].is_null()), "issuance is no use: {listed:?}");

    app.clock.advance_secs(40 * 86_400);
    app.issue_short(&used.access_token).await;
    app.purge().await;

    let listed = tokens(&app, &[]).await;
    let last_used = |id: &str| listed.iter().find(|t| t["token_id"] == id).unwrap()["last_used_at"].clone();
    assert!((rfc3339(&last_used(&used.token_id)) - app.now()).abs() <= 2, "{listed:?}");
    assert!(last_used(&idle.token_id).is_null());
    assert!((rfc3339(&client_last_used(&app, &client.client_id).await) - app.now()).abs() <= 2);

    assert_eq!(ids(&tokens(&app, &["--unused-for", "30d"]).await), [idle.token_id.as_str()]);
    assert_eq!(ids(&tokens(&app, &["--expiring-within", "7d"]).await), [idle.token_id.as_str()]);
    assert!(tokens(&app, &["--unused-for", "30d", "--expiring-within", "1d"]).await.is_empty());
    let table = app.cli_ok(&["token", "list", "--unused-for", "30d"]).await;
    assert!(table.contains("LAST_USED") && table.contains(&idle.token_id), "{table}");
    assert!(!table.contains(&used.token_id), "{table}");
    assert!(!app.cli(&["token", "list", "--unused-for", "soon"]).await.status.success(), "a bad duration");
    assert!(!app.cli(&["token", "list", "--unused-for", "30"]).await.status.success(), "no unit");
    assert_eq!(tokens(&app, &[]).await[0]["origin"], Value::Null, "issued on the client's secret");
}

#[tokio::test]
async fn a_bearer_is_used_when_it_authenticates_not_when_it_is_introspected() {
    let app = spawn_app().await;
    let caller = app.create_client("caller", "tokens:introspect").await;
    let caller = app.issue_long(&caller).await;
    let other = app.create_client("other", "deploy").await;
    let inspected = app.issue_long(&other).await;
    app.purge().await;
    assert!(client_last_used(&app, &other.client_id).await.is_string(), "its secret authenticated it");

    let reply = app
        .send(app.post(INTROSPECT).bearer_auth(&caller.access_token).json(&json!({"token": inspected.access_token})));
    reply.await.assert_status(200);
    app.purge().await;
    let listed = tokens(&app, &[]).await;
    let last_used = |id: &str| listed.iter().find(|t| t["token_id"] == id).unwrap()["last_used_at"].clone();
    assert!(last_used(&caller.token_id).is_string(), "the bearer was used");
    assert!(last_used(&inspected.token_id).is_null(), "being introspected is no use");
}
