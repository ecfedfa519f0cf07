//! issueLongTermToken with `client_credentials` + `client_secret`.

use serde_json::json;

use crate::helpers::{LONG, issued, merge, rfc3339, secret_grant, sorted, spawn_app, unknown_client_id};

#[tokio::test]
async fn a_client_secret_issues_a_long_term_token() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "deploy read").await;

    let reply = app.post_long(&secret_grant(&client)).await;

    let token = issued(&reply);
    let body = &token.body;
    assert_eq!(reply.header("x-token-id"), Some(token.token_id.as_str()), "X-Token-Id = token_id");
    assert!(!token.token_id.is_empty());
    assert!(token.access_token.starts_with("tsl_"), "a recognisable prefix: {}", token.access_token);
    assert_eq!(body["client_id"], client.client_id.as_str());
    assert_eq!(token.scopes(), sorted(&["deploy", "read"]), "all the client's scopes by default");
    assert_eq!(body["expires_in"], 30 * 86_400, "30 days by default");
    let issued_at = rfc3339(&body["issued_at"]);
    let expires_at = rfc3339(&body["expires_at"]);
    assert_eq!(expires_at - issued_at, 30 * 86_400);
    assert!((issued_at - app.now()).abs() <= 5, "issued now");
    assert!(body.get("rotated_token_id").is_none_or(|v| v.is_null()), "no rotation: {body}");
    assert!(body.get("client_secret").is_none(), "the secret is never echoed");
}

#[tokio::test]
async fn each_long_term_token_is_new_random_and_long_enough() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read").await;

    let first = app.issue_long(&client).await;
    let second = app.issue_long(&client).await;

    assert_ne!(first.token_id, second.token_id);
    assert_ne!(first.access_token, second.access_token);
    for token in [&first.access_token, &second.access_token] {
        let body = token.strip_prefix("tsl_").expect("prefix");
        // 192 bits need at least 33 base62 characters, plus a checksum.
        assert!(body.len() >= 33 + 4, "{token} is too short for 192 bits and a checksum");
        assert!(body.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
    }
    // Both work.
    app.issue_short(&first.access_token).await;
    app.issue_short(&second.access_token).await;
}

#[tokio::test]
async fn requested_scopes_narrow_the_long_term_token() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "deploy read write").await;

    let token = app.issue_long_with(&client, json!({"scopes": ["read"]})).await;

    assert_eq!(token.scopes(), sorted(&["read"]));
    let short = app.issue_short(&token.access_token).await;
    assert_eq!(short.scopes(), sorted(&["read"]), "a short-term token inherits at most the long one's scopes");
}

#[tokio::test]
async fn requesting_a_scope_the_client_lacks_is_insufficient_scope() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read").await;

    let reply = app.post_long(&merge(secret_grant(&client), json!({"scopes": ["read", "admin"]}))).await;

    reply.assert_error(403, "insufficient_scope");
}

#[tokio::test]
async fn ttl_days_sets_the_lifetime_from_one_to_ninety_days() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read").await;

    for days in [1, 7, 90] {
        let token = app.issue_long_with(&client, json!({"ttl_days": days})).await;
        assert_eq!(token.body["expires_in"], days * 86_400);
        let lifetime = rfc3339(&token.body["expires_at"]) - rfc3339(&token.body["issued_at"]);
        assert_eq!(lifetime, days * 86_400);
    }
}

#[tokio::test]
async fn a_long_term_token_stops_working_when_it_expires() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read").await;
    let token = app.issue_long_with(&client, json!({"ttl_days": 1})).await;
    app.issue_short(&token.access_token).await;

    app.clock.advance_secs(86_400 + 5);

    app.post_short(Some(&token.access_token), None).await.assert_invalid_token();
}

#[tokio::test]
async fn a_name_of_up_to_100_characters_is_accepted() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read").await;

    app.issue_long_with(&client, json!({"name": "n".repeat(100)})).await;
    app.issue_long_with(&client, json!({"name": "nightly deploy ✓"})).await;
}

#[tokio::test]
async fn the_client_id_may_come_from_the_x_client_key_header() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read").await;
    let body = merge(secret_grant(&client), json!({"client_id": null}));

    let reply = app.send(app.post(LONG).header("X-Client-Key", &client.client_id).json(&body)).await;

    let token = issued(&reply);
    assert_eq!(token.body["client_id"], client.client_id.as_str());
}

#[tokio::test]
async fn an_x_client_key_equal_to_client_id_is_accepted() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read").await;

    let reply = app.send(app.post(LONG).header("X-Client-Key", &client.client_id).json(&secret_grant(&client))).await;

    issued(&reply);
}

#[tokio::test]
async fn an_x_client_key_that_differs_from_client_id_is_a_bad_request() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read").await;
    let other = app.create_client("other", "read").await;

    let reply = app.send(app.post(LONG).header("X-Client-Key", &other.client_id).json(&secret_grant(&client))).await;

    reply.assert_invalid_request();
}

#[tokio::test]
async fn no_client_id_and_no_x_client_key_is_a_bad_request() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read").await;

    let reply = app.post_long(&merge(secret_grant(&client), json!({"client_id": null}))).await;

    reply.assert_invalid_request();
}

#[tokio::test]
async fn a_wrong_client_secret_is_invalid_client() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read").await;
    let other = app.create_client("other", "read").await;

    // Someone else's valid secret, and a mistyped one.
    let reply = app.post_long(&merge(secret_grant(&client), json!({"client_secret": other.client_secret}))).await;
    reply.assert_error(401, "invalid_client");

    let mut typo = client.client_secret.clone();
    let last = typo.pop().expect("a non-empty secret");
    typo.push(if last == 'a' { 'b' } else { 'a' });
    let reply = app.post_long(&merge(secret_grant(&client), json!({"client_secret": typo}))).await;
    reply.assert_error(401, "invalid_client");

    let reply = app.post_long(&merge(secret_grant(&client), json!({"client_secret": "x"}))).await;
    reply.assert_error(401, "invalid_client");
}

#[tokio::test]
async fn an_unknown_client_gets_the_same_answer_as_a_wrong_secret() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read").await;
    let other = app.create_client("other", "read").await;

    let wrong_secret = app
        .post_long(&merge(secret_grant(&client), json!({"client_secret": other.client_secret})))
        .await
        .assert_error(401, "invalid_client");
    let unknown = app
        .post_long(&merge(secret_grant(&client), json!({"client_id": unknown_client_id()})))
        .await
        .assert_error(401, "invalid_client");

    assert_eq!(
        wrong_secret["error_description"], unknown["error_description"],
        "the answer does not reveal whether the client exists"
    );
}

#[tokio::test]
async fn a_disabled_client_cannot_get_a_long_term_token() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read").await;
    app.issue_long(&client).await;

    let out = app.cli(&["client", "disable", &client.client_id]).await;
    assert!(out.status.success(), "client disable: {}", String::from_utf8_lossy(&out.stderr));

    app.post_long(&secret_grant(&client)).await.assert_error(401, "invalid_client");
    let listed = app.list_clients().await;
    let entry = listed.iter().find(|c| c["client_id"] == client.client_id.as_str()).expect("the client is listed");
    assert_eq!(entry["disabled"], true);
}
